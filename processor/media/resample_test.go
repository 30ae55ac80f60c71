package media

import (
	"math"
	"testing"
)

func sineAt(hz float64, rate, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(10000 * math.Sin(2*math.Pi*hz*float64(i)/float64(rate)))
	}
	return out
}

func rmsOf(pcm []int16) float64 {
	var s float64
	for _, v := range pcm {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(pcm)))
}

// pitchOf estimates the frequency of a pure tone from its zero crossings.
func pitchOf(pcm []int16, rate int) float64 {
	n := 0
	for i := 1; i < len(pcm); i++ {
		if (pcm[i-1] < 0) != (pcm[i] < 0) {
			n++
		}
	}
	return float64(n) / 2 / (float64(len(pcm)) / float64(rate))
}

func TestResampleKeepsPitchLengthAndLevel(t *testing.T) {
	tests := []struct {
		name     string
		from, to int
		hz       float64
	}{
		{"espeak's 22050 Hz down to 16 kHz", 22050, 16000, 1000},
		{"16 kHz up to the Realtime API's 24 kHz", 16000, 24000, 450},
		{"the speech API's 24 kHz down to 16 kHz", 24000, 16000, 300},
		{"a 44.1 kHz file down to 16 kHz", 44100, 16000, 440},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := sineAt(tt.hz, tt.from, tt.from) // one second
			out := Resample(in, tt.from, tt.to)
			if len(out) != tt.to {
				t.Errorf("%d samples, want %d", len(out), tt.to)
			}
			mid := out[len(out)/4 : 3*len(out)/4]
			if got := pitchOf(mid, tt.to); math.Abs(got-tt.hz) > 5 {
				t.Errorf("pitch %.1f Hz, want %.0f", got, tt.hz)
			}
			if r := rmsOf(mid) / rmsOf(in); r < 0.99 || r > 1.01 {
				t.Errorf("level ratio %.3f", r)
			}
		})
	}
}

func TestResampleFiltersWhatTheLowerRateCannotHold(t *testing.T) {
	// 10 kHz is above 16 kHz's Nyquist: it must vanish, not fold to 6 kHz.
	in := sineAt(10000, 22050, 22050)
	out := Resample(in, 22050, 16000)
	if att := 20 * math.Log10(rmsOf(out[4000:12000])/rmsOf(in)); att > -40 {
		t.Errorf("10 kHz attenuated by only %.1f dB", att)
	}
}

func TestResamplerStreamsLikeTheWholeBuffer(t *testing.T) {
	in := sineAt(440, 16000, 16000)
	whole := Resample(in, 16000, 24000)
	r := NewResampler(16000, 24000)
	var streamed []int16
	for off := 0; off < len(in); off += 333 {
		streamed = append(streamed, r.Process(in[off:min(off+333, len(in))])...)
	}
	streamed = append(streamed, r.Flush()...)
	if len(streamed) != len(whole) {
		t.Fatalf("streamed %d samples, whole %d", len(streamed), len(whole))
	}
	for i := range whole {
		if streamed[i] != whole[i] {
			t.Fatalf("sample %d: streamed %d, whole %d", i, streamed[i], whole[i])
		}
	}
}

func TestResamplerContinuesAfterAFlushWithoutRepeatingOrSkipping(t *testing.T) {
	in := sineAt(300, 24000, 24000)
	r := NewResampler(24000, 16000)
	out := r.Process(in[:12000])
	out = append(out, r.Flush()...)
	out = append(out, r.Process(in[12000:])...)
	out = append(out, r.Flush()...)
	if len(out) != 16000 {
		t.Fatalf("%d samples, want 16000", len(out))
	}
}

func TestResamplerBetweenEqualRatesCopies(t *testing.T) {
	in := sineAt(440, 16000, 1000)
	r := NewResampler(16000, 16000)
	out := append(r.Process(in), r.Flush()...)
	if len(out) != len(in) || out[500] != in[500] {
		t.Fatalf("got %d samples, want an exact copy of %d", len(out), len(in))
	}
}
