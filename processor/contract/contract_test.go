package contract

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCandidateTokenIsTheDocumentedHMAC(t *testing.T) {
	// hex(HMAC-SHA256(key="secret", msg="candidate:iv_1")), computed independently.
	const want = "df3295df1bcec7bb2e91bbd753f7683d35c3c64f874bb7a37111e2e9ed558d87"
	if got := CandidateToken("secret", "iv_1"); got != want {
		t.Fatalf("CandidateToken = %s, want %s", got, want)
	}
	if CandidateToken("secret", "iv_1") == CandidateToken("secret", "iv_2") {
		t.Fatal("two interviews share a candidate token")
	}
}

func TestStateDecodesTheControlPlanesAnswer(t *testing.T) {
	var st State
	body := `{"last_seq":7,"media_ms":7900,"status":"running","interviewer_turns":2,"interviewer_texts":["Hi.","Q1?"]}`
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.LastSeq != 7 || st.MediaMS != 7900 || st.InterviewerTurns != 2 || len(st.InterviewerTexts) != 2 {
		t.Fatalf("state = %+v", st)
	}
}

func TestEventOmitsAnUnsetMediaClock(t *testing.T) {
	b, _ := json.Marshal(Event{Type: EventError, Message: "boom"})
	if strings.Contains(string(b), "media_ms") {
		t.Fatalf("event %s carries media_ms", b)
	}
	ms := int64(0)
	b, _ = json.Marshal(Event{Type: EventHeartbeat, MediaMS: &ms})
	if !strings.Contains(string(b), `"media_ms":0`) {
		t.Fatalf("heartbeat %s lost its media clock at 0", b)
	}
}

func TestPlanDefaultsFillWhatIsMissing(t *testing.T) {
	p, err := ParsePlan([]byte(`{"position":{"title":"Backend engineer"},"questions":["  ", "Why Go?"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Questions) != 1 || p.Questions[0] != "Why Go?" {
		t.Errorf("questions = %q, want the one non-blank", p.Questions)
	}
	if p.Interviewer.Name != "Candor" || !strings.Contains(p.Interviewer.Greeting, "the Backend engineer role") {
		t.Errorf("interviewer = %+v", p.Interviewer)
	}
	if q := (Plan{}).WithDefaults().Questions; len(q) != len(DefaultQuestions) {
		t.Errorf("an empty plan asks %d questions, want the %d defaults", len(q), len(DefaultQuestions))
	}
	if _, err := ParsePlan([]byte(`{"questions":"not a list"}`)); err == nil {
		t.Error("a malformed plan was accepted")
	}
}
