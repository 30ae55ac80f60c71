package media

import (
	"math"
)

const (
	minRate     = 8000
	maxRate     = 192000
	maxChannels = 8

	// sincZeroCrossings is the half-width of the resampling kernel in input
	// samples (at the cut-off); 16 keeps the aliasing of a 44.1 kHz source
	// well below speech-recognition relevance.
	sincZeroCrossings = 16
	sincTableRes      = 256 // kernel samples per zero crossing
)

// resampler converts a stream of mono samples from one rate to 16 kHz with a
// windowed-sinc low-pass interpolator, keeping the history it needs between
// calls so chunk boundaries are inaudible. At 16 kHz input it is a copy.
type resampler struct {
	inRate int
	step   float64 // input samples per output sample
	scale  float64 // cut-off relative to the input Nyquist (≤1)
	width  int     // kernel half-width in input samples
	table  []float64

	hist []float64 // input samples from index base on
	base int64     // stream index of hist[0]
	pos  float64   // stream position (in input samples) of the next output sample
}

func newResampler(inRate int) *resampler {
	r := &resampler{inRate: inRate}
	if inRate == SampleRate {
		return r
	}
	r.step = float64(inRate) / SampleRate
	r.scale = math.Min(1, 1/r.step) * 0.95
	r.width = int(math.Ceil(sincZeroCrossings / r.scale))
	r.table = make([]float64, sincZeroCrossings*sincTableRes+1)
	for i := range r.table {
		x := float64(i) / sincTableRes // in zero crossings
		s := 1.0
		if x > 0 {
			s = math.Sin(math.Pi*x) / (math.Pi * x)
		}
		w := 0.5 + 0.5*math.Cos(math.Pi*x/sincZeroCrossings) // Hann
		r.table[i] = s * w
	}
	return r
}

// kernel is the low-pass kernel at distance d input samples.
func (r *resampler) kernel(d float64) float64 {
	x := math.Abs(d) * r.scale * sincTableRes
	i := int(x)
	if i >= len(r.table)-1 {
		return 0
	}
	f := x - float64(i)
	return r.table[i]*(1-f) + r.table[i+1]*f
}

// process resamples in and returns the output it makes possible so far.
func (r *resampler) process(in []float64) []int16 {
	if r.inRate == SampleRate {
		out := make([]int16, len(in))
		for i, v := range in {
			out[i] = clamp16(v)
		}
		return out
	}
	r.hist = append(r.hist, in...)
	end := r.base + int64(len(r.hist)) // first index not yet received
	var out []int16
	for {
		center := int64(math.Floor(r.pos))
		if center+int64(r.width) >= end {
			break
		}
		var acc float64
		for k := center - int64(r.width) + 1; k <= center+int64(r.width); k++ {
			if k < r.base {
				continue // before the stream start: silence
			}
			acc += r.hist[k-r.base] * r.kernel(r.pos-float64(k))
		}
		out = append(out, clamp16(acc*r.scale))
		r.pos += r.step
	}
	// Keep only what future outputs still need.
	keepFrom := int64(math.Floor(r.pos)) - int64(r.width) + 1
	if drop := keepFrom - r.base; drop > 0 {
		drop = min(drop, int64(len(r.hist)))
		r.hist = r.hist[:copy(r.hist, r.hist[drop:])]
		r.base += drop
	}
	return out
}

// flush pads the stream end with silence so the last input samples come out.
func (r *resampler) flush() []int16 {
	if r.inRate == SampleRate {
		return nil
	}
	total := r.base + int64(len(r.hist))
	want := int64(math.Ceil(float64(total) / r.step)) // outputs the input covers
	done := int64(math.Ceil(r.pos / r.step))
	if want <= done {
		return nil
	}
	out := r.process(make([]float64, r.width+1))
	if n := want - done; int64(len(out)) > n {
		out = out[:n]
	}
	return out
}

func clamp16(v float64) int16 {
	v = math.Round(v)
	if v > math.MaxInt16 {
		return math.MaxInt16
	}
	if v < math.MinInt16 {
		return math.MinInt16
	}
	return int16(v)
}
