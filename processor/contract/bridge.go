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

// Entry is one transcript line as the bridge receives it. Seq is dense and
// increasing within an interview; StartMS and EndMS are on the interview's
// media clock; Confidence is in [0, 1].
type Entry struct {
	Seq        int64   `json:"seq"`
	Speaker    string  `json:"speaker"` // SpeakerCandidate | SpeakerInterviewer
	Text       string  `json:"text"`
	StartMS    int64   `json:"start_ms"`
	EndMS      int64   `json:"end_ms"`
	Confidence float64 `json:"confidence"`
}

// EntriesRequest is the body of POST …/entries. The bridge is idempotent on
// seq: a resent batch stores nothing twice.
type EntriesRequest struct {
	Entries []Entry `json:"entries"`
}

// EntriesAnswer is the answer of POST …/entries.
type EntriesAnswer struct {
	Received int `json:"received"`
	Inserted int `json:"inserted"`
}

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
}

// Headers of PUT …/recording: which segment of the recording the body is
// (a re-upload with the same id replaces it) and where it starts on the
// media clock.
const (
	RecordingSegmentHeader = "Candor-Recording-Segment"
	RecordingStartHeader   = "Candor-Recording-Start-Ms"
)
