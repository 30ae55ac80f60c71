package stt

import "math"

// Resampler converts a stream of mono samples between two rates with a
// windowed-sinc polyphase filter whose cutoff sits below the lower Nyquist
// frequency, so downsampling does not alias. State carries across Process
// calls; Flush pushes out the filter's tail.
type Resampler struct {
	up, down int         // output/input rate ratio reduced: out = in * up / down
	half     int         // filter half-width in input samples
	phases   [][]float64 // phases[p][j]: weight of input floor(t)-half+1+j for output phase p
	hist     []float64   // input samples from index histStart on
	histAt   int64       // global index of hist[0]
	next     int64       // next output sample index
	inCount  int64
}

// NewResampler returns a resampler from inRate to outRate (both > 0).
func NewResampler(inRate, outRate int) *Resampler {
	g := gcd(inRate, outRate)
	up, down := outRate/g, inRate/g
	cut := math.Min(1, float64(up)/float64(down)) * 0.95
	const zeros = 12 // sinc zero crossings each side at the cutoff
	half := int(math.Ceil(zeros / cut))
	r := &Resampler{up: up, down: down, half: half, phases: make([][]float64, up)}
	for p := range up {
		frac := float64(p) / float64(up) // output position past floor(t), in input samples
		w := make([]float64, 2*half)
		var sum float64
		for j := range w {
			x := float64(j-half+1) - frac // input offset from t
			v := cut * sinc(cut*x) * blackman(x/float64(half))
			w[j] = v
			sum += v
		}
		for j := range w {
			w[j] /= sum
		}
		r.phases[p] = w
	}
	r.hist = make([]float64, 0, 4096)
	return r
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// blackman is the window over x in [-1, 1].
func blackman(x float64) float64 {
	if x <= -1 || x >= 1 {
		return 0
	}
	a := math.Pi * (x + 1)
	return 0.42 - 0.5*math.Cos(a) + 0.08*math.Cos(2*a)
}

// Process consumes in and returns the output samples now computable.
func (r *Resampler) Process(in []int16) []int16 {
	for _, v := range in {
		r.hist = append(r.hist, float64(v))
	}
	r.inCount += int64(len(in))
	return r.drain(r.inCount)
}

// Flush returns the outputs still held back for lack of look-ahead, as if
// the input were followed by silence, up to the end of the input. Process
// may continue afterwards: no sample is repeated or skipped, though the
// last flushed outputs were computed without the audio that followed.
func (r *Resampler) Flush() []int16 {
	total := r.inCount
	pad := make([]float64, r.half+1)
	r.hist = append(r.hist, pad...)
	out := r.drainUntil(total+int64(r.half)+1, total)
	r.hist = r.hist[:len(r.hist)-len(pad)]
	return out
}

func (r *Resampler) drain(avail int64) []int16 { return r.drainUntil(avail, -1) }

// drainUntil computes outputs whose filter window lies within the first
// avail input samples; limit >= 0 stops at outputs at or past input time limit.
func (r *Resampler) drainUntil(avail, limit int64) []int16 {
	var out []int16
	for {
		num := r.next * int64(r.down) // t = num / up, in input samples
		base := num / int64(r.up)
		if limit >= 0 && base >= limit {
			break
		}
		if base+int64(r.half) >= avail {
			break
		}
		w := r.phases[num%int64(r.up)]
		first := base - int64(r.half) + 1
		var acc float64
		for j, wj := range w {
			i := first + int64(j) - r.histAt
			if i >= 0 {
				acc += wj * r.hist[i]
			}
		}
		out = append(out, clamp16(acc))
		r.next++
	}
	// Keep only the history the next output can still need.
	keepFrom := r.next*int64(r.down)/int64(r.up) - int64(r.half) + 1
	if drop := keepFrom - r.histAt; drop > 0 && drop <= int64(len(r.hist)) && drop > 2048 {
		r.hist = append(r.hist[:0], r.hist[drop:]...)
		r.histAt += drop
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

// Resample converts a whole buffer from inRate to outRate.
func Resample(in []int16, inRate, outRate int) []int16 {
	if inRate == outRate {
		return append([]int16(nil), in...)
	}
	r := NewResampler(inRate, outRate)
	out := r.Process(in)
	return append(out, r.Flush()...)
}
