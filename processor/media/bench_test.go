package media

import (
	"testing"
)

// BenchmarkOpusDecode decodes the 7.1 s librivox recording packet by packet.
// The "%core/stream" metric is the share of one core one real-time stream
// needs (100 × decode time / audio time).
func BenchmarkOpusDecode(b *testing.B) {
	pkts := oggPackets(b, onePacketPerPageOgg(b))
	audio := float64(len(pkts)) * 0.020 // seconds
	b.ResetTimer()
	for b.Loop() {
		dec, err := NewOpusDecoder()
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range pkts {
			if _, err := dec.Decode(p); err != nil {
				b.Fatal(err)
			}
		}
	}
	perIter := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(100*perIter/audio, "%core/stream")
	b.ReportMetric(audio/perIter, "x-realtime")
}

// BenchmarkWebMChunkDecode feeds a MediaRecorder-layout WebM stream (unknown
// sizes, small clusters) in 1 KiB chunks, as /process-audio receives it.
func BenchmarkWebMChunkDecode(b *testing.B) {
	data := unknownSizeClusters(b, webmFixture(b, "-cluster_size_limit", "1500", "-cluster_time_limit", "200"))
	ref := sourcePCM(b)
	audio := float64(len(ref)) / SampleRate
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		n := 0
		d, err := NewStreamDecoder("audio/webm;codecs=opus", func(p []int16) { n += len(p) })
		if err != nil {
			b.Fatal(err)
		}
		for rest := data; len(rest) > 0; {
			k := min(1024, len(rest))
			if err := d.Write(rest[:k]); err != nil {
				b.Fatal(err)
			}
			rest = rest[k:]
		}
		if err := d.Close(); err != nil {
			b.Fatal(err)
		}
	}
	perIter := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(100*perIter/audio, "%core/stream")
}

// BenchmarkWAVResample44100Stereo reads a 44.1 kHz stereo WAV: downmix and
// windowed-sinc resampling to 16 kHz.
func BenchmarkWAVResample44100Stereo(b *testing.B) {
	data := ffmpegFixture(b, librivox, "-c:a", "pcm_s16le", "-ar", "44100", "-ac", "2", "-f", "wav")
	audio := 7.1
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		d, _ := NewStreamDecoder("audio/wav", func([]int16) {})
		if err := d.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := d.Close(); err != nil {
			b.Fatal(err)
		}
	}
	perIter := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(100*perIter/audio, "%core/stream")
}
