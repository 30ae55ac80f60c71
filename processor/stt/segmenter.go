package stt

import (
	"math"
)

// SegmenterConfig tunes the energy voice-activity segmenter. Zero values
// select the defaults noted on each field.
type SegmenterConfig struct {
	// HangoverMS is the silence that ends an utterance (default 600). Shorter
	// values cut people who pause mid-sentence.
	HangoverMS int
	// PreRollMS of audio before the detected onset is kept (default 200), so
	// soft word starts are not clipped.
	PreRollMS int
	// TailMS of audio after the last speech frame is kept (default 200).
	TailMS int
	// MaxUtteranceMS splits longer utterances at their quietest recent frame
	// (default 20000).
	MaxUtteranceMS int
	// MinSpeechMS of speech frames an utterance needs; shorter ones are clicks
	// and are dropped (default 150).
	MinSpeechMS int
	// StartDB and KeepDB are how far above the noise floor a frame must be to
	// start (default 10) and to continue (default 6) speech.
	StartDB, KeepDB float64
	// MinLevelDB is the absolute level (dBFS) below which nothing is speech (default -55).
	MinLevelDB float64
}

func (c SegmenterConfig) withDefaults() SegmenterConfig {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.HangoverMS, 600)
	def(&c.PreRollMS, 200)
	def(&c.TailMS, 200)
	def(&c.MaxUtteranceMS, 20000)
	def(&c.MinSpeechMS, 150)
	if c.StartDB <= 0 {
		c.StartDB = 10
	}
	if c.KeepDB <= 0 {
		c.KeepDB = 6
	}
	if c.MinLevelDB == 0 {
		c.MinLevelDB = -55
	}
	if c.TailMS > c.HangoverMS {
		c.TailMS = c.HangoverMS
	}
	return c
}

// Utterance is one stretch of speech cut by the Segmenter. StartMS and EndMS
// bound the speech frames on the stream clock; PCM also holds the pre-roll
// and tail around them and begins at PCMStartMS.
type Utterance struct {
	StartMS, EndMS int64
	PCMStartMS     int64
	PCM            []int16
}

const (
	frameLen     = SampleRate / 100 // 10 ms frames
	floorWindow  = 300              // frames (3 s) the noise floor looks back on
	floorPercent = 0.10             // the floor is this percentile of recent frame levels
	histMinDB    = -100
	histBins     = 101 // 1 dB bins from -100 to 0 dBFS
)

// Segmenter is an energy voice-activity detector with an adaptive noise
// floor (a low percentile of the last three seconds of frame levels, so it
// follows both a steady hum and a quiet room), hysteresis, a hangover so a
// pause between words does not end the utterance, pre-roll, and a maximum
// length. It is not safe for concurrent use; emit is called from Write and
// Flush.
type Segmenter struct {
	cfg  SegmenterConfig
	emit func(Utterance)

	base    int64 // ms of the first sample
	samples int64 // samples consumed into frames
	partial []int16

	levels    [floorWindow]int8 // ring of recent frame levels (dB bins)
	nLevels   int
	hist      [histBins]int
	frameNo   int64
	startRun  int // consecutive frames above the start threshold
	preRoll   []int16
	inSpeech  bool
	utt       []int16 // audio of the current utterance (from PCMStart)
	uttLevels []float64
	uttStart  int64 // sample index of PCM start
	speechBeg int64 // sample index of the first speech frame
	lastVoice int64 // sample index just after the last speech frame
	voiced    int   // speech frames in the current utterance
	silence   int   // consecutive non-speech frames in the current utterance
}

// NewSegmenter returns a segmenter whose first sample is at baseMS.
func NewSegmenter(baseMS int64, cfg SegmenterConfig, emit func(Utterance)) *Segmenter {
	return &Segmenter{cfg: cfg.withDefaults(), emit: emit, base: baseMS}
}

// InSpeech reports whether an utterance is open.
func (s *Segmenter) InSpeech() bool { return s.inSpeech }

// Write consumes audio; completed utterances are emitted before it returns.
func (s *Segmenter) Write(pcm []int16) {
	for len(pcm) > 0 {
		need := frameLen - len(s.partial)
		if len(s.partial) == 0 && len(pcm) >= frameLen {
			s.frame(pcm[:frameLen])
			pcm = pcm[frameLen:]
			continue
		}
		n := min(need, len(pcm))
		s.partial = append(s.partial, pcm[:n]...)
		pcm = pcm[n:]
		if len(s.partial) == frameLen {
			s.frame(s.partial)
			s.partial = s.partial[:0]
		}
	}
}

// Flush ends the open utterance, if any, at the current position.
func (s *Segmenter) Flush() {
	// A partial frame (< 10 ms) stays behind for the next Write.
	if s.inSpeech {
		s.finish(len(s.utt))
	}
}

func frameDB(f []int16) float64 {
	var sum float64
	for _, v := range f {
		x := float64(v)
		sum += x * x
	}
	rms := math.Sqrt(sum/float64(len(f))) / 32768
	if rms < 1e-5 {
		return histMinDB
	}
	return max(20*math.Log10(rms), histMinDB)
}

