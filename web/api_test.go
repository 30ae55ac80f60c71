package web

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"candor/store"
)

// oggBytes is a minimal body that passes the recording upload's Ogg check.
func oggBytes(n int) []byte {
	b := make([]byte, n)
	copy(b, "OggS")
	for i := 4; i < n; i++ {
		b[i] = byte(i)
	}
	return b
}

func TestTenantIsolation(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	b := e.tenant(t, "Bobco")
	posA, candA, ivA := e.seed(t, a)
	_, _, ivAEnded := e.seed(t, a)
	started := e.start(t, a, ivA)
	if res := e.postEntries(t, ivA, started.Bridge, entry(1, "hello from A")); res.Status != 200 {
		t.Fatalf("post entries: %d %s", res.Status, res.Body)
	}
	e.must(t, 200, request{Method: "PUT", Path: "/api/v1/bridge/interviews/" + ivA + "/recording", Key: started.Bridge,
		ContentType: "audio/ogg", Body: oggBytes(100)}, nil)
	e.start(t, a, ivAEnded)
	e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + ivAEnded + "/end", Key: a.Key}, nil)
	posB, candB, _ := e.seed(t, b)

	positionBody := map[string]any{"title": "Hijacked", "questions": []string{}, "rubric": []any{}}
	tests := []struct {
		name string
		req  request
	}{
		{"B cannot read A's position", request{Method: "GET", Path: "/api/v1/positions/" + posA}},
		{"B cannot update A's position", request{Method: "PUT", Path: "/api/v1/positions/" + posA, Body: positionBody}},
		{"B cannot read A's candidate", request{Method: "GET", Path: "/api/v1/candidates/" + candA}},
		{"B cannot update A's candidate", request{Method: "PUT", Path: "/api/v1/candidates/" + candA, Body: map[string]any{"name": "X", "email": "x@example.com"}}},
		{"B cannot delete A's position", request{Method: "DELETE", Path: "/api/v1/positions/" + posA}},
		{"B cannot read A's interview", request{Method: "GET", Path: "/api/v1/interviews/" + ivA}},
		{"B cannot read A's transcript", request{Method: "GET", Path: "/api/v1/interviews/" + ivA + "/transcript"}},
		{"B cannot read A's events", request{Method: "GET", Path: "/api/v1/interviews/" + ivA + "/events"}},
		{"B cannot download A's recording", request{Method: "GET", Path: "/api/v1/interviews/" + ivA + "/recording"}},
		{"B cannot start A's interview", request{Method: "POST", Path: "/api/v1/interviews/" + ivA + "/start"}},
		{"B cannot end A's running interview", request{Method: "POST", Path: "/api/v1/interviews/" + ivA + "/end"}},
		{"B cannot end A's ended interview", request{Method: "POST", Path: "/api/v1/interviews/" + ivAEnded + "/end"}},
		{"B cannot schedule with A's position", request{Method: "POST", Path: "/api/v1/interviews",
			Body: map[string]any{"position_id": posA, "candidate_id": candB}}},
		{"B cannot schedule with A's candidate", request{Method: "POST", Path: "/api/v1/interviews",
			Body: map[string]any{"position_id": posB, "candidate_id": candA}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, cred := range []string{"api key", "session"} {
				req := tc.req
				if cred == "api key" {
					req.Key = b.Key
				} else {
					sess := e.login(t, b, store.RoleOwner)
					req.Session, req.CSRF = &sess, sess.CSRF
				}
				res := e.do(t, req)
				if res.Status != http.StatusNotFound || res.errorCode() != CodeNotFound {
					t.Errorf("with %s: status %d, want 404 not_found: %s", cred, res.Status, res.Body)
				}
				if strings.Contains(string(res.Body), "Acme") || strings.Contains(string(res.Body), "hello from A") {
					t.Errorf("with %s: answer leaks A's data: %s", cred, res.Body)
				}
			}
		})
	}

	t.Run("A's data is unchanged", func(t *testing.T) {
		var p positionJSON
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/positions/" + posA, Key: a.Key}, &p)
		if p.Title != "Backend engineer" {
			t.Errorf("A's position title = %q", p.Title)
		}
		var iv interviewJSON
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + ivA, Key: a.Key}, &iv)
		if iv.Status != store.StatusRunning {
			t.Errorf("A's interview status = %s, want running", iv.Status)
		}
		if n := len(e.machines.destroys()); n != 1 {
			t.Errorf("%d machines destroyed, want 1 (A's own end)", n)
		}
		bIVs, err := e.db.ListInterviews(context.Background(), b.ID, store.InterviewFilter{})
		if err != nil || len(bIVs) != 1 {
			t.Errorf("B has %d interviews (err %v), want only its own 1", len(bIVs), err)
		}
	})

	lists := []struct {
		name, path, key string
	}{
		{"positions", "/api/v1/positions", "positions"},
		{"candidates", "/api/v1/candidates", "candidates"},
		{"interviews", "/api/v1/interviews", "interviews"},
		{"running interviews", "/api/v1/interviews?status=running", "interviews"},
	}
	for _, l := range lists {
		t.Run("B's list of "+l.name+" shows none of A's", func(t *testing.T) {
			var body map[string][]idJSON
			e.must(t, 200, request{Method: "GET", Path: l.path, Key: b.Key}, &body)
			for _, it := range body[l.key] {
				if slices.Contains([]string{posA, candA, ivA, ivAEnded}, it.ID) {
					t.Errorf("B's %s list holds A's %s", l.name, it.ID)
				}
			}
			var mine map[string][]idJSON
			e.must(t, 200, request{Method: "GET", Path: l.path, Key: a.Key}, &mine)
			if len(mine[l.key]) == 0 {
				t.Errorf("A's own %s list is empty", l.name)
			}
		})
	}
}

