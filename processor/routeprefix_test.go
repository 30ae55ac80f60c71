package processor

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"candor/processor/contract"
)

// A request Fly's edge replays from the control plane's /p/{id}/ route
// keeps its path: the processor must answer it as if it came directly.
func TestProcessorServesItsRoutesUnderTheInterviewsStableRoute(t *testing.T) {
	control := newFakeControl(t, "iv_route", "proc-token")
	p := startProcessor(t, control, interviewEnv(control, t.TempDir()))
	control.waitEvent(t, "ready")
	candidate := contract.CandidateToken(control.token, control.interviewID)

	if code, b, _ := p.do(t, "GET", "/p/iv_route/healthz", "", "", nil); code != 200 {
		t.Errorf("healthz under the route: %d %s", code, b)
	}
	if code, b, _ := p.do(t, "GET", "/p/iv_other/healthz", "", "", nil); code != http.StatusNotFound {
		t.Errorf("another interview's route: %d %s, want 404", code, b)
	}
	if code, b, _ := p.do(t, "POST", "/p/iv_route/whip", candidate, "application/sdp", []byte("not sdp")); code != http.StatusBadRequest {
		t.Errorf("WHIP under the route with a bad offer: %d %s, want the handler's 400", code, b)
	}
	u := strings.Replace(p.url, "http://", "ws://", 1) + "/p/iv_route/events?token=" + candidate
	ws, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("WebSocket under the route: %v (%v)", err, resp)
	}
	ws.Close()
}

func TestALocationKeepsTheRoutePrefix(t *testing.T) {
	for loc, want := range map[string]string{
		"/whip/abc":            "/p/iv_1/whip/abc",
		"https://x.test/whip/": "https://x.test/whip/",
		"//x.test/whip":        "//x.test/whip",
	} {
		rec := httptest.NewRecorder()
		w := &prefixedLocation{ResponseWriter: rec, prefix: "/p/iv_1"}
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusCreated)
		if got := rec.Header().Get("Location"); got != want {
			t.Errorf("Location %q became %q, want %q", loc, got, want)
		}
	}
}
