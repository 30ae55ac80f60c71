package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"candor/store"
	"candor/web/mail"
	"candor/web/mail/mailtest"
)

// mailWait bounds how long a test waits for an email to arrive at the
// in-process SMTP server (a loaded machine is slow, never this slow).
const mailWait = 20 * time.Second

// withSMTP points a server at an in-process SMTP server that demands AUTH.
func withSMTP(t testing.TB, smtpSrv *mailtest.Server) func(*Config) {
	return func(c *Config) {
		m, err := mail.New(smtpSrv.URL(), "Candor Hiring <hiring@candor.test>")
		if err != nil {
			t.Fatalf("mail.New: %v", err)
		}
		c.Mailer = m
	}
}

// pathOf is the path and query of an absolute link from an email.
func pathOf(t testing.TB, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatalf("link %q: %v", link, err)
	}
	return u.RequestURI()
}

func onlyLink(t testing.TB, m mailtest.Message, prefix string) string {
	t.Helper()
	for _, l := range m.Links() {
		if strings.Contains(l, prefix) {
			return l
		}
	}
	t.Fatalf("no %s link in email %q:\n%s", prefix, m.Subject, m.Text)
	return ""
}

func flashOf(t testing.TB, b *dashBrowser, path string) string {
	t.Helper()
	p := b.get(path)
	fs := p.byTestID("flash")
	if len(fs) == 0 {
		return ""
	}
	return dashText(fs[0])
}

