package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"candor/fly"
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
