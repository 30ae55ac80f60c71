package stt

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"

	"candor/processor/media"
)

// Report is the outcome of Evaluate. WER is a fraction (0.1 = 10 %); RTF is
// processing time over audio time.
type Report struct {
	Files             int
	Words             int // reference words
	Errors            int // substitutions + deletions + insertions
	WER               float64
	AudioSeconds      float64
	ProcessingSeconds float64
	RTF               float64
	PerFile           []FileReport
}

// FileReport is one corpus file's share of a Report.
type FileReport struct {
	File, Reference, Hypothesis string
	Words, Errors               int
	AudioSeconds                float64
	ProcessingSeconds           float64
}

// evalChunk is the piece size fed to streams: 20 ms, like WebRTC frames.
const evalChunk = SampleRate / 50

// Evaluate runs every file listed in corpusDir/refs.txt ("<file> <reference
// text>" per line, '#' comments allowed) through a fresh Stream of eng in
// real-time-sized pieces, as fast as the engine accepts them, flushes, and
// scores the concatenated results against the reference. It writes one
// progress line per file to progress (may be nil).
func Evaluate(ctx context.Context, corpusDir string, eng Engine, progress io.Writer) (Report, error) {
	if progress == nil {
		progress = io.Discard
	}
	refs, err := readRefs(filepath.Join(corpusDir, "refs.txt"))
	if err != nil {
		return Report{}, err
	}
	var rep Report
	for i, ref := range refs {
		fr, err := evaluateFile(ctx, filepath.Join(corpusDir, ref.file), ref.text, eng)
		if err != nil {
			return rep, err
		}
		fr.File = ref.file
		rep.PerFile = append(rep.PerFile, fr)
		rep.Files++
		rep.Words += fr.Words
		rep.Errors += fr.Errors
		rep.AudioSeconds += fr.AudioSeconds
		rep.ProcessingSeconds += fr.ProcessingSeconds
		fmt.Fprintf(progress, "[%d/%d] %s  %.1fs audio  WER %.1f%% (%d/%d)  RTF %.3f\n    ref: %s\n    hyp: %s\n",
			i+1, len(refs), ref.file, fr.AudioSeconds, 100*ratio(fr.Errors, fr.Words), fr.Errors, fr.Words,
			fr.ProcessingSeconds/fr.AudioSeconds, ref.text, fr.Hypothesis)
	}
	rep.WER = ratio(rep.Errors, rep.Words)
	if rep.AudioSeconds > 0 {
		rep.RTF = rep.ProcessingSeconds / rep.AudioSeconds
	}
	return rep, nil
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

type corpusRef struct{ file, text string }

func readRefs(path string) ([]corpusRef, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w (a corpus is a folder of WAV files with refs.txt; build one with scripts/make-stt-corpus.sh DIR)", err)
	}
	defer f.Close()
	var refs []corpusRef
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		file, text, ok := strings.Cut(line, " ")
		if !ok || strings.TrimSpace(text) == "" {
			return nil, fmt.Errorf("%s:%d: want \"<file> <reference text>\"", path, n)
		}
		refs = append(refs, corpusRef{file: file, text: strings.TrimSpace(text)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("%s lists no files", path)
	}
	return refs, nil
}

// ReadCorpusWAV loads a corpus file, which must be 16 kHz mono 16-bit PCM WAV.
func ReadCorpusWAV(path string) ([]int16, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("corpus file: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("corpus file: %w", err)
	}
	pcm, rate, channels, err := media.DecodeWAV(raw)
	fix := fmt.Sprintf("convert it with: ffmpeg -i %q -ar 16000 -ac 1 -c:a pcm_s16le OUT.wav", path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; %s", path, err, fix)
	}
	if rate != SampleRate || channels != 1 {
		return nil, fmt.Errorf("%s is %d Hz with %d channels, want 16000 Hz mono; %s", path, rate, channels, fix)
	}
	return pcm, nil
}

func evaluateFile(ctx context.Context, path, ref string, eng Engine) (FileReport, error) {
	pcm, err := ReadCorpusWAV(path)
	if err != nil {
		return FileReport{}, err
	}
	var mu sync.Mutex
	var hyp []string
	began := time.Now()
	st, err := eng.NewStream(ctx, 0, func(r Result) {
		mu.Lock()
		hyp = append(hyp, r.Text)
		mu.Unlock()
	})
	if err != nil {
		return FileReport{}, fmt.Errorf("%s: %w", path, err)
	}
	defer st.Close()
	for off := 0; off < len(pcm); off += evalChunk {
		if err := st.Write(pcm[off:min(off+evalChunk, len(pcm))]); err != nil {
			return FileReport{}, fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := st.Flush(ctx); err != nil {
		return FileReport{}, fmt.Errorf("%s: %w", path, err)
	}
	elapsed := time.Since(began)
	mu.Lock()
	text := strings.Join(hyp, " ")
	mu.Unlock()
	errs, words := WordErrors(ref, text)
	return FileReport{
		Reference: ref, Hypothesis: text, Words: words, Errors: errs,
		AudioSeconds:      float64(len(pcm)) / SampleRate,
		ProcessingSeconds: elapsed.Seconds(),
	}, nil
}

// NormalizeWords lowercases text and splits it into words, dropping
// punctuation (apostrophes inside words stay: "don't").
func NormalizeWords(text string) []string {
	text = strings.NewReplacer("’", "'", "‘", "'").Replace(strings.ToLower(text))
	f := strings.FieldsFunc(text, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
	out := f[:0]
	for _, w := range f {
		if w = strings.Trim(w, "'"); w != "" {
			out = append(out, w)
		}
	}
	return out
}

// WordErrors returns the word-level edit distance between a reference and a
// hypothesis after normalisation, and the number of reference words.
func WordErrors(ref, hyp string) (errs, words int) {
	r, h := NormalizeWords(ref), NormalizeWords(hyp)
	prev := make([]int, len(h)+1)
	cur := make([]int, len(h)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(r); i++ {
		cur[0] = i
		for j := 1; j <= len(h); j++ {
			sub := prev[j-1]
			if r[i-1] != h[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(h)], len(r)
}
