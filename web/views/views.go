// Package views holds the recruiter dashboard's templ components. Components
// take plain view models built by the page handlers in package web; they never
// reach the store themselves, so they can be rendered and tested in isolation.
package views

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"candor/store"
)

// Page is what every dashboard page's layout needs besides its own content.
type Page struct {
	Title string
	// Nav is the key of the active navigation item ("interviews", "positions", ...).
	Nav  string
	Org  string
	User *User // nil on the setup and login pages
	// CSRF is the session's token, put in every form as the _csrf field and
	// in a meta tag for fetch calls to the REST API.
	CSRF  string
	Flash *Flash
	// AssetVersion is appended to static asset URLs so that they can be cached
	// forever and still change with each build.
	AssetVersion string
}

// User is the signed-in user as the layout shows it.
type User struct {
	ID, Name, Email string
	Role            store.Role
}

// Flash is a one-time message carried across a redirect.
type Flash struct {
	Kind    string // "success" or "error"
	Message string
}

// FormErrors maps a form field's name to what is wrong with it. The key ""
// holds an error about the whole form.
type FormErrors map[string]string

// CanWrite reports whether the signed-in user may change tenant data. Viewers
// read only; the server refuses their writes independently of what is shown.
func (p Page) CanWrite() bool {
	return p.User != nil && (p.User.Role == store.RoleOwner || p.User.Role == store.RoleRecruiter)
}

// IsOwner reports whether the signed-in user manages members.
func (p Page) IsOwner() bool { return p.User != nil && p.User.Role == store.RoleOwner }

func (p Page) asset(name string) string {
	if p.AssetVersion == "" {
		return "/static/" + name
	}
	return "/static/" + name + "?v=" + p.AssetVersion
}

// SetupForm is the first-run form that creates the organization and its owner.
type SetupForm struct {
	Org, Name, Email string
}

// LoginForm keeps what the user typed (never the password) after a failure.
type LoginForm struct {
	Email string
	Next  string
}

// InterviewRow is one line of the interviews table.
type InterviewRow struct {
	Interview      store.Interview
	CandidateName  string
	CandidateEmail string
	PositionTitle  string
	// Ordinal is the interview's number among its candidate's (1 = first);
	// Of is how many the candidate has.
	Ordinal, Of int
	// Score is the overall score of the interview's scorecard, nil while
	// there is none.
	Score     *float64
	InviteURL string
	// CanRetry is set for a failed interview that never ran: it can be
	// started again (and its invite link still works).
	CanRetry bool
}

// InterviewForm is the create-interview form's input.
type InterviewForm struct {
	PositionID, CandidateID, Region string
	// AvailableFrom and ExpiresAt are datetime-local values in the
	// recruiter's time zone, TZOffset its offset (minutes behind UTC, as
	// JavaScript's getTimezoneOffset gives it; "" means UTC).
	AvailableFrom, ExpiresAt, TZOffset string
	SendInvite                         bool
}

// Interviews is the /interviews page.
type Interviews struct {
	// TenantID names the realtime topic (tenant:<id>) whose status changes
	// update the list live.
	TenantID string
	Rows     []InterviewRow
	Filter   store.Status
	Query    ListQuery
	// Regions are the regions an interview may name (the one configured
	// list); the form offers them.
	Regions    []string
	Positions  []store.Position
	Candidates []store.Candidate
	Form       InterviewForm
	Errors     FormErrors
	Usage      *Usage // nil hides the usage card
	EmailOn    bool   // invitations can be emailed
}

// ListQuery is what the interviews list is narrowed and ordered by, as
// given in the URL.
type ListQuery struct {
	Q, PositionID, From, To, Sort string
}

// Narrowed reports whether anything but the order narrows the list.
func (q ListQuery) Narrowed() bool {
	return q.Q != "" || q.PositionID != "" || q.From != "" || q.To != ""
}

// Usage is the tenant's interview machine time this month and what it
// costs at the configured price per machine-hour.
type Usage struct {
	Month          time.Time // any instant in the month shown
	MachineSeconds float64   // billed, plus time run so far by live machines
	PricePerHour   float64   // USD per machine-hour
	// Fly, with the fly provisioner: the rest of what 1,000 hour-long
	// interviews a month cost there.
	Fly *FlyCost
}

