package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"candor/fly"
	"candor/processor/contract"
	"candor/realtime"
	"candor/store"
	"candor/web/lifecycle"
)

// testEnv is a real control plane on a loopback httptest server: a SQLite
// file in t.TempDir(), a real hub, and (optionally) fake machines.
type testEnv struct {
	t        *testing.T
	db       *store.DB
	hub      *realtime.Hub
	srv      *Server
	lc       *lifecycle.Service
	ts       *httptest.Server
	machines *fakeMachines
	backend  fly.Machines // when set (withMachines), used instead of machines
	dataDir  string
	log      *slog.Logger
}

type envOption func(*Config, *lifecycle.Config, *testEnv)

// withoutMachines builds the server with no provisioner (start/end → 501).
func withoutMachines() envOption {
	return func(_ *Config, _ *lifecycle.Config, e *testEnv) { e.machines = nil }
}

// withLog sends the server's log to w (as JSON lines).
func withLog(w io.Writer) envOption {
	return func(_ *Config, _ *lifecycle.Config, e *testEnv) { e.log = slog.New(slog.NewJSONHandler(w, nil)) }
}

// withMachines builds the server on a real backend instead of the fake.
func withMachines(m fly.Machines) envOption {
	return func(_ *Config, _ *lifecycle.Config, e *testEnv) { e.machines, e.backend = nil, m }
}

func withConfig(f func(*Config)) envOption {
	return func(c *Config, _ *lifecycle.Config, _ *testEnv) { f(c) }
}

// withLifecycle adjusts the lifecycle's configuration.
func withLifecycle(f func(*lifecycle.Config)) envOption {
	return func(_ *Config, c *lifecycle.Config, _ *testEnv) { f(c) }
}

func newTestEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	key := bytes.Repeat([]byte{7}, 32)
	db, err := store.Open(ctx, filepath.Join(dir, "candor.db"), store.Options{SecretKey: key})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	hub := realtime.New(realtime.Options{}, slog.New(slog.DiscardHandler))
	ts := httptest.NewUnstartedServer(nil)
	e := &testEnv{db: db, hub: hub, ts: ts, dataDir: dir, log: slog.New(slog.DiscardHandler)}
	if tt, ok := t.(*testing.T); ok {
		e.t = tt
	}
	e.machines = newFakeMachines(t)
	cfg := Config{
		Addr:          ts.Listener.Addr().String(),
		PublicURL:     "http://" + ts.Listener.Addr().String(),
		DataDir:       dir,
		Version:       "test",
		DefaultRegion: "local",
		SecretKey:     key,
	}
	lcfg := lifecycle.Config{
		PublicURL:     cfg.PublicURL,
		SecretKey:     key,
		DefaultRegion: "local",
		EndTimeout:    10 * time.Second,
		LaunchTimeout: 10 * time.Second,
		// Tests reconcile by calling Reconcile and supervise by calling
		// SuperviseOnce; the loops do not run.
		ReconcileInterval: -1,
	}
	for _, o := range opts {
		o(&cfg, &lcfg, e)
	}
	// ICE settings and the default region given to the web config reach
	// the lifecycle too, as serveControl passes both the same.
	if lcfg.ICEServers == "" {
		lcfg.ICEServers, lcfg.TURNSecret = cfg.ICEServers, cfg.TURNSecret
	}
	if lcfg.DefaultRegion == "local" && cfg.DefaultRegion != "local" {
		lcfg.DefaultRegion = cfg.DefaultRegion
	}
	var machines fly.Machines
	switch {
	case e.backend != nil:
		machines = e.backend
	case e.machines != nil:
		machines = e.machines
	}
	lc, err := lifecycle.New(lcfg, db, hub, machines, e.log)
	if err != nil {
		t.Fatalf("lifecycle.New: %v", err)
	}
	e.lc = lc
	srv, err := New(cfg, db, hub, lc, e.log)
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	e.srv = srv
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		hub.Close()
		srv.Close()
		lc.Close()
		if e.machines != nil {
			e.machines.Close()
		}
		db.Close()
	})
	return e
}

// tenant is a bootstrapped tenant with its owner's API key.
type tenant struct {
	ID, Slug, OwnerID, Key string
}

