package realtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"candor/realtime"
)

// fakeAuth allows every topic except those in forbidden, and replays from an
// in-memory log of committed entries.
type fakeAuth struct {
	forbidden map[string]error
	log       *entryLog
	onReplay  func(ctx context.Context, topic string, since int64) ([]realtime.Sequenced, error)
}

func (a *fakeAuth) Authorize(_ context.Context, topic string) error {
	return a.forbidden[topic]
}

func (a *fakeAuth) Replay(ctx context.Context, topic string, since int64) ([]realtime.Sequenced, error) {
	if a.onReplay != nil {
		return a.onReplay(ctx, topic, since)
	}
	if a.log == nil {
		return nil, nil
	}
	return a.log.after(topic, since), nil
}

// entryLog stands in for the entries table: commit then publish, as the web
// layer does, with seqs assigned in order.
type entryLog struct {
	hub *realtime.Hub

	mu      sync.Mutex // held across commit+publish so publishes follow seq order
	entries map[string][]realtime.Sequenced
}

func newEntryLog(hub *realtime.Hub) *entryLog {
	return &entryLog{hub: hub, entries: make(map[string][]realtime.Sequenced)}
}

func entryData(seq int64) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"seq":%d,"speaker":"candidate","text":"entry %d"}`, seq, seq))
}

// commitLocked stores the next entry of topic and returns its seq.
func (l *entryLog) commitLocked(topic string) int64 {
	seq := int64(len(l.entries[topic]) + 1)
	l.entries[topic] = append(l.entries[topic], realtime.Sequenced{Seq: seq, Type: realtime.TypeTranscriptEntry, Data: entryData(seq)})
	return seq
}

func (l *entryLog) commitAndPublish(topic string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	seq := l.commitLocked(topic)
	l.hub.Publish(topic, realtime.TypeTranscriptEntry, seq, entryData(seq))
	return seq
}

func (l *entryLog) last(topic string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.entries[topic]))
}

func (l *entryLog) afterLocked(topic string, since int64) []realtime.Sequenced {
	var out []realtime.Sequenced
	for _, e := range l.entries[topic] {
		if e.Seq > since {
			out = append(out, e)
		}
	}
	return out
}

func (l *entryLog) after(topic string, since int64) []realtime.Sequenced {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.afterLocked(topic, since)
}

// startHub serves a hub on 127.0.0.1; viewers are named by the id and name
// query parameters. The hub is closed (and waited for) before the server.
func startHub(t *testing.T, opts realtime.Options, auth realtime.Authorizer) (*realtime.Hub, string) {
	t.Helper()
	return startHubWith(t, opts, auth, nil)
}

func startHubWith(t *testing.T, opts realtime.Options, auth realtime.Authorizer, wrap func(net.Listener) net.Listener) (*realtime.Hub, string) {
	t.Helper()
	hub := realtime.New(opts, nil)
	upgrader := realtime.NewUpgrader(nil)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		v := realtime.Viewer{ID: r.URL.Query().Get("id"), Name: r.URL.Query().Get("name")}
		hub.Serve(r.Context(), ws, v, auth)
	}))
	if wrap != nil {
		srv.Listener = wrap(srv.Listener)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(hub.Close)
	return hub, "ws" + strings.TrimPrefix(srv.URL, "http")
}

type client struct {
	t  *testing.T
	ws *websocket.Conn
}

func dial(t *testing.T, url, id, name string) *client {
	t.Helper()
	return dialWith(t, websocket.DefaultDialer, url, id, name)
}

func dialWith(t *testing.T, d *websocket.Dialer, url, id, name string) *client {
	t.Helper()
	ws, _, err := d.Dial(fmt.Sprintf("%s/?id=%s&name=%s", url, id, name), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return &client{t: t, ws: ws}
}

func (c *client) send(m realtime.Message) {
	c.t.Helper()
	if err := c.ws.WriteJSON(m); err != nil {
		c.t.Fatalf("send %s: %v", m.Type, err)
	}
}

func (c *client) sendRaw(mt int, b []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(mt, b); err != nil {
		c.t.Fatalf("send raw: %v", err)
	}
}

// nextRaw returns the next frame. The deadline only turns a hang into a
// failure; no test depends on timing.
func (c *client) nextRaw() string {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	mt, b, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if mt != websocket.TextMessage {
		c.t.Fatalf("got frame type %d, want text", mt)
	}
	return string(b)
}

func (c *client) next() realtime.Message {
	c.t.Helper()
	raw := c.nextRaw()
	var m realtime.Message
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		c.t.Fatalf("frame %q: %v", raw, err)
	}
	return m
}

func (c *client) expect(typ, topic string) realtime.Message {
	c.t.Helper()
	m := c.next()
	if m.Type != typ || m.Topic != topic {
		c.t.Fatalf("got %s %q (%+v), want %s %q", m.Type, m.Topic, m, typ, topic)
	}
	return m
}

func (c *client) subscribe(topic string) {
	c.t.Helper()
	c.send(realtime.Message{Type: realtime.TypeSubscribe, Topic: topic})
	c.expect(realtime.TypeSubscribed, topic)
}

// sync sends a ping and requires the very next frame to be its pong: every
// frame queued before it has been seen, and nothing else was.
func (c *client) sync() {
	c.t.Helper()
	c.send(realtime.Message{Type: realtime.TypePing})
	if got := c.nextRaw(); got != `{"type":"pong"}` {
		c.t.Fatalf("got %s, want the pong", got)
	}
}

// closeCode reads until the connection ends and returns its close code.
func (c *client) closeCode() int {
	c.t.Helper()
	for range 100 {
		c.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, _, err := c.ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			c.t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
	c.t.Fatal("connection did not close")
	return 0
}

func TestSubscribePublishUnsubscribe(t *testing.T) {
	hub, url := startHub(t, realtime.Options{}, &fakeAuth{})
	c := dial(t, url, "u1", "Ann")

	if c.send(realtime.Message{Type: realtime.TypeSubscribe, Topic: "tenant:t1"}); c.nextRaw() != `{"type":"subscribed","topic":"tenant:t1"}` {
		t.Fatal("subscribe was not acknowledged with the exact subscribed frame")
	}
	hub.Publish("tenant:t1", realtime.TypeInterviewStatus, 0, map[string]string{"id": "iv1", "status": "running"})
	if got, want := c.nextRaw(), `{"type":"interview.status","topic":"tenant:t1","data":{"id":"iv1","status":"running"}}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	hub.Publish("tenant:other", realtime.TypeInterviewStatus, 0, map[string]string{"id": "x"})
	c.sync()

	c.send(realtime.Message{Type: realtime.TypeUnsubscribe, Topic: "tenant:t1"})
	c.sync() // the unsubscribe has been handled
	hub.Publish("tenant:t1", realtime.TypeInterviewStatus, 0, map[string]string{"id": "iv1", "status": "completed"})
	c.sync()

	c.subscribe("tenant:t1")
	c.subscribe("tenant:t1") // again: acknowledged, nothing doubled
	hub.Publish("tenant:t1", realtime.TypeInterviewStatus, 0, map[string]string{"id": "iv2"})
	c.expect(realtime.TypeInterviewStatus, "tenant:t1")
	c.sync()
}

