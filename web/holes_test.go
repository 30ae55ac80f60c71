package web

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"candor/realtime"
	"candor/store"
)

// Tests of issue 9's holes 5–9, each failing before its fix.

// Hole 5: viewers could start and end interviews through the invite link
// every role saw.
func TestViewersNeverSeeInviteLinks(t *testing.T) {
	e := newAttackEnv(t)
	tn := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, tn)
	viewer := e.login(t, tn, store.RoleViewer)
	recruiter := e.login(t, tn, store.RoleRecruiter)
	token := e.srv.inviteToken(iv)

	for _, path := range []string{"/api/v1/interviews/" + iv, "/api/v1/interviews", "/interviews", "/interviews/" + iv} {
		res := e.do(t, attackAs(viewer, request{Method: "GET", Path: path, Header: map[string]string{"Accept": "text/html"}}))
		if res.Status != 200 {
			t.Fatalf("viewer GET %s: %d", path, res.Status)
		}
		if strings.Contains(string(res.Body), token) {
			t.Errorf("viewer GET %s: the answer holds the invite token", path)
		}
		res = e.do(t, attackAs(recruiter, request{Method: "GET", Path: path, Header: map[string]string{"Accept": "text/html"}}))
		if !strings.Contains(string(res.Body), token) {
			t.Errorf("recruiter GET %s: the invite link is missing", path)
		}
	}

	// Realtime status messages go to every role: they never carry it.
	ws := e.dialRealtime(t, http.Header{"Cookie": {SessionCookie + "=" + viewer.Cookie}, "Origin": {e.srv.cfg.PublicURL}})
	if m := ws.subscribe("tenant:"+tn.ID, nil); m.Type != realtime.TypeSubscribed {
		t.Fatalf("subscribe: %s %s", m.Type, m.Data)
	}
	e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + iv + "/cancel", Key: tn.Key}, nil)
	m := ws.next()
	if m.Type != realtime.TypeInterviewStatus {
		t.Fatalf("got %s, want interview.status", m.Type)
	}
	if bytes.Contains(m.Data, []byte(token)) || bytes.Contains(m.Data, []byte("invite_url")) {
		t.Errorf("the status message carries the invite link: %s", m.Data)
	}
}

// Hole 6: /login?next=/%09/evil.test/x sent a browser to another host.
func TestLoginNextStaysOnThisSite(t *testing.T) {
	for _, next := range []string{
		"/\t/evil.test/x", "/\n/evil.test", "/\r/evil.test", "//evil.test", "/\\evil.test", "/\\/evil.test",
		"https://evil.test/", "evil.test", "/%2F/evil.test", " /x", "/x\x00", "/\u2028/evil.test",
		"javascript:alert(1)", "/" + strings.Repeat("a", 3000),
	} {
		if got := safeNext(next); got != "/interviews" {
			t.Errorf("safeNext(%q) = %q, want /interviews", next, got)
		}
	}
	for _, next := range []string{"/interviews/int_1", "/positions?x=1#y", "/members"} {
		if got := safeNext(next); got != next {
			t.Errorf("safeNext(%q) = %q, want it kept", next, got)
		}
	}
	e := newAttackEnv(t)
	tn := e.tenant(t, "Acme")
	owner := e.login(t, tn, store.RoleOwner)
	res := e.do(t, attackAs(owner, request{Method: "GET", Path: "/login?next=/%09/evil.test/x"}))
	if loc := res.Header.Get("Location"); res.Status != http.StatusSeeOther || loc != "/interviews" {
		t.Errorf("signed-in GET /login?next=/%%09/evil.test/x: %d to %q, want 303 to /interviews", res.Status, loc)
	}
}

// Hole 7: form bodies had no limit, and slow clients held connections.
func TestFormBodiesAreLimited(t *testing.T) {
	e := newAttackEnv(t)
	e.tenant(t, "Acme")
	big := url.Values{"email": {"acme@example.com"}, "password": {strings.Repeat("x", 200<<10)}}.Encode()
	res := e.do(t, request{Method: "POST", Path: "/login", ContentType: "application/x-www-form-urlencoded", Body: big})
	if res.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("a 200 KiB login form: %d, want 413", res.Status)
	}
	// Chunked, so no Content-Length gives it away.
	req, _ := http.NewRequest("POST", e.ts.URL+"/login", io.MultiReader(strings.NewReader("--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n"), bytes.NewReader(make([]byte, 1<<20))))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
	req.ContentLength = -1
	r, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a chunked 1 MiB multipart login: %d, want 413", r.StatusCode)
	}
}