func (e *testEnv) tenant(t testing.TB, name string) tenant {
	t.Helper()
	email := strings.ToLower(strings.ReplaceAll(name, " ", "")) + "@example.com"
	res, err := Bootstrap(context.Background(), e.db, name, email, "correct horse battery")
	if err != nil {
		t.Fatalf("bootstrap %s: %v", name, err)
	}
	return tenant{ID: res.TenantID, Slug: res.TenantSlug, OwnerID: res.UserID, Key: res.APIKey}
}

// session is a logged-in dashboard user: its cookie and CSRF token.
type session struct {
	Cookie, CSRF string
}

// login creates a user with role in tn and a session for it, as the
// dashboard's login would.
func (e *testEnv) login(t testing.TB, tn tenant, role store.Role) session {
	t.Helper()
	ctx := context.Background()
	hash, err := hashPassword("pw-" + string(role) + "-secret")
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.db.CreateUser(ctx, tn.ID, fmt.Sprintf("%s-%s@example.com", role, store.NewID("")), string(role), role, hash)
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	tok, csrf := randomToken(), randomToken()
	now := time.Now().UTC()
	if err := e.db.CreateSession(ctx, store.Session{
		IDHash: tokenHash(tok), UserID: u.ID, TenantID: tn.ID, CSRFToken: csrf,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour),
	}); err != nil {
		t.Fatalf("create session: %v", err)
	}
	return session{Cookie: tok, CSRF: csrf}
}

// request is one API call in a test.
type request struct {
	Method, Path string
	Key          string // Bearer token (API key or processor token)
	Session      *session
	CSRF         string // X-CSRF-Token; "" sends none
	Body         any    // string/[]byte sent raw, anything else as JSON
	ContentType  string // default application/json when Body is set
	Header       map[string]string
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// errorCode is the code of a JSON error answer, "" if the body is not one.
func (r response) errorCode() string {
	var body struct {
		Error *Error `json:"error"`
	}
	if json.Unmarshal(r.Body, &body) != nil || body.Error == nil {
		return ""
	}
	return body.Error.Code
}

func (e *testEnv) do(t testing.TB, r request) response {
	t.Helper()
	var body io.Reader
	ct := r.ContentType
	switch b := r.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(raw)
	}
	if body != nil && ct == "" {
		ct = "application/json"
	}
	req, err := http.NewRequest(r.Method, e.ts.URL+r.Path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if r.Key != "" {
		req.Header.Set("Authorization", "Bearer "+r.Key)
	}
	if r.Session != nil {
		req.AddCookie(&http.Cookie{Name: SessionCookie, Value: r.Session.Cookie})
	}
	if r.CSRF != "" {
		req.Header.Set("X-CSRF-Token", r.CSRF)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	res, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.Method, r.Path, err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// must does r and fails unless it answers status; it decodes into out if
// non-nil.
func (e *testEnv) must(t testing.TB, status int, r request, out any) response {
	t.Helper()
	res := e.do(t, r)
	if res.Status != status {
		t.Fatalf("%s %s: status %d, want %d: %s", r.Method, r.Path, res.Status, status, res.Body)
	}
	if out != nil {
		res.decode(t, out)
	}
	return res
}

type idJSON struct {
	ID string `json:"id"`
}

// seed creates a position, a candidate and a scheduled interview in tn.
func (e *testEnv) seed(t testing.TB, tn tenant) (positionID, candidateID, interviewID string) {
	t.Helper()
	var p, c, iv idJSON
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/positions", Key: tn.Key, Body: map[string]any{
		"title": "Backend engineer", "description": "Go and SQLite",
		"questions": []string{"Tell me about yourself."},
		"rubric":    []map[string]any{{"name": "Go", "description": "knows Go", "weight": 1}},
	}}, &p)
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/candidates", Key: tn.Key, Body: map[string]any{
		"name": "Ada Lovelace", "email": "ada-" + store.NewID("") + "@example.com",
	}}, &c)
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/interviews", Key: tn.Key, Body: map[string]any{
		"position_id": p.ID, "candidate_id": c.ID,
	}}, &iv)
	return p.ID, c.ID, iv.ID
}

