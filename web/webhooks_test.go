package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"candor/realtime"
	"candor/store"
	"candor/web/lifecycle"
)

// receiver is a webhook endpoint that verifies every delivery with the
// Standard Webhooks reference library and fails the first failFirst
// attempts of each message while failing is set.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string

	mu        sync.Mutex
	failing   bool
	failFirst int
	attempts  map[string]int             // webhook-id → attempts seen
	accepted  map[string]int             // webhook-id → 2xx answers given
	bodies    map[string]json.RawMessage // webhook-id → body
	timestamp map[string][]string
	bad       []string // verification failures
}

func newReceiver(t *testing.T, failFirst int) *receiver {
	r := &receiver{t: t, failing: true, failFirst: failFirst, attempts: map[string]int{}, accepted: map[string]int{},
		bodies: map[string]json.RawMessage{}, timestamp: map[string][]string{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(r.secret)
	if err == nil {
		err = wh.Verify(body, req.Header) // checks the signature and the timestamp's age
	}
	if err != nil {
		r.bad = append(r.bad, err.Error())
		http.Error(w, "bad signature", 400)
		return
	}
	id := req.Header.Get("webhook-id")
	r.attempts[id]++
	r.timestamp[id] = append(r.timestamp[id], req.Header.Get("webhook-timestamp"))
	if r.failing && r.attempts[id] <= r.failFirst {
		http.Error(w, "try later", 503)
		return
	}
	r.accepted[id]++
	r.bodies[id] = body
	w.WriteHeader(204)
}

func (r *receiver) snapshot() (attempts, accepted map[string]int, bad []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	attempts, accepted = map[string]int{}, map[string]int{}
	for k, v := range r.attempts {
		attempts[k] = v
	}
	for k, v := range r.accepted {
		accepted[k] = v
	}
	return attempts, accepted, append([]string(nil), r.bad...)
}

// controlPlane is a control plane on a data dir that a test may stop and
// start again, as a restart would.
type controlPlane struct {
	db  *store.DB
	srv *Server
	lc  *lifecycle.Service
	ts  *httptest.Server
}

func startControlPlane(t *testing.T, dir string, cfg func(*Config)) *controlPlane {
	t.Helper()
	key := []byte(strings.Repeat("k", 32))
	db, err := store.Open(context.Background(), filepath.Join(dir, "candor.db"), store.Options{SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	hub := realtime.New(realtime.Options{}, slog.New(slog.DiscardHandler))
	ts := httptest.NewUnstartedServer(nil)
	c := Config{Addr: ts.Listener.Addr().String(), DataDir: dir, SecretKey: key,
		OutboxPoll: 10 * time.Millisecond, WebhookRetryScale: 0.001, AllowPrivateTargets: true}
	if cfg != nil {
		cfg(&c)
	}
	lc, err := lifecycle.New(lifecycle.Config{PublicURL: "http://" + c.Addr, SecretKey: key, ReconcileInterval: -1},
		db, hub, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(c, db, hub, lc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	cp := &controlPlane{db: db, srv: srv, lc: lc, ts: ts}
	t.Cleanup(cp.stop)
	return cp
}

func (cp *controlPlane) stop() {
	if cp.ts == nil {
		return
	}
	cp.ts.Close()
	cp.srv.Close()
	cp.lc.Close()
	cp.db.Close()
	cp.ts = nil
}

func (cp *controlPlane) env(t *testing.T) *testEnv {
	return &testEnv{db: cp.db, srv: cp.srv, lc: cp.lc, ts: cp.ts, t: t}
}

func TestWebhooksDeliverOncePerIDAcrossARestartAndFailures(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t, 2)
	cp := startControlPlane(t, dir, nil)
	e := cp.env(t)
	a := e.tenant(t, "Acme")

	var hook webhookJSON
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/webhooks", Key: a.Key, Body: map[string]any{
		"url": rcv.srv.URL + "/hooks?token=abc", "events": []string{"scorecard.ready", "interview.completed", "candidate.erased"},
	}}, &hook)
	if !strings.HasPrefix(hook.Secret, "whsec_") || hook.ID == "" {
		t.Fatalf("webhook %+v", hook)
	}
	rcv.mu.Lock()
	rcv.secret = hook.Secret
	rcv.mu.Unlock()
	var list struct {
		Webhooks []webhookJSON `json:"webhooks"`
	}
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/webhooks", Key: a.Key}, &list)
	if len(list.Webhooks) != 1 || list.Webhooks[0].Secret != "" {
		t.Fatalf("the list shows the secret or misses the webhook: %+v", list)
	}

	// Three scorecards become ready: three committed events.
	_, _, iv1 := e.seed(t, a)
	_, _, iv2 := e.seed(t, a)
	_, _, iv3 := e.seed(t, a)
	for _, iv := range []string{iv1, iv2, iv3} {
		score := 4.0
		if err := cp.db.SaveScorecard(context.Background(), store.Scorecard{TenantID: a.ID, InterviewID: iv, Status: store.ScorecardReady,
			Evaluator: "test", Body: json.RawMessage(`{}`)}, &store.ScorecardReadyData{OverallScore: &score}); err != nil {
			t.Fatal(err)
		}
	}
	// A pending scorecard writes no event.
	if err := cp.db.SaveScorecard(context.Background(), store.Scorecard{TenantID: a.ID, InterviewID: iv1, Status: store.ScorecardPending, Evaluator: "test"}, nil); err != nil {
		t.Fatal(err)
	}

	waitUntil(t, "every event failed twice", func() bool {
		attempts, _, _ := rcv.snapshot()
		n := 0
		for _, k := range attempts {
			if k >= 2 {
				n++
			}
		}
		return n >= 3
	})
	// The control plane dies between attempts and comes back.
	cp.stop()
	rcv.mu.Lock()
	rcv.failing = false
	rcv.mu.Unlock()
	cp2 := startControlPlane(t, dir, nil)
	e2 := cp2.env(t)

	waitUntil(t, "every event is accepted", func() bool {
		_, accepted, _ := rcv.snapshot()
		return len(accepted) >= 3
	})
	// Let any stray duplicate arrive before counting.
	time.Sleep(200 * time.Millisecond)
	attempts, accepted, bad := rcv.snapshot()
	if len(bad) > 0 {
		t.Errorf("deliveries that failed verification: %v", bad)
	}
	if len(accepted) != 3 {
		t.Errorf("%d webhook-ids accepted, want 3: %v", len(accepted), accepted)
	}
	subjects := map[string]bool{}
	for id, n := range accepted {
		if n != 1 {
			t.Errorf("webhook-id %s accepted %d times", id, n)
		}
		if attempts[id] < 3 {
			t.Errorf("webhook-id %s: %d attempts, want 2 failed + 1", id, attempts[id])
		}
		var body struct {
			Type      string          `json:"type"`
			Timestamp time.Time       `json:"timestamp"`
			Data      json.RawMessage `json:"data"`
		}
		json.Unmarshal(rcv.bodies[id], &body)
		var data store.ScorecardReadyData
		json.Unmarshal(body.Data, &data)
		if body.Type != "scorecard.ready" || body.Timestamp.IsZero() || data.OverallScore == nil || *data.OverallScore != 4 {
			t.Errorf("body %s", rcv.bodies[id])
		}
		subjects[data.InterviewID] = true
	}
	if !subjects[iv1] || !subjects[iv2] || !subjects[iv3] {
		t.Errorf("events for %v, want %s %s %s", subjects, iv1, iv2, iv3)
	}

	// The delivery log tells the story; the secret is nowhere in it.
	var log struct {
		Deliveries []deliveryJSON `json:"deliveries"`
	}
	res := e2.must(t, 200, request{Method: "GET", Path: "/api/v1/webhooks/" + hook.ID + "/deliveries", Key: a.Key}, &log)
	if strings.Contains(string(res.Body), hook.Secret) || strings.Contains(string(res.Body), "token=abc") {
		t.Error("the delivery log shows the secret or the URL's token")
	}
	if len(log.Deliveries) != 3 {
		t.Fatalf("%d deliveries logged, want 3", len(log.Deliveries))
	}
	d := log.Deliveries[0]
	if d.Status != "delivered" || len(d.Attempts) < 3 || d.Attempts[0].StatusCode != 503 || d.Attempts[len(d.Attempts)-1].StatusCode != 204 {
		t.Errorf("delivery %+v", d)
	}

	// A manual retry resends with the same webhook-id.
	e2.must(t, 202, request{Method: "POST", Path: "/api/v1/webhooks/" + hook.ID + "/deliveries/" + d.ID + "/retry", Key: a.Key}, nil)
	waitUntil(t, "the retry is delivered", func() bool {
		_, accepted, _ := rcv.snapshot()
		return accepted[d.ID] == 2
	})

	// Another tenant sees none of it.
	b := e2.tenant(t, "Bobco")
	e2.must(t, 404, request{Method: "GET", Path: "/api/v1/webhooks/" + hook.ID + "/deliveries", Key: b.Key}, nil)
	e2.must(t, 404, request{Method: "POST", Path: "/api/v1/webhooks/" + hook.ID + "/deliveries/" + d.ID + "/retry", Key: b.Key}, nil)
	e2.must(t, 404, request{Method: "DELETE", Path: "/api/v1/webhooks/" + hook.ID, Key: b.Key}, nil)
	e2.must(t, 204, request{Method: "DELETE", Path: "/api/v1/webhooks/" + hook.ID, Key: a.Key}, nil)
	e2.must(t, 404, request{Method: "GET", Path: "/api/v1/webhooks/" + hook.ID + "/deliveries", Key: a.Key}, nil)
}

func TestWebhookEndpointFailingForDaysIsDisabled(t *testing.T) {
	dir := t.TempDir()
	var hits sync.Map
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Store(r.Header.Get("webhook-id"), true)
		http.Error(w, "down", 500)
	}))
	defer down.Close()
	// Scaled so that "days" pass in a fraction of a second.
	cp := startControlPlane(t, dir, func(c *Config) { c.WebhookRetryScale = 0.000002 })
	e := cp.env(t)
	a := e.tenant(t, "Acme")
	var hook webhookJSON
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/webhooks", Key: a.Key, Body: map[string]any{
		"url": down.URL, "events": []string{"scorecard.ready"}}}, &hook)
	_, _, iv := e.seed(t, a)
	var list struct {
		Webhooks []webhookJSON `json:"webhooks"`
	}
	// Events keep coming (one per poll here, many a day in life) and every
	// delivery fails, until the endpoint has failed for five scaled days.
	waitUntil(t, "the webhook is disabled", func() bool {
		if err := cp.db.SaveScorecard(context.Background(), store.Scorecard{TenantID: a.ID, InterviewID: iv, Status: store.ScorecardReady, Evaluator: "test"}, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/webhooks", Key: a.Key}, &list)
		return len(list.Webhooks) == 1 && list.Webhooks[0].Disabled
	})
	w := list.Webhooks[0]
	if w.FailingSince == nil || w.DisabledAt == nil || !strings.Contains(w.DisabledReason, "failed") {
		t.Errorf("disabled webhook %+v", w)
	}
}

