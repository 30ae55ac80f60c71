package web

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"candor/realtime"
	"candor/store"
	"candor/web/lifecycle"
)

// dashEnv is a real control plane (SQLite in a temp dir, real hub) served
// on a loopback port, for dashboard tests.
type dashEnv struct {
	t   *testing.T
	srv *Server
	lc  *lifecycle.Service
	db  *store.DB
	hub *realtime.Hub
	url string
}

func newDashEnv(t *testing.T, configure ...func(*Config)) *dashEnv {
	t.Helper()
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, "candor.db"), store.Options{SecretKey: key})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	hub := realtime.New(realtime.Options{}, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	base := "http://" + ln.Addr().String()
	cfg := Config{PublicURL: base, DataDir: dir, SecretKey: key}
	for _, f := range configure {
		f(&cfg)
	}
	lc, err := lifecycle.New(lifecycle.Config{PublicURL: base, SecretKey: key}, db, hub, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("new lifecycle: %v", err)
	}
	srv, err := New(cfg, db, hub, lc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
		lc.Close()
		hub.Close()
		db.Close()
	})
	return &dashEnv{t: t, srv: srv, lc: lc, db: db, hub: hub, url: base}
}

// dashBrowser is a cookie-keeping client that does not follow redirects, so
// tests see each 303.
type dashBrowser struct {
	t    *testing.T
	env  *dashEnv
	c    *http.Client
	csrf string // the _csrf of the last page that had a form
}

func (e *dashEnv) browser() *dashBrowser {
	jar, _ := cookiejar.New(nil)
	return &dashBrowser{t: e.t, env: e, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// dashPage is one answer, parsed when it is HTML.
type dashPage struct {
	status   int
	location string
	body     string
	root     *html.Node
}

func (b *dashBrowser) do(req *http.Request) dashPage {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	p := dashPage{status: res.StatusCode, location: res.Header.Get("Location"), body: string(raw)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		p.root, err = html.Parse(strings.NewReader(p.body))
		if err != nil {
			b.t.Fatalf("parse %s: %v", req.URL.Path, err)
		}
		for n := range p.root.Descendants() {
			if n.Type == html.ElementNode && n.Data == "input" && dashAttr(n, "name") == "_csrf" {
				b.csrf = dashAttr(n, "value")
				break
			}
		}
	}
	return p
}

func (b *dashBrowser) get(path string) dashPage {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.env.url+path, nil)
	req.Header.Set("Accept", "text/html")
	return b.do(req)
}

// post sends a form with the last seen CSRF token unless the form sets
// _csrf itself (possibly to "" to leave it out).
func (b *dashBrowser) post(path string, form url.Values) dashPage {
	b.t.Helper()
	if _, ok := form["_csrf"]; !ok {
		form.Set("_csrf", b.csrf)
	}
	if form.Get("_csrf") == "" {
		form.Del("_csrf")
	}
	req, _ := http.NewRequest(http.MethodPost, b.env.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	return b.do(req)
}

func dashAttr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func (p dashPage) byTestID(id string) []*html.Node {
	var out []*html.Node
	if p.root == nil {
		return nil
	}
	for n := range p.root.Descendants() {
		if n.Type == html.ElementNode && dashAttr(n, "data-testid") == id {
			out = append(out, n)
		}
	}
	return out
}

func (p dashPage) has(id string) bool { return len(p.byTestID(id)) > 0 }

func dashText(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return b.String()
}

func wantDashStatus(t *testing.T, p dashPage, status int) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status = %d, want %d; body:\n%.600s", p.status, status, p.body)
	}
}

func wantDashRedirect(t *testing.T, p dashPage, to string) {
	t.Helper()
	if p.status != http.StatusSeeOther || p.location != to {
		t.Fatalf("got %d to %q, want 303 to %q; body:\n%.400s", p.status, p.location, to, p.body)
	}
}

// setup runs first-run setup through the pages and returns the owner's
// signed-in browser.
func (e *dashEnv) setup(org, email, password string) *dashBrowser {
	e.t.Helper()
	b := e.browser()
	b.get("/setup")
	p := b.post("/setup", url.Values{"org": {org}, "name": {"Olive Owner"}, "email": {email}, "password": {password}})
	wantDashRedirect(e.t, p, "/interviews")
	return b
}

