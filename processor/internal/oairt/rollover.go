package oairt

import "time"

// Rollover is the one rule by which a Realtime session hands over to the
// next before the service's 60-minute cap, used by the transcription engine
// and the interviewer alike: from Max on a new session is prepared and
// taken at a quiet moment; from Max+Hard it is taken regardless.
type Rollover struct {
	Max  time.Duration
	Hard time.Duration
}

// Age is how old a session is as the service counts it: the later of the
// wall time since it opened and the duration of the audio (samples at
// Rate) it was sent.
func Age(opened, now time.Time, samples int64) time.Duration {
	return max(now.Sub(opened), time.Duration(samples)*time.Second/Rate)
}

// Near reports whether a session of this age needs its successor ready.
func (r Rollover) Near(age time.Duration) bool { return age >= r.Max }

// Due reports whether a session of this age should hand over now, given
// whether this is a quiet moment (nobody speaking, nothing pending).
func (r Rollover) Due(age time.Duration, quiet bool) bool {
	return age >= r.Max && (quiet || age >= r.Max+r.Hard)
}
