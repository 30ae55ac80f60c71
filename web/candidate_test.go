package web

import (
	"bytes"
	"context"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"candor/processor/contract"
	"candor/store"
)

// inviteOf is the invite link's path of an interview.
func (e *testEnv) inviteOf(interviewID string) string {
	return invitePath + e.srv.inviteToken(interviewID)
}

func (e *testEnv) eventTypes(t testing.TB, tenantID, interviewID string) []string {
	t.Helper()
	evs, err := e.db.Events(context.Background(), tenantID, interviewID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	return out
}

func (e *testEnv) interview(t testing.TB, tenantID, id string) store.Interview {
	t.Helper()
	iv, err := e.db.Interview(context.Background(), tenantID, id)
	if err != nil {
		t.Fatal(err)
	}
	return iv
}

// wantFriendlyPage checks that a browser got the candidate's notice page
// with status, and nothing internal.
func wantFriendlyPage(t *testing.T, res response, status int) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status %d, want %d: %s", res.Status, status, res.Body)
	}
	body := string(res.Body)
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `data-testid="candidate-notice"`) {
		t.Errorf("not the candidate's notice page: %s %s", res.Header.Get("Content-Type"), body)
	}
	for _, leak := range []string{"goroutine", ".go:", "sql", "panic"} {
		if strings.Contains(body, leak) {
			t.Errorf("the page shows %q", leak)
		}
	}
}

var browserHTML = map[string]string{"Accept": "text/html"}

func TestCandidatePageRefusesUnusableInvites(t *testing.T) {
	e := newTestEnv(t)
	tn := e.tenant(t, "Acme")
	ctx := context.Background()
	posID, candID, _ := e.seed(t, tn)

	expiredID := store.NewID("iv_")
	if _, err := e.db.CreateInterview(ctx, store.Interview{
		ID: expiredID, TenantID: tn.ID, PositionID: posID, CandidateID: candID, Status: store.StatusScheduled,
		ExpiresAt: time.Now().Add(-time.Hour), CreatedAt: time.Now().Add(-8 * 24 * time.Hour),
	}, tokenHash(e.srv.inviteToken(expiredID))); err != nil {
		t.Fatal(err)
	}
	endedID := store.NewID("iv_")
	if _, err := e.db.CreateInterview(ctx, store.Interview{
		ID: endedID, TenantID: tn.ID, PositionID: posID, CandidateID: candID, Status: store.StatusCancelled,
		ExpiresAt: time.Now().Add(time.Hour), CreatedAt: time.Now(),
	}, tokenHash(e.srv.inviteToken(endedID))); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		path   string
		status int
		title  string
	}{
		{"an unknown token is a friendly 404", "/i/not-a-real-token", http.StatusNotFound, "does not work"},
		{"a token of a deleted or forged interview is a friendly 404", invitePath + e.srv.inviteToken("iv_nope"), http.StatusNotFound, "does not work"},
		{"an overlong token is a friendly 404", "/i/" + strings.Repeat("x", 500), http.StatusNotFound, "does not work"},
		{"an expired invitation is gone", e.inviteOf(expiredID), http.StatusGone, "expired"},
		{"an ended interview is gone", e.inviteOf(endedID), http.StatusGone, "has ended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(t, request{Method: "GET", Path: tt.path, Header: browserHTML})
			wantFriendlyPage(t, res, tt.status)
			if !strings.Contains(string(res.Body), tt.title) {
				t.Errorf("page does not say %q: %s", tt.title, res.Body)
			}
			// The page's actions refuse too, as JSON.
			res = e.do(t, request{Method: "POST", Path: tt.path + "/join", Body: map[string]any{}})
			want := http.StatusConflict
			if tt.status == http.StatusNotFound {
				want = http.StatusNotFound
			}
			if res.Status != want {
				t.Errorf("POST join: status %d, want %d: %s", res.Status, want, res.Body)
			}
		})
	}
}