// login signs in through the login page.
func (e *dashEnv) login(email, password string) *dashBrowser {
	e.t.Helper()
	b := e.browser()
	wantDashStatus(e.t, b.get("/login"), http.StatusOK)
	wantDashRedirect(e.t, b.post("/login", url.Values{"email": {email}, "password": {password}}), "/interviews")
	return b
}

// tenantOf returns the tenant of a user by email.
func (e *dashEnv) tenantOf(email string) string {
	e.t.Helper()
	p, err := e.db.PersonByEmail(context.Background(), email)
	if err != nil {
		e.t.Fatalf("person %s: %v", email, err)
	}
	ms, err := e.db.Memberships(context.Background(), p.ID)
	if err != nil || len(ms) == 0 {
		e.t.Fatalf("memberships of %s: %v, %v", email, ms, err)
	}
	return ms[0].Tenant.ID
}

// setPassword gives an invited member the password they would choose from
// their invitation link, and joins them as that link would.
func (e *dashEnv) setPassword(email, password string) {
	e.t.Helper()
	p, err := e.db.PersonByEmail(context.Background(), email)
	if err != nil {
		e.t.Fatalf("person %s: %v", email, err)
	}
	hash, _ := hashPassword(password)
	if err := e.db.SetPassword(context.Background(), p.ID, hash, ""); err != nil {
		e.t.Fatal(err)
	}
	ms, _ := e.db.Memberships(context.Background(), p.ID)
	for _, m := range ms {
		if err := e.db.MarkJoined(context.Background(), m.Tenant.ID, m.User.ID); err != nil {
			e.t.Fatal(err)
		}
	}
}

// seedInterview stores a position, a candidate and an interview for tenantID.
func (e *dashEnv) seedInterview(tenantID, candidate string, status store.Status) (store.Position, store.Interview) {
	e.t.Helper()
	ctx := context.Background()
	pos, err := e.db.CreatePosition(ctx, store.Position{ID: store.NewID("pos_"), TenantID: tenantID, Title: "Backend engineer", Questions: []string{"Why?"}})
	if err != nil {
		e.t.Fatalf("position: %v", err)
	}
	cand, err := e.db.CreateCandidate(ctx, store.Candidate{ID: store.NewID("cand_"), TenantID: tenantID, Name: candidate, Email: store.NewID("") + "@example.com"})
	if err != nil {
		e.t.Fatalf("candidate: %v", err)
	}
	iv, err := e.db.CreateInterview(ctx, store.Interview{
		ID: store.NewID("int_"), TenantID: tenantID, PositionID: pos.ID, CandidateID: cand.ID,
		Status: store.StatusScheduled, ExpiresAt: time.Now().Add(24 * time.Hour),
	}, store.NewID("hash_"))
	if err != nil {
		e.t.Fatalf("interview: %v", err)
	}
	if status != store.StatusScheduled {
		if iv, err = e.db.SetInterviewStatus(ctx, tenantID, iv.ID, status); err != nil {
			e.t.Fatalf("status: %v", err)
		}
	}
	return pos, iv
}

