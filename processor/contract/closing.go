package contract

import "time"

// The end of an interview after the interviewer's closing line.
//
// A processor never ends an interview on its own while the candidate keeps
// talking (API and chunk clients may talk past the last question): once the
// closing line is said it waits for EnvEndAfterSilence without a candidate
// utterance, then posts an Event of type EventFinished and the control plane
// ends the interview the usual way (flush, recording, machine destroyed).
const (
	// EnvEndAfterSilence is a Go duration; 0 turns the automatic end off.
	EnvEndAfterSilence = "CANDOR_END_AFTER_SILENCE"
	// DefaultEndAfterSilence suits a person who has nothing more to add
	// but did not press End.
	DefaultEndAfterSilence = 2 * time.Minute
	// EventFinished is the bridge event (additive to ready, heartbeat,
	// ended, error) of a processor whose interview is over by the rule above.
	EventFinished = "finished"
	// StateClosing is the /events state (after "live", before "ended") once
	// the interviewer has said its closing line.
	StateClosing = "closing"
)