type startAnswer struct {
	Interview interviewJSON `json:"interview"`
	Processor processorJSON `json:"processor"`
	// Bridge is the bridge token the control plane gave the interview's
	// current machine (not in the answer: what a processor presents).
	Bridge string `json:"-"`
}

func (e *testEnv) start(t testing.TB, tn tenant, interviewID string) startAnswer {
	t.Helper()
	var out startAnswer
	e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + interviewID + "/start", Key: tn.Key}, &out)
	out.Bridge = e.bridgeToken(interviewID)
	return out
}

// bridgeToken is the bridge token of the last machine launched for
// interview id ("" when none was).
func (e *testEnv) bridgeToken(id string) string {
	if e.machines == nil {
		return ""
	}
	launches := e.machines.launches()
	for i := len(launches) - 1; i >= 0; i-- {
		if launches[i].InterviewID == id {
			return launches[i].Env[contract.EnvProcessorToken]
		}
	}
	return ""
}

func entry(seq int64, text string) map[string]any {
	return map[string]any{"seq": seq, "speaker": "candidate", "text": text, "start_ms": seq * 1000, "end_ms": seq*1000 + 900, "confidence": 0.9}
}

func (e *testEnv) postEntries(t testing.TB, interviewID, token string, entries ...map[string]any) response {
	t.Helper()
	return e.do(t, request{Method: "POST", Path: "/api/v1/bridge/interviews/" + interviewID + "/entries", Key: token,
		Body: map[string]any{"entries": entries}})
}

func (e *testEnv) entryCount(t testing.TB, tenantID, interviewID string) int {
	t.Helper()
	es, err := e.db.Entries(context.Background(), tenantID, interviewID, 0)
	if err != nil {
		t.Fatalf("entries: %v", err)
	}
	return len(es)
}

// fakeMachines is an in-test fly.Machines: each Launch starts an httptest
// server playing the processor's side of the contract (/healthz, and
// POST /end that delivers its pending entries to the bridge before it
// answers {"entries":n}).
type fakeMachines struct {
	notes []string // placement notes every launch reports
	t     testing.TB

	mu        sync.Mutex
	failNext  error
	provider  string // reported by Launch; default local
	launched  []fly.Spec
	destroyed []fly.Machine
	procs     map[string]*fakeProcessor // by machine id
}

type fakeProcessor struct {
	spec    fly.Spec
	srv     *httptest.Server
	mu      sync.Mutex
	pending []map[string]any // delivered on /end
	ends    int
	whip    map[string]bool // WHIP sessions open, by id
}

func newFakeMachines(t testing.TB) *fakeMachines {
	return &fakeMachines{t: t, procs: map[string]*fakeProcessor{}}
}

func (f *fakeMachines) Launch(ctx context.Context, s fly.Spec) (fly.Machine, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failNext; err != nil {
		f.failNext = nil
		return fly.Machine{}, err
	}
	f.launched = append(f.launched, s)
	p := &fakeProcessor{spec: s}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	id := fmt.Sprintf("fake-%d", len(f.launched))
	f.procs[id] = p
	provider := f.provider
	if provider == "" {
		provider = fly.ProviderLocal
	}
	m := fly.Machine{ID: id, Provider: provider, Region: s.Region, State: "started", URL: p.srv.URL,
		InterviewID: s.InterviewID, TenantID: s.TenantID, Notes: f.notes}
	if provider == fly.ProviderFly {
		m.App = "candor-test-" + s.TenantSlug
	}
	return m, nil
}