func TestInterviewInvitationIsEmailedAndResent(t *testing.T) {
	smtpSrv := mailtest.Start(t, "candor", "smtp-secret")
	e := newTestEnv(t, withConfig(withSMTP(t, smtpSrv)))
	tn := e.tenant(t, "Acme")
	other := e.tenant(t, "Beta")
	var pos, cand idJSON
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/positions", Key: tn.Key, Body: map[string]any{
		"title": "Backend engineer", "questions": []string{"Why Go?", "Why SQLite?"}}}, &pos)
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/candidates", Key: tn.Key, Body: map[string]any{
		"name": "Ada Lovelace", "email": "ada@example.com"}}, &cand)

	opens := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	closes := opens.Add(48 * time.Hour)
	var created createdInterviewJSON
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/interviews", Key: tn.Key, Body: map[string]any{
		"position_id": pos.ID, "candidate_id": cand.ID,
		"available_from": opens.Format(time.RFC3339), "expires_at": closes.Format(time.RFC3339),
	}}, &created)
	if created.InviteError != "" || created.InvitedAt == nil {
		t.Fatalf("created = invited_at %v, invite_error %q; want the invitation sent", created.InvitedAt, created.InviteError)
	}
	if created.AvailableFrom == nil || !created.AvailableFrom.Equal(opens) || !created.ExpiresAt.Equal(closes) {
		t.Fatalf("window = %v – %v, want %v – %v", created.AvailableFrom, created.ExpiresAt, opens, closes)
	}
	m := smtpSrv.Wait(t, "ada@example.com", "Backend engineer", mailWait)
	for _, want := range []string{"Acme", "Backend engineer", created.InviteURL, fmtMailTime(opens), fmtMailTime(closes)} {
		if !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, want) {
			t.Errorf("invitation lacks %q in text or HTML:\n%s", want, m.Text)
		}
	}
	if onlyLink(t, m, invitePath) != created.InviteURL {
		t.Errorf("the email's link is not the interview's invite_url")
	}

	t.Run("resend emails the same link again, records it, and not twice a minute", func(t *testing.T) {
		var quiet createdInterviewJSON
		e.must(t, 201, request{Method: "POST", Path: "/api/v1/interviews", Key: tn.Key, Body: map[string]any{
			"position_id": pos.ID, "candidate_id": cand.ID, "send_invite": false}}, &quiet)
		count := func() (n int) {
			for _, m := range smtpSrv.Messages() {
				if m.To == "ada@example.com" && strings.Contains(m.Text, quiet.InviteURL) {
					n++
				}
			}
			return n
		}
		if count() != 0 {
			t.Fatalf("send_invite false emailed the candidate")
		}
		var iv interviewJSON
		e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + quiet.ID + "/invite", Key: tn.Key}, &iv)
		if iv.InvitedAt == nil || count() != 1 {
			t.Fatalf("after a resend: invited_at %v, %d emails with its link; want set and 1", iv.InvitedAt, count())
		}
		r := e.do(t, request{Method: "POST", Path: "/api/v1/interviews/" + quiet.ID + "/invite", Key: tn.Key})
		if r.Status != http.StatusTooManyRequests || count() != 1 {
			t.Fatalf("an immediate second resend = %d with %d emails; want 429 and still 1", r.Status, count())
		}
		var evs struct {
			Events []struct{ Type string } `json:"events"`
		}
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + quiet.ID + "/events", Key: tn.Key}, &evs)
		sent := 0
		for _, ev := range evs.Events {
			if ev.Type == eventInvitationSent {
				sent++
			}
		}
		if sent != 1 {
			t.Errorf("%d %s events, want 1", sent, eventInvitationSent)
		}
	})
	t.Run("another tenant's interview is not found", func(t *testing.T) {
		before := len(smtpSrv.Messages())
		r := e.do(t, request{Method: "POST", Path: "/api/v1/interviews/" + created.ID + "/invite", Key: other.Key})
		if r.Status != http.StatusNotFound || len(smtpSrv.Messages()) != before {
			t.Fatalf("status %d, %d new emails; want 404 and none", r.Status, len(smtpSrv.Messages())-before)
		}
	})
	t.Run("send_invite false sends nothing", func(t *testing.T) {
		before := len(smtpSrv.Messages())
		var iv createdInterviewJSON
		e.must(t, 201, request{Method: "POST", Path: "/api/v1/interviews", Key: tn.Key, Body: map[string]any{
			"position_id": pos.ID, "candidate_id": cand.ID, "send_invite": false}}, &iv)
		if iv.InvitedAt != nil || len(smtpSrv.Messages()) != before {
			t.Fatalf("invited_at %v, %d new emails; want none", iv.InvitedAt, len(smtpSrv.Messages())-before)
		}
	})
	t.Run("a window that closes before it opens is refused and nothing is created", func(t *testing.T) {
		var list struct{ Interviews []interviewJSON }
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews", Key: tn.Key}, &list)
		r := e.do(t, request{Method: "POST", Path: "/api/v1/interviews", Key: tn.Key, Body: map[string]any{
			"position_id": pos.ID, "candidate_id": cand.ID,
			"available_from": closes.Format(time.RFC3339), "expires_at": opens.Format(time.RFC3339)}})
		if r.Status != http.StatusUnprocessableEntity && r.Status != http.StatusBadRequest {
			t.Fatalf("status %d, want a validation error", r.Status)
		}
		var after struct{ Interviews []interviewJSON }
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews", Key: tn.Key}, &after)
		if len(after.Interviews) != len(list.Interviews) {
			t.Fatalf("an interview was created from a refused request")
		}
	})
}

func TestWithoutEmailInterviewsStillWorkAndSendInviteIsRefused(t *testing.T) {
	e := newTestEnv(t)
	tn := e.tenant(t, "Acme")
	_, _, ivID := e.seed(t, tn) // no send_invite: defaults to false without email
	var iv interviewJSON
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + ivID, Key: tn.Key}, &iv)
	if iv.InvitedAt != nil || iv.InviteURL == "" {
		t.Fatalf("interview without email: invited_at %v, invite_url %q", iv.InvitedAt, iv.InviteURL)
	}
	r := e.do(t, request{Method: "POST", Path: "/api/v1/interviews", Key: tn.Key, Body: map[string]any{
		"position_id": iv.PositionID, "candidate_id": iv.CandidateID, "send_invite": true}})
	if r.Status/100 != 4 || !strings.Contains(string(r.Body), "CANDOR_SMTP_URL") {
		t.Fatalf("send_invite true without email = %d %s; want a 4xx naming CANDOR_SMTP_URL", r.Status, r.Body)
	}
	r = e.do(t, request{Method: "POST", Path: "/api/v1/interviews/" + ivID + "/invite", Key: tn.Key})
	if r.Status != http.StatusConflict {
		t.Fatalf("resend without email = %d, want 409", r.Status)
	}
}

