package web

// The attack suite: the real control plane (SQLite file, real hub, fake
// machines), two tenants (Acme is the victim, Bobco the attacker) and all
// three roles in each, and a table of requests an attacker would try. Each
// row names the request and the refusal it must get; after every row the
// victim's data must be exactly as it was (nothing written, nothing leaked).
//
// HOW TO ADD A ROW (every route needs at least one; TestAttackEveryRouteHasARow
// fails and names the routes without one):
//  1. Append an attackRow in attackRows below (or in your own file, in a
//     func returning []attackRow added to attackRowSets). Set route to the
//     route exactly as registered ("POST /api/v1/interviews/:id/start";
//     "* /p/:id" for a route registered for every method).
//  2. Write name as a sentence: "a viewer cannot start an interview".
//  3. Build req from the world w: w.a is the victim tenant, w.b the attacker;
//     each has owner/recruiter/viewer sessions (session cookie + CSRF), the
//     owner's API key (Key), and one object of every kind (positionID,
//     candidateID, interviewID scheduled, running with its processor and
//     candidate tokens, an ended one, a cancelled one, memberID, apiKeyID;
//     w.invite(id) is an interview's invite token). Use attackAs(sess)
//     for a session with its CSRF token, attackNoCSRF(sess) without it,
//     request.Key for an API key or processor token, attackForm for a
//     dashboard form post.
//  4. Set want (the status) and, for JSON answers, code. Add check for
//     anything else the answer must (not) hold; the suite already asserts
//     that the answer holds none of the victim's marker strings (unless the
//     row sets leakOK, for rows where the victim itself asks) and that the
//     victim's stored data did not change (unless mutates is set).
//
// A row that cannot be expressed as one request (XSS across pages,
// WebSocket origins, slow clients) gets its own Test func named
// TestAttack… (a page showing user-editable fields: add it to
// TestAttackXSS), citing the route it covers in attackCoveredBy. Every
// body-taking route is also sent an oversized form automatically
// (TestAttackEveryRouteRefusesAnOversizedForm); JSON routes need their own
// oversized/malformed rows (attackBodyRows shows how). Hole-specific tests
// of issue 9 live in holes_test.go, login_test.go, revoke_test.go,
// tenantsecrets_test.go, alsofound_test.go and processor/attack_test.go.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"candor/processor/contract"
	"candor/store"
)

// attackTenant is one tenant of the attack world, with a credential for
// every role and an object of every kind.
type attackTenant struct {
	tenant
	Name                         string
	owner, recruiter, viewer     session
	positionID, candidateID      string
	interviewID                  string // scheduled
	runningID                    string // running, on a fake machine
	processorToken, candidateTok string // of runningID (processorToken: its machine's bridge token)
	clientToken                  string // of runningID: the start answer's processor.token
	endedID                      string // completed
	cancelledID                  string
	memberID                     string // a recruiter other than the owner
	apiKeyID                     string
	// markers are strings only this tenant's data holds: an answer to the
	// other tenant must contain none of them.
	markers []string
}

type attackWorld struct {
	e    *testEnv
	a, b attackTenant // a: the victim, b: the attacker
}

func newAttackWorld(t *testing.T) *attackWorld {
	t.Helper()
	e := newAttackEnv(t)
	w := &attackWorld{e: e}
	w.a = w.newTenant(t, "Acme")
	w.b = w.newTenant(t, "Bobco")
	return w
}

// newAttackEnv is a test env whose client sees every answer as sent: a
// redirect is a row's result, not followed.
func newAttackEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	e := newTestEnv(t, opts...)
	e.ts.Client().CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return e
}

func (w *attackWorld) newTenant(t *testing.T, name string) attackTenant {
	t.Helper()
	e := w.e
	ctx := context.Background()
	at := attackTenant{tenant: e.tenant(t, name), Name: name}
	at.owner = e.login(t, at.tenant, store.RoleOwner)
	at.recruiter = e.login(t, at.tenant, store.RoleRecruiter)
	at.viewer = e.login(t, at.tenant, store.RoleViewer)
	marker := "secret-of-" + strings.ToLower(name)
	var p, c, iv idJSON
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/positions", Key: at.Key, Body: map[string]any{
		"title": "Position " + marker, "description": "about " + marker,
		"questions": []string{"Question " + marker + "?"},
		"rubric":    []map[string]any{{"name": "Go", "description": "knows Go", "weight": 1}},
	}}, &p)
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/candidates", Key: at.Key, Body: map[string]any{
		"name": "Candidate " + marker, "email": marker + "@example.com",
	}}, &c)
	newIV := func() string {
		e.must(t, 201, request{Method: "POST", Path: "/api/v1/interviews", Key: at.Key, Body: map[string]any{
			"position_id": p.ID, "candidate_id": c.ID,
		}}, &iv)
		return iv.ID
	}
	at.positionID, at.candidateID = p.ID, c.ID
	at.interviewID = newIV()
	at.runningID = newIV()
	st := e.start(t, at.tenant, at.runningID)
	at.processorToken = st.Bridge
	at.clientToken = st.Processor.Token
	at.candidateTok = contract.CandidateToken(st.Processor.Token, at.runningID)
	if res := e.postEntries(t, at.runningID, at.processorToken, entry(1, "Transcript "+marker)); res.Status != 200 {
		t.Fatalf("post entries: %d %s", res.Status, res.Body)
	}
	at.endedID = newIV()
	e.start(t, at.tenant, at.endedID)
	e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + at.endedID + "/end", Key: at.Key}, nil)
	at.cancelledID = newIV()
	e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + at.cancelledID + "/cancel", Key: at.Key}, nil)

	hash, err := hashPassword("member password")
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.db.CreateUser(ctx, at.ID, "member-"+marker+"@example.com", "Member "+marker, store.RoleRecruiter, hash)
	if err != nil {
		t.Fatal(err)
	}
	at.memberID = u.ID
	keys, err := e.db.ListAPIKeys(ctx, at.ID)
	if err != nil || len(keys) == 0 {
		t.Fatalf("api keys of %s: %v", name, err)
	}
	at.apiKeyID = keys[0].ID
	if err := e.db.SetSecret(ctx, at.ID, "OPENAI_API_KEY", "sk-"+marker); err != nil {
		t.Fatal(err)
	}
	at.markers = []string{marker, at.Key, at.processorToken, at.clientToken, at.candidateTok, e.srv.inviteToken(at.runningID), "sk-" + marker}
	return at
}

