package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"candor/store"
	"candor/web/lifecycle"
)

func TestCandidateUpdate(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	_, cand, _ := e.seed(t, a)
	var other candidateJSON
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/candidates", Key: a.Key, Body: map[string]any{"name": "Grace", "email": "grace@example.com"}}, &other)

	var got candidateJSON
	e.must(t, 200, request{Method: "PUT", Path: "/api/v1/candidates/" + cand, Key: a.Key, Body: map[string]any{
		"name": "  Ada Lovelace ", "email": "ADA@Example.com", "notes": "Strong on maths.",
	}}, &got)
	if got.Name != "Ada Lovelace" || got.Email != "ada@example.com" || got.Notes != "Strong on maths." {
		t.Errorf("updated candidate = %+v", got)
	}
	for name, tc := range map[string]struct {
		body   map[string]any
		status int
	}{
		"another candidate's email is a conflict": {map[string]any{"name": "Ada", "email": "grace@example.com"}, 409},
		"a name is required":                      {map[string]any{"name": " ", "email": "ada@example.com"}, 400},
		"notes are bounded":                       {map[string]any{"name": "Ada", "email": "ada@example.com", "notes": strings.Repeat("n", store.MaxNotesLen+1)}, 400},
	} {
		t.Run(name, func(t *testing.T) {
			res := e.do(t, request{Method: "PUT", Path: "/api/v1/candidates/" + cand, Key: a.Key, Body: tc.body})
			if res.Status != tc.status {
				t.Errorf("status %d, want %d: %s", res.Status, tc.status, res.Body)
			}
		})
	}
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/candidates/" + cand, Key: a.Key}, &got)
	if got.Name != "Ada Lovelace" || got.Notes != "Strong on maths." {
		t.Errorf("a refused update changed the candidate: %+v", got)
	}
	e.must(t, 404, request{Method: "PUT", Path: "/api/v1/candidates/cand_missing", Key: a.Key, Body: map[string]any{"name": "A", "email": "a@example.com"}}, nil)
}

func TestPositionDeleteAndVoice(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	used, _, _ := e.seed(t, a)
	res := e.do(t, request{Method: "DELETE", Path: "/api/v1/positions/" + used, Key: a.Key})
	if res.Status != http.StatusConflict {
		t.Errorf("deleting a position with an interview: %d %s, want 409", res.Status, res.Body)
	}
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/positions/" + used, Key: a.Key}, nil)

	var p positionJSON
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/positions", Key: a.Key, Body: map[string]any{
		"title": "Designer", "questions": []string{"Why design?"}, "interviewer_name": " Ada ", "voice": "flite-slt",
	}}, &p)
	if p.InterviewerName != "Ada" || p.Voice != "flite-slt" {
		t.Errorf("created position = %+v", p)
	}
	res = e.do(t, request{Method: "PUT", Path: "/api/v1/positions/" + p.ID, Key: a.Key, Body: map[string]any{
		"title": "Designer", "voice": "hal-9000",
	}})
	if res.Status != 400 || !strings.Contains(string(res.Body), "voice") {
		t.Errorf("unknown voice: %d %s", res.Status, res.Body)
	}
	e.must(t, 204, request{Method: "DELETE", Path: "/api/v1/positions/" + p.ID, Key: a.Key}, nil)
	e.must(t, 404, request{Method: "GET", Path: "/api/v1/positions/" + p.ID, Key: a.Key}, nil)
	e.must(t, 404, request{Method: "DELETE", Path: "/api/v1/positions/" + p.ID, Key: a.Key}, nil)
}