func TestWebhookInputAndTargets(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	for _, tc := range []struct {
		name string
		body map[string]any
		want string
	}{
		{"no url", map[string]any{"events": []string{"scorecard.ready"}}, "url"},
		{"no events", map[string]any{"url": "https://example.com/h"}, "events"},
		{"an unknown event", map[string]any{"url": "https://example.com/h", "events": []string{"interview.exploded"}}, "events[0]"},
		{"plain http", map[string]any{"url": "http://example.com/h", "events": []string{"scorecard.ready"}}, "https"},
		{"loopback", map[string]any{"url": "https://127.0.0.1:9/h", "events": []string{"scorecard.ready"}}, "private"},
		{"the metadata service", map[string]any{"url": "https://169.254.169.254/latest", "events": []string{"scorecard.ready"}}, "private"},
		{"a private network", map[string]any{"url": "https://10.1.2.3/h", "events": []string{"scorecard.ready"}}, "private"},
		{"credentials in the URL", map[string]any{"url": "https://u:p@example.com/h", "events": []string{"scorecard.ready"}}, "password"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			res := e.must(t, 400, request{Method: "POST", Path: "/api/v1/webhooks", Key: a.Key, Body: tc.body}, nil)
			if !strings.Contains(string(res.Body), tc.want) {
				t.Errorf("answer %s does not mention %q", res.Body, tc.want)
			}
		})
	}
	var list struct {
		Webhooks []webhookJSON `json:"webhooks"`
	}
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/webhooks", Key: a.Key}, &list)
	if len(list.Webhooks) != 0 {
		t.Errorf("refused webhooks were stored: %+v", list.Webhooks)
	}
}

