package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

func TestStreamDecoderDecodesRealRecordings(t *testing.T) {
	ref := sourcePCM(t)
	tests := []struct {
		name     string
		mimeType string
		data     func(t *testing.T) []byte
		clusters int // minimum Cluster count, for the WebM rows
	}{
		{"ffmpeg's webm decodes to the source speech", "audio/webm;codecs=opus",
			func(t *testing.T) []byte { return webmFixture(t) }, 1},
		{"webm with many small clusters decodes to the source speech", "",
			func(t *testing.T) []byte {
				return webmFixture(t, "-cluster_size_limit", "1500", "-cluster_time_limit", "200")
			}, 10},
		{"webm with unknown-size segment and clusters (MediaRecorder layout) decodes", "audio/webm",
			func(t *testing.T) []byte {
				return unknownSizeClusters(t, webmFixture(t, "-cluster_size_limit", "1500", "-cluster_time_limit", "200"))
			}, 10},
		{"ogg/opus decodes to the source speech", "audio/ogg;codecs=opus",
			func(t *testing.T) []byte { return oggFixture(t) }, 0},
		{"stereo ogg/opus is downmixed", "audio/ogg",
			func(t *testing.T) []byte {
				return ffmpegFixture(t, librivox, "-c:a", "libopus", "-ar", "48000", "-ac", "2", "-frame_duration", "20", "-f", "ogg")
			}, 0},
		{"ogg/opus with 60 ms packets decodes", "audio/ogg",
			func(t *testing.T) []byte {
				return ffmpegFixture(t, librivox, "-c:a", "libopus", "-ar", "48000", "-ac", "1", "-frame_duration", "60", "-f", "ogg")
			}, 0},
		{"wav at 44.1 kHz stereo is downmixed and resampled", "audio/wav",
			func(t *testing.T) []byte {
				return ffmpegFixture(t, librivox, "-c:a", "pcm_s16le", "-ar", "44100", "-ac", "2", "-f", "wav")
			}, 0},
		{"wav at 8 kHz is upsampled", "audio/x-wav",
			func(t *testing.T) []byte {
				return ffmpegFixture(t, librivox, "-c:a", "pcm_s16le", "-ar", "8000", "-ac", "1", "-f", "wav")
			}, 0},
		{"wav written to a pipe (unknown data size) decodes", "audio/wav",
			func(t *testing.T) []byte {
				wav := slices.Clone(ffmpegFixture(t, librivox, "-c:a", "pcm_s16le", "-ar", "48000", "-ac", "1", "-f", "wav"))
				i := bytes.Index(wav, []byte("data"))
				binary.LittleEndian.PutUint32(wav[i+4:], 0xFFFFFFFF)
				binary.LittleEndian.PutUint32(wav[4:], 0xFFFFFFFF)
				return wav
			}, 0},
		{"raw 16 kHz pcm passes through", "audio/pcm;rate=16000",
			func(t *testing.T) []byte { return s16bytes(ref) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.data(t)
			if tt.clusters > 0 {
				if n := countClusters(data); n < tt.clusters {
					t.Fatalf("fixture has %d clusters, want at least %d", n, tt.clusters)
				}
			}
			whole, err := decodeChunks(t, tt.mimeType, data, nil)
			if err != nil {
				t.Fatalf("decode whole: %v", err)
			}
			if d := len(whole) - len(ref); d < -960 || d > 960 {
				t.Errorf("decoded %d samples (%.3f s), source has %d (%.3f s)",
					len(whole), float64(len(whole))/SampleRate, len(ref), float64(len(ref))/SampleRate)
			}
			if c, lag := similarity(ref, whole, 480); c < 0.8 {
				t.Errorf("correlation with the source %.3f (lag %d), want > 0.8", c, lag)
			} else {
				t.Logf("correlation %.3f at lag %d samples; %d samples", c, lag, len(whole))
			}

			rng := rand.New(rand.NewPCG(1, uint64(len(data))))
			sizes := make([]int, 64)
			for i := range sizes {
				sizes[i] = 1 + rng.IntN(700)
			}
			for _, cut := range [][]int{sizes, {1}, {4093}} {
				chunked, err := decodeChunks(t, tt.mimeType, data, cut)
				if err != nil {
					t.Fatalf("decode in chunks %v...: %v", cut[:min(3, len(cut))], err)
				}
				if !slices.Equal(chunked, whole) {
					t.Fatalf("chunks %v...: %d samples differ from the whole stream's %d",
						cut[:min(3, len(cut))], len(chunked), len(whole))
				}
			}
		})
	}
}