func TestDashboardSetupFlow(t *testing.T) {
	env := newDashEnv(t)
	b := env.browser()

	wantDashRedirect(t, b.get("/"), "/setup")
	wantDashRedirect(t, b.get("/interviews"), "/setup")
	wantDashRedirect(t, b.get("/login"), "/setup")

	form := b.get("/setup")
	wantDashStatus(t, form, http.StatusOK)
	if !form.has("setup-form") {
		t.Fatal("no setup form")
	}

	bad := b.post("/setup", url.Values{"org": {""}, "name": {"Olive"}, "email": {"nope"}, "password": {"short"}})
	wantDashStatus(t, bad, http.StatusUnprocessableEntity)
	for _, id := range []string{"error-org", "error-email", "error-password"} {
		if !bad.has(id) {
			t.Errorf("invalid setup: no %s", id)
		}
	}

	ok := b.post("/setup", url.Values{"org": {"Acme <Hiring>"}, "name": {"Olive Owner"}, "email": {"olive@example.com"}, "password": {"correct horse battery"}})
	wantDashRedirect(t, ok, "/interviews")

	home := b.get("/interviews")
	wantDashStatus(t, home, http.StatusOK)
	if got := dashText(home.byTestID("org-name")[0]); got != "Acme <Hiring>" {
		t.Errorf("org name = %q", got)
	}
	if !home.has("flash") || !home.has("interviews-prereq") {
		t.Errorf("first page lacks the welcome flash or the next steps")
	}
	if role := dashText(home.byTestID("user-role")[0]); role != "Owner" {
		t.Errorf("role = %q", role)
	}
	// The flash is shown once.
	if b.get("/interviews").has("flash") {
		t.Errorf("flash shown twice")
	}
	wantDashRedirect(t, b.get("/"), "/interviews")

	// Setup is closed once a user exists, for everyone.
	wantDashRedirect(t, b.get("/setup"), "/")
	other := env.browser()
	wantDashRedirect(t, other.get("/setup"), "/")
	wantDashRedirect(t, other.post("/setup", url.Values{"org": {"Evil"}, "name": {"E"}, "email": {"e@example.com"}, "password": {"password123"}}), "/")
	if n, _ := env.db.CountUsers(context.Background()); n != 1 {
		t.Errorf("users = %d after a second setup attempt", n)
	}

	// Sign out ends the session.
	wantDashRedirect(t, b.post("/logout", url.Values{}), "/login")
	wantDashRedirect(t, b.get("/interviews"), "/login?next=%2Finterviews")
}

func TestDashboardLogin(t *testing.T) {
	env := newDashEnv(t)
	env.setup("Acme", "olive@example.com", "correct horse battery")

	t.Run("a wrong password shows an error and keeps the email", func(t *testing.T) {
		b := env.browser()
		b.get("/login")
		p := b.post("/login", url.Values{"email": {"olive@example.com"}, "password": {"wrong password"}})
		wantDashStatus(t, p, http.StatusUnauthorized)
		errs := p.byTestID("form-error")
		if len(errs) != 1 || !strings.Contains(dashText(errs[0]), "wrong") {
			t.Fatalf("no error message next to the form")
		}
		for n := range p.root.Descendants() {
			if n.Type == html.ElementNode && dashAttr(n, "id") == "email" && dashAttr(n, "value") != "olive@example.com" {
				t.Errorf("email not kept: %q", dashAttr(n, "value"))
			}
		}
		wantDashRedirect(t, b.get("/interviews"), "/login?next=%2Finterviews")
	})
	t.Run("the right password signs in and returns to the page asked for", func(t *testing.T) {
		b := env.browser()
		wantDashRedirect(t, b.get("/positions"), "/login?next=%2Fpositions")
		b.get("/login?next=%2Fpositions")
		wantDashRedirect(t, b.post("/login", url.Values{"email": {"Olive@Example.com"}, "password": {"correct horse battery"}, "next": {"/positions"}}), "/positions")
		wantDashStatus(t, b.get("/positions"), http.StatusOK)
	})
	t.Run("next cannot send the user to another site", func(t *testing.T) {
		b := env.browser()
		b.get("/login")
		wantDashRedirect(t, b.post("/login", url.Values{"email": {"olive@example.com"}, "password": {"correct horse battery"}, "next": {"//evil.example/x"}}), "/interviews")
	})
	t.Run("a login form without its CSRF token is refused", func(t *testing.T) {
		b := env.browser()
		b.get("/login")
		p := b.post("/login", url.Values{"email": {"olive@example.com"}, "password": {"correct horse battery"}, "_csrf": {""}})
		wantDashStatus(t, p, http.StatusForbidden)
		wantDashRedirect(t, b.get("/interviews"), "/login?next=%2Finterviews")
	})
}