func (p *fakeProcessor) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		w.WriteHeader(200)
	case "/cookies":
		// What cookies reached the processor; and one it tries to set.
		http.SetCookie(w, &http.Cookie{Name: "from_processor", Value: "x"})
		fmt.Fprintf(w, "cookie=%q", r.Header.Get("Cookie"))
	case "/whoami":
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RequestURI(), r.Header.Get("fly-force-instance-id"))
	case "/whip":
		// As processor/ingest.go answers an offer: 201 and the session's
		// URL as an absolute path on the processor.
		if r.Method != http.MethodPost {
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		p.mu.Lock()
		if p.whip == nil {
			p.whip = map[string]bool{}
		}
		id := fmt.Sprintf("s%d", len(p.whip)+1)
		p.whip[id] = true
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/sdp")
		w.Header().Set("Location", "/whip/"+id)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "v=0\r\n")
	case "/events":
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			mt, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			conn.WriteMessage(mt, append([]byte("echo:"), msg...))
		}
	case "/end":
		if r.Header.Get("Authorization") != "Bearer "+p.spec.Env["CANDOR_PROCESSOR_TOKEN"] {
			http.Error(w, "bad token", 401)
			return
		}
		p.mu.Lock()
		pending := p.pending
		p.pending = nil
		p.ends++
		p.mu.Unlock()
		n := 0
		if len(pending) > 0 {
			body, _ := json.Marshal(map[string]any{"entries": pending})
			req, _ := http.NewRequestWithContext(r.Context(), "POST",
				p.spec.Env["CANDOR_CONTROL_URL"]+"/api/v1/bridge/interviews/"+p.spec.InterviewID+"/entries", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+p.spec.Env["CANDOR_PROCESSOR_TOKEN"])
			res, err := http.DefaultClient.Do(req)
			if err != nil || res.StatusCode != 200 {
				http.Error(w, fmt.Sprintf("bridge: %v %v", err, res), 502)
				return
			}
			res.Body.Close()
			n = len(pending)
		}
		fmt.Fprintf(w, `{"entries":%d}`, n)
	default:
		if id, ok := strings.CutPrefix(r.URL.Path, "/whip/"); ok && r.Method == http.MethodDelete {
			p.mu.Lock()
			open := p.whip[id]
			delete(p.whip, id)
			p.mu.Unlock()
			if open {
				w.WriteHeader(http.StatusOK)
				return
			}
		}
		http.NotFound(w, r)
	}
}

// whipSessions are the WHIP sessions still open on the processor.
func (p *fakeProcessor) whipSessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.whip)
}

func (f *fakeMachines) Destroy(ctx context.Context, m fly.Machine) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.destroyed = append(f.destroyed, m)
	if p, ok := f.procs[m.ID]; ok {
		p.srv.Close()
		delete(f.procs, m.ID)
	}
	return nil
}

func (f *fakeMachines) List(ctx context.Context) ([]fly.Machine, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	provider := f.provider
	if provider == "" {
		provider = fly.ProviderLocal
	}
	var out []fly.Machine
	for id, p := range f.procs {
		out = append(out, fly.Machine{ID: id, Provider: provider, Region: p.spec.Region, State: "started", URL: p.srv.URL,
			InterviewID: p.spec.InterviewID, TenantID: p.spec.TenantID})
	}
	return out, nil
}

func (f *fakeMachines) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, p := range f.procs {
		p.srv.Close()
		delete(f.procs, id)
	}
	return nil
}

func (f *fakeMachines) launches() []fly.Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.launched)
}

func (f *fakeMachines) destroys() []fly.Machine {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.destroyed)
}

func (f *fakeMachines) failNextLaunch(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = err
}

func (p *fakeProcessor) setPending(es ...map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = es
}

func (p *fakeProcessor) endCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ends
}

// vanish makes the n-th launch's machine disappear behind the control
// plane's back (a host died, someone deleted it), without a Destroy.
func (f *fakeMachines) vanish(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprintf("fake-%d", n)
	if p, ok := f.procs[id]; ok {
		p.srv.Close()
		delete(f.procs, id)
	}
}

// unreachable makes the n-th launch's processor stop answering while its
// machine still runs (the provider lists it).
func (f *fakeMachines) unreachable(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.procs[fmt.Sprintf("fake-%d", n)]; ok {
		p.srv.Close()
	}
}

// processor returns the fake processor of the n-th launch (1-based).
func (f *fakeMachines) processor(n int) *fakeProcessor {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.procs[fmt.Sprintf("fake-%d", n)]
}

var _ fly.Machines = (*fakeMachines)(nil)

// processorToken is the processor token of interview id's current machine.
func (e *testEnv) processorToken(t testing.TB, id string) string {
	t.Helper()
	iv, err := e.db.InterviewByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := e.lc.Access(context.Background(), iv)
	if err != nil {
		t.Fatal(err)
	}
	return acc.Token
}
