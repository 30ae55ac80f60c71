package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"candor/realtime"
	"candor/store"
)

// failLaunch starts interview id with the next launch failing, and checks
// that the start answered 502 and left the interview failed.
func (e *testEnv) failLaunch(t *testing.T, tn tenant, id string) {
	t.Helper()
	e.machines.failNextLaunch(errors.New("image registry.example/candor:latest not found"))
	res := e.do(t, request{Method: "POST", Path: "/api/v1/interviews/" + id + "/start", Key: tn.Key})
	if res.Status != http.StatusBadGateway {
		t.Fatalf("start with a failing launch: status %d: %s", res.Status, res.Body)
	}
	if iv := e.interview(t, tn.ID, id); iv.Status != store.StatusFailed || iv.StartedAt != nil {
		t.Fatalf("after the failed launch: status %s, started_at %v", iv.Status, iv.StartedAt)
	}
}

// failAfterRunning starts interview id and then fails it as supervision
// does when no replacement processor can be launched.
func (e *testEnv) failAfterRunning(t *testing.T, tn tenant, id string) {
	t.Helper()
	e.start(t, tn, id)
	if _, err := e.db.SetInterviewStatus(context.Background(), tn.ID, id, store.StatusFailed, store.StatusRunning); err != nil {
		t.Fatal(err)
	}
}

func TestRetryAfterFailedLaunch(t *testing.T) {
	t.Run("the API starts again an interview whose launch failed", func(t *testing.T) {
		e := newTestEnv(t)
		a := e.tenant(t, "Acme")
		_, _, id := e.seed(t, a)
		e.failLaunch(t, a, id)

		st := e.start(t, a, id)
		if st.Interview.Status != store.StatusRunning || st.Interview.Machine == nil || st.Processor.Token == "" {
			t.Fatalf("retry answered %+v", st)
		}
		if st.Interview.EndedAt != nil {
			t.Errorf("a running interview reports ended_at %v", st.Interview.EndedAt)
		}
		if n := len(e.machines.launches()); n != 1 {
			t.Errorf("successful launches = %d, want 1", n)
		}
		types := e.eventTypes(t, a.ID, id)
		if want := []string{"interview.starting", "error", "interview.retried", "machine.launched"}; !slices.Equal(types, want) {
			t.Errorf("events = %v, want %v", types, want)
		}
		// It runs and ends like any interview.
		e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + id + "/end", Key: a.Key}, nil)
		if got := e.interview(t, a.ID, id); got.Status != store.StatusCompleted {
			t.Errorf("after end: %s", got.Status)
		}
	})
	t.Run("an interview that failed after running stays failed", func(t *testing.T) {
		e := newTestEnv(t)
		a := e.tenant(t, "Acme")
		_, _, id := e.seed(t, a)
		e.failAfterRunning(t, a, id)
		res := e.do(t, request{Method: "POST", Path: "/api/v1/interviews/" + id + "/start", Key: a.Key})
		if res.Status != http.StatusConflict || !strings.Contains(string(res.Body), "schedule a new interview") {
			t.Errorf("start: status %d: %s", res.Status, res.Body)
		}
		if n := len(e.machines.launches()); n != 1 {
			t.Errorf("launches = %d, want 1", n)
		}
		// Its invite link shows that it could not take place.
		page := e.do(t, request{Method: "GET", Path: e.inviteOf(id), Header: browserHTML})
		wantFriendlyPage(t, page, http.StatusGone)
		if !strings.Contains(string(page.Body), "could not take place") {
			t.Errorf("invite page: %s", page.Body)
		}
	})
	t.Run("the candidate's join launches again and the invite keeps working", func(t *testing.T) {
		e := newTestEnv(t)
		a := e.tenant(t, "Acme")
		_, _, id := e.seed(t, a)
		invite := e.inviteOf(id)
		e.must(t, 200, request{Method: "POST", Path: invite + "/consent", Body: map[string]any{"consent": true}}, nil)
		e.machines.failNextLaunch(errors.New("no capacity"))
		if res := e.do(t, request{Method: "POST", Path: invite + "/join", Body: map[string]any{}}); res.Status != http.StatusBadGateway {
			t.Fatalf("first join: status %d: %s", res.Status, res.Body)
		}
		page := e.do(t, request{Method: "GET", Path: invite, Header: browserHTML})
		if page.Status != http.StatusOK || strings.Contains(string(page.Body), `data-testid="candidate-notice"`) {
			t.Fatalf("the invite page after a failed launch: status %d", page.Status)
		}
		var j joinJSON
		e.must(t, 200, request{Method: "POST", Path: invite + "/join", Body: map[string]any{}}, &j)
		if j.Status != store.StatusRunning || j.ProcessorURL == "" || j.Token == "" {
			t.Errorf("second join = %+v", j)
		}
	})
	t.Run("the dashboard offers Retry only for a launch that never ran", func(t *testing.T) {
		e := newTestEnv(t)
		a := e.tenant(t, "Acme")
		_, _, never := e.seed(t, a)
		e.failLaunch(t, a, never)
		_, _, ran := e.seed(t, a)
		e.failAfterRunning(t, a, ran)
		owner := e.login(t, a, store.RoleOwner)
		for id, want := range map[string]bool{never: true, ran: false} {
			res := e.must(t, 200, request{Method: "GET", Path: "/interviews/" + id, Session: &owner, Header: browserHTML}, nil)
			if got := strings.Contains(string(res.Body), `data-testid="retry-interview"`); got != want {
				t.Errorf("interview %s: Retry shown = %v, want %v", id, got, want)
			}
		}
		list := e.must(t, 200, request{Method: "GET", Path: "/interviews", Session: &owner, Header: browserHTML}, nil)
		if n := strings.Count(string(list.Body), `data-testid="retry-interview"`); n != 1 {
			t.Errorf("the list shows %d Retry buttons, want 1", n)
		}
		// The button posts to start, with the session's CSRF token.
		e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + never + "/start", Session: &owner, CSRF: owner.CSRF}, nil)
	})
}