func TestDashboardRefusesWritesWithoutCSRF(t *testing.T) {
	env := newDashEnv(t)
	b := env.setup("Acme", "olive@example.com", "correct horse battery")
	b.get("/candidates")

	tests := []struct {
		name  string
		token string
	}{
		{"a form without the token is refused", ""},
		{"a form with a wrong token is refused", "forged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := b.post("/candidates", url.Values{"name": {"Cy"}, "email": {"cy@example.com"}, "_csrf": {tt.token}})
			wantDashStatus(t, p, http.StatusForbidden)
			if !p.has("error-page") {
				t.Errorf("refusal is not the dashboard's error page")
			}
		})
	}
	list, _ := env.db.ListCandidates(context.Background(), env.tenantOf("olive@example.com"))
	if len(list) != 0 {
		t.Fatalf("a refused form created %d candidates", len(list))
	}
	wantDashRedirect(t, b.post("/candidates", url.Values{"name": {"Cy"}, "email": {"cy@example.com"}}), "/candidates")
}

func TestDashboardViewerIsReadOnly(t *testing.T) {
	env := newDashEnv(t)
	owner := env.setup("Acme", "olive@example.com", "correct horse battery")
	tenant := env.tenantOf("olive@example.com")
	pos, iv := env.seedInterview(tenant, "Cy Candidate", store.StatusScheduled)

	owner.get("/members")
	wantDashRedirect(t, owner.post("/members", url.Values{"name": {"Vic Viewer"}, "email": {"vic@example.com"}, "role": {"viewer"}}), "/members")
	env.setPassword("vic@example.com", "viewer password")
	viewer := env.login("vic@example.com", "viewer password")

	pages := []struct {
		path    string
		present []string
		absent  []string
	}{
		{"/interviews", []string{"interviews-table", "readonly-note"}, []string{"create-interview-form", "start-interview", "end-interview"}},
		{"/interviews/" + iv.ID, []string{"interview-detail", "transcript"}, []string{"start-interview", "end-interview"}},
		{"/positions", []string{"positions-table"}, []string{"new-position"}},
		{"/positions/" + pos.ID, []string{"position-form"}, []string{"position-submit"}},
		{"/candidates", []string{"candidates-table"}, []string{"create-candidate-form"}},
		{"/members", []string{"members-table"}, []string{"add-member-form", "role-form", "remove-member"}},
		{"/api-keys", []string{"api-keys"}, []string{"create-key-form", "revoke-key"}},
		{"/settings", []string{"secrets"}, []string{"set-secret-form", "delete-secret"}},
	}
	for _, pg := range pages {
		p := viewer.get(pg.path)
		wantDashStatus(t, p, http.StatusOK)
		for _, id := range pg.present {
			if !p.has(id) {
				t.Errorf("%s: viewer does not see %s", pg.path, id)
			}
		}
		for _, id := range pg.absent {
			if p.has(id) {
				t.Errorf("%s: viewer sees write control %s", pg.path, id)
			}
		}
	}

	viewer.get("/positions")
	writes := []struct {
		path string
		form url.Values
	}{
		{"/positions", url.Values{"title": {"Sneaky"}, "questions": {"Q?"}}},
		{"/positions/" + pos.ID, url.Values{"title": {"Renamed"}, "questions": {"Q?"}}},
		{"/candidates", url.Values{"name": {"Sneaky"}, "email": {"s@example.com"}}},
		{"/interviews", url.Values{"position_id": {pos.ID}, "candidate_id": {iv.CandidateID}}},
		{"/members", url.Values{"name": {"X"}, "email": {"x@example.com"}, "role": {"owner"}, "password": {"password123"}}},
		{"/api-keys", url.Values{"name": {"k"}}},
		{"/settings/secrets", url.Values{"name": {"OPENAI_API_KEY"}, "value": {"sk"}}},
	}
	for _, w := range writes {
		if p := viewer.post(w.path, w.form); p.status != http.StatusForbidden {
			t.Errorf("viewer POST %s: status %d, want 403", w.path, p.status)
		}
	}
	ctx := context.Background()
	if ps, _ := env.db.ListPositions(ctx, tenant); len(ps) != 1 || ps[0].Title != pos.Title {
		t.Errorf("viewer changed positions: %+v", ps)
	}
	if cs, _ := env.db.ListCandidates(ctx, tenant); len(cs) != 1 {
		t.Errorf("viewer added candidates: %d", len(cs))
	}
	if ks, _ := env.db.ListAPIKeys(ctx, tenant); len(ks) != 0 {
		t.Errorf("viewer created API keys: %d", len(ks))
	}

	// The API refuses the viewer's session as well.
	req, _ := http.NewRequest(http.MethodPost, env.url+"/api/v1/interviews/"+iv.ID+"/start", nil)
	req.Header.Set("X-CSRF-Token", viewer.csrf)
	if res := viewer.do(req); res.status != http.StatusForbidden {
		t.Errorf("viewer start via API: %d, want 403", res.status)
	}
}

