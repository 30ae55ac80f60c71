package views

import (
	"fmt"
	"time"

	"candor/store"
)

// AfterView is what the interview page shows after the interview: the AI
// scorecard beside the human reviews, exports, and the review form.
type AfterView struct {
	InterviewID string
	Status      string // scorecard status: pending, ready, failed, unavailable
	Evaluator   string
	Error       string
	Criteria    []ScoreRow
	AIOverall   *float64
	AIRec       string
	Summary     string
	Dropped     int
	HumanAvg    *float64
	Reviews     []ReviewView
	Stats       StatsView
	// MyReview pre-fills the review form with the viewer's own review.
	MyReview map[string]int
	MyRec    string
	MyNote   string
	Seekable bool // a recording exists: evidence plays it
	Done     bool // the interview is over (reviews and re-runs make sense)
	Errors   FormErrors
}

// ScoreRow is one rubric criterion: the AI's score and evidence beside the
// reviewers' average.
type ScoreRow struct {
	Name       string
	Weight     float64
	AIScore    int // 0: none
	Rationale  string
	Evidence   []EvidenceView
	NoEvidence bool
	HumanAvg   *float64
}

// EvidenceView is a quote and the moment of the entry it came from.
type EvidenceView struct {
	Seq     int64
	Quote   string
	StartMS int64
}

type ReviewView struct {
	Reviewer, Kind string
	Overall        *float64
	Recommendation string
	Note           string
	Scores         map[string]int
	UpdatedAt      time.Time
}

type StatsView struct {
	CandidateTalkMS, InterviewerTalkMS, LongestPauseMS int64
	QuestionsAsked, QuestionsAnswered                  int
	WordsPerMinute                                     float64
}

func fmtScore(f *float64) string {
	if f == nil {
		return "—"
	}
	return fmt.Sprintf("%.2f", *f)
}

func recLabel(r string) string {
	switch r {
	case "strong_yes":
		return "Strong yes"
	case "yes":
		return "Yes"
	case "no":
		return "No"
	case "strong_no":
		return "Strong no"
	}
	return "—"
}

// Ranking is a position's candidates ordered by score.
type Ranking struct {
	PositionID string
	Sort       string // ai, human, both
	Status     store.Status
	Rows       []RankRow
}

type RankRow struct {
	InterviewID, Candidate string
	Status                 store.Status
	AI, Human, Both        *float64
	Reviews                int
}

// WebhooksView is the webhooks settings page.
type WebhooksView struct {
	Webhooks   []WebhookRow
	Events     []string
	NewSecret  string // shown once, right after creation
	Errors     FormErrors
	URL        string
	Selected   map[string]bool
	Deliveries map[string][]DeliveryRow // by webhook ID
}

type WebhookRow struct {
	ID, URL        string
	Events         []string
	FailingSince   *time.Time
	DisabledAt     *time.Time
	DisabledReason string
}

type DeliveryRow struct {
	ID, Event, Subject, Status string
	Attempts                   int
	LastStatus                 int
	LastError                  string
	NextAttemptAt              *time.Time
	CreatedAt                  time.Time
}

// RetentionView is the retention settings page.
type RetentionView struct {
	RecordingsDays, TranscriptsDays string // "" keeps forever
	Errors                          FormErrors
	Audit                           []store.AuditEntry
}
