package processor

import "sync/atomic"

// phase is where an interview session is in its life: the one notion of
// "over" on a processor. It only moves forward.
type phase int32

const (
	// phaseLive: audio is accepted from every ingest path.
	phaseLive phase = iota
	// phaseClosing: End or Close began; no new ingest is accepted, while
	// audio already buffered (out-of-order /process-audio chunks) is still
	// delivered to the stream.
	phaseClosing
	// phaseEnded: no more audio reaches the speech stream; the media clock
	// stands still.
	phaseEnded
	// phaseOver: the bridge has the `ended` event; heartbeats stop.
	phaseOver
)

func (p phase) String() string {
	return [...]string{"live", "closing", "ended", "over"}[p]
}

// lifecycle holds a session's phase.
type lifecycle struct{ p atomic.Int32 }

// advance moves the phase forward to p (never back).
func (l *lifecycle) advance(p phase) {
	for {
		cur := l.p.Load()
		if phase(cur) >= p || l.p.CompareAndSwap(cur, int32(p)) {
			return
		}
	}
}

// reached reports whether the session is at p or past it.
func (l *lifecycle) reached(p phase) bool { return phase(l.p.Load()) >= p }
