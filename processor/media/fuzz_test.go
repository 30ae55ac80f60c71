package media

import (
	"encoding/binary"
	"os"
	"slices"
	"testing"
)

// shortClip options cut the source to 0.4 s so fuzz seeds stay small (a few
// KB) and each execution cheap.
var shortClip = []string{"-t", "0.4"}

// fuzzStreamDecoder checks, for any input, that decoding never panics or
// hangs, that any cut of the input gives the same PCM and the same verdict as
// the whole, and that the decoder's buffer stays bounded.
func fuzzStreamDecoder(f *testing.F, mimeType string, bound func(d StreamDecoder) int, limit int, prepare func(data []byte, cut uint16) []byte) {
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		if prepare != nil {
			data = prepare(data, cut)
		}
		var whole, chunked []int16
		dw, err := NewStreamDecoder(mimeType, func(p []int16) { whole = append(whole, p...) })
		if err != nil {
			t.Fatal(err)
		}
		errWhole := dw.Write(data)
		if errWhole == nil {
			errWhole = dw.Close()
		}
		dc, _ := NewStreamDecoder(mimeType, func(p []int16) { chunked = append(chunked, p...) })
		size := 1 + int(cut)%97
		var errChunked error
		for rest := data; len(rest) > 0 && errChunked == nil; {
			n := min(size, len(rest))
			errChunked = dc.Write(rest[:n])
			rest = rest[n:]
			if b := bound(dc); b > limit+size {
				t.Fatalf("decoder holds %d bytes", b)
			}
		}
		if errChunked == nil {
			errChunked = dc.Close()
		}
		if (errWhole == nil) != (errChunked == nil) {
			t.Fatalf("whole: %v; in chunks of %d: %v", errWhole, size, errChunked)
		}
		if !slices.Equal(whole, chunked) {
			t.Fatalf("whole gave %d samples, chunks of %d gave %d", len(whole), size, len(chunked))
		}
	})
}

func FuzzWebMDecoder(f *testing.F) {
	small := webmFixture(f, append(shortClip, "-cluster_size_limit", "800", "-cluster_time_limit", "100")...)
	f.Add(small, uint16(7))
	f.Add(unknownSizeClusters(f, small), uint16(50))
	f.Add(small[:len(small)/2], uint16(1))
	chromium, err := os.ReadFile(chromiumSeed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(chromium, uint16(90))
	fuzzStreamDecoder(f, "audio/webm", func(d StreamDecoder) int { return len(d.(*webmDecoder).buf) }, maxWebMElement+16, nil)
}

func FuzzOggDecoder(f *testing.F) {
	small := oggFixture(f, shortClip...)
	f.Add(small, uint16(7))
	f.Add(small[:len(small)/2], uint16(1))
	fuzzStreamDecoder(f, "audio/ogg", func(d StreamDecoder) int { return len(d.(*oggDecoder).buf) }, 65307, fixOggChecksums)
}

func FuzzWAVDecoder(f *testing.F) {
	f.Add(ffmpegFixture(f, librivox, "-t", "0.2", "-c:a", "pcm_s16le", "-ar", "44100", "-ac", "2", "-f", "wav"), uint16(7))
	f.Add(ffmpegFixture(f, librivox, "-t", "0.2", "-c:a", "pcm_s16le", "-ar", "8000", "-ac", "1", "-f", "wav"), uint16(3))
	fuzzStreamDecoder(f, "audio/wav", func(d StreamDecoder) int {
		w := d.(*wavDecoder)
		n := len(w.buf)
		if w.pcm != nil {
			n += len(w.pcm.partial)
		}
		return n
	}, maxWAVFmt+64, nil)
}

// fixOggChecksums recomputes the checksum of every whole page in data when
// cut is odd, so that half of the mutated inputs get past the CRC check and
// exercise packet reassembly and decoding.
func fixOggChecksums(data []byte, cut uint16) []byte {
	if cut%2 == 0 {
		return data
	}
	data = slices.Clone(data)
	for off := 0; off+oggHeaderLen <= len(data); {
		b := data[off:]
		if string(b[:4]) != "OggS" {
			break
		}
		nseg := int(b[26])
		if len(b) < oggHeaderLen+nseg {
			break
		}
		total := oggHeaderLen + nseg
		for _, l := range b[oggHeaderLen : oggHeaderLen+nseg] {
			total += int(l)
		}
		if len(b) < total {
			break
		}
		clear(b[22:26])
		binary.LittleEndian.PutUint32(b[22:26], oggCRC(0, b[:total]))
		off += total
	}
	return data
}

// FuzzReassembler drives a Reassembler (no timer: gap of an hour) with pushes
// and flushes taken from the input and checks that what comes out is one
// strictly increasing run of delivered and skipped numbers, with every pushed
// chunk delivered exactly once by the final Flush unless reported duplicate.
func FuzzReassembler(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3})
	f.Add([]byte{5, 3, 4, 3, 0xff, 9, 7, 8})
	f.Add([]byte{2, 0xff, 0, 1, 10, 0xff, 11})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var out []int64 // delivered and skipped, in call order
		delivered := map[int64]string{}
		r := NewReassembler(1<<62, func(seq int64, chunk []byte) {
			out = append(out, seq)
			if _, ok := delivered[seq]; ok {
				t.Fatalf("seq %d delivered twice", seq)
			}
			delivered[seq] = string(chunk)
		}, func(seq int64) { out = append(out, seq) })
		defer r.Close()
		accepted := map[int64]string{}
		for i, op := range ops {
			if op == 0xff {
				r.Flush()
				continue
			}
			seq := int64(op % 64)
			chunk := string(rune('a' + i%26))
			if !r.Push(seq, []byte(chunk)) {
				if _, ok := accepted[seq]; ok {
					t.Fatalf("seq %d accepted twice", seq)
				}
				accepted[seq] = chunk
			}
		}
		r.Flush()
		for i := 1; i < len(out); i++ {
			if out[i] != out[i-1]+1 {
				t.Fatalf("output not one increasing run: %v", out)
			}
		}
		for seq, chunk := range accepted {
			if delivered[seq] != chunk {
				t.Fatalf("seq %d: delivered %q, pushed %q", seq, delivered[seq], chunk)
			}
		}
		if len(delivered) != len(accepted) {
			t.Fatalf("delivered %d chunks, accepted %d", len(delivered), len(accepted))
		}
	})
}