func TestDashboardHidesOtherTenants(t *testing.T) {
	env := newDashEnv(t)
	env.setup("Acme", "olive@example.com", "correct horse battery")
	tenantA := env.tenantOf("olive@example.com")
	posA, ivA := env.seedInterview(tenantA, "Alice of A", store.StatusRunning)

	hash, _ := hashPassword("tenant b password")
	if _, _, err := env.db.CreateTenantWithOwner(context.Background(), "Beta", "bob@example.com", "Bob", hash); err != nil {
		t.Fatal(err)
	}
	bob := env.login("bob@example.com", "tenant b password")

	for _, path := range []string{"/interviews/" + ivA.ID, "/positions/" + posA.ID, "/interviews/does-not-exist", "/no-such-page"} {
		p := bob.get(path)
		wantDashStatus(t, p, http.StatusNotFound)
		if !p.has("error-page") || strings.Contains(p.body, "Alice of A") || strings.Contains(p.body, posA.Title) {
			t.Errorf("%s: 404 page missing or leaks tenant A's data", path)
		}
		if !p.has("nav") {
			t.Errorf("%s: the 404 page lost the signed-in navigation", path)
		}
	}
	list := bob.get("/interviews")
	if strings.Contains(list.body, "Alice of A") || list.has("interview-row") {
		t.Errorf("tenant B's list shows tenant A's interview")
	}
	bob.get("/positions")
	if p := bob.post("/positions/"+posA.ID, url.Values{"title": {"Hijacked"}, "questions": {"Q?"}}); p.status != http.StatusNotFound {
		t.Errorf("tenant B updating A's position: %d, want 404", p.status)
	}
	if p := bob.post("/interviews", url.Values{"position_id": {posA.ID}, "candidate_id": {ivA.CandidateID}}); p.status != http.StatusUnprocessableEntity {
		t.Errorf("tenant B scheduling with A's position: %d, want 422", p.status)
	}
	got, _ := env.db.Position(context.Background(), tenantA, posA.ID)
	if got.Title != posA.Title {
		t.Errorf("tenant A's position was changed to %q", got.Title)
	}
}