func TestCancel(t *testing.T) {
	cancelPath := func(id string) string { return "/api/v1/interviews/" + id + "/cancel" }

	t.Run("a scheduled interview is cancelled, announced, and its invite ends", func(t *testing.T) {
		e := newTestEnv(t)
		a := e.tenant(t, "Acme")
		_, _, id := e.seed(t, a)
		ws := e.dialRealtime(t, bearer(a.Key))
		if m := ws.subscribe("tenant:"+a.ID, nil); m.Type != realtime.TypeSubscribed {
			t.Fatalf("subscribe: %+v", m)
		}

		var got interviewJSON
		e.must(t, 200, request{Method: "POST", Path: cancelPath(id), Key: a.Key}, &got)
		if got.Status != store.StatusCancelled || got.EndedAt == nil {
			t.Errorf("cancel answered %+v", got)
		}
		m := ws.next()
		var st statusJSON
		if m.Type != realtime.TypeInterviewStatus || json.Unmarshal(m.Data, &st) != nil || st.ID != id || st.Status != store.StatusCancelled {
			t.Errorf("tenant topic got %s %s", m.Type, m.Data)
		}
		if types := e.eventTypes(t, a.ID, id); !slices.Equal(types, []string{"interview.cancelled"}) {
			t.Errorf("events = %v", types)
		}
		// Cancelling again changes nothing.
		e.must(t, 200, request{Method: "POST", Path: cancelPath(id), Key: a.Key}, &got)
		if types := e.eventTypes(t, a.ID, id); len(types) != 1 {
			t.Errorf("a second cancel recorded events: %v", types)
		}

		invite := e.inviteOf(id)
		page := e.do(t, request{Method: "GET", Path: invite, Header: browserHTML})
		wantFriendlyPage(t, page, http.StatusGone)
		if !strings.Contains(string(page.Body), "has ended") {
			t.Errorf("invite page: %s", page.Body)
		}
		if res := e.do(t, request{Method: "POST", Path: invite + "/consent", Body: map[string]any{"consent": true}}); res.Status != http.StatusConflict {
			t.Errorf("consent after cancel: status %d", res.Status)
		}
		if res := e.do(t, request{Method: "POST", Path: "/api/v1/interviews/" + id + "/start", Key: a.Key}); res.Status != http.StatusConflict {
			t.Errorf("start after cancel: status %d", res.Status)
		}
		if n := len(e.machines.launches()); n != 0 {
			t.Errorf("launches = %d", n)
		}
	})
	t.Run("a failed launch can be cancelled so its invite stops working", func(t *testing.T) {
		e := newTestEnv(t)
		a := e.tenant(t, "Acme")
		_, _, id := e.seed(t, a)
		e.failLaunch(t, a, id)
		e.must(t, 200, request{Method: "POST", Path: cancelPath(id), Key: a.Key}, nil)
		wantFriendlyPage(t, e.do(t, request{Method: "GET", Path: e.inviteOf(id), Header: browserHTML}), http.StatusGone)
	})

	tests := []struct {
		name   string
		setup  func(t *testing.T, e *testEnv, a tenant, id string)
		status int
	}{
		{"a running interview is ended, not cancelled", func(t *testing.T, e *testEnv, a tenant, id string) { e.start(t, a, id) }, http.StatusConflict},
		{"a completed interview cannot be cancelled", func(t *testing.T, e *testEnv, a tenant, id string) {
			e.start(t, a, id)
			e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + id + "/end", Key: a.Key}, nil)
		}, http.StatusConflict},
		{"an interview that failed after running cannot be cancelled", func(t *testing.T, e *testEnv, a tenant, id string) { e.failAfterRunning(t, a, id) }, http.StatusConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			a := e.tenant(t, "Acme")
			_, _, id := e.seed(t, a)
			tt.setup(t, e, a, id)
			before := e.interview(t, a.ID, id).Status
			if res := e.do(t, request{Method: "POST", Path: cancelPath(id), Key: a.Key}); res.Status != tt.status {
				t.Errorf("status %d, want %d: %s", res.Status, tt.status, res.Body)
			}
			if after := e.interview(t, a.ID, id).Status; after != before {
				t.Errorf("status changed from %s to %s", before, after)
			}
		})
	}

	t.Run("another tenant's interview is not found and stays scheduled", func(t *testing.T) {
		e := newTestEnv(t)
		a, b := e.tenant(t, "Acme"), e.tenant(t, "Other")
		_, _, id := e.seed(t, a)
		res := e.do(t, request{Method: "POST", Path: cancelPath(id), Key: b.Key})
		if res.Status != http.StatusNotFound || res.errorCode() != CodeNotFound {
			t.Errorf("status %d: %s", res.Status, res.Body)
		}
		if got := e.interview(t, a.ID, id); got.Status != store.StatusScheduled {
			t.Errorf("status %s", got.Status)
		}
	})
	t.Run("a viewer may not cancel and the dashboard needs its CSRF token", func(t *testing.T) {
		e := newTestEnv(t)
		a := e.tenant(t, "Acme")
		_, _, id := e.seed(t, a)
		viewer := e.login(t, a, store.RoleViewer)
		if res := e.do(t, request{Method: "POST", Path: cancelPath(id), Session: &viewer, CSRF: viewer.CSRF}); res.Status != http.StatusForbidden {
			t.Errorf("viewer: status %d", res.Status)
		}
		rec := e.login(t, a, store.RoleRecruiter)
		if res := e.do(t, request{Method: "POST", Path: cancelPath(id), Session: &rec}); res.Status != http.StatusForbidden {
			t.Errorf("without CSRF: status %d", res.Status)
		}
		page := e.must(t, 200, request{Method: "GET", Path: "/interviews/" + id, Session: &rec, Header: browserHTML}, nil)
		if !strings.Contains(string(page.Body), `data-testid="cancel-interview"`) {
			t.Errorf("the interview page has no Cancel button")
		}
		e.must(t, 200, request{Method: "POST", Path: cancelPath(id), Session: &rec, CSRF: rec.CSRF}, nil)
	})
	t.Run("cancel needs no machine provisioner", func(t *testing.T) {
		e := newTestEnv(t, withoutMachines())
		a := e.tenant(t, "Acme")
		_, _, id := e.seed(t, a)
		e.must(t, 200, request{Method: "POST", Path: cancelPath(id), Key: a.Key}, nil)
	})
}