func (s *Segmenter) noiseFloor() float64 {
	if s.nLevels < 20 {
		return s.cfg.MinLevelDB - s.cfg.StartDB // too little history: trust the absolute gate
	}
	want := int(float64(s.nLevels)*floorPercent) + 1
	acc := 0
	for i, n := range s.hist {
		acc += n
		if acc >= want {
			return float64(histMinDB + i)
		}
	}
	return 0
}

func (s *Segmenter) record(db float64) {
	bin := int(math.Round(db)) - histMinDB
	bin = min(max(bin, 0), histBins-1)
	slot := s.frameNo % floorWindow
	if s.nLevels == floorWindow {
		s.hist[s.levels[slot]]--
	} else {
		s.nLevels++
	}
	s.levels[slot] = int8(bin)
	s.hist[bin]++
	s.frameNo++
}

func (s *Segmenter) frame(f []int16) {
	db := frameDB(f)
	floor := s.noiseFloor()
	s.record(db)
	start := s.samples
	s.samples += int64(len(f))

	loud := func(above float64) bool { return db >= s.cfg.MinLevelDB && db >= floor+above }

	if !s.inSpeech {
		s.preRoll = append(s.preRoll, f...)
		// Until the floor has 200 ms of history nothing opens: a stream that
		// starts in steady noise would otherwise begin with a false utterance.
		if s.nLevels >= 20 && loud(s.cfg.StartDB) {
			s.startRun++
		} else {
			s.startRun = 0
		}
		// Three loud frames in a row (30 ms) open an utterance; one click does not.
		if s.startRun >= 3 {
			s.open(start - int64(2*frameLen))
		}
		keep := s.cfg.PreRollMS*SampleRate/1000 + 3*frameLen
		if len(s.preRoll) > keep {
			s.preRoll = append(s.preRoll[:0], s.preRoll[len(s.preRoll)-keep:]...)
		}
		return
	}

	s.utt = append(s.utt, f...)
	s.uttLevels = append(s.uttLevels, db)
	if loud(s.cfg.KeepDB) {
		s.voiced++
		s.silence = 0
		s.lastVoice = s.samples
	} else {
		s.silence++
	}
	if s.silence*10 >= s.cfg.HangoverMS {
		tail := s.lastVoice + int64(s.cfg.TailMS*SampleRate/1000)
		s.finish(int(tail - s.uttStart))
		return
	}
	if len(s.utt) >= s.cfg.MaxUtteranceMS*SampleRate/1000 {
		s.split()
	}
}

// open starts an utterance whose first speech frame begins at sample speechAt.
func (s *Segmenter) open(speechAt int64) {
	s.inSpeech = true
	pre := int64(s.cfg.PreRollMS * SampleRate / 1000)
	pcmStart := max(speechAt-pre, s.samples-int64(len(s.preRoll)), 0)
	s.utt = append(s.utt[:0], s.preRoll[len(s.preRoll)-int(s.samples-pcmStart):]...)
	s.uttLevels = s.uttLevels[:0]
	s.uttStart = pcmStart
	s.speechBeg = speechAt
	s.lastVoice = s.samples
	s.voiced = 3
	s.silence = 0
	s.startRun = 0
	s.preRoll = s.preRoll[:0]
}

// finish emits the current utterance cut to its first n samples of PCM and
// returns to silence; the audio after the cut becomes pre-roll.
func (s *Segmenter) finish(n int) {
	n = min(n, len(s.utt))
	u := Utterance{
		StartMS:    s.base + samplesToMS(s.speechBeg),
		EndMS:      s.base + samplesToMS(s.lastVoice),
		PCMStartMS: s.base + samplesToMS(s.uttStart),
		PCM:        append([]int16(nil), s.utt[:n]...),
	}
	s.preRoll = append(s.preRoll[:0], s.utt[n:]...)
	s.inSpeech = false
	s.utt = s.utt[:0]
	s.uttLevels = s.uttLevels[:0]
	if s.voiced*10 >= s.cfg.MinSpeechMS {
		s.emit(u)
	}
}

// split ends an over-long utterance at its quietest frame of the last second
// and keeps the rest open as the next utterance.
func (s *Segmenter) split() {
	frames := len(s.uttLevels)
	from := max(frames-100, 0)
	cut := from
	for i := from; i < frames; i++ {
		if s.uttLevels[i] < s.uttLevels[cut] {
			cut = i
		}
	}
	// uttLevels[i] describes the frame that ends at utt sample len(utt)-(frames-i-1)*frameLen.
	cutSample := len(s.utt) - (frames-cut)*frameLen + frameLen/2
	cutAbs := s.uttStart + int64(cutSample)
	rest := append([]int16(nil), s.utt[cutSample:]...)
	restLevels := append([]float64(nil), s.uttLevels[cut+1:]...)
	u := Utterance{
		StartMS:    s.base + samplesToMS(s.speechBeg),
		EndMS:      s.base + samplesToMS(cutAbs),
		PCMStartMS: s.base + samplesToMS(s.uttStart),
		PCM:        append([]int16(nil), s.utt[:cutSample]...),
	}
	s.emit(u)
	s.utt = append(s.utt[:0], rest...)
	s.uttLevels = append(s.uttLevels[:0], restLevels...)
	s.uttStart = cutAbs
	s.speechBeg = cutAbs
	s.voiced = len(restLevels)
	if s.lastVoice < cutAbs {
		s.lastVoice = cutAbs
	}
}
