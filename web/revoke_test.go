package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"candor/realtime"
	"candor/store"
)

// Hole 3 of issue 9: removed members and revoked API keys kept their live
// WebSocket and went on receiving transcripts.

// wantRevoked reads until the connection closes and fails unless it
// closes with realtime.CloseRevoked before any transcript entry arrives.
func wantRevoked(t *testing.T, ws *wsClient) {
	t.Helper()
	for {
		ws.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m realtime.Message
		err := ws.conn.ReadJSON(&m)
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != realtime.CloseRevoked {
				t.Fatalf("closed with %d %q, want %d", ce.Code, ce.Text, realtime.CloseRevoked)
			}
			return
		}
		if err != nil {
			t.Fatalf("read: %v, want a close with %d", err, realtime.CloseRevoked)
		}
		if m.Type == realtime.TypeTranscriptEntry {
			t.Fatalf("a revoked connection received a transcript entry: %s", m.Data)
		}
	}
}

func TestRevokedCredentialsLoseTheirWebSocket(t *testing.T) {
	e := newAttackEnv(t)
	tn := e.tenant(t, "Acme")
	owner := e.login(t, tn, store.RoleOwner)
	_, _, iv := e.seed(t, tn)
	st := e.start(t, tn, iv)
	seq := int64(0)
	publish := func() {
		seq++
		if res := e.postEntries(t, iv, st.Bridge, entry(seq, "after the revocation")); res.Status != 200 {
			t.Fatalf("post entry: %d %s", res.Status, res.Body)
		}
	}
	cookieWS := func(s session) *wsClient {
		ws := e.dialRealtime(t, http.Header{"Cookie": {SessionCookie + "=" + s.Cookie}, "Origin": {e.srv.cfg.PublicURL}})
		if m := ws.subscribe("interview:"+iv, nil); m.Type != realtime.TypeSubscribed {
			t.Fatalf("subscribe: %s %s", m.Type, m.Data)
		}
		return ws
	}
	ownerPost := func(path string, form url.Values) {
		form.Set("_csrf", owner.CSRF)
		res := e.do(t, attackForm(attackAs(owner, request{Method: "POST", Path: path}), form))
		if res.Status != http.StatusSeeOther {
			t.Fatalf("POST %s: %d %.200s", path, res.Status, res.Body)
		}
	}
	userOf := func(s session) string {
		sess, err := e.db.SessionByHash(context.Background(), tokenHash(s.Cookie))
		if err != nil {
			t.Fatal(err)
		}
		return sess.UserID
	}

	t.Run("a removed member", func(t *testing.T) {
		s := e.login(t, tn, store.RoleRecruiter)
		ws := cookieWS(s)
		ownerPost("/members/"+userOf(s)+"/delete", url.Values{})
		publish()
		wantRevoked(t, ws)
	})
	t.Run("a member whose role was lowered", func(t *testing.T) {
		s := e.login(t, tn, store.RoleRecruiter)
		ws := cookieWS(s)
		ownerPost("/members/"+userOf(s)+"/role", url.Values{"role": {"viewer"}})
		publish()
		wantRevoked(t, ws)
	})
	t.Run("a session that signed out", func(t *testing.T) {
		s := e.login(t, tn, store.RoleViewer)
		ws := cookieWS(s)
		res := e.do(t, attackForm(attackAs(s, request{Method: "POST", Path: "/logout"}), url.Values{"_csrf": {s.CSRF}}))
		if res.Status != http.StatusSeeOther {
			t.Fatalf("logout: %d", res.Status)
		}
		publish()
		wantRevoked(t, ws)
	})
	t.Run("a revoked API key", func(t *testing.T) {
		key, k, err := createAPIKey(context.Background(), e.db, tn.ID, "doomed")
		if err != nil {
			t.Fatal(err)
		}
		ws := e.dialRealtime(t, bearer(key))
		if m := ws.subscribe("interview:"+iv, nil); m.Type != realtime.TypeSubscribed {
			t.Fatalf("subscribe: %s", m.Type)
		}
		ownerPost("/api-keys/"+k.ID+"/revoke", url.Values{})
		publish()
		wantRevoked(t, ws)
	})
	t.Run("a session ended elsewhere fails its next subscribe", func(t *testing.T) {
		s := e.login(t, tn, store.RoleViewer)
		ws := cookieWS(s)
		if err := e.db.DeleteSession(context.Background(), tokenHash(s.Cookie)); err != nil {
			t.Fatal(err)
		}
		ws.send(map[string]any{"type": "subscribe", "topic": "tenant:" + tn.ID})
		wantRevoked(t, ws)
	})
}

func TestAnExpiredSessionLosesItsWebSocketWithoutSubscribing(t *testing.T) {
	e := newAttackEnv(t, withConfig(func(c *Config) { c.RealtimeRecheck = 20 * time.Millisecond }))
	tn := e.tenant(t, "Acme")
	s := e.login(t, tn, store.RoleViewer)
	ws := e.dialRealtime(t, http.Header{"Cookie": {SessionCookie + "=" + s.Cookie}, "Origin": {e.srv.cfg.PublicURL}})
	if m := ws.subscribe("tenant:"+tn.ID, nil); m.Type != realtime.TypeSubscribed {
		t.Fatalf("subscribe: %s", m.Type)
	}
	if err := e.db.DeleteSession(context.Background(), tokenHash(s.Cookie)); err != nil {
		t.Fatal(err)
	}
	wantRevoked(t, ws)
}
