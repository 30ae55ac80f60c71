package media

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func probeWebMDuration(t *testing.T, path string) float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe duration %q: %v", out, err)
	}
	return d
}

func decodeFile(t *testing.T, mimeType string, file []byte) []int16 {
	t.Helper()
	var pcm []int16
	dec, err := NewStreamDecoder(mimeType, func(s []int16) { pcm = append(pcm, s...) })
	if err != nil {
		t.Fatal(err)
	}
	if err := dec.Write(file); err != nil {
		t.Fatal(err)
	}
	if err := dec.Close(); err != nil {
		t.Fatal(err)
	}
	return pcm
}

func TestMediaRecorderWebMGetsADurationAndStillDecodesTheSame(t *testing.T) {
	orig, err := os.ReadFile("testdata/chromium-mediarecorder-1s.webm")
	if err != nil {
		t.Fatal(err)
	}
	pcm := decodeFile(t, "audio/webm", orig)
	ms := int64(len(pcm)) * 1000 / SampleRate
	var fixed bytes.Buffer
	if err := AddWebMDuration(&fixed, bytes.NewReader(orig), ms); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fixed.webm")
	if err := os.WriteFile(path, fixed.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, want := probeWebMDuration(t, path), float64(ms)/1000; got < want-0.05 || got > want+0.05 {
		t.Errorf("ffprobe reads %.3f s, want %.3f s", got, want)
	}
	if !slices.Equal(decodeFile(t, "audio/webm", fixed.Bytes()), pcm) {
		t.Errorf("the fixed file decodes differently")
	}
	// A file with a Duration is left alone.
	var again bytes.Buffer
	if err := AddWebMDuration(&again, bytes.NewReader(fixed.Bytes()), ms); !errors.Is(err, ErrNoDurationFix) || again.Len() != 0 {
		t.Errorf("second fix-up: %v, %d bytes written", err, again.Len())
	}
	if err := AddWebMDuration(&again, bytes.NewReader([]byte("OggS not webm")), ms); err == nil || errors.Is(err, ErrNoDurationFix) {
		t.Errorf("an Ogg file: %v", err)
	}
}

// FuzzAddWebMDuration: any input either fails cleanly or yields a file that
// decodes to the same audio as the input.
func FuzzAddWebMDuration(f *testing.F) {
	chromium, err := os.ReadFile("testdata/chromium-mediarecorder-1s.webm")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(chromium)
	f.Add(chromium[:200])
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		if err := AddWebMDuration(&out, bytes.NewReader(in), 1000); err != nil {
			if out.Len() != 0 { // nothing is written before the head is understood
				t.Fatalf("error %v after writing %d bytes", err, out.Len())
			}
			return
		}
		decode := func(b []byte) ([]int16, error) {
			var pcm []int16
			dec, err := NewStreamDecoder("audio/webm", func(s []int16) { pcm = append(pcm, s...) })
			if err != nil {
				return nil, err
			}
			if err := dec.Write(b); err != nil {
				return pcm, err
			}
			return pcm, dec.Close()
		}
		want, werr := decode(in)
		got, gerr := decode(out.Bytes())
		if (werr == nil) != (gerr == nil) || !slices.Equal(got, want) {
			t.Fatalf("input decodes to %d samples (%v), output to %d (%v)", len(want), werr, len(got), gerr)
		}
	})
}