// FlyCost is the Fly part of the 1,000-interview answer (fly.CostModel).
type FlyCost struct {
	Transport    string  // how audio travels (webrtc-udp, websocket, …)
	IPv4PerMonth float64 // the tenant app's dedicated IPv4
	EgressGB     float64 // measured bytes per interview-hour × 1,000
	Egress       float64 // USD
	Total        float64 // machine time + IPv4 + egress, USD
}

// fmtGB shows gigabytes without false precision.
func fmtGB(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + " GB" }

// Cost is the estimated cost of MachineSeconds.
func (u Usage) Cost() float64 { return u.MachineSeconds / 3600 * u.PricePerHour }

// ThousandHourInterviews answers the sizing question: what 1,000
// hour-long interviews a month cost (one machine-hour each).
func (u Usage) ThousandHourInterviews() float64 { return 1000 * u.PricePerHour }

// fmtUSD shows dollars with cents, and amounts under a dollar with enough
// digits to not read as zero (machine time is cheap).
func fmtUSD(v float64) string {
	if v != 0 && v < 1 {
		return "$" + strconv.FormatFloat(v, 'f', 4, 64)
	}
	return "$" + strconv.FormatFloat(v, 'f', 2, 64)
}

// fmtPrice shows a per-hour price as configured (e.g. $0.0079).
func fmtPrice(v float64) string { return "$" + strconv.FormatFloat(v, 'f', -1, 64) }

// InterviewDetail is the /interviews/{id} page.
type InterviewDetail struct {
	Interview store.Interview
	Candidate store.Candidate
	Position  store.Position
	// Machine is the interview's latest machine, nil if none was launched.
	Machine        *store.Machine
	MachineSeconds float64
	Entries        []store.Entry
	Events         []store.Event
	InviteURL      string
	RecordingURL   string // "" when there is no recording
	// RecordingMS is how long the recording runs on the media clock, so
	// the page can say it before the player has loaded anything.
	RecordingMS int64
	// RecordingParts are the recording's segments (one per processor that
	// heard the candidate) in media order; the page shows one player each
	// when there is more than one. Part 1 is RecordingURL.
	RecordingParts []RecordingPart
	VideoURL       string // the candidate's camera recording, "" when none
	// CanRetry is set for a failed interview that never ran: it can be
	// started again.
	CanRetry bool
	// EmailOn says the server sends email; CanInvite that the invitation
	// can be emailed now (email on, interview open to joining).
	EmailOn, CanInvite bool
	// After is the scorecard card (AfterInterview); nil hides it.
	After *AfterView
}

// RecordingPart is one segment of an interview's recording.
type RecordingPart struct {
	URL     string
	StartMS int64 // where it starts on the interview's media clock
}

// LastSeq is the highest transcript seq rendered; the live view resumes after it.
func (d InterviewDetail) LastSeq() int64 {
	var last int64
	for _, e := range d.Entries {
		last = max(last, e.Seq)
	}
	return last
}

// PositionForm is the position editor's input. Rubric weights stay strings so
// that a mistyped weight is shown back as typed.
type PositionForm struct {
	ID, Title, Description string
	Questions              []string
	Rubric                 []RubricRow
	InterviewerName, Voice string
	// Voices are the choices of the voice field (the default, "", first).
	Voices []Option
	// Interviews is how many interviews use the position; it can be
	// deleted only without any.
	Interviews int
	// Ranking ranks the position's candidates by score; nil hides it.
	Ranking *Ranking
}

// Option is one choice of a select field.
type Option struct {
	Value, Label string
}

// RubricRow is one criterion in the rubric editor.
type RubricRow struct {
	Name, Description, Weight string
}

// PositionFormFrom fills the editor from a stored position.
func PositionFormFrom(p store.Position) PositionForm {
	f := PositionForm{ID: p.ID, Title: p.Title, Description: p.Description, Questions: p.Questions,
		InterviewerName: p.InterviewerName, Voice: p.Voice}
	for _, r := range p.Rubric {
		f.Rubric = append(f.Rubric, RubricRow{Name: r.Name, Description: r.Description, Weight: strconv.FormatFloat(r.Weight, 'f', -1, 64)})
	}
	return f
}

