package web

import (
	"encoding/json"
	"strconv"
	"time"

	"candor/store"
	"candor/web/views"
)

// The API's JSON shapes (DESIGN §5): snake_case, string ids, RFC 3339 UTC
// times, empty lists as [] and absent objects as null.

type positionJSON struct {
	ID          string             `json:"id"`
	Title       string             `json:"title"`
	Description string             `json:"description"`
	Questions   []string           `json:"questions"`
	Rubric      []store.RubricItem `json:"rubric"`
	// InterviewerName and Voice: "" means the default.
	InterviewerName string    `json:"interviewer_name"`
	Voice           string    `json:"voice"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

func toPositionJSON(p store.Position) positionJSON {
	qs := p.Questions
	if qs == nil {
		qs = []string{}
	}
	rubric := p.Rubric
	if rubric == nil {
		rubric = []store.RubricItem{}
	}
	return positionJSON{
		ID: p.ID, Title: p.Title, Description: p.Description,
		Questions: qs, Rubric: rubric,
		InterviewerName: p.InterviewerName, Voice: p.Voice,
		CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(),
	}
}

type candidateJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Notes     string    `json:"notes"`
	CreatedAt time.Time `json:"created_at"`
}

func toCandidateJSON(c store.Candidate) candidateJSON {
	return candidateJSON{ID: c.ID, Name: c.Name, Email: c.Email, Notes: c.Notes, CreatedAt: c.CreatedAt.UTC()}
}

type machineJSON struct {
	ID            string     `json:"id"`
	Provider      string     `json:"provider"`
	Region        string     `json:"region"`
	State         string     `json:"state"`
	URL           string     `json:"url"`
	CreatedAt     time.Time  `json:"created_at"`
	DestroyedAt   *time.Time `json:"destroyed_at"`
	SecondsBilled float64    `json:"seconds_billed"`
}

func toMachineJSON(m store.Machine) *machineJSON {
	return &machineJSON{
		ID: m.ID, Provider: m.Provider, Region: m.Region, State: m.State, URL: m.URL,
		CreatedAt: m.CreatedAt.UTC(), DestroyedAt: utcPtr(m.DestroyedAt), SecondsBilled: m.SecondsBilled,
	}
}

type interviewJSON struct {
	ID          string       `json:"id"`
	PositionID  string       `json:"position_id"`
	CandidateID string       `json:"candidate_id"`
	Status      store.Status `json:"status"`
	Region      string       `json:"region"`
	// InviteURL is left out for viewers (principal.seesInvites) and in
	// realtime messages, which every role receives.
	InviteURL       string     `json:"invite_url,omitempty"`
	AvailableFrom   *time.Time `json:"available_from"`
	ExpiresAt       time.Time  `json:"expires_at"`
	InvitedAt       *time.Time `json:"invited_at"`
	RemindedAt      *time.Time `json:"reminded_at"`
	ConsentAt       *time.Time `json:"consent_at"`
	StartedAt       *time.Time `json:"started_at"`
	EndedAt         *time.Time `json:"ended_at"`
	CreatedAt       time.Time  `json:"created_at"`
	MediaMS         int64      `json:"media_ms"`
	LastHeartbeatAt *time.Time `json:"last_heartbeat_at"`
	RecordingURL    *string    `json:"recording_url"`
	// RecordingParts lists every processor's segment of the recording in
	// media order (additive to DESIGN §5); recording_url is the first.
	RecordingParts []recordingPartJSON `json:"recording_parts,omitempty"`
	// VideoURL is the candidate's camera recording (additive to DESIGN §5),
	// null when the candidate had no camera on.
	VideoURL *string      `json:"video_url"`
	Machine  *machineJSON `json:"machine"`
}

// toInterviewJSON renders iv; m is its latest machine or nil.
func (s *Server) toInterviewJSON(iv store.Interview, m *store.Machine) interviewJSON {
	j := interviewJSON{
		ID: iv.ID, PositionID: iv.PositionID, CandidateID: iv.CandidateID,
		Status: iv.Status, Region: iv.Region, InviteURL: s.inviteURL(iv.ID),
		ExpiresAt: iv.ExpiresAt.UTC(), ConsentAt: utcPtr(iv.ConsentAt),
		AvailableFrom: utcPtr(iv.AvailableFrom), InvitedAt: utcPtr(iv.InvitedAt), RemindedAt: utcPtr(iv.RemindedAt),
		StartedAt: utcPtr(iv.StartedAt), EndedAt: utcPtr(iv.EndedAt),
		CreatedAt: iv.CreatedAt.UTC(), MediaMS: iv.MediaMS,
		LastHeartbeatAt: utcPtr(iv.LastHeartbeatAt),
	}
	if iv.RecordingPath != "" {
		u := s.cfg.PublicURL + recordingPartURL(iv.ID, 1)
		j.RecordingURL = &u
		// A listing error leaves the parts out; the URL still answers.
		parts, _ := s.recordingParts(iv)
		for i, p := range parts {
			j.RecordingParts = append(j.RecordingParts, recordingPartJSON{
				URL: s.cfg.PublicURL + recordingPartURL(iv.ID, i+1), ContentType: p.format.contentType,
				StartMS: p.startMS, Bytes: p.size,
			})
		}
	}
	if u := s.videoURL(iv); u != "" {
		u = s.cfg.PublicURL + u
		j.VideoURL = &u
	}
	if !iv.Status.Terminal() {
		// A relaunched interview keeps the ended_at of its failed launch
		// in the store; it has not ended.
		j.EndedAt = nil
	}
	if m != nil {
		j.Machine = toMachineJSON(*m)
	}
	return j
}

// statusJSON is the data of an interview.status realtime message.
type statusJSON struct {
	ID        string        `json:"id"`
	Status    store.Status  `json:"status"`
	Interview interviewJSON `json:"interview"`
}

// MarshalJSON leaves the invite link out: every role of the tenant
// receives realtime messages, and viewers may not see it.
func (j statusJSON) MarshalJSON() ([]byte, error) {
	type plain statusJSON
	j.Interview.InviteURL = ""
	return json.Marshal(plain(j))
}

type entryJSON struct {
	Seq        int64     `json:"seq"`
	Speaker    string    `json:"speaker"`
	Text       string    `json:"text"`
	StartMS    int64     `json:"start_ms"`
	EndMS      int64     `json:"end_ms"`
	Confidence float64   `json:"confidence"`
	CreatedAt  time.Time `json:"created_at"`
}

func toEntryJSON(e store.Entry) entryJSON {
	return entryJSON{
		Seq: e.Seq, Speaker: e.Speaker, Text: e.Text, StartMS: e.StartMS, EndMS: e.EndMS,
		Confidence: e.Confidence, CreatedAt: e.CreatedAt.UTC(),
	}
}

type eventJSON struct {
	// ID (additive to DESIGN §5) tells events apart, so that a live view
	// that also fetches the stored ones shows each once.
	ID   string          `json:"id"`
	Type string          `json:"type"`
	At   time.Time       `json:"at"`
	Data json.RawMessage `json:"data"`
	// Summary (additive) says what happened in words for people.
	Summary string `json:"summary"`
}

func toEventJSON(e store.Event) eventJSON {
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	return eventJSON{ID: strconv.FormatInt(e.ID, 10), Type: e.Type, At: e.At.UTC(), Data: data, Summary: views.EventSummary(e)}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
