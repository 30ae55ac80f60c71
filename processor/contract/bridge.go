package contract

// The bridge API (DESIGN §5): POST {control}/api/v1/bridge/interviews/{id}/…
// with Authorization: Bearer <CANDOR_PROCESSOR_TOKEN>.

// BridgePath is the prefix of an interview's bridge routes; the interview
// id (path-escaped) follows it.
const BridgePath = "/api/v1/bridge/interviews/"

// Speakers of an entry.
const (
	SpeakerCandidate   = "candidate"
	SpeakerInterviewer = "interviewer"
)

// Entry is one transcript line as the bridge receives it. Seq is the
// processor's own number of the entry, increasing; the control plane
// stores the entry under the interview's next seq when it commits it, and
// (epoch, Seq) makes a resent entry idempotent, so a retired processor's
// late entry never collides with its replacement's (README, "Epochs").
// StartMS and EndMS are on the interview's media clock; Confidence is in
// [0, 1].
type Entry struct {
	Seq        int64   `json:"seq"`
	Speaker    string  `json:"speaker"` // SpeakerCandidate | SpeakerInterviewer
	Text       string  `json:"text"`
	StartMS    int64   `json:"start_ms"`
	EndMS      int64   `json:"end_ms"`
	Confidence float64 `json:"confidence"`
}

// EntriesRequest is the body of POST …/entries. The bridge is idempotent on
// the processor's epoch and seq: a resent batch stores nothing twice.
type EntriesRequest struct {
	Entries []Entry `json:"entries"`
}

// EntriesAnswer is the answer of POST …/entries.
type EntriesAnswer struct {
	Received int `json:"received"`
	Inserted int `json:"inserted"`
	// Retired tells a replaced processor it is draining (see State).
	Retired bool `json:"retired,omitempty"`
	// PastHandover counts entries of a retired processor that start at or
	// after the hand-over: its replacement heard that part, so they are
	// not stored.
	PastHandover int `json:"past_handover,omitempty"`
}

// EventAnswer is the answer of POST …/events. Retired tells a replaced
// processor that it is draining: it stops listening and speaking,
// delivers what it holds, uploads its recording, says EventDrained and
// exits. Nothing else it sends is acted on.
type EventAnswer struct {
	OK      bool `json:"ok"`
	Retired bool `json:"retired,omitempty"`
}

// EventDrained is what a retired processor says last: it has delivered
// everything it can and exits; its credential stops working.
const EventDrained = "drained"

// Event types of POST …/events.
const (
	EventReady     = "ready"
	EventHeartbeat = "heartbeat"
	EventEnded     = "ended"
	EventError     = "error"
)

// Event is the body of POST …/events. MediaMS is where the processor's
// media clock stands; a heartbeat must carry it. Message is required for
// an error.
type Event struct {
	Type    string         `json:"type"`
	MediaMS *int64         `json:"media_ms,omitempty"`
	Message string         `json:"message,omitempty"`
	Data    map[string]any `json:"data,omitempty"`
}

// State is the answer of GET …/state: where a (replacement) processor
// resumes. MediaMS is the later of the last heartbeat and the last entry's
// end; InterviewerTexts are the texts of the stored interviewer entries in
// seq order, and InterviewerTurns their number.
type State struct {
	LastSeq          int64    `json:"last_seq"`
	MediaMS          int64    `json:"media_ms"`
	Status           string   `json:"status"`
	InterviewerTurns int64    `json:"interviewer_turns"`
	InterviewerTexts []string `json:"interviewer_texts"`
	// Epoch is the asking processor's launch of the interview; Retired
	// says it was replaced and must drain (EventAnswer).
	Epoch   int64 `json:"epoch,omitempty"`
	Retired bool  `json:"retired,omitempty"`
}

// Headers of PUT …/recording: which segment of the recording the body is
// (a re-upload with the same id replaces it) and where it starts on the
// media clock.
const (
	RecordingSegmentHeader = "Candor-Recording-Segment"
	RecordingStartHeader   = "Candor-Recording-Start-Ms"
)