func TestPingIsAnsweredWithPong(t *testing.T) {
	_, url := startHub(t, realtime.Options{}, &fakeAuth{})
	c := dial(t, url, "u1", "Ann")
	for range 3 {
		c.sync()
	}
}

func TestForbiddenTopicGivesAnErrorFrameAndNoData(t *testing.T) {
	auth := &fakeAuth{forbidden: map[string]error{
		"tenant:other":     errors.New("tenant mismatch (internal detail)"),
		"interview:hidden": &realtime.Error{Code: "not_found", Message: "no such interview"},
	}}
	hub, url := startHub(t, realtime.Options{}, auth)
	tests := []struct {
		name  string
		topic string
		want  string
	}{
		{"a plain error is reported as forbidden without its detail", "tenant:other",
			`{"type":"error","topic":"tenant:other","error":{"code":"forbidden","message":"not allowed to subscribe to tenant:other"}}`},
		{"a realtime.Error keeps its code and message", "interview:hidden",
			`{"type":"error","topic":"interview:hidden","error":{"code":"not_found","message":"no such interview"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, url, "u1", "Ann")
			c.send(realtime.Message{Type: realtime.TypeSubscribe, Topic: tt.topic})
			if got := c.nextRaw(); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
			hub.Publish(tt.topic, realtime.TypeTranscriptEntry, 1, entryData(1))
			c.sync()
		})
	}
}

func TestGarbageFramesAreAnsweredAndTheHubKeepsServing(t *testing.T) {
	hub, url := startHub(t, realtime.Options{MaxMessageSize: 1024, MaxBadFrames: 100}, &fakeAuth{})
	other := dial(t, url, "u2", "Bob")
	other.subscribe("tenant:t1")

	c := dial(t, url, "u1", "Ann")
	tests := []struct {
		name  string
		mt    int
		frame string
		code  string
	}{
		{"invalid JSON is a bad_json error", websocket.TextMessage, `{"type":`, realtime.CodeBadJSON},
		{"a JSON array is a bad_json error", websocket.TextMessage, `[1,2]`, realtime.CodeBadJSON},
		{"an unknown type is an unknown_type error", websocket.TextMessage, `{"type":"launch"}`, realtime.CodeUnknownType},
		{"a missing type is an unknown_type error", websocket.TextMessage, `{}`, realtime.CodeUnknownType},
		{"a binary frame is a bad_frame error", websocket.BinaryMessage, `{"type":"ping"}`, realtime.CodeBadFrame},
		{"a frame over the size limit is a too_large error", websocket.TextMessage, `{"type":"ping","x":"` + strings.Repeat("a", 2000) + `"}`, realtime.CodeTooLarge},
		{"a malformed topic is a bad_topic error", websocket.TextMessage, `{"type":"subscribe","topic":"interviews/1"}`, realtime.CodeBadTopic},
		{"a topic with an empty id is a bad_topic error", websocket.TextMessage, `{"type":"subscribe","topic":"tenant:"}`, realtime.CodeBadTopic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.sendRaw(tt.mt, []byte(tt.frame))
			m := c.next()
			if m.Type != realtime.TypeError || m.Error == nil || m.Error.Code != tt.code || m.Error.Message == "" {
				t.Fatalf("got %+v, want an error frame with code %s", m, tt.code)
			}
			c.sync()
		})
	}

	t.Run("the connection still subscribes and receives after garbage", func(t *testing.T) {
		c.subscribe("tenant:t1")
		hub.Publish("tenant:t1", realtime.TypeInterviewStatus, 0, map[string]int{"n": 1})
		c.expect(realtime.TypeInterviewStatus, "tenant:t1")
		other.expect(realtime.TypeInterviewStatus, "tenant:t1")
	})

	t.Run("a frame over the hard limit closes that connection with 1009 only", func(t *testing.T) {
		huge := dial(t, url, "u3", "Cy")
		// The server closes while the client is still writing, so the write
		// or the read may see a reset instead of the close frame.
		huge.ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("a", 70<<10)))
		huge.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, _, err := huge.ws.ReadMessage()
		var ce *websocket.CloseError
		var ne net.Error
		if err == nil || (errors.As(err, &ce) && ce.Code != websocket.CloseMessageTooBig) || (errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("got %v, want the connection closed (1009)", err)
		}
		hub.Publish("tenant:t1", realtime.TypeInterviewStatus, 0, map[string]int{"n": 2})
		other.expect(realtime.TypeInterviewStatus, "tenant:t1")
		c.expect(realtime.TypeInterviewStatus, "tenant:t1")
	})
}

func TestTooManyGarbageFramesCloseTheConnection(t *testing.T) {
	hub, url := startHub(t, realtime.Options{MaxBadFrames: 3}, &fakeAuth{})
	other := dial(t, url, "u2", "Bob")
	other.subscribe("tenant:t1")

	c := dial(t, url, "u1", "Ann")
	for range 3 {
		c.sendRaw(websocket.TextMessage, []byte("nonsense"))
		if m := c.next(); m.Error == nil || m.Error.Code != realtime.CodeBadJSON {
			t.Fatalf("got %+v, want bad_json", m)
		}
	}
	c.sendRaw(websocket.TextMessage, []byte("nonsense"))
	if m := c.next(); m.Error == nil || m.Error.Code != realtime.CodeTooManyErrors {
		t.Fatalf("got %+v, want too_many_errors", m)
	}
	if code := c.closeCode(); code != websocket.ClosePolicyViolation {
		t.Fatalf("close code %d, want %d", code, websocket.ClosePolicyViolation)
	}
	hub.Publish("tenant:t1", realtime.TypeInterviewStatus, 0, map[string]int{"n": 1})
	other.expect(realtime.TypeInterviewStatus, "tenant:t1")
}

// smallBuffers makes accepted connections' kernel send buffers small, so a
// client that stops reading blocks the server's writes quickly.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

func TestStalledViewerIsDroppedWhileAHealthyOneGetsEverything(t *testing.T) {
	reg := prometheus.NewRegistry()
	hub, url := startHubWith(t, realtime.Options{SendBuffer: 4, WriteTimeout: time.Minute, Registerer: reg}, &fakeAuth{},
		func(l net.Listener) net.Listener { return smallBuffers{l} })

	stalledDialer := &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(4096)
		}
		return c, err
	}}
	stalled := dialWith(t, stalledDialer, url, "u1", "Stalled")
	stalled.subscribe("tenant:t1")
	healthy := dial(t, url, "u2", "Healthy")
	healthy.subscribe("tenant:t1")

	// Publish one 16 KiB entry at a time and let the healthy viewer read it,
	// so only the stalled viewer's queue can fill. Bounded: 64 MiB at most.
	const maxMsgs = 4000
	pad := strings.Repeat("x", 16<<10)
	droppedAt, last := 0, 0
	for seq := 1; seq <= maxMsgs; seq++ {
		hub.Publish("tenant:t1", realtime.TypeTranscriptEntry, int64(seq), map[string]any{"seq": seq, "text": pad})
		var m struct {
			Data struct{ Seq int } `json:"data"`
		}
		if err := json.Unmarshal([]byte(healthy.nextRaw()), &m); err != nil || m.Data.Seq != seq {
			t.Fatalf("healthy viewer got seq %d (%v), want %d", m.Data.Seq, err, seq)
		}
		last = seq
		if droppedAt == 0 && hub.Dropped() > 0 {
			droppedAt = seq
		}
		if droppedAt > 0 && seq >= droppedAt+50 {
			break
		}
	}
	if droppedAt == 0 {
		t.Fatalf("stalled viewer not dropped after %d entries", maxMsgs)
	}
	if got := hub.Dropped(); got != 1 {
		t.Fatalf("Dropped() = %d, want 1", got)
	}
	if got := counterValue(t, reg, "candor_realtime_dropped_total"); got != 1 {
		t.Fatalf("candor_realtime_dropped_total = %v, want 1", got)
	}
	healthy.sync()
	t.Logf("dropped after %d entries; healthy viewer received all %d in order", droppedAt, last)

	// The stalled viewer sees an in-order prefix and then the end.
	prev := 0
	for range maxMsgs {
		stalled.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, b, err := stalled.ws.ReadMessage()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("dropped connection was left open")
			}
			return
		}
		var m struct {
			Data struct{ Seq int } `json:"data"`
		}
		json.Unmarshal(b, &m)
		if m.Data.Seq != prev+1 {
			t.Fatalf("stalled viewer got seq %d after %d", m.Data.Seq, prev)
		}
		prev = m.Data.Seq
	}
	t.Fatal("dropped connection kept delivering")
}

func counterValue(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// readEntries reads frames until the entry with seq last and returns the
// seqs of the transcript entries seen (other frame types are skipped).
func readEntries(t *testing.T, c *client, last int64) []int64 {
	t.Helper()
	var seqs []int64
	for len(seqs) == 0 || seqs[len(seqs)-1] < last {
		m := c.next()
		if m.Type != realtime.TypeTranscriptEntry {
			continue
		}
		var e struct{ Seq int64 }
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, e.Seq)
		if len(seqs) > int(last)+10 {
			break
		}
	}
	return seqs
}

func checkExactly(t *testing.T, seqs []int64, from, to int64) {
	t.Helper()
	if int64(len(seqs)) != to-from+1 {
		t.Fatalf("got %d entries, want %d..%d once each: %v", len(seqs), from, to, seqs)
	}
	for i, s := range seqs {
		if s != from+int64(i) {
			t.Fatalf("entry %d has seq %d, want %d: %v", i, s, from+int64(i), seqs)
		}
	}
}

func TestResumeDeliversEveryEntryOnceInOrderWhilePublishing(t *testing.T) {
	for _, since := range []int64{0, 7} {
		for round := range 10 {
			t.Run(fmt.Sprintf("since %d round %d", since, round), func(t *testing.T) {
				resumeRound(t, since)
			})
		}
	}
}

// resumeRound: 20 entries exist; a publisher keeps committing and publishing
// while the client resumes; the replay itself commits an entry it returns and
// publishes it afterwards, and publishes more before returning.
func resumeRound(t *testing.T, since int64) {
	const topic, before, total = "interview:iv1", 20, 300
	auth := &fakeAuth{}
	hub, url := startHub(t, realtime.Options{SendBuffer: 1024}, auth)
	entries := newEntryLog(hub)
	for range before {
		entries.commitAndPublish(topic)
	}

	replayStarted := make(chan struct{})
	midway := make(chan struct{})
	// replayDone tells that the replay's own commits are in, so the last
	// seq the test computes includes them.
	replayDone := make(chan struct{})
	auth.onReplay = func(ctx context.Context, topic string, since int64) ([]realtime.Sequenced, error) {
		defer close(replayDone)
		close(replayStarted)
		entries.mu.Lock()
		seq := entries.commitLocked(topic)
		items := entries.afterLocked(topic, since)
		entries.hub.Publish(topic, realtime.TypeTranscriptEntry, seq, entryData(seq)) // committed, seen by the replay, published late
		entries.mu.Unlock()
		for range 5 {
			entries.commitAndPublish(topic)
		}
		select {
		case <-midway:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return items, nil
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 0
		for entries.last(topic) < total {
			entries.commitAndPublish(topic)
			n++
			if n == 10 {
				<-replayStarted
			}
			if n == 40 {
				close(midway)
			}
		}
		if n < 40 {
			close(midway)
		}
	}()

	c := dial(t, url, "u1", "Ann")
	c.send(realtime.Message{Type: realtime.TypeSubscribe, Topic: topic, SinceSeq: &since})
	c.expect(realtime.TypeSubscribed, topic)
	wg.Wait()
	<-replayDone
	last := entries.last(topic)
	checkExactly(t, readEntries(t, c, last), since+1, last)
	c.sync()
	if hub.Dropped() != 0 {
		t.Fatalf("dropped %d", hub.Dropped())
	}
}

func TestReplayLargerThanTheSendBufferIsNotDropped(t *testing.T) {
	auth := &fakeAuth{}
	hub, url := startHub(t, realtime.Options{SendBuffer: 2}, auth)
	auth.log = newEntryLog(hub)
	for range 200 {
		auth.log.commitAndPublish("interview:iv1")
	}
	c := dial(t, url, "u1", "Ann")
	since := int64(0)
	c.send(realtime.Message{Type: realtime.TypeSubscribe, Topic: "interview:iv1", SinceSeq: &since})
	checkExactly(t, readEntries(t, c, 200), 1, 200)
	if hub.Dropped() != 0 {
		t.Fatalf("dropped %d", hub.Dropped())
	}
}

func TestPlainSubscribeGetsLiveEntriesOnly(t *testing.T) {
	auth := &fakeAuth{}
	hub, url := startHub(t, realtime.Options{}, auth)
	auth.log = newEntryLog(hub)
	for range 5 {
		auth.log.commitAndPublish("interview:iv1")
	}
	c := dial(t, url, "u1", "Ann")
	c.subscribe("interview:iv1")
	auth.log.commitAndPublish("interview:iv1")
	checkExactly(t, readEntries(t, c, 6), 6, 6)
}

func TestReplayFailureLeavesNoSubscription(t *testing.T) {
	auth := &fakeAuth{onReplay: func(context.Context, string, int64) ([]realtime.Sequenced, error) {
		return nil, errors.New("database is locked")
	}}
	hub, url := startHub(t, realtime.Options{}, auth)
	c := dial(t, url, "u1", "Ann")
	since := int64(3)
	c.send(realtime.Message{Type: realtime.TypeSubscribe, Topic: "tenant:t1", SinceSeq: &since})
	c.expect(realtime.TypeSubscribed, "tenant:t1")
	if m := c.next(); m.Error == nil || m.Error.Code != realtime.CodeReplayFailed || strings.Contains(m.Error.Message, "locked") {
		t.Fatalf("got %+v, want a replay_failed error without internals", m)
	}
	hub.Publish("tenant:t1", realtime.TypeInterviewStatus, 0, map[string]int{"n": 1})
	c.sync()
}

func TestPresenceFollowsViewersJoiningAndLeaving(t *testing.T) {
	_, url := startHub(t, realtime.Options{}, &fakeAuth{})
	const topic = "interview:iv1"
	presence := func(c *client) string {
		t.Helper()
		return string(c.expect(realtime.TypePresence, topic).Data)
	}
	ann := dial(t, url, "u1", "Ann")
	ann.subscribe(topic)
	if got, want := presence(ann), `{"viewers":[{"id":"u1","name":"Ann"}]}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}

	both := `{"viewers":[{"id":"u1","name":"Ann"},{"id":"u2","name":"Bob"}]}`
	bob := dial(t, url, "u2", "Bob")
	bob.subscribe(topic)
	for _, c := range []*client{ann, bob} {
		if got := presence(c); got != both {
			t.Fatalf("got %s, want %s", got, both)
		}
	}

	// A second tab of the same viewer is listed once.
	ann2 := dial(t, url, "u1", "Ann")
	ann2.subscribe(topic)
	for _, c := range []*client{ann, bob, ann2} {
		if got := presence(c); got != both {
			t.Fatalf("got %s, want %s", got, both)
		}
	}

	annOnly := `{"viewers":[{"id":"u1","name":"Ann"}]}`
	bob.send(realtime.Message{Type: realtime.TypeUnsubscribe, Topic: topic})
	for _, c := range []*client{ann, ann2} {
		if got := presence(c); got != annOnly {
			t.Fatalf("after unsubscribe got %s, want %s", got, annOnly)
		}
	}
	bob.sync()

	bob.subscribe(topic)
	for _, c := range []*client{ann, ann2, bob} {
		presence(c)
	}
	bob.ws.Close()
	for _, c := range []*client{ann, ann2} {
		if got := presence(c); got != annOnly {
			t.Fatalf("after disconnect got %s, want %s", got, annOnly)
		}
	}

	// Tenant topics have no presence.
	ann.subscribe("tenant:t1")
	ann.sync()
}

func TestCloseEndsEveryConnectionAndWaits(t *testing.T) {
	hub, url := startHub(t, realtime.Options{}, &fakeAuth{})
	cs := []*client{dial(t, url, "u1", "Ann"), dial(t, url, "u2", "Bob")}
	for _, c := range cs {
		c.subscribe("tenant:t1")
	}
	hub.Close()
	for _, c := range cs {
		if code := c.closeCode(); code != websocket.CloseGoingAway {
			t.Fatalf("close code %d, want %d", code, websocket.CloseGoingAway)
		}
	}
	hub.Publish("tenant:t1", realtime.TypeInterviewStatus, 0, nil) // no-op after Close

	late, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	late.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, _, err := late.ReadMessage(); err == nil {
		t.Fatal("a connection served after Close was not closed")
	}
}

func TestServeReturnsWhenItsContextIsCancelled(t *testing.T) {
	hub := realtime.New(realtime.Options{}, nil)
	t.Cleanup(hub.Close)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	upgrader := realtime.NewUpgrader(nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		hub.Serve(ctx, ws, realtime.Viewer{ID: "u1"}, &fakeAuth{})
		close(served)
	}))
	t.Cleanup(srv.Close)
	c := dial(t, "ws"+strings.TrimPrefix(srv.URL, "http"), "u1", "Ann")
	c.sync()
	cancel()
	<-served
	if code := c.closeCode(); code != websocket.CloseGoingAway {
		t.Fatalf("close code %d, want %d", code, websocket.CloseGoingAway)
	}
}