// invite is the invite token of one of t's interviews.
func (w *attackWorld) invite(id string) string { return w.e.srv.inviteToken(id) }

// attackAs sends r with s's session cookie and CSRF token.
func attackAs(s session, r request) request {
	r.Session, r.CSRF = &s, s.CSRF
	return r
}

// attackNoCSRF sends r with s's session cookie but no CSRF token.
func attackNoCSRF(s session, r request) request {
	r.Session = &s
	return r
}

// attackForm makes r a form post (as a dashboard page would send it).
func attackForm(r request, form url.Values) request {
	r.Body, r.ContentType = form.Encode(), "application/x-www-form-urlencoded"
	if r.Header == nil {
		r.Header = map[string]string{}
	}
	r.Header["Accept"] = "text/html"
	return r
}

// attackRow is one attack: a request and the refusal it must get.
type attackRow struct {
	route string // as registered: "POST /api/v1/positions"; "* /p/:id" for every method
	name  string // a sentence: "a viewer cannot start an interview"
	req   request
	want  int    // status
	code  string // JSON error code, when the answer is JSON
	// check asserts anything else about the answer.
	check func(t *testing.T, w *attackWorld, res response)
	// leakOK: the victim itself asks (e.g. a viewer of tenant a), so its
	// markers may appear in the answer.
	leakOK bool
	// mutates: the row is allowed to change the victim's data (say what
	// it checks instead in check).
	mutates bool
}

// attackRowSets are the row builders; add yours here.
var attackRowSets = []func(w *attackWorld) []attackRow{
	attackRows,
	attackRecordRows,
}

// attackCoveredBy lists routes covered by a dedicated TestAttack… func
// rather than a row, with the name of that func.
var attackCoveredBy = map[string]string{}