func TestReminderGoesOnceToCandidatesWhoHaveNotJoined(t *testing.T) {
	smtpSrv := mailtest.Start(t, "", "")
	e := newTestEnv(t, withConfig(withSMTP(t, smtpSrv)), withConfig(func(c *Config) { c.ReminderBefore = 24 * time.Hour }))
	tn := e.tenant(t, "Acme")
	ctx := context.Background()
	var pos, ada, bob idJSON
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/positions", Key: tn.Key, Body: map[string]any{"title": "Designer"}}, &pos)
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/candidates", Key: tn.Key, Body: map[string]any{"name": "Ada", "email": "ada@example.com"}}, &ada)
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/candidates", Key: tn.Key, Body: map[string]any{"name": "Bob", "email": "bob@example.com"}}, &bob)
	closes := time.Now().Add(6 * time.Hour).UTC()
	var ivAda, ivBob createdInterviewJSON
	for _, x := range []struct {
		cand string
		out  *createdInterviewJSON
	}{{ada.ID, &ivAda}, {bob.ID, &ivBob}} {
		e.must(t, 201, request{Method: "POST", Path: "/api/v1/interviews", Key: tn.Key, Body: map[string]any{
			"position_id": pos.ID, "candidate_id": x.cand, "expires_at": closes.Format(time.RFC3339)}}, x.out)
	}
	// Bob opened his link and agreed: he has joined, so no reminder.
	if err := e.db.SetConsent(ctx, tn.ID, ivBob.ID, time.Now()); err != nil {
		t.Fatal(err)
	}

	// Invited 6 hours before the close: not reminded straight away...
	if n, err := e.srv.SendDueReminders(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("reminders right after the invitation = %d, %v; want 0", n, err)
	}
	// ...but once half the time to the close has passed.
	later := time.Now().Add(4 * time.Hour)
	if n, err := e.srv.SendDueReminders(ctx, later); err != nil || n != 1 {
		t.Fatalf("reminders 4h later = %d, %v; want 1 (Ada's)", n, err)
	}
	if n, err := e.srv.SendDueReminders(ctx, later.Add(time.Minute)); err != nil || n != 0 {
		t.Fatalf("second pass = %d, %v; want 0: a reminder goes once", n, err)
	}
	m := smtpSrv.Wait(t, "ada@example.com", "Reminder", mailWait)
	if !strings.Contains(m.Text, ivAda.InviteURL) || !strings.Contains(m.Text, fmtMailTime(closes)) {
		t.Errorf("reminder lacks the link or the close:\n%s", m.Text)
	}
	for _, m := range smtpSrv.Messages() {
		if m.To == "bob@example.com" && strings.Contains(m.Subject, "Reminder") {
			t.Errorf("Bob, who joined, was reminded")
		}
	}
	iv, _ := e.db.Interview(ctx, tn.ID, ivAda.ID)
	if iv.RemindedAt == nil {
		t.Errorf("reminded_at not recorded")
	}
	// After the close, nothing is due.
	if n, _ := e.srv.SendDueReminders(ctx, closes.Add(time.Minute)); n != 0 {
		t.Errorf("reminders after the close = %d", n)
	}
}