// A webhook is sent if and only if its transition committed: ending an
// interview delivers interview.completed; an end the lifecycle refuses
// (a scheduled interview) delivers nothing.
func TestWebhookFollowsCommittedTransitionsOnly(t *testing.T) {
	rcv := newReceiver(t, 0)
	e := newTestEnv(t, withConfig(func(c *Config) {
		c.AllowPrivateTargets = true
		c.OutboxPoll = 10 * time.Millisecond
	}))
	a := e.tenant(t, "Acme")
	var hook webhookJSON
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/webhooks", Key: a.Key, Body: map[string]any{
		"url": rcv.srv.URL, "events": []string{"interview.completed"}}}, &hook)
	rcv.mu.Lock()
	rcv.secret = hook.Secret
	rcv.mu.Unlock()

	_, _, scheduled := e.seed(t, a)
	if res := e.do(t, request{Method: "POST", Path: "/api/v1/interviews/" + scheduled + "/end", Key: a.Key}); res.Status < 400 {
		t.Fatalf("ending a scheduled interview: %d, want a refusal", res.Status)
	}
	ended := e.seedTranscript(t, a, "Ada")
	waitUntil(t, "interview.completed is delivered", func() bool {
		_, accepted, _ := rcv.snapshot()
		return len(accepted) >= 1
	})
	time.Sleep(100 * time.Millisecond)
	_, accepted, bad := rcv.snapshot()
	if len(bad) > 0 || len(accepted) != 1 {
		t.Fatalf("accepted %v, bad %v", accepted, bad)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, body := range rcv.bodies {
		var b struct {
			Type string `json:"type"`
			Data struct {
				InterviewID string `json:"interview_id"`
			} `json:"data"`
		}
		json.Unmarshal(body, &b)
		if b.Type != "interview.completed" || b.Data.InterviewID != ended {
			t.Errorf("delivered %s, want interview.completed of %s", body, ended)
		}
	}
}
