package media

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// librivox is a real 7.1 s, 16 kHz mono recording shipped by Debian's
// pocketsphinx test data.
const librivox = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav"

var (
	fixtureMu    sync.Mutex
	fixtureCache = map[string][]byte{}
	fixtureDir   string
)

// ffmpegFixture runs ffmpeg on src with args (output options, ending in the
// format) and returns the output, cached for the test binary's lifetime.
func ffmpegFixture(tb testing.TB, src string, args ...string) []byte {
	tb.Helper()
	key := src + "|" + strings.Join(args, " ")
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if b, ok := fixtureCache[key]; ok {
		return b
	}
	if fixtureDir == "" {
		dir, err := os.MkdirTemp("", "media-fixtures-")
		if err != nil {
			tb.Fatal(err)
		}
		fixtureDir = dir
	}
	out := filepath.Join(fixtureDir, "out")
	cmd := exec.Command("ffmpeg", append(append([]string{"-hide_banner", "-loglevel", "error", "-y", "-i", src}, args...), out)...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("ffmpeg %v: %v\n%s", args, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	fixtureCache[key] = b
	return b
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

var (
	opusArgs = []string{"-c:a", "libopus", "-ar", "48000", "-ac", "1", "-frame_duration", "20"}
)

func webmFixture(tb testing.TB, extra ...string) []byte {
	tb.Helper()
	args := append(append(append([]string{}, opusArgs...), extra...), "-f", "webm")
	return ffmpegFixture(tb, librivox, args...)
}

func oggFixture(tb testing.TB, extra ...string) []byte {
	tb.Helper()
	args := append(append(append([]string{}, opusArgs...), extra...), "-f", "ogg")
	return ffmpegFixture(tb, librivox, args...)
}

// sourcePCM is the reference: the librivox file's samples, read by ffmpeg.
func sourcePCM(tb testing.TB) []int16 {
	tb.Helper()
	return s16(ffmpegFixture(tb, librivox, "-f", "s16le", "-ac", "1", "-ar", "16000"))
}

func s16(b []byte) []int16 {
	out := make([]int16, len(b)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

func s16bytes(pcm []int16) []byte {
	b := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

// similarity is the best normalized cross-correlation of got against ref over
// lags of up to ±maxLag samples (codecs delay and resamplers shift).
func similarity(ref, got []int16, maxLag int) (best float64, lag int) {
	best = -1
	for l := -maxLag; l <= maxLag; l++ {
		var dot, ea, eb float64
		for i := range ref {
			j := i + l
			if j < 0 || j >= len(got) {
				continue
			}
			a, b := float64(ref[i]), float64(got[j])
			dot += a * b
			ea += a * a
			eb += b * b
		}
		if ea == 0 || eb == 0 {
			continue
		}
		if c := dot / math.Sqrt(ea*eb); c > best {
			best, lag = c, l
		}
	}
	return best, lag
}

// decodeChunks feeds data to a new decoder in pieces of the given sizes
// (cycled) and returns everything it produced.
func decodeChunks(tb testing.TB, mimeType string, data []byte, sizes []int) ([]int16, error) {
	tb.Helper()
	var got []int16
	d, err := NewStreamDecoder(mimeType, func(pcm []int16) { got = append(got, pcm...) })
	if err != nil {
		tb.Fatalf("NewStreamDecoder(%q): %v", mimeType, err)
	}
	for i := 0; len(data) > 0; i++ {
		n := len(data)
		if len(sizes) > 0 {
			n = min(n, sizes[i%len(sizes)])
		}
		if err := d.Write(data[:n]); err != nil {
			return got, err
		}
		data = data[n:]
	}
	return got, d.Close()
}

// unknownSizeClusters rewrites a WebM file the way Chrome's MediaRecorder lays
// it out: every Cluster (and the Segment) gets the "unknown" size.
func unknownSizeClusters(tb testing.TB, webm []byte) []byte {
	tb.Helper()
	var out bytes.Buffer
	b := webm
	unknown := []byte{0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	clusters := 0
	for len(b) > 0 {
		id, size, n, err := readElementHeader(b)
		if err != nil || n == 0 {
			tb.Fatalf("rewrite: bad element header at %d: %v", len(webm)-len(b), err)
		}
		idLen := vintLen(b[0])
		switch id {
		case idSegment, idCluster:
			out.Write(b[:idLen])
			out.Write(unknown)
			b = b[n:] // descend: children follow
			if id == idCluster {
				clusters++
			}
		default:
			if size < 0 {
				tb.Fatalf("rewrite: unknown size element %#x", id)
			}
			out.Write(b[:n+int(size)])
			b = b[n+int(size):]
		}
	}
	if clusters < 2 {
		tb.Fatalf("rewrite: only %d clusters", clusters)
	}
	return out.Bytes()
}

func countClusters(b []byte) int {
	return bytes.Count(b, []byte{0x1F, 0x43, 0xB6, 0x75})
}