func TestCandidateJoin(t *testing.T) {
	e := newTestEnv(t)
	tn := e.tenant(t, "Acme")
	_, _, id := e.seed(t, tn)
	invite := e.inviteOf(id)

	page := e.do(t, request{Method: "GET", Path: invite, Header: browserHTML})
	if page.Status != http.StatusOK || !bytes.Contains(page.Body, []byte(`data-testid="consent"`)) {
		t.Fatalf("GET invite: %d %s", page.Status, page.Body)
	}
	// The link is a credential: it must not leak to other origins (the
	// processor) in Referer headers.
	if got := page.Header.Get("Referrer-Policy"); got != "same-origin" && got != "no-referrer" {
		t.Errorf("Referrer-Policy = %q: the invite link would leak in Referer headers", got)
	}

	t.Run("joining without consent is refused and starts nothing", func(t *testing.T) {
		res := e.do(t, request{Method: "POST", Path: invite + "/join", Body: map[string]any{}})
		if res.Status != http.StatusForbidden || !strings.Contains(string(res.Body), "consent") {
			t.Fatalf("join without consent: %d %s", res.Status, res.Body)
		}
		if st := e.interview(t, tn.ID, id).Status; st != store.StatusScheduled {
			t.Errorf("status %s after a refused join, want scheduled", st)
		}
		if len(e.machines.launched) != 0 {
			t.Errorf("a machine was launched for a refused join")
		}
	})
	t.Run("consent false is not consent", func(t *testing.T) {
		res := e.do(t, request{Method: "POST", Path: invite + "/consent", Body: map[string]any{"consent": false}})
		if res.Status != http.StatusBadRequest {
			t.Fatalf("consent false: %d %s", res.Status, res.Body)
		}
		if e.interview(t, tn.ID, id).ConsentAt != nil {
			t.Errorf("consent stored")
		}
	})
	t.Run("a cross-origin request is refused", func(t *testing.T) {
		res := e.do(t, request{Method: "POST", Path: invite + "/consent", Body: map[string]any{"consent": true},
			Header: map[string]string{"Origin": "https://evil.example"}})
		if res.Status != http.StatusForbidden {
			t.Fatalf("cross-origin consent: %d %s", res.Status, res.Body)
		}
	})

	e.must(t, 200, request{Method: "POST", Path: invite + "/consent", Body: map[string]any{"consent": true},
		Header: map[string]string{"Origin": e.ts.URL}}, nil)
	if e.interview(t, tn.ID, id).ConsentAt == nil {
		t.Fatal("consent not stored")
	}

	var j joinJSON
	e.must(t, 200, request{Method: "POST", Path: invite + "/join", Body: map[string]any{}}, &j)
	iv := e.interview(t, tn.ID, id)
	if iv.Status != store.StatusRunning || j.Status != store.StatusRunning || j.InterviewID != id {
		t.Fatalf("after join: stored %s, answer %+v", iv.Status, j)
	}
	m, err := e.db.CurrentMachine(context.Background(), tn.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.srv.cfg.PublicURL + "/p/" + id; j.ProcessorURL != want || m.URL == "" {
		t.Errorf("processor_url = %q, want the interview's stable route %q (machine at %q)", j.ProcessorURL, want, m.URL)
	}
	if want := contract.CandidateToken(e.processorToken(t, id), id); j.Token != want {
		t.Errorf("token = %q, want the candidate token %q", j.Token, want)
	}
	if j.Token == e.processorToken(t, id) {
		t.Errorf("the page got the client token itself")
	}
	if bridge := e.bridgeToken(id); bridge == "" || j.Token == bridge || j.Token == contract.CandidateToken(bridge, id) {
		t.Errorf("the candidate token is the machine's bridge token or derived from it")
	}

	// A reload (or a reconnect) joins the same machine again.
	var again joinJSON
	e.must(t, 200, request{Method: "POST", Path: invite + "/join", Body: map[string]any{}}, &again)
	if !reflect.DeepEqual(again, j) || len(e.machines.launched) != 1 {
		t.Errorf("second join answered %+v after %d launches, want the same machine", again, len(e.machines.launched))
	}

	var ended map[string]string
	e.must(t, 200, request{Method: "POST", Path: invite + "/end", Body: map[string]any{}}, &ended)
	if ended["status"] != "completed" || e.interview(t, tn.ID, id).Status != store.StatusCompleted {
		t.Fatalf("after end: %v", ended)
	}
	if len(e.machines.destroyed) != 1 {
		t.Errorf("%d machines destroyed, want 1", len(e.machines.destroyed))
	}
	types := e.eventTypes(t, tn.ID, id)
	for _, want := range []string{"candidate.consented", "machine.launched", "candidate.joined", "candidate.ended", "interview.ended"} {
		if !slices.Contains(types, want) {
			t.Errorf("events %v lack %s", types, want)
		}
	}
	res := e.do(t, request{Method: "POST", Path: invite + "/join", Body: map[string]any{}})
	if res.Status != http.StatusConflict || !strings.Contains(string(res.Body), "this interview has ended") {
		t.Errorf("join after the end: %d %s", res.Status, res.Body)
	}
}

func TestCandidateTokenActsOnItsOwnInterviewOnly(t *testing.T) {
	e := newTestEnv(t)
	acme, other := e.tenant(t, "Acme"), e.tenant(t, "Other")
	_, _, mine := e.seed(t, acme)
	_, _, sameTenant := e.seed(t, acme)
	_, _, otherTenant := e.seed(t, other)
	e.start(t, other, otherTenant)

	invite := e.inviteOf(mine)
	e.must(t, 200, request{Method: "POST", Path: invite + "/consent", Body: map[string]any{"consent": true}}, nil)
	var j joinJSON
	e.must(t, 200, request{Method: "POST", Path: invite + "/join", Body: map[string]any{}}, &j)
	if j.InterviewID != mine {
		t.Fatalf("joined %s, want %s", j.InterviewID, mine)
	}
	// The body cannot name another interview.
	res := e.do(t, request{Method: "POST", Path: invite + "/consent", Body: map[string]any{"consent": true, "interview_id": sameTenant}})
	if res.Status != http.StatusBadRequest {
		t.Errorf("consent naming another interview: %d %s", res.Status, res.Body)
	}
	e.must(t, 200, request{Method: "POST", Path: invite + "/end", Body: map[string]any{}}, nil)

	if iv := e.interview(t, acme.ID, sameTenant); iv.Status != store.StatusScheduled || iv.ConsentAt != nil {
		t.Errorf("the other interview of the tenant changed: %s consent %v", iv.Status, iv.ConsentAt)
	}
	if iv := e.interview(t, other.ID, otherTenant); iv.Status != store.StatusRunning {
		t.Errorf("another tenant's running interview is %s after this candidate ended theirs", iv.Status)
	}
	if got := e.eventTypes(t, acme.ID, sameTenant); len(got) != 0 {
		t.Errorf("the other interview got events %v", got)
	}
	// A token differing by one character names nothing.
	tok := e.srv.inviteToken(mine)
	last := "A"
	if strings.HasSuffix(tok, "A") {
		last = "B"
	}
	flipped := invitePath + tok[:len(tok)-1] + last
	if res := e.do(t, request{Method: "POST", Path: flipped + "/end", Body: map[string]any{}}); res.Status != http.StatusNotFound {
		t.Errorf("a tampered token: %d %s", res.Status, res.Body)
	}
}

func TestCandidateVideo(t *testing.T) {
	e := newTestEnv(t)
	acme, other := e.tenant(t, "Acme"), e.tenant(t, "Other")
	_, _, id := e.seed(t, acme)
	invite := e.inviteOf(id)
	webm := append([]byte{0x1a, 0x45, 0xdf, 0xa3}, bytes.Repeat([]byte("v"), 2000)...)

	put := func(body []byte, ct string) response {
		return e.do(t, request{Method: "PUT", Path: invite + "/video", Body: body, ContentType: ct})
	}
	if res := put(webm, "video/webm"); res.Status != http.StatusConflict {
		t.Errorf("upload before the interview started: %d %s", res.Status, res.Body)
	}
	var before interviewJSON
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + id, Key: acme.Key}, &before)
	if before.VideoURL != nil {
		t.Errorf("video_url before any upload = %q", *before.VideoURL)
	}
	if raw := e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + id, Key: acme.Key}, nil); !bytes.Contains(raw.Body, []byte(`"video_url":null`)) {
		t.Errorf("the interview JSON lacks \"video_url\":null: %s", raw.Body)
	}
	e.must(t, 200, request{Method: "POST", Path: invite + "/consent", Body: map[string]any{"consent": true}}, nil)
	e.must(t, 200, request{Method: "POST", Path: invite + "/join", Body: map[string]any{}}, nil)
	e.must(t, 200, request{Method: "POST", Path: invite + "/end", Body: map[string]any{}}, nil)

	tests := []struct {
		name   string
		body   []byte
		ct     string
		status int
	}{
		{"a body that is not WebM is refused", []byte("OggS not a video"), "video/webm", http.StatusBadRequest},
		{"another content type is refused", webm, "video/mp4", http.StatusUnsupportedMediaType},
		{"an empty body is refused", nil, "video/webm", http.StatusBadRequest},
		{"WebM shortly after the end is stored", webm, "video/webm", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if res := put(tt.body, tt.ct); res.Status != tt.status {
				t.Errorf("status %d, want %d: %s", res.Status, tt.status, res.Body)
			}
		})
	}

	got := e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + id + "/video", Key: acme.Key}, nil)
	if !bytes.Equal(got.Body, webm) || got.Header.Get("Content-Type") != "video/webm" {
		t.Errorf("GET video: %s, %d bytes", got.Header.Get("Content-Type"), len(got.Body))
	}
	if res := e.do(t, request{Method: "GET", Path: "/api/v1/interviews/" + id + "/video", Key: other.Key}); res.Status != http.StatusNotFound {
		t.Errorf("another tenant's GET video: %d", res.Status)
	}
	if res := e.do(t, request{Method: "GET", Path: "/api/v1/interviews/" + id + "/video"}); res.Status != http.StatusUnauthorized {
		t.Errorf("anonymous GET video: %d", res.Status)
	}
	t.Run("the API and the recruiter's page link the video", func(t *testing.T) {
		want := e.srv.cfg.PublicURL + "/api/v1/interviews/" + id + "/video"
		var one interviewJSON
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + id, Key: acme.Key}, &one)
		if one.VideoURL == nil || *one.VideoURL != want {
			t.Errorf("video_url = %v, want %s", one.VideoURL, want)
		}
		var list struct{ Interviews []interviewJSON }
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews", Key: acme.Key}, &list)
		if len(list.Interviews) != 1 || list.Interviews[0].VideoURL == nil || *list.Interviews[0].VideoURL != want {
			t.Errorf("list video_url = %+v", list.Interviews)
		}
		owner := e.login(t, acme, store.RoleViewer)
		page := e.must(t, 200, request{Method: "GET", Path: "/interviews/" + id, Session: &owner, Header: browserHTML}, nil)
		if !bytes.Contains(page.Body, []byte(`data-testid="interview-video"`)) || !bytes.Contains(page.Body, []byte(`src="/api/v1/interviews/`+id+`/video"`)) {
			t.Errorf("the interview page has no video player")
		}
		// The player's source answers the signed-in user (session cookie).
		got := e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + id + "/video", Session: &owner}, nil)
		if !bytes.Equal(got.Body, webm) {
			t.Errorf("video through the session: %d bytes", len(got.Body))
		}
	})
	if types := e.eventTypes(t, acme.ID, id); !slices.Contains(types, "video.stored") {
		t.Errorf("events %v lack video.stored", types)
	}

	t.Run("an upload larger than the limit is refused", func(t *testing.T) {
		small := newTestEnv(t, withConfig(func(c *Config) { c.RecordingLimit = 1000 }))
		tn := small.tenant(t, "Acme")
		_, _, id := small.seed(t, tn)
		inv := small.inviteOf(id)
		small.must(t, 200, request{Method: "POST", Path: inv + "/consent", Body: map[string]any{"consent": true}}, nil)
		small.must(t, 200, request{Method: "POST", Path: inv + "/join", Body: map[string]any{}}, nil)
		res := small.do(t, request{Method: "PUT", Path: inv + "/video", Body: webm, ContentType: "video/webm"})
		if res.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413: %s", res.Status, res.Body)
		}
	})
}