func TestSlowClientsAreCutOff(t *testing.T) {
	e := newAttackEnv(t, withConfig(func(c *Config) {
		c.ReadHeaderTimeout = 200 * time.Millisecond
		c.BodyReadTimeout = 200 * time.Millisecond
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := e.srv.HTTPServer()
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	if hs.ReadHeaderTimeout <= 0 || hs.IdleTimeout <= 0 {
		t.Fatalf("server timeouts unset: %+v", hs)
	}

	for _, tc := range []struct{ name, send string }{
		{"headers that never end", "POST /login HTTP/1.1\r\nHost: x\r\nX-Slow: "},
		{"a body that never comes", "POST /api/v1/positions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"},
		{"a form body that never comes", "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nemail="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write([]byte(tc.send)); err != nil {
				t.Fatal(err)
			}
			// The server must close the connection; the deadline only
			// keeps a broken server from hanging the test.
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, err = io.Copy(io.Discard, bufio.NewReader(conn))
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server held the connection of a slow client")
			}
		})
	}
}

// Hole 8: rows could be appended without limit.
func TestRepeatedEndsOfAnOverInterviewStoreNothing(t *testing.T) {
	e := newAttackEnv(t)
	tn := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, tn)
	e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + iv + "/cancel", Key: tn.Key}, nil)
	before := len(e.eventTypes(t, tn.ID, iv))
	for range 5 {
		res := e.do(t, request{Method: "POST", Path: "/i/" + e.srv.inviteToken(iv) + "/end", Header: map[string]string{"Origin": e.srv.cfg.PublicURL}})
		if res.Status != http.StatusConflict {
			t.Fatalf("end of a cancelled interview: %d, want 409: %s", res.Status, res.Body)
		}
	}
	if after := len(e.eventTypes(t, tn.ID, iv)); after != before {
		t.Errorf("%d events after 5 refused ends, %d before", after, before)
	}
}

func TestBridgeEventsAreCapped(t *testing.T) {
	e := newAttackEnv(t)
	tn := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, tn)
	st := e.start(t, tn, iv)
	post := func(body any) response {
		return e.do(t, request{Method: "POST", Path: "/api/v1/bridge/interviews/" + iv + "/events", Key: st.Bridge, Body: body})
	}
	if res := post(map[string]any{"type": "error", "message": "x", "data": map[string]string{"blob": strings.Repeat("x", 16<<10)}}); res.Status != 413 {
		t.Errorf("a 16 KiB event: %d, want 413", res.Status)
	}
	before := len(e.eventTypes(t, tn.ID, iv))
	refused := 0
	for i := range storedEventsPerMinute + 5 {
		res := post(map[string]any{"type": "error", "message": "flood"})
		switch res.Status {
		case 200:
		case 429:
			refused++
			if res.errorCode() != CodeTooManyRequests {
				t.Fatalf("event %d: %s", i, res.Body)
			}
		default:
			t.Fatalf("event %d: %d %s", i, res.Status, res.Body)
		}
	}
	stored := len(e.eventTypes(t, tn.ID, iv)) - before
	if stored > storedEventsPerMinute || refused < 5 {
		t.Errorf("%d events stored, %d refused; want at most %d stored", stored, refused, storedEventsPerMinute)
	}
	for i := range 3 {
		if res := post(map[string]any{"type": "heartbeat", "media_ms": 1000 * (i + 1)}); res.Status != 200 {
			t.Errorf("a heartbeat past the event cap: %d %s", res.Status, res.Body)
		}
	}
}

// Hole 9: the access log printed invite tokens.
func TestLogsHoldNoInviteTokens(t *testing.T) {
	var logs bytes.Buffer
	e := newAttackEnv(t, withLog(&logs))
	tn := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, tn)
	token := e.srv.inviteToken(iv)
	e.do(t, request{Method: "GET", Path: "/i/" + token})
	e.do(t, request{Method: "POST", Path: "/i/" + token + "/consent", Header: map[string]string{"Origin": e.srv.cfg.PublicURL}})
	if !strings.Contains(logs.String(), `"path":"/i/…`) {
		t.Fatalf("no masked candidate path logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the log holds the invite token:\n%s", logs.String())
	}
	var line map[string]any
	for _, l := range bytes.Split(logs.Bytes(), []byte("\n")) {
		if len(l) > 0 && json.Unmarshal(l, &line) != nil {
			t.Errorf("log line is not JSON: %s", l)
		}
	}
}

// A candidate page calls join again after losing its processor; a loop of
// joins must not append an event each time.
func TestRepeatedJoinsStoreAFewEventsAtMost(t *testing.T) {
	e := newAttackEnv(t)
	tn := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, tn)
	token := e.srv.inviteToken(iv)
	origin := map[string]string{"Origin": e.srv.cfg.PublicURL}
	e.must(t, 200, request{Method: "POST", Path: "/i/" + token + "/consent", Header: origin, Body: map[string]bool{"consent": true}}, nil)
	for i := range 20 {
		if res := e.do(t, request{Method: "POST", Path: "/i/" + token + "/join", Header: origin}); res.Status != 200 {
			t.Fatalf("join %d: %d %s", i, res.Status, res.Body)
		}
	}
	joined := 0
	for _, typ := range e.eventTypes(t, tn.ID, iv) {
		if typ == "candidate.joined" {
			joined++
		}
	}
	if joined == 0 || joined > 5 {
		t.Errorf("%d candidate.joined events after 20 joins, want 1 to 5", joined)
	}
}