func attackRows(w *attackWorld) []attackRow {
	a, b := w.a, w.b
	pos := map[string]any{"title": "Hijacked", "description": "x", "questions": []string{"q?"},
		"rubric": []map[string]any{{"name": "n", "description": "d", "weight": 1}}}
	rows := []attackRow{
		// Health and assets answer anyone and hold nothing.
		{route: "GET /healthz", name: "healthz says only ok", req: request{Method: "GET", Path: "/healthz"}, want: 200,
			check: func(t *testing.T, w *attackWorld, res response) {
				if strings.TrimSpace(string(res.Body)) != `{"status":"ok"}` {
					t.Errorf("healthz body %s", res.Body)
				}
			}},
		{route: "GET /static/*", name: "static paths cannot climb out of the asset folder",
			req: request{Method: "GET", Path: "/static/..%2f..%2fattack_test.go"}, want: 404},
		{route: "HEAD /static/*", name: "HEAD of a missing asset is 404", req: request{Method: "HEAD", Path: "/static/nope.js"}, want: 404},

		// Cross-tenant IDs, every object kind, API key and session.
		{route: "GET /api/v1/positions/:id", name: "B cannot read A's position",
			req: request{Method: "GET", Path: "/api/v1/positions/" + a.positionID, Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "PUT /api/v1/positions/:id", name: "B cannot update A's position",
			req: request{Method: "PUT", Path: "/api/v1/positions/" + a.positionID, Key: b.Key, Body: pos}, want: 404, code: CodeNotFound},
		{route: "GET /api/v1/candidates/:id", name: "B cannot read A's candidate",
			req: request{Method: "GET", Path: "/api/v1/candidates/" + a.candidateID, Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "GET /api/v1/interviews/:id", name: "B cannot read A's interview",
			req: attackAs(b.owner, request{Method: "GET", Path: "/api/v1/interviews/" + a.runningID}), want: 404, code: CodeNotFound},
		{route: "GET /api/v1/interviews/:id/transcript", name: "B cannot read A's transcript",
			req: request{Method: "GET", Path: "/api/v1/interviews/" + a.runningID + "/transcript", Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "GET /api/v1/interviews/:id/events", name: "B cannot read A's events",
			req: request{Method: "GET", Path: "/api/v1/interviews/" + a.runningID + "/events", Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "GET /api/v1/interviews/:id/recording", name: "B cannot download A's recording",
			req: request{Method: "GET", Path: "/api/v1/interviews/" + a.endedID + "/recording", Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "GET /api/v1/interviews/:id/video", name: "B cannot download A's video",
			req: request{Method: "GET", Path: "/api/v1/interviews/" + a.endedID + "/video", Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "POST /api/v1/interviews/:id/start", name: "B cannot start A's interview",
			req: request{Method: "POST", Path: "/api/v1/interviews/" + a.interviewID + "/start", Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "POST /api/v1/interviews/:id/end", name: "B cannot end A's running interview",
			req: request{Method: "POST", Path: "/api/v1/interviews/" + a.runningID + "/end", Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "POST /api/v1/interviews/:id/cancel", name: "B cannot cancel A's interview",
			req: request{Method: "POST", Path: "/api/v1/interviews/" + a.interviewID + "/cancel", Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "POST /api/v1/interviews", name: "B cannot schedule with A's position and candidate",
			req: request{Method: "POST", Path: "/api/v1/interviews", Key: b.Key, Body: map[string]any{
				"position_id": a.positionID, "candidate_id": a.candidateID}}, want: 404, code: CodeNotFound},
		{route: "GET /api/v1/positions", name: "B's position list holds none of A's",
			req: request{Method: "GET", Path: "/api/v1/positions", Key: b.Key}, want: 200},
		{route: "GET /api/v1/candidates", name: "B's candidate list holds none of A's",
			req: request{Method: "GET", Path: "/api/v1/candidates", Key: b.Key}, want: 200},
		{route: "GET /api/v1/interviews", name: "B's interview list holds none of A's",
			req: request{Method: "GET", Path: "/api/v1/interviews", Key: b.Key}, want: 200},

		// Roles: viewers read, never write.
		{route: "POST /api/v1/positions", name: "a viewer cannot create a position",
			req: attackAs(a.viewer, request{Method: "POST", Path: "/api/v1/positions", Body: pos}), want: 403, code: CodeForbidden},
		{route: "POST /api/v1/candidates", name: "a viewer cannot create a candidate",
			req: attackAs(a.viewer, request{Method: "POST", Path: "/api/v1/candidates", Body: map[string]any{"name": "x", "email": "x@example.com"}}), want: 403, code: CodeForbidden},
		{route: "POST /api/v1/interviews/:id/start", name: "a viewer cannot start an interview",
			req: attackAs(a.viewer, request{Method: "POST", Path: "/api/v1/interviews/" + a.interviewID + "/start"}), want: 403, code: CodeForbidden},
		{route: "POST /api/v1/interviews/:id/end", name: "a viewer cannot end an interview",
			req: attackAs(a.viewer, request{Method: "POST", Path: "/api/v1/interviews/" + a.runningID + "/end"}), want: 403, code: CodeForbidden},

		// CSRF: a session cookie alone never writes.
		{route: "POST /api/v1/positions", name: "a cookie without CSRF cannot create a position",
			req: attackNoCSRF(a.owner, request{Method: "POST", Path: "/api/v1/positions", Body: pos}), want: 403, code: CodeForbidden},
		{route: "POST /api/v1/interviews/:id/start", name: "a cookie without CSRF cannot start an interview",
			req: attackNoCSRF(a.owner, request{Method: "POST", Path: "/api/v1/interviews/" + a.interviewID + "/start"}), want: 403, code: CodeForbidden},
		{route: "POST /interviews", name: "the dashboard refuses a form without CSRF",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: "/interviews"}), url.Values{"position_id": {a.positionID}, "candidate_id": {a.candidateID}}), want: 403},
		{route: "POST /positions", name: "a position form without CSRF is refused",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: "/positions"}), url.Values{"title": {"x"}}), want: 403},
		{route: "POST /positions/:id", name: "a position edit without CSRF is refused",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: "/positions/" + a.positionID}), url.Values{"title": {"x"}}), want: 403},
		{route: "POST /candidates", name: "a candidate form without CSRF is refused",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: "/candidates"}), url.Values{"name": {"x"}, "email": {"x@example.com"}}), want: 403},
		{route: "POST /members", name: "adding a member without CSRF is refused",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: "/members"}), url.Values{"name": {"x"}, "email": {"x@example.com"}, "role": {"owner"}, "password": {"longenough"}}), want: 403},
		{route: "POST /members/:id/role", name: "a role change without CSRF is refused",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: "/members/" + a.memberID + "/role"}), url.Values{"role": {"owner"}}), want: 403},
		{route: "POST /members/:id/delete", name: "removing a member without CSRF is refused",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: "/members/" + a.memberID + "/delete"}), url.Values{}), want: 403},
		{route: "POST /api-keys", name: "creating an API key without CSRF is refused",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: "/api-keys"}), url.Values{"name": {"x"}}), want: 403},
		{route: "POST /api-keys/:id/revoke", name: "revoking an API key without CSRF is refused",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: "/api-keys/" + a.apiKeyID + "/revoke"}), url.Values{}), want: 403},
		{route: "POST /settings/secrets", name: "setting a secret without CSRF is refused",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: "/settings/secrets"}), url.Values{"name": {"OPENAI_API_KEY"}, "value": {"x"}}), want: 403},
		{route: "POST /settings/secrets/delete", name: "deleting a secret without CSRF is refused",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: "/settings/secrets/delete"}), url.Values{"name": {"OPENAI_API_KEY"}}), want: 403},
		{route: "POST /logout", name: "a cross-site logout without CSRF is refused",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: "/logout"}), url.Values{}), want: 403},
		{route: "POST /login", name: "a login form without its pre-session token is refused",
			req: attackForm(request{Method: "POST", Path: "/login"}, url.Values{"email": {"acme@example.com"}, "password": {"correct horse battery"}}), want: 403},
		{route: "POST /setup", name: "setup once users exist goes nowhere",
			req: attackForm(request{Method: "POST", Path: "/setup"}, url.Values{"org": {"Evil"}, "name": {"E"}, "email": {"e@example.com"}, "password": {"longenough"}}), want: 303},

		// Cross-tenant IDs on the dashboard: 404, never 403.
		{route: "GET /interviews/:id", name: "B's dashboard cannot open A's interview",
			req: attackAs(b.owner, request{Method: "GET", Path: "/interviews/" + a.runningID}), want: 404},
		{route: "GET /positions/:id", name: "B's dashboard cannot open A's position",
			req: attackAs(b.owner, request{Method: "GET", Path: "/positions/" + a.positionID}), want: 404},
		{route: "POST /positions/:id", name: "B's dashboard cannot edit A's position",
			req: attackForm(attackAs(b.owner, request{Method: "POST", Path: "/positions/" + a.positionID}), url.Values{"_csrf": {b.owner.CSRF}, "title": {"Hijacked"}}), want: 404},
		{route: "POST /interviews", name: "B's dashboard cannot schedule with A's objects",
			req: attackForm(attackAs(b.owner, request{Method: "POST", Path: "/interviews"}), url.Values{"_csrf": {b.owner.CSRF}, "position_id": {a.positionID}, "candidate_id": {a.candidateID}}), want: 422},
		{route: "POST /members/:id/role", name: "B cannot change the role of A's member",
			req: attackForm(attackAs(b.owner, request{Method: "POST", Path: "/members/" + a.memberID + "/role"}), url.Values{"_csrf": {b.owner.CSRF}, "role": {"viewer"}}), want: 404},
		{route: "POST /members/:id/delete", name: "B cannot remove A's member",
			req: attackForm(attackAs(b.owner, request{Method: "POST", Path: "/members/" + a.memberID + "/delete"}), url.Values{"_csrf": {b.owner.CSRF}}), want: 404},
		{route: "POST /api-keys/:id/revoke", name: "B cannot revoke A's API key",
			req: attackForm(attackAs(b.owner, request{Method: "POST", Path: "/api-keys/" + a.apiKeyID + "/revoke"}), url.Values{"_csrf": {b.owner.CSRF}}), want: 404},
		{route: "POST /settings/secrets/delete", name: "B deleting a secret name A has touches only B",
			req: attackForm(attackAs(b.owner, request{Method: "POST", Path: "/settings/secrets/delete"}), url.Values{"_csrf": {b.owner.CSRF}, "name": {"OPENAI_API_KEY"}}), want: 303},
		{route: "GET /interviews", name: "B's interview list shows none of A's",
			req: attackAs(b.owner, request{Method: "GET", Path: "/interviews"}), want: 200},
		{route: "GET /positions", name: "B's position list shows none of A's",
			req: attackAs(b.owner, request{Method: "GET", Path: "/positions"}), want: 200},
		{route: "GET /positions/new", name: "the new-position page shows nothing of A's to B",
			req: attackAs(b.owner, request{Method: "GET", Path: "/positions/new"}), want: 200},
		{route: "GET /candidates", name: "B's candidate list shows none of A's",
			req: attackAs(b.owner, request{Method: "GET", Path: "/candidates"}), want: 200},
		{route: "GET /members", name: "B's member list shows none of A's",
			req: attackAs(b.owner, request{Method: "GET", Path: "/members"}), want: 200},
		{route: "GET /api-keys", name: "B's API key list shows none of A's",
			req: attackAs(b.owner, request{Method: "GET", Path: "/api-keys"}), want: 200},
		{route: "GET /settings", name: "B's settings show none of A's secrets",
			req: attackAs(b.owner, request{Method: "GET", Path: "/settings"}), want: 200},
		{route: "GET /", name: "the root sends a stranger to sign in",
			req: request{Method: "GET", Path: "/"}, want: 303},
		{route: "GET /login", name: "the login page renders for a stranger",
			req: request{Method: "GET", Path: "/login"}, want: 200},
		{route: "GET /setup", name: "setup is closed once users exist",
			req: request{Method: "GET", Path: "/setup"}, want: 303},

		// Roles on the dashboard.
		{route: "POST /members", name: "a recruiter cannot add members",
			req: attackForm(attackAs(a.recruiter, request{Method: "POST", Path: "/members"}), url.Values{"_csrf": {a.recruiter.CSRF}, "name": {"x"}, "email": {"x@example.com"}, "role": {"owner"}, "password": {"longenough"}}), want: 403},
		{route: "POST /settings/secrets", name: "a recruiter cannot set secrets",
			req: attackForm(attackAs(a.recruiter, request{Method: "POST", Path: "/settings/secrets"}), url.Values{"_csrf": {a.recruiter.CSRF}, "name": {"OPENAI_API_KEY"}, "value": {"x"}}), want: 403},
		{route: "POST /api-keys", name: "a viewer cannot create API keys",
			req: attackForm(attackAs(a.viewer, request{Method: "POST", Path: "/api-keys"}), url.Values{"_csrf": {a.viewer.CSRF}, "name": {"x"}}), want: 403},
		{route: "POST /candidates", name: "a viewer cannot add candidates",
			req: attackForm(attackAs(a.viewer, request{Method: "POST", Path: "/candidates"}), url.Values{"_csrf": {a.viewer.CSRF}, "name": {"x"}, "email": {"x@example.com"}}), want: 403},
		{route: "POST /positions", name: "a viewer cannot add positions",
			req: attackForm(attackAs(a.viewer, request{Method: "POST", Path: "/positions"}), url.Values{"_csrf": {a.viewer.CSRF}, "title": {"x"}}), want: 403},

		// Bridge: a processor token works for its own interview only.
		{route: "POST /api/v1/bridge/interviews/:id/entries", name: "B's processor token cannot post entries to A's interview",
			req: request{Method: "POST", Path: "/api/v1/bridge/interviews/" + a.runningID + "/entries", Key: b.processorToken,
				Body: map[string]any{"entries": []any{entry(2, "injected")}}}, want: 401, code: CodeUnauthorized},
		{route: "POST /api/v1/bridge/interviews/:id/events", name: "B's processor token cannot post events to A's interview",
			req: request{Method: "POST", Path: "/api/v1/bridge/interviews/" + a.runningID + "/events", Key: b.processorToken,
				Body: map[string]any{"type": "ended"}}, want: 401, code: CodeUnauthorized},
		{route: "GET /api/v1/bridge/interviews/:id/state", name: "B's processor token cannot read A's interview state",
			req: request{Method: "GET", Path: "/api/v1/bridge/interviews/" + a.runningID + "/state", Key: b.processorToken}, want: 401, code: CodeUnauthorized},
		{route: "PUT /api/v1/bridge/interviews/:id/recording", name: "B's processor token cannot upload A's recording",
			req: request{Method: "PUT", Path: "/api/v1/bridge/interviews/" + a.runningID + "/recording", Key: b.processorToken,
				ContentType: "audio/ogg", Body: oggBytes(100)}, want: 401, code: CodeUnauthorized},
		{route: "POST /api/v1/bridge/interviews/:id/entries", name: "a candidate token is not a processor token",
			req: request{Method: "POST", Path: "/api/v1/bridge/interviews/" + a.runningID + "/entries", Key: a.candidateTok,
				Body: map[string]any{"entries": []any{entry(2, "injected")}}}, want: 401, code: CodeUnauthorized},
		{route: "POST /api/v1/bridge/interviews/:id/entries", name: "the interview's client token is not a bridge credential",
			req: request{Method: "POST", Path: "/api/v1/bridge/interviews/" + a.runningID + "/entries", Key: a.clientToken,
				Body: map[string]any{"entries": []any{entry(2, "injected")}}}, want: 401, code: CodeUnauthorized},
		{route: "PUT /api/v1/bridge/interviews/:id/recording", name: "the interview's client token cannot upload a recording",
			req: request{Method: "PUT", Path: "/api/v1/bridge/interviews/" + a.runningID + "/recording", Key: a.clientToken,
				ContentType: "audio/ogg", Body: oggBytes(100)}, want: 401, code: CodeUnauthorized},
		{route: "POST /api/v1/bridge/interviews/:id/events", name: "an API key is not a processor token",
			req: request{Method: "POST", Path: "/api/v1/bridge/interviews/" + a.runningID + "/events", Key: a.Key,
				Body: map[string]any{"type": "ended"}}, want: 401, code: CodeUnauthorized},
		{route: "POST /api/v1/bridge/interviews/:id/entries", name: "a processor token is dead once its interview ended",
			req: request{Method: "POST", Path: "/api/v1/bridge/interviews/" + a.endedID + "/entries", Key: a.processorToken,
				Body: map[string]any{"entries": []any{entry(2, "late")}}}, want: 401, code: CodeUnauthorized},
		{route: "POST /api/v1/bridge/interviews/:id/events", name: "B's processor token cannot drain A's processor",
			req: request{Method: "POST", Path: "/api/v1/bridge/interviews/" + a.runningID + "/events", Key: b.processorToken,
				Body: map[string]any{"type": "drained"}}, want: 401, code: CodeUnauthorized},
		{route: "POST /api/v1/bridge/interviews/:id/events", name: "the current processor cannot say drained (only a retired one drains)",
			req: request{Method: "POST", Path: "/api/v1/bridge/interviews/" + a.runningID + "/events", Key: a.processorToken,
				Body: map[string]any{"type": "drained"}}, want: 409, code: CodeConflict},

		// The processor route: another interview's token does not pass,
		// and the candidate token cannot end an interview.
		{route: "* /p/:id", name: "the processor route of an unknown interview is 404",
			req: request{Method: "GET", Path: "/p/int_nope"}, want: 404, code: CodeNotFound},
		{route: "* /p/:id/*", name: "a candidate token cannot end the interview through the processor route",
			req: request{Method: "POST", Path: "/p/" + a.runningID + "/end", Key: a.candidateTok}, want: 401},
		{route: "* /p/:id/*", name: "the processor route of an ended interview is 404",
			req: request{Method: "POST", Path: "/p/" + a.endedID + "/end", Key: a.processorToken}, want: 404, code: CodeNotFound},

		// Candidate pages: the invite token is the credential; posts must
		// come from this site.
		{route: "GET /i/:token", name: "an unknown invite token is 404",
			req: request{Method: "GET", Path: "/i/not-a-token"}, want: 404},
		{route: "POST /i/:token/consent", name: "a cross-site consent post is refused",
			req: request{Method: "POST", Path: "/i/" + w.invite(a.interviewID) + "/consent", Header: map[string]string{"Origin": "http://evil.test"}}, want: 403, leakOK: true},
		{route: "POST /i/:token/join", name: "a cross-site join is refused",
			req: request{Method: "POST", Path: "/i/" + w.invite(a.interviewID) + "/join", Header: map[string]string{"Origin": "http://evil.test"}}, want: 403, leakOK: true},
		{route: "POST /i/:token/end", name: "a cross-site end is refused",
			req: request{Method: "POST", Path: "/i/" + w.invite(a.runningID) + "/end", Header: map[string]string{"Origin": "http://evil.test"}}, want: 403, leakOK: true},
		{route: "PUT /i/:token/video", name: "a cross-site video upload is refused",
			req: request{Method: "PUT", Path: "/i/" + w.invite(a.runningID) + "/video", ContentType: "video/webm", Body: "x",
				Header: map[string]string{"Origin": "http://evil.test"}}, want: 403, leakOK: true},
		{route: "POST /i/:token/join", name: "B's invite token cannot join A's interview",
			req: request{Method: "POST", Path: "/i/" + w.invite(b.interviewID) + "x/join"}, want: 404},

		// The realtime endpoint needs a credential.
		{route: "GET /api/v1/realtime", name: "the realtime endpoint refuses strangers",
			req: request{Method: "GET", Path: "/api/v1/realtime"}, want: 401, code: CodeUnauthorized},
		{route: "GET /api/v1/realtime", name: "a cookie WebSocket from another site is refused",
			req: attackAs(a.owner, request{Method: "GET", Path: "/api/v1/realtime", Header: map[string]string{
				"Origin": "http://evil.test", "Upgrade": "websocket", "Connection": "Upgrade",
				"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}}), want: 403, code: CodeForbidden},

		// /metrics is the operator's (TestMetricsNeedTheOperatorsToken).
		{route: "GET /metrics", name: "metrics are not served to strangers",
			req: request{Method: "GET", Path: "/metrics"}, want: 404},
		{route: "GET /metrics", name: "metrics are not served to a tenant's API key",
			req: request{Method: "GET", Path: "/metrics", Key: b.Key}, want: 404},
		{route: "GET /api/v1/realtime", name: "a cookie WebSocket from https://this-host to an http server is refused",
			req: attackAs(a.owner, request{Method: "GET", Path: "/api/v1/realtime", Header: map[string]string{
				"Origin": "https://" + strings.TrimPrefix(w.e.ts.URL, "http://"), "Upgrade": "websocket", "Connection": "Upgrade",
				"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}}), want: 403, code: CodeForbidden},
		{route: "GET /login", name: "a signed-in login page never redirects off-site",
			req: attackAs(a.owner, request{Method: "GET", Path: "/login?next=/%09/evil.test/x"}), want: 303, leakOK: true,
			check: func(t *testing.T, w *attackWorld, res response) {
				if loc := res.Header.Get("Location"); loc != "/interviews" {
					t.Errorf("Location %q, want /interviews", loc)
				}
			}},
		{route: "POST /login", name: "a 200 KiB login form is refused before it is parsed",
			req: request{Method: "POST", Path: "/login", ContentType: "application/x-www-form-urlencoded",
				Body: "email=a&password=" + strings.Repeat("x", 200<<10)}, want: 413},
		{route: "GET /api/v1/interviews/:id", name: "a viewer's interview holds no invite link",
			req: attackAs(a.viewer, request{Method: "GET", Path: "/api/v1/interviews/" + a.interviewID}), want: 200, leakOK: true,
			check: func(t *testing.T, w *attackWorld, res response) {
				if strings.Contains(string(res.Body), "invite_url") || strings.Contains(string(res.Body), w.invite(w.a.interviewID)) {
					t.Errorf("a viewer sees the invite link: %s", res.Body)
				}
			}},
		{route: "POST /i/:token/end", name: "ending a cancelled interview again stores nothing",
			req: request{Method: "POST", Path: "/i/" + w.invite(a.cancelledID) + "/end", Header: map[string]string{"Origin": w.e.srv.cfg.PublicURL}}, want: 409, leakOK: true},
	}
	rows = append(rows, attackBodyRows(w)...)
	return rows
}

// attackBodyRows sends oversized and malformed bodies to every route that
// takes a JSON body.
func attackBodyRows(w *attackWorld) []attackRow {
	a := w.a
	big := `{"title":"` + strings.Repeat("x", 2<<20) + `"}`
	jsonRoutes := []struct {
		route string
		req   request
	}{
		{"POST /api/v1/positions", request{Method: "POST", Path: "/api/v1/positions", Key: a.Key}},
		{"PUT /api/v1/positions/:id", request{Method: "PUT", Path: "/api/v1/positions/" + a.positionID, Key: a.Key}},
		{"POST /api/v1/candidates", request{Method: "POST", Path: "/api/v1/candidates", Key: a.Key}},
		{"POST /api/v1/interviews", request{Method: "POST", Path: "/api/v1/interviews", Key: a.Key}},
		{"POST /api/v1/bridge/interviews/:id/entries", request{Method: "POST", Path: "/api/v1/bridge/interviews/" + a.runningID + "/entries", Key: a.processorToken}},
		{"POST /api/v1/bridge/interviews/:id/events", request{Method: "POST", Path: "/api/v1/bridge/interviews/" + a.runningID + "/events", Key: a.processorToken}},
	}
	var rows []attackRow
	for _, jr := range jsonRoutes {
		malformed, oversized, wrongType := jr.req, jr.req, jr.req
		malformed.Body = `{"title": `
		oversized.Body = big
		if strings.Contains(jr.route, "/bridge/") {
			oversized.Body = `{"entries":[` + strings.Repeat(`{"seq":1,"speaker":"candidate","text":"`+strings.Repeat("x", 1<<16)+`"},`, 160) + `{}]}`
		}
		wrongType.Body, wrongType.ContentType = "title=x", "application/x-www-form-urlencoded"
		rows = append(rows,
			attackRow{route: jr.route, name: "a malformed JSON body to " + jr.route + " is a 400", req: malformed, want: 400, code: CodeBadRequest, leakOK: true},
			attackRow{route: jr.route, name: "an oversized body to " + jr.route + " is a 413", req: oversized, want: 413, code: CodePayloadTooLarge, leakOK: true},
			attackRow{route: jr.route, name: "a form body to JSON route " + jr.route + " is a 415", req: wrongType, want: 415, code: CodeUnsupportedMedia, leakOK: true},
		)
	}
	return rows
}

// attackFingerprint is everything the victim has stored, to show that an
// attack changed nothing.
func (w *attackWorld) attackFingerprint(t *testing.T, tn attackTenant) string {
	t.Helper()
	ctx := context.Background()
	db := w.e.db
	var parts []any
	add := func(v any, err error) {
		if err != nil {
			t.Fatalf("fingerprint: %v", err)
		}
		parts = append(parts, v)
	}
	add(db.ListPositions(ctx, tn.ID))
	add(db.ListCandidates(ctx, tn.ID))
	ivs, err := db.ListInterviews(ctx, tn.ID, store.InterviewFilter{})
	add(ivs, err)
	for _, iv := range ivs {
		add(db.Events(ctx, tn.ID, iv.ID))
		add(db.Entries(ctx, tn.ID, iv.ID, 0))
	}
	add(db.ListUsers(ctx, tn.ID))
	add(db.ListAPIKeys(ctx, tn.ID))
	add(db.Secrets(ctx, tn.ID))
	raw, err := json.Marshal(parts)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestAttack(t *testing.T) {
	w := newAttackWorld(t)
	var rows []attackRow
	for _, set := range attackRowSets {
		rows = append(rows, set(w)...)
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			before := w.attackFingerprint(t, w.a)
			res := w.e.do(t, row.req)
			if res.Status != row.want {
				t.Fatalf("%s %s: status %d, want %d: %.300s", row.req.Method, row.req.Path, res.Status, row.want, res.Body)
			}
			if row.code != "" && res.errorCode() != row.code {
				t.Errorf("error code %q, want %q: %.300s", res.errorCode(), row.code, res.Body)
			}
			if !row.leakOK {
				for _, m := range w.a.markers {
					if strings.Contains(string(res.Body), m) {
						t.Errorf("the answer leaks the victim's %q", m)
					}
				}
			}
			if row.check != nil {
				row.check(t, w, res)
			}
			if !row.mutates {
				if after := w.attackFingerprint(t, w.a); after != before {
					t.Errorf("the victim's data changed:\nbefore %s\nafter  %s", before, after)
				}
			}
		})
	}
}

// TestAttackEveryRouteHasARow fails for a route with no attack row: add
// one (see the top of this file).
func TestAttackEveryRouteHasARow(t *testing.T) {
	w := newAttackWorld(t)
	covered := map[string]bool{}
	for _, set := range attackRowSets {
		for _, row := range set(w) {
			covered[row.route] = true
		}
	}
	for route := range attackCoveredBy {
		covered[route] = true
	}
	var missing []string
	for _, r := range w.e.srv.e.Routes() {
		if r.Method == "echo_route_not_found" {
			continue
		}
		key := r.Method + " " + r.Path
		if !covered[key] && !covered["* "+r.Path] {
			missing = append(missing, key)
		}
	}
	sort.Strings(missing)
	missing = slices.Compact(missing)
	if len(missing) > 0 {
		t.Errorf("routes without an attack row (add one to web/attack_test.go):\n%s", strings.Join(missing, "\n"))
	}
	for route := range covered {
		method, path, _ := strings.Cut(route, " ")
		found := false
		for _, r := range w.e.srv.e.Routes() {
			if r.Path == path && (method == "*" || r.Method == method) {
				found = true
			}
		}
		if !found {
			t.Errorf("attack row for %q names no registered route", route)
		}
	}
}

// attackXSS is stored in every user-editable field; no page may carry it
// unescaped.
const attackXSS = `"'><script>alert(1)</script><img src=x onerror=alert(2)>`

// TestAttackXSS stores the payload in every field a user can edit, then
// renders every page that shows them, as the tenant's own owner (the
// payload's author attacking their colleagues).
func TestAttackXSS(t *testing.T) {
	w := newAttackWorld(t)
	e, a := w.e, w.a
	var p, c, iv idJSON
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/positions", Key: a.Key, Body: map[string]any{
		"title": attackXSS, "description": attackXSS, "questions": []string{attackXSS},
		"rubric": []map[string]any{{"name": attackXSS, "description": attackXSS, "weight": 1}},
	}}, &p)
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/candidates", Key: a.Key, Body: map[string]any{
		"name": attackXSS, "email": "xss@example.com",
	}}, &c)
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/interviews", Key: a.Key, Body: map[string]any{
		"position_id": p.ID, "candidate_id": c.ID,
	}}, &iv)
	ctx := context.Background()
	hash, _ := hashPassword("member password")
	if _, err := e.db.CreateUser(ctx, a.ID, "xss-member@example.com", attackXSS, store.RoleViewer, hash); err != nil {
		t.Fatal(err)
	}
	if _, _, err := createAPIKey(ctx, e.db, a.ID, attackXSS); err != nil {
		t.Fatal(err)
	}
	// Fields a route may refuse to hold markup in: whatever it stores is
	// rendered below; a refusal is fine too, a 5xx is not.
	try := func(r request) {
		if res := e.do(t, r); res.Status >= 500 {
			t.Fatalf("%s %s: %d %s", r.Method, r.Path, res.Status, res.Body)
		}
	}
	try(request{Method: "PUT", Path: "/api/v1/candidates/" + c.ID, Key: a.Key, Body: map[string]any{"name": attackXSS, "email": "xss@example.com", "notes": attackXSS}})
	try(request{Method: "PUT", Path: "/api/v1/positions/" + p.ID, Key: a.Key, Body: map[string]any{"title": attackXSS, "description": attackXSS,
		"questions": []string{attackXSS}, "rubric": []map[string]any{{"name": attackXSS, "description": attackXSS, "weight": 1}}, "interviewer_name": attackXSS}})
	// What a candidate says (or a processor reports) is rendered too.
	var live idJSON
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/interviews", Key: a.Key, Body: map[string]any{"position_id": p.ID, "candidate_id": c.ID}}, &live)
	st := e.start(t, a.tenant, live.ID)
	if res := e.postEntries(t, live.ID, st.Bridge, entry(1, attackXSS)); res.Status != 200 {
		t.Fatalf("post entry: %d %s", res.Status, res.Body)
	}
	try(request{Method: "POST", Path: "/api/v1/bridge/interviews/" + live.ID + "/events", Key: st.Bridge, Body: map[string]any{"type": "error", "message": attackXSS}})
	try(request{Method: "POST", Path: "/api/v1/interviews/" + live.ID + "/reviews", Key: a.Key, Body: map[string]any{"score": 3, "note": attackXSS,
		"criteria": []map[string]any{{"name": attackXSS, "score": 3, "note": attackXSS}}}})
	// An organization named with markup, seen by its own owner.
	xssOrg, err := Bootstrap(ctx, e.db, attackXSS, "xss-owner@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	xssOwner := e.login(t, tenant{ID: xssOrg.TenantID}, store.RoleOwner)
	if res := e.do(t, attackAs(xssOwner, request{Method: "GET", Path: "/interviews", Header: map[string]string{"Accept": "text/html"}})); strings.Contains(string(res.Body), "<script>alert(1)") {
		t.Errorf("the organization's name is rendered unescaped")
	}

	pages := []string{
		"/interviews/" + live.ID, "/account", "/webhooks", "/retention",
		"/interviews", "/interviews/" + iv.ID, "/positions", "/positions/" + p.ID, "/candidates", "/candidates/" + c.ID,
		"/search?q=" + url.QueryEscape(attackXSS), "/interviews?q=" + url.QueryEscape(attackXSS),
		"/members", "/api-keys", "/settings", "/i/" + w.invite(iv.ID),
		"/login?next=" + url.QueryEscape(attackXSS), "/nope/" + url.PathEscape(attackXSS),
	}
	for _, path := range pages {
		t.Run(path, func(t *testing.T) {
			res := e.do(t, attackAs(a.owner, request{Method: "GET", Path: path, Header: map[string]string{"Accept": "text/html"}}))
			if res.Status >= 500 {
				t.Fatalf("status %d", res.Status)
			}
			for _, raw := range []string{"<script>alert(1)", "<img src=x onerror"} {
				if strings.Contains(string(res.Body), raw) {
					t.Errorf("%s carries the payload unescaped (%q)", path, raw)
				}
			}
		})
	}
	// The payload did reach the pages (escaped), so the checks above mean
	// something.
	for _, path := range []string{"/interviews/" + live.ID, "/candidates/" + c.ID, "/positions/" + p.ID} {
		res := e.do(t, attackAs(a.owner, request{Method: "GET", Path: path, Header: map[string]string{"Accept": "text/html"}}))
		if !strings.Contains(string(res.Body), "&lt;script&gt;alert(1)") {
			t.Errorf("%s does not show the stored payload at all", path)
		}
	}
}