func TestPasswordResetByEmail(t *testing.T) {
	smtpSrv := mailtest.Start(t, "candor", "smtp-secret")
	env := newDashEnv(t, withSMTP(t, smtpSrv))
	env.setup("Acme", "olive@example.com", "old password 1")

	anon := env.browser()
	anon.get("/password/forgot")
	unknown := anon.post("/password/forgot", url.Values{"email": {"nobody@example.com"}})
	known := anon.post("/password/forgot", url.Values{"email": {"Olive@Example.com"}})
	wantDashRedirect(t, unknown, "/login")
	wantDashRedirect(t, known, "/login")
	m := smtpSrv.Wait(t, "olive@example.com", "Reset your Candor password", mailWait)
	link := onlyLink(t, m, resetPath)
	for _, msg := range smtpSrv.Messages() {
		if msg.To == "nobody@example.com" {
			t.Fatalf("an email went to an address with no account")
		}
	}

	b := env.browser()
	page := b.get(pathOf(t, link))
	wantDashStatus(t, page, http.StatusOK)
	if !page.has("set-password-form") {
		t.Fatalf("reset link page has no form:\n%.500s", page.body)
	}
	bad := b.post(pathOf(t, link), url.Values{"password": {"new password 2"}, "confirm": {"different 2"}})
	wantDashStatus(t, bad, http.StatusUnprocessableEntity)
	wantDashRedirect(t, b.post(pathOf(t, link), url.Values{"password": {"new password 2"}, "confirm": {"new password 2"}}), "/interviews")
	wantDashStatus(t, b.get("/interviews"), http.StatusOK) // signed in

	t.Run("the link works once", func(t *testing.T) {
		again := env.browser()
		wantDashStatus(t, again.get(pathOf(t, link)), http.StatusGone)
		again.get("/login")
		p := again.post(pathOf(t, link), url.Values{"password": {"attacker pw 3"}, "confirm": {"attacker pw 3"}})
		wantDashStatus(t, p, http.StatusGone)
	})
	t.Run("only the new password signs in", func(t *testing.T) {
		old := env.browser()
		old.get("/login")
		wantDashStatus(t, old.post("/login", url.Values{"email": {"olive@example.com"}, "password": {"old password 1"}}), http.StatusUnauthorized)
		env.login("olive@example.com", "new password 2")
	})
	t.Run("an expired link does not work", func(t *testing.T) {
		p, _ := env.db.PersonByEmail(context.Background(), "olive@example.com")
		token := randomToken()
		if err := env.db.CreatePersonToken(context.Background(), store.PersonToken{Hash: tokenHash(token), PersonID: p.ID,
			Purpose: store.TokenReset, ExpiresAt: time.Now().Add(-time.Second)}); err != nil {
			t.Fatal(err)
		}
		x := env.browser()
		wantDashStatus(t, x.get(resetPath+token), http.StatusGone)
		x.get("/login")
		wantDashStatus(t, x.post(resetPath+token, url.Values{"password": {"expired pw 4"}, "confirm": {"expired pw 4"}}), http.StatusGone)
		env.login("olive@example.com", "new password 2")
	})
	t.Run("a signed-in person changes their password and other sessions end", func(t *testing.T) {
		other := env.login("olive@example.com", "new password 2")
		me := env.login("olive@example.com", "new password 2")
		me.get("/account")
		wrong := me.post("/account/password", url.Values{"current": {"not it"}, "password": {"changed pw 5"}, "confirm": {"changed pw 5"}})
		wantDashStatus(t, wrong, http.StatusUnprocessableEntity)
		wantDashRedirect(t, me.post("/account/password", url.Values{"current": {"new password 2"}, "password": {"changed pw 5"}, "confirm": {"changed pw 5"}}), "/account")
		wantDashStatus(t, me.get("/interviews"), http.StatusOK)
		if p := other.get("/interviews"); p.status != http.StatusSeeOther {
			t.Errorf("the other session still works after a password change: %d", p.status)
		}
		env.login("olive@example.com", "changed pw 5")
	})
}