func TestSearchAPI(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	b := e.tenant(t, "Bobco")
	_, _, ivA := e.seed(t, a)
	_, _, ivB := e.seed(t, b)
	startedA := e.start(t, a, ivA)
	startedB := e.start(t, b, ivB)
	if res := e.postEntries(t, ivA, startedA.Bridge, entry(1, "I tuned the Postgres vacuum settings")); res.Status != 200 {
		t.Fatalf("post entries: %d %s", res.Status, res.Body)
	}
	if res := e.postEntries(t, ivB, startedB.Bridge, entry(1, "Postgres at Bobco")); res.Status != 200 {
		t.Fatalf("post entries: %d %s", res.Status, res.Body)
	}

	var body struct {
		Hits []searchHitJSON `json:"hits"`
	}
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/search?q=" + url.QueryEscape("postgres vacuum"), Key: a.Key}, &body)
	if len(body.Hits) != 1 {
		t.Fatalf("hits = %+v, want A's one line", body.Hits)
	}
	h := body.Hits[0]
	if h.Kind != "entry" || h.InterviewID != ivA || h.Seq != 1 || h.StartMS == nil || !strings.HasSuffix(h.URL, "/interviews/"+ivA+"#entry-1") {
		t.Errorf("hit = %+v", h)
	}
	if len(h.Highlights) != 2 || h.Snippet[h.Highlights[0][0]:h.Highlights[0][1]] != "Postgres" {
		t.Errorf("highlights %v of %q", h.Highlights, h.Snippet)
	}
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/search?q=vacuum", Key: b.Key}, &body)
	if len(body.Hits) != 0 {
		t.Errorf("B finds A's transcript: %+v", body.Hits)
	}
	for _, q := range []string{"", "%20"} {
		res := e.do(t, request{Method: "GET", Path: "/api/v1/search?q=" + q, Key: a.Key})
		if res.Status != 400 {
			t.Errorf("q=%q: %d, want 400", q, res.Status)
		}
	}
	res := e.do(t, request{Method: "GET", Path: "/api/v1/search?q=" + strings.Repeat("a", 300), Key: a.Key})
	if res.Status != 400 {
		t.Errorf("long query: %d, want 400", res.Status)
	}
	// FTS5 syntax is taken literally, never an error.
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/search?q=" + url.QueryEscape(`"NEAR( OR *`), Key: a.Key}, nil)
}

// A processor whose interviewer closed and whose candidate stayed silent
// posts "finished"; the control plane ends the interview as a recruiter's
// end would. Over interviews are left alone.
func TestBridgeFinishedEndsTheInterview(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	st := e.start(t, a, iv)
	e.must(t, 200, request{Method: "POST", Path: "/api/v1/bridge/interviews/" + iv + "/events", Key: st.Bridge,
		Body: map[string]any{"type": "finished", "message": "silent for 2m0s"}}, nil)
	waitUntil(t, "the interview to complete", func() bool {
		return e.interview(t, a.ID, iv).Status == store.StatusCompleted
	})
	if n := len(e.machines.destroys()); n != 1 {
		t.Errorf("%d machines destroyed, want 1", n)
	}
	types := strings.Join(e.eventTypes(t, a.ID, iv), ",")
	if !strings.Contains(types, "processor.finished") || !strings.Contains(types, "interview.ended") {
		t.Errorf("events %s, want processor.finished then interview.ended", types)
	}
	// A late or repeated one is refused and changes nothing.
	e.must(t, 409, request{Method: "POST", Path: "/api/v1/bridge/interviews/" + iv + "/events", Key: st.Bridge,
		Body: map[string]any{"type": "finished"}}, nil)
	if got := strings.Join(e.eventTypes(t, a.ID, iv), ","); got != types {
		t.Errorf("a finished event after the end was recorded: %s", got)
	}
}

// Regions are checked against the one configured list (CANDOR_REGIONS,
// else the default region), so a typo fails when the interview is
// scheduled rather than when the machine launches.
func TestInterviewRegionMustBeConfigured(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	pos, cand, _ := e.seed(t, a)
	res := e.do(t, request{Method: "POST", Path: "/api/v1/interviews", Key: a.Key,
		Body: map[string]any{"position_id": pos, "candidate_id": cand, "region": "mars-1"}})
	if res.Status != 400 || !strings.Contains(string(res.Body), "mars-1") || !strings.Contains(string(res.Body), "local") {
		t.Errorf("unknown region: %d %s, want 400 naming it and the configured list", res.Status, res.Body)
	}
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/interviews", Key: a.Key,
		Body: map[string]any{"position_id": pos, "candidate_id": cand, "region": "local"}}, nil)
	e = newTestEnv(t, withLifecycle(func(c *lifecycle.Config) { c.Regions = []string{"iad", "fra"} }))
	a = e.tenant(t, "Acme")
	pos, cand, _ = e.seed(t, a)
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/interviews", Key: a.Key,
		Body: map[string]any{"position_id": pos, "candidate_id": cand, "region": "fra"}}, nil)
	e.must(t, 400, request{Method: "POST", Path: "/api/v1/interviews", Key: a.Key,
		Body: map[string]any{"position_id": pos, "candidate_id": cand, "region": "ams"}}, nil)
}

// Deleting a candidate from the dashboard goes through the erasure path;
// the search index forgets them and their transcripts too.
func TestCandidateErasureEmptiesTheSearchIndex(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	_, cand, iv := e.seed(t, a)
	st := e.start(t, a, iv)
	if res := e.postEntries(t, iv, st.Bridge, entry(1, "I rewrote the zeppelin scheduler")); res.Status != 200 {
		t.Fatalf("post entries: %d %s", res.Status, res.Body)
	}
	var body struct {
		Hits []searchHitJSON `json:"hits"`
	}
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/search?q=zeppelin", Key: a.Key}, &body)
	if len(body.Hits) != 1 {
		t.Fatalf("before erasure: %+v", body.Hits)
	}
	sess := e.login(t, a, store.RoleRecruiter)
	page := e.do(t, request{Method: "GET", Path: "/candidates/" + cand, Session: &sess, Header: map[string]string{"Accept": "text/html"}})
	if !strings.Contains(string(page.Body), `data-erase-candidate="`+cand+`"`) || !strings.Contains(string(page.Body), "transcripts, recordings and scores") {
		t.Errorf("the candidate page offers no erasure that says what goes")
	}
	e.must(t, 204, request{Method: "DELETE", Path: "/api/v1/candidates/" + cand, Session: &sess, CSRF: sess.CSRF}, nil)
	for _, q := range []string{"zeppelin", "scheduler"} {
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/search?q=" + q, Key: a.Key}, &body)
		if len(body.Hits) != 0 {
			t.Errorf("after erasure Search(%q) = %+v", q, body.Hits)
		}
	}
}
