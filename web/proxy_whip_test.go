package web

import (
	"net/http"
	"strings"
	"testing"

	"candor/fly"
)

// A WHIP client that posts its offer to the stable route resolves the
// session's Location against the URL it posted to (RFC 9725 §4.2) and
// DELETEs that to hang up. Through a control plane that proxies (not on
// Fly), the DELETE must come back through /p/{id} to the same processor,
// not land on the control plane's own /whip.
func TestAWHIPClientOnTheStableRouteHangsUpThroughTheProxy(t *testing.T) {
	for _, provider := range []string{fly.ProviderLocal, fly.ProviderFly} {
		t.Run(provider, func(t *testing.T) {
			e := newTestEnv(t)
			e.machines.provider = provider
			a := e.tenant(t, "Acme")
			_, _, iv := e.seed(t, a)
			e.start(t, a, iv)
			stable := e.srv.cfg.PublicURL + "/p/" + iv

			res, err := http.Post(stable+"/whip", "application/sdp", strings.NewReader("v=0\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			loc := res.Header.Get("Location")
			if res.StatusCode != http.StatusCreated || loc == "" {
				t.Fatalf("offer: %d, Location %q", res.StatusCode, loc)
			}
			session, err := res.Request.URL.Parse(loc)
			if err != nil {
				t.Fatal(err)
			}
			if want := "/p/" + iv + "/whip/"; !strings.HasPrefix(session.Path, want) {
				t.Errorf("session URL %s is not under the stable route %s", session, want)
			}
			proc := e.machines.procs["fake-1"]
			if n := proc.whipSessions(); n != 1 {
				t.Fatalf("%d WHIP sessions open on the processor, want 1", n)
			}

			req, _ := http.NewRequest(http.MethodDelete, session.String(), nil)
			res, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("DELETE %s: %d, want 200 from the processor", session, res.StatusCode)
			}
			if n := proc.whipSessions(); n != 0 {
				t.Errorf("%d WHIP sessions still open after the DELETE", n)
			}
		})
	}
}
