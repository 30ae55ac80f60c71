package web

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"candor/realtime"
	"candor/store"
)

type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
}

// dialRealtime connects to /api/v1/realtime with header (credentials,
// Origin) and fails the test unless the upgrade succeeds.
func (e *testEnv) dialRealtime(t testing.TB, header http.Header) *wsClient {
	t.Helper()
	url := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/api/v1/realtime"
	conn, res, err := websocket.DefaultDialer.Dial(url, header)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("dial realtime: %v (status %d)", err, status)
	}
	t.Cleanup(func() { conn.Close() })
	return &wsClient{t: t, conn: conn}
}

func bearer(key string) http.Header {
	return http.Header{"Authorization": {"Bearer " + key}}
}

func (c *wsClient) send(m map[string]any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(m); err != nil {
		c.t.Fatalf("send %v: %v", m, err)
	}
}

// next reads the next message that is not presence (presence frames come
// and go with viewers and are not what these tests look at).
func (c *wsClient) next() realtime.Message {
	c.t.Helper()
	for {
		c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m realtime.Message
		if err := c.conn.ReadJSON(&m); err != nil {
			c.t.Fatalf("read realtime message: %v", err)
		}
		if m.Type != realtime.TypePresence {
			return m
		}
	}
}

func (c *wsClient) subscribe(topic string, since *int64) realtime.Message {
	c.t.Helper()
	m := map[string]any{"type": "subscribe", "topic": topic}
	if since != nil {
		m["since_seq"] = *since
	}
	c.send(m)
	return c.next()
}

func entrySeq(t testing.TB, m realtime.Message) int64 {
	t.Helper()
	if m.Type != realtime.TypeTranscriptEntry {
		t.Fatalf("got %s %s, want a transcript.entry", m.Type, m.Data)
	}
	var en entryJSON
	if err := json.Unmarshal(m.Data, &en); err != nil {
		t.Fatalf("entry data %s: %v", m.Data, err)
	}
	return en.Seq
}

func TestRealtime(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	b := e.tenant(t, "Bobco")
	_, _, ivA := e.seed(t, a)
	_, _, ivB := e.seed(t, b)
	tok := e.start(t, a, ivA).Bridge

	t.Run("another tenant's topics are refused", func(t *testing.T) {
		c := e.dialRealtime(t, bearer(b.Key))
		for _, topic := range []string{"interview:" + ivA, "tenant:" + a.ID, "interview:iv_missing"} {
			m := c.subscribe(topic, nil)
			if m.Type != realtime.TypeError || m.Error == nil {
				t.Errorf("subscribe %s: got %s, want an error", topic, m.Type)
			}
		}
		if m := c.subscribe("interview:"+ivB, nil); m.Type != realtime.TypeSubscribed {
			t.Errorf("own interview: got %s %v", m.Type, m.Error)
		}
	})

	t.Run("entries posted through the bridge reach a subscriber", func(t *testing.T) {
		c := e.dialRealtime(t, bearer(a.Key))
		if m := c.subscribe("interview:"+ivA, nil); m.Type != realtime.TypeSubscribed {
			t.Fatalf("subscribe: %s %v", m.Type, m.Error)
		}
		e.must(t, 200, request{Method: "POST", Path: "/api/v1/bridge/interviews/" + ivA + "/entries", Key: tok,
			Body: map[string]any{"entries": []map[string]any{entry(2, "two"), entry(1, "one")}}}, nil)
		if s1, s2 := entrySeq(t, c.next()), entrySeq(t, c.next()); s1 != 1 || s2 != 2 {
			t.Errorf("seqs %d, %d, want 1, 2", s1, s2)
		}
		// A replayed batch publishes nothing new: the next frame is entry 3.
		e.postEntries(t, ivA, tok, entry(1, "one"), entry(2, "two"))
		e.postEntries(t, ivA, tok, entry(3, "three"))
		if s := entrySeq(t, c.next()); s != 3 {
			t.Errorf("seq %d, want 3", s)
		}
	})

	t.Run("a reconnecting client resumes after since_seq", func(t *testing.T) {
		c := e.dialRealtime(t, bearer(a.Key))
		since := int64(1)
		if m := c.subscribe("interview:"+ivA, &since); m.Type != realtime.TypeSubscribed {
			t.Fatalf("subscribe: %s %v", m.Type, m.Error)
		}
		if s2, s3 := entrySeq(t, c.next()), entrySeq(t, c.next()); s2 != 2 || s3 != 3 {
			t.Errorf("replayed %d, %d, want 2, 3", s2, s3)
		}
		e.postEntries(t, ivA, tok, entry(4, "four"))
		if s := entrySeq(t, c.next()); s != 4 {
			t.Errorf("live seq %d, want 4", s)
		}
	})

	t.Run("status changes reach the tenant topic", func(t *testing.T) {
		c := e.dialRealtime(t, bearer(a.Key))
		if m := c.subscribe("tenant:"+a.ID, nil); m.Type != realtime.TypeSubscribed {
			t.Fatalf("subscribe: %s %v", m.Type, m.Error)
		}
		e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + ivA + "/end", Key: a.Key}, nil)
		m := c.next()
		var st statusJSON
		if m.Type != realtime.TypeInterviewStatus || json.Unmarshal(m.Data, &st) != nil || st.ID != ivA || st.Status != store.StatusCompleted {
			t.Errorf("got %s %s, want interview.status completed", m.Type, m.Data)
		}
	})

	t.Run("a session cookie connects from the same origin only", func(t *testing.T) {
		sess := e.login(t, a, store.RoleViewer)
		h := http.Header{"Cookie": {SessionCookie + "=" + sess.Cookie}, "Origin": {e.srv.cfg.PublicURL}}
		c := e.dialRealtime(t, h)
		if m := c.subscribe("tenant:"+a.ID, nil); m.Type != realtime.TypeSubscribed {
			t.Errorf("subscribe: %s %v", m.Type, m.Error)
		}
		url := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/api/v1/realtime"
		for _, origin := range []string{"http://evil.example", ""} {
			h := http.Header{"Cookie": {SessionCookie + "=" + sess.Cookie}}
			if origin != "" {
				h.Set("Origin", origin)
			}
			_, res, err := websocket.DefaultDialer.Dial(url, h)
			if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
				t.Errorf("origin %q: err %v, want a 403", origin, err)
			}
		}
	})

	t.Run("no credentials is a 401", func(t *testing.T) {
		url := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/api/v1/realtime"
		_, res, err := websocket.DefaultDialer.Dial(url, nil)
		if err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
			t.Errorf("err %v, want a 401", err)
		}
	})
}