func TestBadInputIsRejectedAndWritesNothing(t *testing.T) {
	e := newTestEnv(t, withConfig(func(c *Config) { c.BodyLimit = 4096 }))
	a := e.tenant(t, "Acme")
	posA, candA, _ := e.seed(t, a)
	ctx := context.Background()

	counts := func() [3]int {
		ps, _ := e.db.ListPositions(ctx, a.ID)
		cs, _ := e.db.ListCandidates(ctx, a.ID)
		is, _ := e.db.ListInterviews(ctx, a.ID, store.InterviewFilter{})
		return [3]int{len(ps), len(cs), len(is)}
	}
	before := counts()
	huge := `{"title":"` + strings.Repeat("x", 5000) + `"}`

	tests := []struct {
		name, path  string
		body        any
		contentType string
		status      int
		inMessage   string
	}{
		{"malformed JSON is a 400", "/api/v1/positions", `{"title": "x",`, "", 400, "malformed JSON"},
		{"a syntax error is a 400", "/api/v1/positions", `{"title" "x"}`, "", 400, "malformed JSON"},
		{"an empty body is a 400", "/api/v1/positions", "", "application/json", 400, "empty"},
		{"two JSON values are a 400", "/api/v1/positions", `{"title":"a"} {"title":"b"}`, "", 400, "single JSON value"},
		{"an array instead of an object is a 400", "/api/v1/positions", `[]`, "", 400, "object"},
		{"a missing title is a 400 naming it", "/api/v1/positions", `{"description":"d"}`, "", 400, "title"},
		{"a blank title is a 400 naming it", "/api/v1/positions", `{"title":"   "}`, "", 400, "title"},
		{"an unknown field is a 400 naming it", "/api/v1/positions", `{"title":"t","salary":1}`, "", 400, "salary"},
		{"a wrong type is a 400 naming the field", "/api/v1/positions", `{"title":"t","questions":"q"}`, "", 400, "questions"},
		{"an empty question is a 400 naming it", "/api/v1/positions", `{"title":"t","questions":["a",""]}`, "", 400, "questions[1]"},
		{"a nameless rubric item is a 400 naming it", "/api/v1/positions", `{"title":"t","rubric":[{"weight":1}]}`, "", 400, "rubric[0].name"},
		{"a negative weight is a 400 naming it", "/api/v1/positions", `{"title":"t","rubric":[{"name":"n","weight":-1}]}`, "", 400, "rubric[0].weight"},
		{"an oversized body is a 413", "/api/v1/positions", huge, "", 413, "exceeds"},
		{"a form body is a 415", "/api/v1/positions", "title=x", "application/x-www-form-urlencoded", 415, "application/json"},
		{"text/plain is a 415", "/api/v1/positions", `{"title":"x"}`, "text/plain", 415, "application/json"},
		{"a candidate without email is a 400 naming it", "/api/v1/candidates", `{"name":"n"}`, "", 400, "email"},
		{"a candidate with a bad email is a 400 naming it", "/api/v1/candidates", `{"name":"n","email":"nope"}`, "", 400, "email"},
		{"a candidate with an unknown field is a 400", "/api/v1/candidates", `{"name":"n","email":"n@example.com","age":3}`, "", 400, "age"},
		{"an interview without position is a 400 naming it", "/api/v1/interviews", `{"candidate_id":"` + candA + `"}`, "", 400, "position_id"},
		{"an interview without candidate is a 400 naming it", "/api/v1/interviews", `{"position_id":"` + posA + `"}`, "", 400, "candidate_id"},
		{"an interview with a bad region is a 400 naming it", "/api/v1/interviews", `{"position_id":"` + posA + `","candidate_id":"` + candA + `","region":"No Such"}`, "", 400, "region"},
		{"an interview with an unknown position is a 404 naming it", "/api/v1/interviews", `{"position_id":"pos_x","candidate_id":"` + candA + `"}`, "", 404, "position_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := e.do(t, request{Method: "POST", Path: tc.path, Key: a.Key, Body: tc.body, ContentType: tc.contentType})
			if res.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.Status, tc.status, res.Body)
			}
			var body struct {
				Error Error `json:"error"`
			}
			res.decode(t, &body)
			if body.Error.Code == "" || !strings.Contains(body.Error.Message, tc.inMessage) {
				t.Errorf("error %+v does not mention %q", body.Error, tc.inMessage)
			}
			if got := counts(); got != before {
				t.Errorf("counts changed from %v to %v", before, got)
			}
		})
	}

	t.Run("a bad status filter is a 400 naming it", func(t *testing.T) {
		res := e.do(t, request{Method: "GET", Path: "/api/v1/interviews?status=done", Key: a.Key})
		if res.Status != 400 || !strings.Contains(string(res.Body), "status") {
			t.Errorf("status %d: %s", res.Status, res.Body)
		}
	})
	t.Run("an unknown API path is a JSON 404", func(t *testing.T) {
		res := e.do(t, request{Method: "GET", Path: "/api/v1/nothing", Key: a.Key})
		if res.Status != 404 || res.errorCode() != CodeNotFound {
			t.Errorf("status %d: %s", res.Status, res.Body)
		}
	})
}