// CandidateForm is the create and edit candidate forms' input.
type CandidateForm struct {
	Name, Email, Notes string
}

// CandidateDetail is the /candidates/{id} page.
type CandidateDetail struct {
	Candidate  store.Candidate
	Form       CandidateForm
	Errors     FormErrors
	Interviews []InterviewRow
	// Erasable is set when the server can erase a candidate (the erasure
	// path exists); the delete button shows only then.
	Erasable bool
}

// Candidates is the /candidates page.
type Candidates struct {
	Candidates []store.Candidate
	Form       CandidateForm
	Errors     FormErrors
}

// MemberForm is the owner's add-member form.
type MemberForm struct {
	Name, Email string
	Role        store.Role
}

// Members is the /members page.
type Members struct {
	Users   []store.User
	Form    MemberForm
	Errors  FormErrors
	EmailOn bool // member invitations go by email
}

// APIKeys is the /api-keys page.
type APIKeys struct {
	Keys []store.APIKey
	// Created is the plaintext of a key just created; it is shown this once.
	Created     string
	CreatedName string
	Name        string
	Errors      FormErrors
}

// Settings is the /settings page.
type Settings struct {
	Secrets []store.SecretInfo
	Name    string
	Errors  FormErrors
}

// Statuses lists interview statuses in lifecycle order, for filters and badges.
var Statuses = []store.Status{
	store.StatusScheduled, store.StatusStarting, store.StatusRunning,
	store.StatusCompleted, store.StatusFailed, store.StatusCancelled,
}

func statusLabel(s store.Status) string {
	if s == "" {
		return "Unknown"
	}
	return strings.ToUpper(string(s[:1])) + string(s[1:])
}

func roleLabel(r store.Role) string { return statusLabel(store.Status(r)) }

func speakerLabel(s string) string {
	switch s {
	case store.SpeakerCandidate:
		return "Candidate"
	case store.SpeakerInterviewer:
		return "Interviewer"
	}
	return s
}

// fmtTime shows times in UTC, the zone the API speaks; the <time> element
// carries the exact instant for the browser to localize.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2 Jan 2006, 15:04 UTC")
}

// fmtShortTime is for table cells: the year only when it is not this one.
func fmtShortTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	t = t.UTC()
	if t.Year() == time.Now().UTC().Year() {
		return t.Format("2 Jan, 15:04")
	}
	return t.Format("2 Jan 2006")
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return fmtTime(*t)
}

func isoTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// fmtClock shows a media-clock offset as m:ss.
func fmtClock(ms int64) string {
	s := ms / 1000
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

func fmtDuration(seconds float64) string {
	d := time.Duration(seconds * float64(time.Second)).Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%dh %02dm", h, m)
	}
	return fmt.Sprintf("%dm %02ds", m, s)
}

func fmtWeight(w float64) string { return strconv.FormatFloat(w, 'f', -1, 64) }

func initials(name string) string {
	var b strings.Builder
	for _, f := range strings.Fields(name) {
		for _, r := range f {
			b.WriteRune(r)
			break
		}
		if b.Len() >= 2 {
			break
		}
	}
	if b.Len() == 0 {
		return "?"
	}
	return strings.ToUpper(b.String())
}

func interviewURL(id string) string { return "/interviews/" + id }
func positionURL(id string) string  { return "/positions/" + id }

func filterURL(s store.Status) string {
	if s == "" {
		return "/interviews"
	}
	return "/interviews?status=" + string(s)
}

func questionsText(qs []string) string { return strings.Join(qs, "\n") }

func eventData(e store.Event) string {
	s := strings.TrimSpace(string(e.Data))
	if s == "" || s == "null" || s == "{}" {
		return ""
	}
	return s
}

func pluralize(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// interviewDuration is how long an interview ran, "—" if it did not run.
func interviewDuration(iv store.Interview) string {
	if iv.StartedAt == nil || iv.EndedAt == nil || iv.EndedAt.Before(*iv.StartedAt) {
		return "—"
	}
	return fmtDuration(iv.EndedAt.Sub(*iv.StartedAt).Seconds())
}

// scoreText shows a score, "—" without one.
func scoreText(score *float64) string {
	if score == nil {
		return "—"
	}
	return strconv.FormatFloat(*score, 'f', 1, 64)
}
