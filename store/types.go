package store

import (
	"encoding/json"
	"time"
)

// Role is what a user may do inside their tenant.
type Role string

const (
	RoleOwner     Role = "owner"
	RoleRecruiter Role = "recruiter"
	RoleViewer    Role = "viewer"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	switch r {
	case RoleOwner, RoleRecruiter, RoleViewer:
		return true
	}
	return false
}

// Status is where an interview is in its life.
type Status string

const (
	StatusScheduled Status = "scheduled"
	StatusStarting  Status = "starting"
	StatusRunning   Status = "running"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
)

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusScheduled, StatusStarting, StatusRunning, StatusCompleted, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Terminal reports whether an interview in status s is over for good.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// Speakers of transcript entries.
const (
	SpeakerCandidate   = "candidate"
	SpeakerInterviewer = "interviewer"
)

// Machine states (DESIGN §5).
const (
	MachineStarting  = "starting"
	MachineRunning   = "running"
	MachineStopping  = "stopping"
	MachineDestroyed = "destroyed"
	MachineFailed    = "failed"
)

type Tenant struct {
	ID, Name, Slug string
	CreatedAt      time.Time
}

// Person is someone who signs in: an email and a password, shared by all
// their memberships.
type Person struct {
	ID, Email    string
	PasswordHash string `json:"-"` // "" until they set one
	CreatedAt    time.Time
}

// User is a person's membership of one tenant. Email and PasswordHash are
// the person's.
type User struct {
	ID, TenantID, PersonID, Email, Name string
	Role                                Role
	PasswordHash                        string `json:"-"`
	CreatedAt                           time.Time
	// JoinedAt is when the person first signed in here; nil while their
	// invitation is pending.
	JoinedAt *time.Time
}

// Membership is one of a person's organizations, for choosing where to
// sign in.
type Membership struct {
	User   User
	Tenant Tenant
}

// Token purposes: links that let a person set their password.
const (
	TokenInvite = "invite"
	TokenReset  = "reset"
)

// PersonToken is a single-use, expiring link sent by email. Only its hash
// is stored.
type PersonToken struct {
	Hash, PersonID, Purpose string
	TenantID                string // invite: the organization that invited
	CreatedAt, ExpiresAt    time.Time
	UsedAt                  *time.Time
}

// Session is a dashboard login. IDHash is the hash of the cookie value; the
// cookie itself is never stored.
type Session struct {
	IDHash, UserID, TenantID, CSRFToken string
	CreatedAt, ExpiresAt                time.Time
}

// APIKey describes a key; the key itself is stored only as a hash.
type APIKey struct {
	ID, TenantID, Name, Prefix string
	CreatedAt                  time.Time
	LastUsedAt, RevokedAt      *time.Time
}

type RubricItem struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Weight      float64 `json:"weight"`
}

type Position struct {
	ID, TenantID, Title, Description string
	Questions                        []string
	Rubric                           []RubricItem
	// InterviewerName is how the interviewer introduces itself and Voice
	// the TTS voice that speaks for it; "" means the processor's default.
	InterviewerName, Voice string
	CreatedAt, UpdatedAt   time.Time
}

type Candidate struct {
	ID, TenantID, Name, Email string
	Notes                     string // the recruiters' notes
	CreatedAt                 time.Time
}

type Interview struct {
	ID, TenantID, PositionID, CandidateID string
	Status                                Status
	Region                                string
	ExpiresAt                             time.Time
	ConsentAt, StartedAt, EndedAt         *time.Time
	CreatedAt                             time.Time
	MediaMS                               int64 // last media-clock position reported by a heartbeat
	LastHeartbeatAt                       *time.Time
	RecordingPath                         string // relative to data dir, "" if none
	// AvailableFrom opens the candidate's window (nil: at once); ExpiresAt
	// closes it.
	AvailableFrom *time.Time
	// InvitedAt is when the invitation was last emailed, RemindedAt when
	// the reminder was.
	InvitedAt, RemindedAt *time.Time
}

// InterviewFilter narrows ListInterviews. Zero values mean "any" and "no limit".
type InterviewFilter struct {
	Status      Status
	PositionID  string
	CandidateID string
	// Query matches the candidate's name or email, or the position's title
	// (case-insensitive substring).
	Query string
	// From and To bound created_at (To exclusive).
	From, To time.Time
	// Sort is one of InterviewSorts' keys; "" is newest first.
	Sort  string
	Limit int
}

// scoreOrder is an interview's overall score from its ready scorecard.
const scoreOrder = `(SELECT json_extract(sc.body, '$.overall.score') FROM scorecards sc
	WHERE sc.tenant_id = i.tenant_id AND sc.interview_id = i.id AND sc.status = 'ready')`

// InterviewSorts are the orders ListInterviews knows, by name.
var InterviewSorts = map[string]string{
	"newest":       `i.created_at DESC, i.rowid DESC`,
	"oldest":       `i.created_at ASC, i.rowid ASC`,
	"candidate":    `c.name COLLATE NOCASE ASC, i.created_at DESC`,
	"position":     `p.title COLLATE NOCASE ASC, i.created_at DESC`,
	"status":       `i.status ASC, i.created_at DESC`,
	"duration":     `(julianday(i.ended_at) - julianday(i.started_at)) IS NULL, (julianday(i.ended_at) - julianday(i.started_at)) DESC, i.created_at DESC`,
	"duration_asc": `(julianday(i.ended_at) - julianday(i.started_at)) IS NULL, (julianday(i.ended_at) - julianday(i.started_at)) ASC, i.created_at DESC`,
	"score":        scoreOrder + ` IS NULL, ` + scoreOrder + ` DESC, i.created_at DESC`,
	"score_asc":    scoreOrder + ` IS NULL, ` + scoreOrder + ` ASC, i.created_at DESC`,
}

type Machine struct {
	ID, TenantID, InterviewID, Provider, ProviderID, App, Region, State, URL string
	CreatedAt                                                                time.Time
	DestroyedAt                                                              *time.Time
	SecondsBilled                                                            float64
	// DrainUntil is set on a machine replaced while it may still be
	// alive (state stopping): it may drain until then.
	DrainUntil *time.Time
}

// Entry is one transcript utterance. Seq is assigned by the store when it
// commits the entry: unique per interview and increasing in commit order.
// Epoch and LocalSeq are the delivering processor's launch and its own
// number of the entry, which make a retried delivery idempotent.
type Entry struct {
	InterviewID string    `json:"-"`
	Seq         int64     `json:"seq"`
	Epoch       int64     `json:"-"`
	LocalSeq    int64     `json:"-"`
	Speaker     string    `json:"speaker"`
	Text        string    `json:"text"`
	StartMS     int64     `json:"start_ms"`
	EndMS       int64     `json:"end_ms"`
	Confidence  float64   `json:"confidence"`
	CreatedAt   time.Time `json:"created_at"`
}

// Event is one row of an interview's append-only log.
type Event struct {
	ID          int64
	InterviewID string
	Type        string
	At          time.Time
	Data        json.RawMessage
}

// SecretInfo names a tenant secret without its value.
type SecretInfo struct {
	Name      string
	UpdatedAt time.Time
}