func TestDashboardPositionEditor(t *testing.T) {
	env := newDashEnv(t)
	b := env.setup("Acme", "olive@example.com", "correct horse battery")
	tenant := env.tenantOf("olive@example.com")

	b.get("/positions/new")
	bad := b.post("/positions", url.Values{
		"title": {""}, "questions": {"  \n "},
		"rubric_name": {"Clarity"}, "rubric_description": {""}, "rubric_weight": {"heavy"},
	})
	wantDashStatus(t, bad, http.StatusUnprocessableEntity)
	for _, id := range []string{"error-title", "error-rubric_weight_0"} {
		if !bad.has(id) {
			t.Errorf("no %s", id)
		}
	}
	// The dashboard accepts what the API accepts (store.Position.Validate):
	// a plan without questions, for which the interviewer asks its defaults.
	if bad.has("error-questions") {
		t.Errorf("an empty question plan was refused; the API accepts it")
	}
	wantDashRedirect(t, b.post("/positions", url.Values{"title": {"Generalist"}, "questions": {"  \n "}}), "/positions")
	if ps, _ := env.db.ListPositions(context.Background(), tenant); len(ps) != 1 || ps[0].Title != "Generalist" || len(ps[0].Questions) != 0 {
		t.Fatalf("positions after an empty plan = %+v, want Generalist with no questions", ps)
	} else if err := env.db.DeletePosition(context.Background(), tenant, ps[0].ID); err != nil {
		t.Fatal(err)
	}

	ok := b.post("/positions", url.Values{
		"title":              {"Backend engineer"},
		"description":        {"Go and SQL"},
		"questions":          {"Tell me about a system you built.\r\n\r\n  How do you test it?  \n"},
		"rubric_name":        {"Depth", "", "Communication"},
		"rubric_description": {"Knows the internals", "", ""},
		"rubric_weight":      {"2.5", "", ""},
	})
	wantDashRedirect(t, ok, "/positions")
	ps, _ := env.db.ListPositions(context.Background(), tenant)
	if len(ps) != 1 {
		t.Fatalf("positions = %d", len(ps))
	}
	p := ps[0]
	if strings.Join(p.Questions, "|") != "Tell me about a system you built.|How do you test it?" {
		t.Errorf("questions = %q", p.Questions)
	}
	want := []store.RubricItem{{Name: "Depth", Description: "Knows the internals", Weight: 2.5}, {Name: "Communication", Weight: 1}}
	if len(p.Rubric) != 2 || p.Rubric[0] != want[0] || p.Rubric[1] != want[1] {
		t.Errorf("rubric = %+v, want %+v", p.Rubric, want)
	}

	list := b.get("/positions")
	if rows := list.byTestID("position-row"); len(rows) != 1 || !list.has("flash") {
		t.Fatalf("list after create: %d rows, flash %v", len(rows), list.has("flash"))
	}

	edit := b.get("/positions/" + p.ID)
	if got := dashText(edit.byTestID("questions-input")[0]); got != "Tell me about a system you built.\nHow do you test it?" {
		t.Errorf("editor questions = %q", got)
	}
	wantDashRedirect(t, b.post("/positions/"+p.ID, url.Values{"title": {"Senior backend engineer"}, "questions": {"How do you test it?\nTell me about a system you built."}}), "/positions/"+p.ID)
	got, _ := env.db.Position(context.Background(), tenant, p.ID)
	if got.Title != "Senior backend engineer" || got.Questions[0] != "How do you test it?" || len(got.Rubric) != 0 {
		t.Errorf("after edit: %+v", got)
	}
}