func TestNewStreamDecoderRefusesUnknownTypes(t *testing.T) {
	for _, mimeType := range []string{
		"audio/mpeg", "video/mp4", "audio/webm;codecs=vorbis", "audio/ogg;codecs=vorbis",
		"text/plain", "audio/pcm;rate=abc", "audio/pcm;rate=16000;channels=0", "not a mime type;;",
	} {
		t.Run(mimeType, func(t *testing.T) {
			_, err := NewStreamDecoder(mimeType, func([]int16) {})
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("NewStreamDecoder(%q) = %v, want ErrUnsupported", mimeType, err)
			}
		})
	}
}

func TestStreamDecoderReportsBrokenStreams(t *testing.T) {
	webm := webmFixture(t)
	ogg := oggFixture(t)
	wav := ffmpegFixture(t, librivox, "-c:a", "pcm_s16le", "-ar", "44100", "-ac", "2", "-f", "wav")
	garbage := bytes.Repeat([]byte("garbage!"), 1000)
	tests := []struct {
		name     string
		mimeType string
		data     []byte
	}{
		{"garbage as webm is an error", "audio/webm", garbage},
		{"garbage as ogg is an error", "audio/ogg", garbage},
		{"garbage as wav is an error", "audio/wav", garbage},
		{"webm cut inside a block is an error", "audio/webm", webm[:len(webm)/2+7]},
		{"webm cut inside the header is an error", "audio/webm", webm[:20]},
		{"webm whose audio was replaced by garbage is an error", "audio/webm", append(slices.Clone(webm[:600]), garbage...)},
		{"ogg cut inside a page is an error", "audio/ogg", ogg[:len(ogg)/2+7]},
		{"ogg with a flipped byte fails its checksum", "audio/ogg", flip(ogg, len(ogg)/2)},
		{"wav cut inside its header is an error", "audio/wav", wav[:30]},
		{"wav cut inside a frame is an error", "audio/wav", wav[:len(wav)-1]},
		{"ogg fed as webm is an error", "audio/webm", ogg},
		{"webm fed as ogg is an error", "audio/ogg", webm},
		{"odd byte count of raw pcm is an error", "audio/pcm", []byte{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, cut := range [][]int{nil, {1}, {333}} {
				if _, err := decodeChunks(t, tt.mimeType, tt.data, cut); err == nil {
					t.Fatalf("chunks %v: no error", cut)
				}
			}
		})
	}
}

func TestStreamDecoderAcceptsAnEmptyStream(t *testing.T) {
	for _, mimeType := range []string{"audio/webm", "audio/ogg", "audio/wav", "audio/pcm"} {
		if _, err := decodeChunks(t, mimeType, nil, nil); err != nil {
			t.Errorf("%s: empty stream: %v", mimeType, err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := slices.Clone(b)
	c[i] ^= 0x40
	return c
}

// oggPackets reads an Ogg/Opus file written with one packet per page (ffmpeg
// -page_duration 20000) with pion's oggreader, independently of this
// package's demuxer, and returns its audio packets.
func oggPackets(tb testing.TB, ogg []byte) [][]byte {
	tb.Helper()
	r, _, err := oggreader.NewWith(bytes.NewReader(ogg))
	if err != nil {
		tb.Fatalf("oggreader: %v", err)
	}
	var pkts [][]byte
	for {
		payload, hdr, err := r.ParseNextPage()
		if err != nil {
			break
		}
		if _, isHeader := hdr.HeaderType(payload); isHeader || len(payload) == 0 {
			continue
		}
		pkts = append(pkts, payload)
	}
	return pkts
}

func onePacketPerPageOgg(tb testing.TB) []byte {
	tb.Helper()
	return oggFixture(tb, "-page_duration", "20000")
}

func TestOpusDecoderDecodesPacketsToSixteenKilohertz(t *testing.T) {
	ref := sourcePCM(t)
	pkts := oggPackets(t, onePacketPerPageOgg(t))
	if len(pkts) < 300 {
		t.Fatalf("only %d packets", len(pkts))
	}
	dec, err := NewOpusDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var got []int16
	for i, p := range pkts {
		pcm, err := dec.Decode(p)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if len(pcm) != SampleRate/50 {
			t.Fatalf("packet %d: %d samples, want 320 (20 ms)", i, len(pcm))
		}
		got = append(got, pcm...)
	}
	if c, lag := similarity(ref, got, 480); c < 0.8 {
		t.Errorf("correlation %.3f (lag %d), want > 0.8", c, lag)
	}
	if _, err := dec.Decode(nil); err == nil {
		t.Error("empty packet decoded without error")
	}
}