func TestMemberInvitationByEmailAndSeveralOrganizations(t *testing.T) {
	smtpSrv := mailtest.Start(t, "candor", "smtp-secret")
	env := newDashEnv(t, withSMTP(t, smtpSrv))
	owner := env.setup("Acme", "olive@example.com", "olive password")
	ctx := context.Background()
	hash, _ := hashPassword("bob password")
	beta, _, err := env.db.CreateTenantWithOwner(ctx, "Beta", "bob@example.com", "Bob", hash)
	if err != nil {
		t.Fatal(err)
	}

	owner.get("/members")
	wantDashRedirect(t, owner.post("/members", url.Values{"name": {"Rae"}, "email": {"rae@example.com"}, "role": {"recruiter"}}), "/members")
	newFlash := flashOf(t, owner, "/members")
	wantDashRedirect(t, owner.post("/members", url.Values{"name": {"Bob"}, "email": {"bob@example.com"}, "role": {"viewer"}}), "/members")
	existingFlash := flashOf(t, owner, "/members")
	// The owner cannot tell that Bob already had an account elsewhere.
	if strings.Replace(newFlash, "Rae", "X", 1) != strings.Replace(strings.Replace(existingFlash, "Bob", "X", 1), "viewer", "recruiter", 1) {
		t.Errorf("the answers differ for a new person and an existing one:\n%q\n%q", newFlash, existingFlash)
	}

	t.Run("a new person sets a password from the email and is signed in", func(t *testing.T) {
		m := smtpSrv.Wait(t, "rae@example.com", "invited you to Acme", mailWait)
		link := onlyLink(t, m, invitationPath)
		rae := env.browser()
		wantDashStatus(t, rae.get(pathOf(t, link)), http.StatusOK)
		wantDashRedirect(t, rae.post(pathOf(t, link), url.Values{"password": {"rae password"}, "confirm": {"rae password"}}), "/interviews")
		p := rae.get("/interviews")
		if org := p.byTestID("org-name"); len(org) == 0 || dashText(org[0]) != "Acme" {
			t.Fatalf("Rae is not signed in to Acme")
		}
		wantDashStatus(t, env.browser().get(pathOf(t, link)), http.StatusGone)
	})
	t.Run("an existing person keeps their password and chooses the organization at sign-in", func(t *testing.T) {
		m := smtpSrv.Wait(t, "bob@example.com", "invited you to Acme", mailWait)
		link := onlyLink(t, m, invitationPath)
		x := env.browser()
		p := x.get(pathOf(t, link))
		if !p.has("join-with-password") {
			t.Fatalf("the invitation of someone with a password offers to set one:\n%.500s", p.body)
		}
		x.get("/login")
		p = x.post(pathOf(t, link), url.Values{"password": {"hijack pw"}, "confirm": {"hijack pw"}})
		if p.status == http.StatusSeeOther {
			t.Fatalf("an invitation link replaced an existing person's password")
		}
		// Before accepting, Bob's password signs in to Beta only.
		before := env.browser()
		before.get("/login")
		wantDashRedirect(t, before.post("/login", url.Values{"email": {"bob@example.com"}, "password": {"bob password"}}), "/interviews")
		// With the link and his password he joins Acme.
		x.get(pathOf(t, link))
		wantDashRedirect(t, x.post(pathOf(t, link), url.Values{"password": {"bob password"}}), "/interviews")
		if org := x.get("/interviews").byTestID("org-name"); len(org) == 0 || dashText(org[0]) != "Acme" {
			t.Fatalf("accepting the invitation did not sign Bob in to Acme")
		}
		bob := env.browser()
		bob.get("/login")
		wantDashRedirect(t, bob.post("/login", url.Values{"email": {"bob@example.com"}, "password": {"bob password"}}), "/login/organization")
		choose := bob.get("/login/organization")
		if n := len(choose.byTestID("choose-org-button")); n != 2 {
			t.Fatalf("Bob is offered %d organizations, want 2", n)
		}
		acme := env.tenantOf("olive@example.com")
		wantDashRedirect(t, bob.post("/login/organization", url.Values{"tenant_id": {acme}}), "/interviews")
		p = bob.get("/interviews")
		if org := p.byTestID("org-name"); len(org) == 0 || dashText(org[0]) != "Acme" {
			t.Fatalf("Bob is not signed in to Acme")
		}
		if role := p.byTestID("user-role"); len(role) == 0 || !strings.EqualFold(dashText(role[0]), "viewer") {
			t.Errorf("Bob's role in Acme is not viewer")
		}
		// Switching to Beta keeps the same login.
		bob.get("/login/organization")
		wantDashRedirect(t, bob.post("/login/organization", url.Values{"tenant_id": {beta.ID}}), "/interviews")
		if org := bob.get("/interviews").byTestID("org-name"); len(org) == 0 || dashText(org[0]) != "Beta" {
			t.Fatalf("Bob did not switch to Beta")
		}
		// A tenant he does not belong to is refused.
		bob.get("/login/organization")
		if p := bob.post("/login/organization", url.Values{"tenant_id": {"ten_nope"}}); p.status != http.StatusNotFound {
			t.Errorf("choosing a foreign organization = %d, want 404", p.status)
		}
	})
	t.Run("a pending member's invitation can be resent", func(t *testing.T) {
		acme := env.tenantOf("olive@example.com")
		hash, _ := hashPassword("x")
		_ = hash
		u, err := env.db.AddMember(ctx, acme, "pat@example.com", "Pat", store.RoleViewer)
		if err != nil {
			t.Fatal(err)
		}
		owner.get("/members")
		wantDashRedirect(t, owner.post("/members/"+u.ID+"/invite", url.Values{}), "/members")
		smtpSrv.Wait(t, "pat@example.com", "invited you to Acme", mailWait)
	})
}

