package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// evalCorpus builds a corpus of real LibriVox recordings in a temporary
// folder: the WAVs copied, refs.txt written from their references.
func evalCorpus(t *testing.T, ids ...string) string {
	t.Helper()
	refs := librivoxRefs(t)
	dir := t.TempDir()
	var list strings.Builder
	for _, id := range ids {
		if refs[id] == "" {
			t.Fatalf("no reference for %s", id)
		}
		wav, err := os.ReadFile(filepath.Join(librivoxDir, id+".wav"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, id+".wav"), wav, 0o644); err != nil {
			t.Fatal(err)
		}
		list.WriteString(id + ".wav " + refs[id] + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "refs.txt"), []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

var werLine = regexp.MustCompile(`transport=(\S+) files=(\d+) .* WER=([0-9.]+)%`)

// evalWER runs `candor eval-stt` and returns the WER it prints, in percent.
func evalWER(t *testing.T, args ...string) (wer float64, progress string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, append([]string{"eval-stt"}, args...), map[string]string{}, &stdout, &stderr); err != nil {
		t.Fatalf("eval-stt %v: %v\n%s", args, err, stderr.String())
	}
	m := werLine.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("eval-stt %v printed no WER line:\n%s", args, stdout.String())
	}
	wer, err := strconv.ParseFloat(m[3], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", strings.TrimSpace(stdout.String()))
	return wer, stderr.String()
}

func TestEvalSTTMeasuresEachTransportAgainstTheCleanFile(t *testing.T) {
	corpus := evalCorpus(t,
		"sense_and_sensibility_01_austen_64kb-0880",
		"sense_and_sensibility_01_austen_64kb-0890")
	clean, _ := evalWER(t, "--corpus", corpus)
	// Pocketsphinx's default model gets about a third of these words wrong;
	// far more means the engine or the corpus is broken.
	if clean > 60 {
		t.Fatalf("WER %.1f%% on the clean files, want below 60%%", clean)
	}
	tests := []struct {
		name      string
		transport string
		progress  string // a line the transcoding prints per file
	}{
		{"MediaRecorder's WebM chunks out of order with a duplicate cost few words", "webm", "chunks out of order, 1 duplicate"},
		{"Ogg/Opus chunks out of order with a duplicate cost few words", "ogg", "chunks out of order, 1 duplicate"},
		{"Opus over WebRTC to the WHIP server costs few words", "whip", "ogg over WebRTC, real time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wer, progress := evalWER(t, "--corpus", corpus, "--transport", tt.transport)
			if !strings.Contains(progress, "["+tt.transport+" 2/2]") || !strings.Contains(progress, tt.progress) {
				t.Errorf("progress does not show the transport at work:\n%s", progress)
			}
			// Loose: one word here is 4.5 points, and pocketsphinx can
			// flip a word on a change of a few samples. The measured
			// figures are in the eval-stt report.
			if wer > 60 || wer-clean > 10 {
				t.Errorf("WER %.1f%% over %s, clean %.1f%%: want below 60%% and at most 10 points worse", wer, tt.transport, clean)
			}
		})
	}
}

func TestEvalSTTRefusesWhatItCannotMeasure(t *testing.T) {
	corpus := evalCorpus(t, "sense_and_sensibility_01_austen_64kb-0880")
	escaping := t.TempDir()
	if err := os.WriteFile(filepath.Join(escaping, "refs.txt"), []byte("../elsewhere.wav hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"an unknown transport names the known ones", []string{"--corpus", corpus, "--transport", "pigeon"}, "use one of wav, webm, ogg, whip"},
		{"a corpus file outside the corpus folder is refused", []string{"--corpus", escaping, "--transport", "webm"}, "not a path inside the corpus"},
		{"the transcoded copy may not overwrite the corpus", []string{"--corpus", corpus, "--transport", "webm", "--transcoded", corpus + "/"}, "another folder than --corpus"},
		{"a missing corpus says how to build one", []string{"--corpus", filepath.Join(escaping, "none"), "--transport", "ogg"}, "make-stt-corpus.sh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"eval-stt"}, tt.args...), map[string]string{}, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("eval-stt %v = %v, want an error mentioning %q", tt.args, err, tt.want)
			}
		})
	}
}
