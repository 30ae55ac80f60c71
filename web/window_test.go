package web

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"candor/store"
	"candor/web/mail"
)

// TestCandidatePageOpensOnlyInsideTheWindow: before available_from the link
// shows when it opens (in the candidate's zone, from a UTC datetime) and
// refuses consent and join; inside the window it is the interview; after
// expires_at it is gone.
func TestCandidatePageOpensOnlyInsideTheWindow(t *testing.T) {
	e := newTestEnv(t)
	tn := e.tenant(t, "Acme")
	posID, candID, _ := e.seed(t, tn)
	opens := time.Now().Add(3 * time.Hour).UTC().Truncate(time.Second)
	var early, open interviewJSON
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/interviews", Key: tn.Key, Body: map[string]any{
		"position_id": posID, "candidate_id": candID, "available_from": opens.Format(time.RFC3339)}}, &early)
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/interviews", Key: tn.Key, Body: map[string]any{
		"position_id": posID, "candidate_id": candID, "available_from": time.Now().Add(-time.Hour).Format(time.RFC3339),
		"expires_at": time.Now().Add(time.Hour).Format(time.RFC3339)}}, &open)

	res := e.do(t, request{Method: "GET", Path: e.inviteOf(early.ID), Header: browserHTML})
	wantFriendlyPage(t, res, http.StatusForbidden)
	body := string(res.Body)
	if !strings.Contains(body, "not open yet") || !strings.Contains(body, `datetime="`+opens.Format(time.RFC3339)+`"`) || !strings.Contains(body, "data-local") {
		t.Errorf("the early page does not say when it opens, for localtime.js:\n%s", body)
	}
	for _, action := range []string{"/consent", "/join"} {
		r := e.do(t, request{Method: "POST", Path: e.inviteOf(early.ID) + action, Body: map[string]any{"consent": true}})
		if r.Status != http.StatusConflict {
			t.Errorf("POST %s before the window = %d, want 409: %s", action, r.Status, r.Body)
		}
	}
	if iv := e.interview(t, tn.ID, early.ID); iv.ConsentAt != nil || iv.Status != store.StatusScheduled {
		t.Errorf("an early candidate changed the interview: %+v", iv)
	}

	// A window that opened already: the interview page, with its close.
	res = e.do(t, request{Method: "GET", Path: e.inviteOf(open.ID), Header: browserHTML})
	if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `data-testid="window-until"`) {
		t.Fatalf("inside the window: %d, window shown: %v", res.Status, strings.Contains(string(res.Body), "window-until"))
	}
	if open.AvailableFrom != nil {
		t.Errorf("a window that opened in the past is stored as %v; want it open at once (null)", open.AvailableFrom)
	}

	// After the window: gone.
	if _, err := e.db.CreateInterview(context.Background(), store.Interview{ID: "iv_late", TenantID: tn.ID, PositionID: posID, CandidateID: candID,
		ExpiresAt: time.Now().Add(-time.Minute)}, tokenHash(e.srv.inviteToken("iv_late"))); err != nil {
		t.Fatal(err)
	}
	wantFriendlyPage(t, e.do(t, request{Method: "GET", Path: e.inviteOf("iv_late"), Header: browserHTML}), http.StatusGone)
}

// TestBadLinkPageMentionsEmailOnlyWhenEmailIsOn: without email, nobody got
// an "invitation email".
func TestBadLinkPageMentionsEmailOnlyWhenEmailIsOn(t *testing.T) {
	off := newTestEnv(t)
	res := off.do(t, request{Method: "GET", Path: "/i/not-a-token", Header: browserHTML})
	if strings.Contains(string(res.Body), "email") {
		t.Errorf("with email off the bad-link page mentions an email:\n%s", res.Body)
	}
	on := newTestEnv(t, withConfig(func(c *Config) { c.Mailer = nopMailer{} }))
	res = on.do(t, request{Method: "GET", Path: "/i/not-a-token", Header: browserHTML})
	if !strings.Contains(string(res.Body), "invitation email") {
		t.Errorf("with email on the bad-link page does not point at the invitation email")
	}
}

type nopMailer struct{}

func (nopMailer) Send(context.Context, mail.Message) error { return nil }

// TestScheduleFormReadsTheRecruitersTimeZone: the dashboard's datetime-local
// values are in the recruiter's zone, sent with its offset; the stored
// window is the same instants in UTC. A window that closes before it opens
// is refused with nothing stored.
func TestScheduleFormReadsTheRecruitersTimeZone(t *testing.T) {
	env := newDashEnv(t)
	b := env.setup("Acme", "olive@example.com", "olive password")
	tenant := env.tenantOf("olive@example.com")
	pos, _ := env.seedInterview(tenant, "Ada", store.StatusScheduled)
	cands, _ := env.db.ListCandidates(context.Background(), tenant)
	day := time.Now().Add(48 * time.Hour).UTC().Format("2006-01-02")
	b.get("/interviews")
	// UTC+2 (getTimezoneOffset -120): 09:30 there is 07:30 UTC.
	p := b.post("/interviews", url.Values{"position_id": {pos.ID}, "candidate_id": {cands[0].ID},
		"available_from": {day + "T09:30"}, "expires_at": {day + "T17:00"}, "tz_offset": {"-120"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("schedule: %d\n%.500s", p.status, p.body)
	}
	id := strings.TrimPrefix(p.location, "/interviews/")
	iv, err := env.db.Interview(context.Background(), tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if iv.AvailableFrom == nil || iv.AvailableFrom.Format("15:04") != "07:30" || iv.ExpiresAt.Format("15:04") != "15:00" {
		t.Fatalf("stored window %v – %v, want 07:30–15:00 UTC", iv.AvailableFrom, iv.ExpiresAt)
	}
	before, _ := env.db.ListInterviews(context.Background(), tenant, store.InterviewFilter{})
	bad := b.post("/interviews", url.Values{"position_id": {pos.ID}, "candidate_id": {cands[0].ID},
		"available_from": {day + "T17:00"}, "expires_at": {day + "T09:00"}, "tz_offset": {"0"}})
	wantDashStatus(t, bad, http.StatusUnprocessableEntity)
	if !bad.has("error-expires_at") {
		t.Errorf("no error on the close field:\n%.500s", bad.body)
	}
	after, _ := env.db.ListInterviews(context.Background(), tenant, store.InterviewFilter{})
	if len(after) != len(before) {
		t.Errorf("a refused window stored an interview")
	}
}

// TestLogsHoldNoSetPasswordTokens: the links in reset and invitation emails
// are credentials; the access log shows their paths masked.
func TestLogsHoldNoSetPasswordTokens(t *testing.T) {
	var logs bytes.Buffer
	e := newAttackEnv(t, withLog(&logs))
	reset, invitation := randomToken(), randomToken()
	e.do(t, request{Method: "GET", Path: resetPath + reset})
	e.do(t, request{Method: "POST", Path: invitationPath + invitation, Body: "password=x", ContentType: "application/x-www-form-urlencoded"})
	for _, want := range []string{`"path":"` + resetPath + `…"`, `"path":"` + invitationPath + `…"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %s in the log:\n%s", want, logs.String())
		}
	}
	for _, tok := range []string{reset, invitation} {
		if strings.Contains(logs.String(), tok) {
			t.Errorf("the log holds a set-password token:\n%s", logs.String())
		}
	}
}
