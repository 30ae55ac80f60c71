package media

import (
	"math"
)

const (
	minRate     = 8000
	maxRate     = 192000
	maxChannels = 8

	// sincZeroCrossings is the half-width of the resampling kernel in
	// zero crossings at the cut-off; 16 keeps the aliasing of a 44.1 kHz
	// source well below speech-recognition relevance.
	sincZeroCrossings = 16
	sincTableRes      = 256 // kernel samples per zero crossing
)

// Resampler converts a stream of mono samples from one rate to another with
// a windowed-sinc low-pass interpolator whose cut-off sits below the lower
// Nyquist frequency (downsampling does not alias). It keeps the history it
// needs between calls, so chunk boundaries are inaudible, and works for any
// pair of rates in constant memory (a tabulated kernel, not one filter per
// phase). Between equal rates it is a copy. It is not safe for concurrent use.
type Resampler struct {
	inRate, outRate int
	scale           float64 // cut-off relative to the input Nyquist (≤1)
	width           int     // kernel half-width in input samples
	table           []float64

	hist []float64 // input samples from index base on
	base int64     // stream index of hist[0]
	next int64     // index of the next output sample
	in   int64     // input samples received
}

// NewResampler returns a resampler from inRate to outRate (both > 0).
func NewResampler(inRate, outRate int) *Resampler {
	r := &Resampler{inRate: inRate, outRate: outRate}
	if inRate == outRate {
		return r
	}
	r.scale = math.Min(1, float64(outRate)/float64(inRate)) * 0.95
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

// Resample converts a whole buffer from inRate to outRate.
func Resample(in []int16, inRate, outRate int) []int16 {
	r := NewResampler(inRate, outRate)
	out := r.Process(in)
	return append(out, r.Flush()...)
}

// Process consumes in and returns the output samples it makes possible so far.
func (r *Resampler) Process(in []int16) []int16 {
	f := make([]float64, len(in))
	for i, v := range in {
		f[i] = float64(v)
	}
	return r.process(f)
}

// kernel is the low-pass kernel at distance d input samples.
func (r *Resampler) kernel(d float64) float64 {
	x := math.Abs(d) * r.scale * sincTableRes
	i := int(x)
	if i >= len(r.table)-1 {
		return 0
	}
	f := x - float64(i)
	return r.table[i]*(1-f) + r.table[i+1]*f
}

// process resamples in and returns the output it makes possible so far.
func (r *Resampler) process(in []float64) []int16 {
	r.in += int64(len(in))
	if r.inRate == r.outRate {
		out := make([]int16, len(in))
		for i, v := range in {
			out[i] = clamp16(v)
		}
		return out
	}
	r.hist = append(r.hist, in...)
	return r.drain(r.base+int64(len(r.hist)), -1)
}

// pos is the stream position, in input samples, of output sample n; exact
// integer arithmetic keeps lengths exact over hours.
func (r *Resampler) pos(n int64) float64 {
	return float64(n*int64(r.inRate)) / float64(r.outRate)
}

// drain computes the outputs whose kernel lies before input index end and,
// when limit >= 0, whose position is before input index limit.
func (r *Resampler) drain(end, limit int64) []int16 {
	var out []int16
	for limit < 0 || r.next*int64(r.inRate) < limit*int64(r.outRate) {
		pos := r.pos(r.next)
		center := int64(math.Floor(pos))
		if center+int64(r.width) >= end {
			break
		}
		var acc float64
		for k := center - int64(r.width) + 1; k <= center+int64(r.width); k++ {
			if k < r.base {
				continue // before the stream start: silence
			}
			acc += r.hist[k-r.base] * r.kernel(pos-float64(k))
		}
		out = append(out, clamp16(acc*r.scale))
		r.next++
	}
	// Keep only what future outputs still need.
	keepFrom := int64(math.Floor(r.pos(r.next))) - int64(r.width) + 1
	if drop := keepFrom - r.base; drop > 0 {
		drop = min(drop, int64(len(r.hist)))
		r.hist = r.hist[:copy(r.hist, r.hist[drop:])]
		r.base += drop
	}
	return out
}

// Flush returns the outputs still held back for lack of look-ahead, as if
// the input were followed by silence, up to the end of the input. Process
// may continue afterwards: no sample is repeated or skipped, though the last
// flushed outputs were computed without the audio that followed.
func (r *Resampler) Flush() []int16 {
	if r.inRate == r.outRate {
		return nil
	}
	r.hist = append(r.hist, make([]float64, r.width+1)...)
	out := r.drain(r.base+int64(len(r.hist)), r.in)
	r.hist = r.hist[:r.in-r.base] // the silence was only look-ahead
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
