package web

// Attack rows for email, invitations, the organization chooser and the
// set-password links (issue 14 part A). See attack_test.go.

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"candor/store"
)

func init() { attackRowSets = append(attackRowSets, mailAttackRows) }

func mailAttackRows(w *attackWorld) []attackRow {
	a, b := w.a, w.b
	ctx := context.Background()
	db := w.e.db
	member, err := db.User(ctx, a.ID, a.memberID)
	if err != nil {
		panic(err)
	}
	// Links of A's member: one expired, one spent, one live reset link
	// (which must not work as an invitation).
	mk := func(purpose string, exp time.Duration) string {
		tok := randomToken()
		if err := db.CreatePersonToken(ctx, store.PersonToken{Hash: tokenHash(tok), PersonID: member.PersonID,
			Purpose: purpose, TenantID: a.ID, ExpiresAt: time.Now().Add(exp)}); err != nil {
			panic(err)
		}
		return tok
	}
	expired := mk(store.TokenReset, -time.Minute)
	spent := mk(store.TokenInvite, time.Hour)
	hash, _ := hashPassword("member password")
	if _, err := db.UsePersonToken(ctx, tokenHash(spent), store.TokenInvite, hash); err != nil {
		panic(err)
	}
	live := mk(store.TokenReset, time.Hour)
	samePassword := func(t *testing.T, w *attackWorld, _ response) {
		p, err := w.e.db.Person(context.Background(), member.PersonID)
		if err != nil || !verifyPassword(p.PasswordHash, "member password") {
			t.Errorf("the member's password changed")
		}
	}
	newPassword := url.Values{"password": {"attacker password"}, "confirm": {"attacker password"}}
	apiInvite := "/api/v1/interviews/" + a.interviewID + "/invite"
	return []attackRow{
		{route: "POST /api/v1/interviews/:id/invite", name: "B cannot email A's candidate an invitation",
			req: request{Method: "POST", Path: apiInvite, Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "POST /api/v1/interviews/:id/invite", name: "a viewer cannot send an invitation",
			req: attackAs(a.viewer, request{Method: "POST", Path: apiInvite}), want: 403, code: CodeForbidden},
		{route: "POST /api/v1/interviews/:id/invite", name: "a cookie without CSRF cannot send an invitation",
			req: attackNoCSRF(a.owner, request{Method: "POST", Path: apiInvite}), want: 403, code: CodeForbidden},
		{route: "POST /interviews/:id/invite", name: "B cannot resend A's invitation from the dashboard",
			req: attackForm(attackAs(b.owner, request{Method: "POST", Path: "/interviews/" + a.interviewID + "/invite"}), url.Values{"_csrf": {b.owner.CSRF}}), want: 404},
		{route: "POST /interviews/:id/invite", name: "a viewer cannot resend an invitation from the dashboard",
			req: attackForm(attackAs(a.viewer, request{Method: "POST", Path: "/interviews/" + a.interviewID + "/invite"}), url.Values{"_csrf": {a.viewer.CSRF}}), want: 403},
		{route: "POST /members/:id/invite", name: "B cannot re-invite A's member",
			req: attackForm(attackAs(b.owner, request{Method: "POST", Path: "/members/" + a.memberID + "/invite"}), url.Values{"_csrf": {b.owner.CSRF}}), want: 404},
		{route: "POST /members/:id/invite", name: "a recruiter cannot re-invite a member",
			req: attackForm(attackAs(a.recruiter, request{Method: "POST", Path: "/members/" + a.memberID + "/invite"}), url.Values{"_csrf": {a.recruiter.CSRF}}), want: 403},
		{route: "POST /members/:id/invite", name: "re-inviting a member without CSRF is refused",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: "/members/" + a.memberID + "/invite"}), url.Values{}), want: 403},

		{route: "GET /login/organization", name: "the organization chooser sends a stranger to sign in",
			req: request{Method: "GET", Path: "/login/organization"}, want: 303},
		{route: "GET /login/organization", name: "a forged choose ticket naming A's member is ignored",
			req: request{Method: "GET", Path: "/login/organization", Header: map[string]string{
				"Cookie": chooseCookie + "=" + member.PersonID + ".9999999999.00"}}, want: 303},
		{route: "POST /login/organization", name: "B's owner cannot switch into A",
			req: attackForm(attackAs(b.owner, request{Method: "POST", Path: "/login/organization"}), url.Values{"_csrf": {b.owner.CSRF}, "tenant_id": {a.ID}}), want: 404},
		{route: "POST /login/organization", name: "switching organization without CSRF is refused",
			req: attackForm(attackNoCSRF(b.owner, request{Method: "POST", Path: "/login/organization"}), url.Values{"tenant_id": {b.ID}}), want: 403},

		{route: "GET /password/forgot", name: "the forgot-password page renders for a stranger",
			req: request{Method: "GET", Path: "/password/forgot"}, want: 200},
		{route: "POST /password/forgot", name: "a reset request without its pre-session token is refused",
			req: attackForm(request{Method: "POST", Path: "/password/forgot"}, url.Values{"email": {"member-secret-of-acme@example.com"}}), want: 403},
		{route: "GET /password/reset/:token", name: "an expired reset link does not open",
			req: request{Method: "GET", Path: resetPath + expired}, want: http.StatusGone},
		{route: "POST /password/reset/:token", name: "an expired reset link cannot set a password",
			req: attackForm(request{Method: "POST", Path: resetPath + expired}, newPassword), want: http.StatusGone, check: samePassword},
		{route: "POST /password/reset/:token", name: "a guessed reset link cannot set a password",
			req: attackForm(request{Method: "POST", Path: resetPath + randomToken()}, newPassword), want: http.StatusGone, check: samePassword},
		{route: "GET /invitation/:token", name: "a spent invitation link does not open again",
			req: request{Method: "GET", Path: invitationPath + spent}, want: http.StatusGone},
		{route: "POST /invitation/:token", name: "a spent invitation link cannot set a password again",
			req: attackForm(request{Method: "POST", Path: invitationPath + spent}, newPassword), want: http.StatusGone, check: samePassword},
		{route: "POST /invitation/:token", name: "a reset link does not work as an invitation",
			req: attackForm(request{Method: "POST", Path: invitationPath + live}, newPassword), want: http.StatusGone, check: samePassword},
		{route: "POST /password/reset/:token", name: "a live reset link needs its form's pre-session token",
			// The page of a live link names its own person: that is the
			// link holder, not a leak.
			req: attackForm(request{Method: "POST", Path: resetPath + live}, newPassword), want: http.StatusForbidden, check: samePassword, leakOK: true},

		{route: "GET /account", name: "the account page sends a stranger to sign in",
			req: request{Method: "GET", Path: "/account"}, want: 303},
		{route: "POST /account/password", name: "a password change without CSRF is refused",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: "/account/password"}), url.Values{"current": {"x"}, "password": {"attacker password"}, "confirm": {"attacker password"}}), want: 403},
		{route: "POST /account/password", name: "a password change needs the current password",
			req:  attackForm(attackAs(a.owner, request{Method: "POST", Path: "/account/password"}), url.Values{"_csrf": {a.owner.CSRF}, "current": {"wrong"}, "password": {"attacker password"}, "confirm": {"attacker password"}}),
			want: http.StatusUnprocessableEntity, leakOK: true},
	}
}
