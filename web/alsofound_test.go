package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"candor/fly"
	"candor/store"
)

// The "also found" items of issue 9.

func TestMetricsNeedTheOperatorsToken(t *testing.T) {
	open := newAttackEnv(t)
	if res := open.do(t, request{Method: "GET", Path: "/metrics"}); res.Status != 404 || strings.Contains(string(res.Body), "candor_") {
		t.Errorf("/metrics without --metrics-token: %d, want 404 and no metrics", res.Status)
	}
	e := newAttackEnv(t, withConfig(func(c *Config) { c.MetricsToken = "metrics-secret" }))
	tn := e.tenant(t, "Acme")
	for _, key := range []string{"", "wrong", tn.Key} {
		if res := e.do(t, request{Method: "GET", Path: "/metrics", Key: key}); res.Status != 401 || strings.Contains(string(res.Body), "candor_") {
			t.Errorf("/metrics with %q: %d, want 401", key, res.Status)
		}
	}
	if res := e.do(t, request{Method: "GET", Path: "/metrics", Key: "metrics-secret"}); res.Status != 200 || !strings.Contains(string(res.Body), "candor_http_requests_total") {
		t.Errorf("/metrics with the operator's token: %d", res.Status)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newAttackEnv(t)
	tn := e.tenant(t, "Acme")
	owner := e.login(t, tn, store.RoleOwner)
	_, _, iv := e.seed(t, tn)
	for _, path := range []string{"/interviews", "/login", "/nope", "/api/v1/interviews", "/static/app.js", "/i/" + e.srv.inviteToken(iv)} {
		res := e.do(t, attackAs(owner, request{Method: "GET", Path: path, Header: map[string]string{"Accept": "text/html"}}))
		h := res.Header
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", path)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if rp := h.Get("Referrer-Policy"); rp != "same-origin" && rp != "no-referrer" {
			t.Errorf("%s: Referrer-Policy %q", path, rp)
		}
		if h.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS over http", path)
		}
	}
	if rp := e.do(t, request{Method: "GET", Path: "/i/" + e.srv.inviteToken(iv)}).Header.Get("Referrer-Policy"); rp != "no-referrer" {
		t.Errorf("the candidate page's Referrer-Policy %q, want no-referrer (its URL is a credential)", rp)
	}
	https := newAttackEnv(t, withConfig(func(c *Config) { c.PublicURL = "https://candor.example.com" }))
	if hs := https.do(t, request{Method: "GET", Path: "/healthz"}).Header.Get("Strict-Transport-Security"); !strings.Contains(hs, "max-age=") {
		t.Errorf("HSTS with an https public URL: %q", hs)
	}
}

func TestWebSocketOriginChecksTheScheme(t *testing.T) {
	e := newAttackEnv(t)
	tn := e.tenant(t, "Acme")
	owner := e.login(t, tn, store.RoleOwner)
	host := strings.TrimPrefix(e.ts.URL, "http://")
	u := "ws://" + host + "/api/v1/realtime"
	for origin, ok := range map[string]bool{"http://" + host: true, "https://" + host: false, "http://evil.test": false, "null": false} {
		h := http.Header{"Cookie": {SessionCookie + "=" + owner.Cookie}, "Origin": {origin}}
		conn, res, err := websocket.DefaultDialer.Dial(u, h)
		if conn != nil {
			conn.Close()
		}
		if (err == nil) != ok {
			status := 0
			if res != nil {
				status = res.StatusCode
			}
			t.Errorf("Origin %s: upgraded=%v (status %d), want %v", origin, err == nil, status, ok)
		}
	}
}

func TestProcessorRouteStripsCookies(t *testing.T) {
	e := newAttackEnv(t)
	e.machines.provider = fly.ProviderFly
	tn := e.tenant(t, "Acme")
	owner := e.login(t, tn, store.RoleOwner)
	_, _, iv := e.seed(t, tn)
	e.start(t, tn, iv)
	res := e.do(t, attackAs(owner, request{Method: "GET", Path: "/p/" + iv + "/cookies"}))
	if res.Status != 200 || string(res.Body) != `cookie=""` {
		t.Errorf("the processor saw %s (status %d), want no cookies", res.Body, res.Status)
	}
	if sc := res.Header.Get("Set-Cookie"); sc != "" {
		t.Errorf("the processor set a cookie on the control plane's origin: %s", sc)
	}
}

func TestAddingAMemberRevealsNoOtherOrganization(t *testing.T) {
	e := newAttackEnv(t)
	a := e.tenant(t, "Acme")
	e.tenant(t, "Bobco") // owner bobco@example.com
	owner := e.login(t, a, store.RoleOwner)
	add := func(email string) response {
		return e.do(t, attackForm(attackAs(owner, request{Method: "POST", Path: "/members"}),
			url.Values{"_csrf": {owner.CSRF}, "name": {"Someone"}, "email": {email}, "role": {"viewer"}, "password": {"long enough pw"}}))
	}
	taken, fresh := add("bobco@example.com"), add("fresh@example.com")
	if taken.Status != fresh.Status || taken.Header.Get("Location") != fresh.Header.Get("Location") {
		t.Errorf("an email of another organization answers %d → %q, a new one %d → %q", taken.Status, taken.Header.Get("Location"), fresh.Status, fresh.Header.Get("Location"))
	}
	if strings.Contains(strings.ToLower(string(taken.Body)), "already") {
		t.Errorf("the answer says the email exists: %s", taken.Body)
	}
}