func TestDashboardInterviews(t *testing.T) {
	env := newDashEnv(t)
	b := env.setup("Acme", "olive@example.com", "correct horse battery")
	tenant := env.tenantOf("olive@example.com")
	ctx := context.Background()

	b.get("/candidates")
	wantDashRedirect(t, b.post("/candidates", url.Values{"name": {"Cy <b>Candidate</b>"}, "email": {"cy@example.com"}}), "/candidates")
	dup := b.post("/candidates", url.Values{"name": {"Cy again"}, "email": {"CY@example.com"}})
	wantDashStatus(t, dup, http.StatusConflict)
	if !dup.has("error-email") {
		t.Errorf("duplicate email: no error next to the field")
	}
	b.get("/positions/new")
	wantDashRedirect(t, b.post("/positions", url.Values{"title": {"Engineer"}, "questions": {"Why?"}}), "/positions")
	ps, _ := env.db.ListPositions(ctx, tenant)
	cs, _ := env.db.ListCandidates(ctx, tenant)

	listing := b.get("/interviews")
	if !listing.has("create-interview-form") || !listing.has("interviews-empty") {
		t.Fatalf("interviews page lacks the form or the empty state")
	}
	missing := b.post("/interviews", url.Values{"position_id": {ps[0].ID}})
	wantDashStatus(t, missing, http.StatusUnprocessableEntity)
	if !missing.has("error-candidate_id") {
		t.Errorf("no error next to the candidate field")
	}
	created := b.post("/interviews", url.Values{"position_id": {ps[0].ID}, "candidate_id": {cs[0].ID}})
	if created.status != http.StatusSeeOther || !strings.HasPrefix(created.location, "/interviews/") {
		t.Fatalf("create: %d %q", created.status, created.location)
	}
	id := strings.TrimPrefix(created.location, "/interviews/")

	detail := b.get(created.location)
	wantDashStatus(t, detail, http.StatusOK)
	if got := dashText(detail.byTestID("candidate-name")[0]); !strings.Contains(got, "Cy <b>Candidate</b>") {
		t.Errorf("candidate shown as %q", got)
	}
	if strings.Contains(detail.body, "<b>Candidate</b>") {
		t.Errorf("candidate name rendered as markup")
	}
	copyBtn := detail.byTestID("copy-invite")
	if len(copyBtn) != 1 || dashAttr(copyBtn[0], "data-copy") != env.srv.inviteURL(id) {
		t.Errorf("invite link not offered for copying")
	}

	list := b.get("/interviews?status=scheduled")
	if rows := list.byTestID("interview-row"); len(rows) != 1 || dashAttr(rows[0], "data-id") != id {
		t.Errorf("scheduled filter: %d rows", len(rows))
	}
	if rows := b.get("/interviews?status=running").byTestID("interview-row"); len(rows) != 0 {
		t.Errorf("running filter shows %d rows", len(rows))
	}

	// The transcript and timeline render from the store.
	if _, err := env.db.AppendEntries(ctx, tenant, id, []store.Entry{
		{Seq: 1, Speaker: store.SpeakerInterviewer, Text: "Hello!", StartMS: 0, EndMS: 900},
		{Seq: 2, Speaker: store.SpeakerCandidate, Text: "Hi <there>", StartMS: 1200, EndMS: 2000},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.db.AppendEvent(ctx, tenant, id, "machine.launched", map[string]string{"provider": "local"}); err != nil {
		t.Fatal(err)
	}
	detail = b.get("/interviews/" + id)
	entries := detail.byTestID("transcript-entry")
	if len(entries) != 2 || dashAttr(entries[1], "data-speaker") != "candidate" || dashAttr(entries[1], "data-seq") != "2" {
		t.Fatalf("transcript entries: %d", len(entries))
	}
	if dashAttr(detail.byTestID("interview-detail")[0], "data-last-seq") != "2" {
		t.Errorf("last seq not rendered for the live view")
	}
	if len(detail.byTestID("event")) != 1 {
		t.Errorf("timeline events: %d", len(detail.byTestID("event")))
	}

	// Starting answers 501 without machines; the page's JS shows that.
	req, _ := http.NewRequest(http.MethodPost, env.url+"/api/v1/interviews/"+id+"/start", nil)
	req.Header.Set("X-CSRF-Token", b.csrf)
	if res := b.do(req); res.status != http.StatusNotImplemented {
		t.Errorf("start without machines: %d, want 501", res.status)
	}
}

func TestDashboardMembersAPIKeysAndSecrets(t *testing.T) {
	env := newDashEnv(t)
	b := env.setup("Acme", "olive@example.com", "correct horse battery")
	tenant := env.tenantOf("olive@example.com")
	ctx := context.Background()

	t.Run("owners add, re-role and remove members but not themselves", func(t *testing.T) {
		b.get("/members")
		wantDashRedirect(t, b.post("/members", url.Values{"name": {"Rae"}, "email": {"rae@example.com"}, "role": {"recruiter"}, "password": {"recruiter pw"}}), "/members")
		dup := b.post("/members", url.Values{"name": {"Rae 2"}, "email": {"rae@example.com"}, "role": {"viewer"}, "password": {"recruiter pw"}})
		wantDashStatus(t, dup, http.StatusConflict)
		rae, _ := env.db.UserByEmail(ctx, tenant, "rae@example.com")
		wantDashRedirect(t, b.post("/members/"+rae.ID+"/role", url.Values{"role": {"viewer"}}), "/members")
		if u, _ := env.db.User(ctx, tenant, rae.ID); u.Role != store.RoleViewer {
			t.Errorf("role = %s", u.Role)
		}
		me, _ := env.db.UserByEmail(ctx, tenant, "olive@example.com")
		b.post("/members/"+me.ID+"/role", url.Values{"role": {"viewer"}})
		if u, _ := env.db.User(ctx, tenant, me.ID); u.Role != store.RoleOwner {
			t.Errorf("owner demoted themselves")
		}
		wantDashRedirect(t, b.post("/members/"+rae.ID+"/delete", url.Values{}), "/members")
		if _, err := env.db.User(ctx, tenant, rae.ID); err == nil {
			t.Errorf("member not removed")
		}
	})
	t.Run("an API key's plaintext is shown once", func(t *testing.T) {
		b.get("/api-keys")
		p := b.post("/api-keys", url.Values{"name": {"ATS"}})
		wantDashStatus(t, p, http.StatusCreated)
		shown := p.byTestID("created-key-value")
		if len(shown) != 1 || !strings.HasPrefix(dashText(shown[0]), APIKeyPrefix) {
			t.Fatalf("created key not shown")
		}
		key := dashText(shown[0])
		later := b.get("/api-keys")
		if strings.Contains(later.body, key) || later.has("created-key") {
			t.Errorf("plaintext shown again")
		}
		rows := later.byTestID("key-row")
		if len(rows) != 1 {
			t.Fatalf("keys listed: %d", len(rows))
		}
		wantDashRedirect(t, b.post("/api-keys/"+dashAttr(rows[0], "data-id")+"/revoke", url.Values{}), "/api-keys")
		if !b.get("/api-keys").has("key-revoked") {
			t.Errorf("revoked key not marked")
		}
	})
	t.Run("secret values are never rendered", func(t *testing.T) {
		b.get("/settings")
		bad := b.post("/settings/secrets", url.Values{"name": {"not a name"}, "value": {"sk-value-0123456789"}})
		wantDashStatus(t, bad, http.StatusUnprocessableEntity)
		if strings.Contains(bad.body, "sk-value-0123456789") {
			t.Errorf("value echoed back on error")
		}
		wantDashRedirect(t, b.post("/settings/secrets", url.Values{"name": {"OPENAI_API_KEY"}, "value": {"sk-value-0123456789"}}), "/settings")
		p := b.get("/settings")
		if strings.Contains(p.body, "sk-value-0123456789") {
			t.Errorf("settings page shows the secret's value")
		}
		rows := p.byTestID("secret-row")
		if len(rows) != 1 || dashAttr(rows[0], "data-name") != "OPENAI_API_KEY" || !strings.HasPrefix(dashText(p.byTestID("secret-state")[0]), "set · updated") {
			t.Fatalf("secret not listed as set")
		}
		if v, _ := env.db.Secret(ctx, tenant, "OPENAI_API_KEY"); v != "sk-value-0123456789" {
			t.Errorf("stored value = %q", v)
		}
		wantDashRedirect(t, b.post("/settings/secrets/delete", url.Values{"name": {"OPENAI_API_KEY"}}), "/settings")
		if !b.get("/settings").has("secrets-empty") {
			t.Errorf("deleted secret still listed")
		}
	})
}

func TestDashboardStaticAssets(t *testing.T) {
	env := newDashEnv(t)
	b := env.browser()
	tests := []struct {
		name, path, cache string
		status            int
	}{
		{"the current version is cached for a year", "/static/app.css?v=" + assetVersion(), "public, max-age=31536000, immutable", http.StatusOK},
		{"an unversioned asset is revalidated", "/static/live.js", "public, max-age=0, must-revalidate", http.StatusOK},
		{"a missing asset is 404", "/static/nope.js", "", http.StatusNotFound},
		{"paths cannot climb out of the asset folder", "/static/../dash_routes.go", "", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := b.c.Get(env.url + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			if tt.cache != "" && res.Header.Get("Cache-Control") != tt.cache {
				t.Errorf("Cache-Control = %q, want %q", res.Header.Get("Cache-Control"), tt.cache)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodGet, env.url+"/static/app.js", nil)
	req.Header.Set("If-None-Match", `"`+assetVersion()+`"`)
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", res.StatusCode)
	}
}