func TestAPIAuth(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	ctx := context.Background()
	revoked, k, err := e.srv.newAPIKey(ctx, a.ID, "old")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.RevokeAPIKey(ctx, a.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	viewer := e.login(t, a, store.RoleViewer)
	recruiter := e.login(t, a, store.RoleRecruiter)
	newPosition := map[string]any{"title": "Designer"}

	tests := []struct {
		name   string
		req    request
		status int
		code   string
	}{
		{"no credentials is a 401", request{Method: "GET", Path: "/api/v1/positions"}, 401, CodeUnauthorized},
		{"an unknown key is a 401", request{Method: "GET", Path: "/api/v1/positions", Key: "cnd_nope"}, 401, CodeUnauthorized},
		{"a revoked key is a 401", request{Method: "GET", Path: "/api/v1/positions", Key: revoked}, 401, CodeUnauthorized},
		{"a non-bearer Authorization is a 401", request{Method: "GET", Path: "/api/v1/positions", Header: map[string]string{"Authorization": "Basic eDp5"}}, 401, CodeUnauthorized},
		{"a bad key is refused even with a valid cookie", request{Method: "GET", Path: "/api/v1/positions", Key: "cnd_nope", Session: &recruiter}, 401, CodeUnauthorized},
		{"an unknown session cookie is a 401", request{Method: "GET", Path: "/api/v1/positions", Session: &session{Cookie: "forged"}}, 401, CodeUnauthorized},
		{"a valid key reads", request{Method: "GET", Path: "/api/v1/positions", Key: a.Key}, 200, ""},
		{"a valid key writes without CSRF", request{Method: "POST", Path: "/api/v1/positions", Key: a.Key, Body: newPosition}, 201, ""},
		{"a viewer reads", request{Method: "GET", Path: "/api/v1/positions", Session: &viewer}, 200, ""},
		{"a viewer cannot write", request{Method: "POST", Path: "/api/v1/positions", Session: &viewer, CSRF: viewer.CSRF, Body: newPosition}, 403, CodeForbidden},
		{"a viewer cannot start an interview", request{Method: "POST", Path: "/api/v1/interviews/iv_x/start", Session: &viewer, CSRF: viewer.CSRF}, 403, CodeForbidden},
		{"a cookie write without CSRF is a 403", request{Method: "POST", Path: "/api/v1/positions", Session: &recruiter, Body: newPosition}, 403, CodeForbidden},
		{"a cookie write with a wrong CSRF is a 403", request{Method: "POST", Path: "/api/v1/positions", Session: &recruiter, CSRF: viewer.CSRF, Body: newPosition}, 403, CodeForbidden},
		{"a cookie write with CSRF succeeds", request{Method: "POST", Path: "/api/v1/positions", Session: &recruiter, CSRF: recruiter.CSRF, Body: newPosition}, 201, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := e.do(t, tc.req)
			if res.Status != tc.status || res.errorCode() != tc.code {
				t.Errorf("status %d code %q, want %d %q: %s", res.Status, res.errorCode(), tc.status, tc.code, res.Body)
			}
		})
	}
	t.Run("refused writes stored nothing", func(t *testing.T) {
		ps, err := e.db.ListPositions(ctx, a.ID)
		if err != nil || len(ps) != 2 {
			t.Errorf("%d positions (err %v), want the 2 written with a key and with CSRF", len(ps), err)
		}
	})
}

