package stt_test

import (
	"bufio"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"candor/processor/stt"
)

const librivoxDir = "/usr/share/pocketsphinx/test/data/librivox"

type recording struct {
	name, ref string
	pcm       []int16
}

var (
	librivoxOnce sync.Once
	librivox     []recording
	librivoxErr  error
)

// loadLibrivox reads Debian's real LibriVox test recordings and their
// references ("<s> words </s> (id)" lines in the transcription file).
func loadLibrivox(t testing.TB) []recording {
	t.Helper()
	librivoxOnce.Do(func() {
		f, err := os.Open(filepath.Join(librivoxDir, "transcription"))
		if err != nil {
			librivoxErr = err
			return
		}
		defer f.Close()
		line := regexp.MustCompile(`^<s>\s*(.*?)\s*</s>\s*\((\S+)\)$`)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			m := line.FindStringSubmatch(strings.TrimSpace(sc.Text()))
			if m == nil {
				continue
			}
			pcm, err := stt.ReadCorpusWAV(filepath.Join(librivoxDir, m[2]+".wav"))
			if err != nil {
				librivoxErr = err
				return
			}
			librivox = append(librivox, recording{name: m[2], ref: m[1], pcm: pcm})
		}
	})
	if librivoxErr != nil {
		t.Fatalf("librivox fixtures (package pocketsphinx-testdata): %v", librivoxErr)
	}
	if len(librivox) == 0 {
		t.Fatal("no librivox recordings found")
	}
	return librivox
}

func silence(ms int) []int16 { return make([]int16, ms*stt.SampleRate/1000) }

func tone(hz float64, ms int, amp float64) []int16 {
	out := make([]int16, ms*stt.SampleRate/1000)
	for i := range out {
		out[i] = int16(amp * 32767 * math.Sin(2*math.Pi*hz*float64(i)/stt.SampleRate))
	}
	return out
}

// noise is deterministic white noise at the given RMS level in dBFS.
func noise(ms int, dbfs float64, seed uint32) []int16 {
	out := make([]int16, ms*stt.SampleRate/1000)
	rms := math.Pow(10, dbfs/20) * 32767 * math.Sqrt(3) // uniform: rms = peak/sqrt(3)
	x := seed | 1
	for i := range out {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		out[i] = int16((float64(x)/math.MaxUint32*2 - 1) * rms)
	}
	return out
}

func concat(parts ...[]int16) []int16 {
	var out []int16
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// mix adds b onto a (same length or shorter), saturating.
func mix(a, b []int16) []int16 {
	out := append([]int16(nil), a...)
	for i := range out {
		if i < len(b) {
			out[i] = int16(max(min(int(out[i])+int(b[i]), math.MaxInt16), math.MinInt16))
		}
	}
	return out
}

// feed writes pcm in 20 ms pieces.
func feed(t testing.TB, s stt.Stream, pcm []int16) {
	t.Helper()
	const chunk = stt.SampleRate / 50
	for off := 0; off < len(pcm); off += chunk {
		if err := s.Write(pcm[off:min(off+chunk, len(pcm))]); err != nil {
			t.Fatalf("write at sample %d: %v", off, err)
		}
	}
}

// collector gathers results from a stream's callback.
type collector struct {
	mu  sync.Mutex
	got []stt.Result
}

func (c *collector) add(r stt.Result) {
	c.mu.Lock()
	c.got = append(c.got, r)
	c.mu.Unlock()
}

func (c *collector) results() []stt.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]stt.Result(nil), c.got...)
}

func (c *collector) text() string {
	var parts []string
	for _, r := range c.results() {
		parts = append(parts, r.Text)
	}
	return strings.Join(parts, " ")
}

func requireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is required for this test: %v", name, err)
	}
}
