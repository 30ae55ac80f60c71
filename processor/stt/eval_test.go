package stt_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"candor/processor/stt"
)

func TestWordErrorsCountsEditsOnNormalisedWords(t *testing.T) {
	tests := []struct {
		name        string
		ref, hyp    string
		errs, words int
	}{
		{"identical text has no errors", "he was not an ill disposed young man", "he was not an ill disposed young man", 0, 8},
		{"case and punctuation do not count", "He was not, an ill-disposed young man.", "he was not an ill disposed young man", 0, 8},
		{"apostrophes inside words are kept", "don't stop", "dont stop", 1, 2},
		{"a substitution is one error", "one two three", "one too three", 1, 3},
		{"a deletion is one error", "one two three", "one three", 1, 3},
		{"an insertion is one error", "one two three", "one two two three", 1, 3},
		{"an empty hypothesis deletes every word", "one two three", "", 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs, words := stt.WordErrors(tt.ref, tt.hyp)
			if errs != tt.errs || words != tt.words {
				t.Errorf("WordErrors = %d/%d, want %d/%d", errs, words, tt.errs, tt.words)
			}
		})
	}
}

func TestEvaluateRefusesAudioThatIsNot16kHzMono(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.wav"), stt.EncodeWAV(make([]int16, 44100), 44100), 0o644)
	os.WriteFile(filepath.Join(dir, "refs.txt"), []byte("a.wav hello there\n"), 0o644)
	_, err := stt.Evaluate(context.Background(), dir, newPocketsphinx(t), nil)
	if err == nil || !strings.Contains(err.Error(), "44100 Hz") || !strings.Contains(err.Error(), "ffmpeg") {
		t.Errorf("error %v, want one naming the rate and the ffmpeg fix", err)
	}
	_, err = stt.Evaluate(context.Background(), t.TempDir(), newPocketsphinx(t), nil)
	if err == nil || !strings.Contains(err.Error(), "make-stt-corpus.sh") {
		t.Errorf("missing refs.txt: %v", err)
	}
}

func TestEvaluateScoresTheCorpusTheScriptBuilds(t *testing.T) {
	requireTool(t, "espeak-ng")
	requireTool(t, "ffmpeg")
	dir := t.TempDir()
	out, err := exec.Command("../../scripts/make-stt-corpus.sh", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("make-stt-corpus.sh: %v\n%s", err, out)
	}
	var progress bytes.Buffer
	rep, err := stt.Evaluate(context.Background(), dir, newPocketsphinx(t), &progress)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("files=%d words=%d errors=%d WER=%.1f%% audio=%.1fs processing=%.1fs RTF=%.3f",
		rep.Files, rep.Words, rep.Errors, 100*rep.WER, rep.AudioSeconds, rep.ProcessingSeconds, rep.RTF)
	t.Log("\n" + progress.String())
	if rep.Files != 11 || len(rep.PerFile) != 11 {
		t.Errorf("%d files, want 5 recordings + 6 sentences", rep.Files)
	}
	if rep.Words < 100 || rep.AudioSeconds < 30 || rep.RTF <= 0 {
		t.Errorf("report %+v", rep)
	}
	if rep.WER >= 0.6 {
		t.Errorf("WER %.2f, want < 0.60\n%s", rep.WER, progress.String())
	}
	if n := strings.Count(progress.String(), "] "); n != 11 {
		t.Errorf("%d progress lines, want 11:\n%s", n, progress.String())
	}
}