func TestPositionUpdate(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	pos, _, _ := e.seed(t, a)
	var p positionJSON
	e.must(t, 200, request{Method: "PUT", Path: "/api/v1/positions/" + pos, Key: a.Key, Body: map[string]any{
		"title": "Staff engineer", "questions": []string{"  Why us?  "},
	}}, &p)
	if p.Title != "Staff engineer" || len(p.Questions) != 1 || p.Questions[0] != "Why us?" || p.Rubric == nil {
		t.Errorf("updated position = %+v", p)
	}
	e.must(t, 404, request{Method: "PUT", Path: "/api/v1/positions/pos_missing", Key: a.Key, Body: map[string]any{"title": "x"}}, nil)
}

func TestHealthAndMetrics(t *testing.T) {
	e := newTestEnv(t, withConfig(func(c *Config) { c.MetricsToken = "metrics-secret" }))
	res := e.must(t, 200, request{Method: "GET", Path: "/healthz"}, nil)
	if strings.TrimSpace(string(res.Body)) != `{"status":"ok"}` {
		t.Errorf("healthz body %s", res.Body)
	}
	res = e.must(t, 200, request{Method: "GET", Path: "/metrics", Key: "metrics-secret"}, nil)
	if !strings.Contains(string(res.Body), `candor_http_requests_total{method="GET",route="/healthz",status="200"} 1`) {
		t.Errorf("metrics lack the healthz request:\n%s", res.Body)
	}
	if res.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id header")
	}
}