// attackRecordRows cover candidate records, position deletion and search.
func attackRecordRows(w *attackWorld) []attackRow {
	a, b := w.a, w.b
	cand := map[string]any{"name": "Hijacked", "email": "hijacked@example.com", "notes": "x"}
	noHits := func(t *testing.T, w *attackWorld, res response) {
		if strings.Contains(string(res.Body), w.a.candidateID) {
			t.Errorf("B's search finds A's candidate: %.300s", res.Body)
		}
	}
	return []attackRow{
		{route: "PUT /api/v1/candidates/:id", name: "B cannot edit A's candidate",
			req: request{Method: "PUT", Path: "/api/v1/candidates/" + a.candidateID, Key: b.Key, Body: cand}, want: 404, code: CodeNotFound},
		{route: "PUT /api/v1/candidates/:id", name: "a viewer cannot edit a candidate",
			req: attackAs(a.viewer, request{Method: "PUT", Path: "/api/v1/candidates/" + a.candidateID, Body: cand}), want: 403, code: CodeForbidden},
		{route: "DELETE /api/v1/positions/:id", name: "B cannot delete A's position",
			req: request{Method: "DELETE", Path: "/api/v1/positions/" + a.positionID, Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "DELETE /api/v1/positions/:id", name: "a viewer cannot delete a position",
			req: attackAs(a.viewer, request{Method: "DELETE", Path: "/api/v1/positions/" + a.positionID}), want: 403, code: CodeForbidden},
		{route: "GET /api/v1/search", name: "B's search finds none of A's candidates or transcripts",
			req: request{Method: "GET", Path: "/api/v1/search?q=" + "acme", Key: b.Key}, want: 200, check: noHits},
		{route: "GET /api/v1/search", name: "a search without a key is refused",
			req: request{Method: "GET", Path: "/api/v1/search?q=x"}, want: 401},
		{route: "GET /search", name: "B's search page shows none of A's",
			req: attackAs(b.owner, request{Method: "GET", Path: "/search?q=" + "acme"}), want: 200, check: noHits},
		{route: "GET /candidates/:id", name: "B's dashboard cannot open A's candidate",
			req: attackAs(b.owner, request{Method: "GET", Path: "/candidates/" + a.candidateID}), want: 404},
		{route: "POST /candidates/:id", name: "B's dashboard cannot edit A's candidate",
			req: attackForm(attackAs(b.owner, request{Method: "POST", Path: "/candidates/" + a.candidateID}), url.Values{"_csrf": {b.owner.CSRF}, "name": {"Hijacked"}, "email": {"h@example.com"}}), want: 404},
		{route: "POST /candidates/:id", name: "a viewer cannot edit a candidate on the dashboard",
			req: attackForm(attackAs(a.viewer, request{Method: "POST", Path: "/candidates/" + a.candidateID}), url.Values{"_csrf": {a.viewer.CSRF}, "name": {"Hijacked"}, "email": {"h@example.com"}}), want: 403},
		{route: "POST /candidates/:id", name: "a candidate edit without CSRF is refused",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: "/candidates/" + a.candidateID}), url.Values{"name": {"Hijacked"}, "email": {"h@example.com"}}), want: 403},
		{route: "POST /positions/:id/delete", name: "B's dashboard cannot delete A's position",
			req: attackForm(attackAs(b.owner, request{Method: "POST", Path: "/positions/" + a.positionID + "/delete"}), url.Values{"_csrf": {b.owner.CSRF}}), want: 404},
		{route: "POST /positions/:id/delete", name: "a viewer cannot delete a position on the dashboard",
			req: attackForm(attackAs(a.viewer, request{Method: "POST", Path: "/positions/" + a.positionID + "/delete"}), url.Values{"_csrf": {a.viewer.CSRF}}), want: 403},
	}
}