func TestPingsKeepAReadingClientAliveAndASilentOneIsClosed(t *testing.T) {
	const pongWait, pingInterval = time.Second, 100 * time.Millisecond
	hub, url := startHub(t, realtime.Options{PongWait: pongWait, PingInterval: pingInterval}, &fakeAuth{})

	// The silent client reads but never answers a ping.
	silent := dial(t, url, "u2", "Silent")
	silent.ws.SetPingHandler(func(string) error { return nil })
	silent.subscribe("tenant:t1")

	// The alive client answers pings (gorilla does so while reading) and
	// counts them.
	alive := dial(t, url, "u1", "Alive")
	pings := make(chan struct{}, 1)
	alive.ws.SetPingHandler(func(data string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return alive.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	alive.subscribe("tenant:t1")
	frames := make(chan string, 16)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(frames)
		for {
			alive.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, b, err := alive.ws.ReadMessage()
			if err != nil {
				return
			}
			frames <- string(b)
		}
	}()
	t.Cleanup(func() {
		alive.ws.Close()
		<-readerDone
	})

	silent.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, _, err := silent.ws.ReadMessage()
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("silent client was not disconnected")
		}
		break
	}

	// Enough pings that the alive client has outlived PongWait by answering.
	for range 2 * int(pongWait/pingInterval) {
		select {
		case <-pings:
		case <-time.After(20 * time.Second):
			t.Fatal("no pings")
		}
	}
	hub.Publish("tenant:t1", realtime.TypeInterviewStatus, 0, map[string]int{"n": 1})
	if got, want := <-frames, `{"type":"interview.status","topic":"tenant:t1","data":{"n":1}}`; got != want {
		t.Fatalf("alive client got %q, want %s", got, want)
	}
	if hub.Dropped() != 0 {
		t.Fatalf("a ping timeout counted as a drop")
	}
}