// TestPasswordSetThroughOneOrganizationDoesNotOpenAnother: with email off
// an owner holds the set-password link of the person they invited. If
// another organization invited the same email, that owner must still not
// get in there as the person: a membership is joined only through its own
// invitation link.
func TestPasswordSetThroughOneOrganizationDoesNotOpenAnother(t *testing.T) {
	env := newDashEnv(t) // email off: links are shown to owners
	acme := env.setup("Acme", "olive@example.com", "olive password")
	ctx := context.Background()
	hash, _ := hashPassword("mallory password")
	if _, _, err := env.db.CreateTenantWithOwner(ctx, "Evil", "mallory@example.com", "Mallory", hash); err != nil {
		t.Fatal(err)
	}
	linkOf := func(b *dashBrowser) string {
		t.Helper()
		f := flashOf(t, b, "/members")
		i := strings.Index(f, invitationPath)
		if i < 0 {
			t.Fatalf("no invitation link in the flash %q", f)
		}
		return pathOf(t, strings.Fields(f[i-len(env.url):])[0])
	}
	acme.get("/members")
	wantDashRedirect(t, acme.post("/members", url.Values{"name": {"Nia"}, "email": {"nia@example.com"}, "role": {"recruiter"}}), "/members")
	acmeLink := linkOf(acme)
	mallory := env.login("mallory@example.com", "mallory password")
	mallory.get("/members")
	wantDashRedirect(t, mallory.post("/members", url.Values{"name": {"Nia"}, "email": {"nia@example.com"}, "role": {"viewer"}}), "/members")
	evilLink := linkOf(mallory)

	// Mallory sets Nia's password through her own organization's link...
	x := env.browser()
	x.get(evilLink)
	wantDashRedirect(t, x.post(evilLink, url.Values{"password": {"mallory knows"}, "confirm": {"mallory knows"}}), "/interviews")
	// ...and signing in as Nia offers Evil only, never Acme.
	y := env.browser()
	y.get("/login")
	wantDashRedirect(t, y.post("/login", url.Values{"email": {"nia@example.com"}, "password": {"mallory knows"}}), "/interviews")
	if org := y.get("/interviews").byTestID("org-name"); len(org) == 0 || dashText(org[0]) != "Evil" {
		t.Fatalf("signed in to %v, want Evil only", org)
	}
	acmeID := env.tenantOf("olive@example.com")
	y.get("/login/organization")
	if p := y.post("/login/organization", url.Values{"tenant_id": {acmeID}}); p.status != http.StatusNotFound {
		t.Fatalf("switching to Acme without its invitation = %d, want 404", p.status)
	}
	// Acme's own link asks for the password; only then is Acme joined.
	z := env.browser()
	if p := z.get(acmeLink); !p.has("join-with-password") {
		t.Fatalf("Acme's link after a password exists:\n%.500s", p.body)
	}
}
