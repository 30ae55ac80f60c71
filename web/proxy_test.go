package web

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"candor/fly"
	"candor/store"
)

func TestProcessorProxy(t *testing.T) {
	e := newTestEnv(t)
	e.machines.provider = fly.ProviderFly
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	_, _, scheduled := e.seed(t, a)
	st := e.start(t, a, iv)

	wantURL := e.srv.cfg.PublicURL + "/p/" + iv
	if st.Processor.URL != wantURL {
		t.Fatalf("processor url %s, want %s", st.Processor.URL, wantURL)
	}
	t.Run("requests reach the machine with its routing header", func(t *testing.T) {
		res := e.must(t, 200, request{Method: "POST", Path: "/p/" + iv + "/whoami?x=1"}, nil)
		if got := string(res.Body); got != "POST /whoami?x=1 fake-1" {
			t.Errorf("processor saw %q", got)
		}
	})
	t.Run("WebSockets pass through", func(t *testing.T) {
		url := "ws" + strings.TrimPrefix(st.Processor.URL, "http") + "/events"
		conn, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		conn.WriteMessage(websocket.TextMessage, []byte("hi"))
		_, msg, err := conn.ReadMessage()
		if err != nil || string(msg) != "echo:hi" {
			t.Errorf("got %q, %v", msg, err)
		}
	})
	t.Run("an interview without a live machine is a JSON 404", func(t *testing.T) {
		for _, id := range []string{scheduled, "iv_missing"} {
			res := e.do(t, request{Method: "GET", Path: "/p/" + id + "/whoami"})
			if res.Status != http.StatusNotFound || res.errorCode() != CodeNotFound {
				t.Errorf("%s: status %d: %s", id, res.Status, res.Body)
			}
		}
	})
	t.Run("after the end the route is closed", func(t *testing.T) {
		e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + iv + "/end", Key: a.Key}, nil)
		e.must(t, 404, request{Method: "GET", Path: "/p/" + iv + "/whoami"}, nil)
	})
}

// During a hand-over the stable route answers 503 with Retry-After, never a
// refused connection or a 404, so a client that retries reaches the next
// processor.
func TestProcessorRouteDuringAHandOver(t *testing.T) {
	e := newTestEnv(t)
	e.machines.provider = fly.ProviderFly
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	e.start(t, a, iv)
	wantHandOver := func(t *testing.T, res response) {
		t.Helper()
		if res.Status != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" || res.errorCode() != CodeServiceUnavailable {
			t.Errorf("status %d, Retry-After %q: %s", res.Status, res.Header.Get("Retry-After"), res.Body)
		}
	}
	t.Run("a processor that went away answers 503 + Retry-After", func(t *testing.T) {
		e.machines.unreachable(1)
		wantHandOver(t, e.do(t, request{Method: "POST", Path: "/p/" + iv + "/process-audio"}))
	})
	t.Run("no live machine yet answers 503 + Retry-After", func(t *testing.T) {
		e.machines.vanish(1)
		// Reconciliation replaces the vanished machine; retire the
		// replacement behind the lifecycle's back to see the gap.
		if _, err := e.lc.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		m, err := e.db.CurrentMachine(context.Background(), a.ID, iv)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Step(context.Background(), store.Step{TenantID: a.ID, InterviewID: iv, Event: "test.gap",
			Retire: []store.Retirement{{ID: m.ID, State: store.MachineFailed}}}); err != nil {
			t.Fatal(err)
		}
		wantHandOver(t, e.do(t, request{Method: "GET", Path: "/p/" + iv + "/healthz"}))
	})
}