// TestAttackEveryRouteRefusesAnOversizedForm sends a 200 KiB form to every
// route that takes a body (the processor route passes bodies through to
// the processor, which has its own caps): each must answer 413 before
// anything parses it, whoever asks.
func TestAttackEveryRouteRefusesAnOversizedForm(t *testing.T) {
	e := newAttackEnv(t)
	tn := e.tenant(t, "Acme")
	owner := e.login(t, tn, store.RoleOwner)
	body := "a=" + strings.Repeat("x", 200<<10)
	seen := map[string]bool{}
	for _, r := range e.srv.e.Routes() {
		if r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch {
			continue
		}
		if strings.HasPrefix(r.Path, "/p/") || seen[r.Method+r.Path] {
			continue
		}
		seen[r.Method+r.Path] = true
		path := r.Path
		for _, seg := range strings.Split(r.Path, "/") {
			if strings.HasPrefix(seg, ":") || seg == "*" {
				path = strings.Replace(path, seg, "x", 1)
			}
		}
		for _, who := range []string{"stranger", "owner"} {
			req := request{Method: r.Method, Path: path, ContentType: "application/x-www-form-urlencoded", Body: body}
			if who == "owner" {
				req = attackAs(owner, req)
			}
			if res := e.do(t, req); res.Status != http.StatusRequestEntityTooLarge {
				t.Errorf("%s %s as %s: %d, want 413", r.Method, r.Path, who, res.Status)
			}
		}
	}
	if len(seen) < 10 {
		t.Fatalf("only %d body-taking routes found", len(seen))
	}
}
