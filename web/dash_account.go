package web

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"candor/store"
	"candor/web/views"
)

// Lifetimes of the links sent by email.
const (
	resetTTL        = time.Hour
	memberInviteTTL = 7 * 24 * time.Hour
	// chooseTTL is how long a person who proved their password may take to
	// pick an organization.
	chooseTTL = 10 * time.Minute
	// maxPasswordLen bounds the work one password costs to hash.
	maxPasswordLen = 1024
)

// Paths of the links in emails; the token follows.
const (
	resetPath      = "/password/reset/"
	invitationPath = "/invitation/"
)

// accountRoutes registers sign-in's organization chooser, password reset,
// member invitations and the signed-in account page.
func (s *Server) accountRoutes() {
	s.e.GET("/login/organization", s.handleChooseOrgPage, s.sessionAuth)
	s.e.POST("/login/organization", s.handleChooseOrg, s.sessionAuth)
	s.e.GET("/password/forgot", s.handleForgotPage, s.sessionAuth)
	s.e.POST("/password/forgot", s.handleForgot, s.sessionAuth)
	s.e.GET(resetPath+":token", s.handleSetPasswordPage(store.TokenReset), s.sessionAuth)
	s.e.POST(resetPath+":token", s.handleSetPassword(store.TokenReset), s.sessionAuth)
	s.e.GET(invitationPath+":token", s.handleSetPasswordPage(store.TokenInvite), s.sessionAuth)
	s.e.POST(invitationPath+":token", s.handleSetPassword(store.TokenInvite), s.sessionAuth)
	s.e.GET("/account", s.handleAccountPage, s.sessionAuth, s.requireLogin)
	s.e.POST("/account/password", s.handleChangePassword, s.sessionAuth, s.requireLogin, s.csrf)
}

// signIn starts a session in the one organization a person belongs to, or
// sends them to choose when there are several.
func (s *Server) signIn(c echo.Context, personID string, ms []store.Membership, next string) error {
	if len(ms) == 1 {
		if err := s.startSession(c, ms[0].User); err != nil {
			return err
		}
		return seeOther(c, safeNext(next))
	}
	s.setChooseTicket(c, personID)
	to := "/login/organization"
	if next != "" {
		to += "?next=" + url.QueryEscape(safeNext(next))
	}
	return seeOther(c, to)
}

// The choose ticket is a signed cookie saying "this person proved their
// password at": it lets them pick an organization without typing it again.
const chooseCookie = "candor_choose"

func (s *Server) setChooseTicket(c echo.Context, personID string) {
	v := personID + "." + strconv.FormatInt(time.Now().Add(chooseTTL).Unix(), 10)
	c.SetCookie(&http.Cookie{
		Name: chooseCookie, Value: v + "." + hex.EncodeToString(s.mac("choose:"+v)), Path: "/login/organization",
		MaxAge: int(chooseTTL / time.Second), HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) clearChooseTicket(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: chooseCookie, Path: "/login/organization", MaxAge: -1, HttpOnly: true,
		Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
}

// choosingPerson is the person picking an organization: the signed-in one
// (switching), else the one a valid ticket names; "" when neither.
func (s *Server) choosingPerson(c echo.Context) string {
	if p := principalOf(c); p != nil && p.PersonID != "" {
		return p.PersonID
	}
	ck, err := c.Cookie(chooseCookie)
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(ck.Value, '.')
	if i < 0 {
		return ""
	}
	v, sig := ck.Value[:i], ck.Value[i+1:]
	if !hmac.Equal([]byte(sig), []byte(hex.EncodeToString(s.mac("choose:"+v)))) {
		return ""
	}
	person, exp, ok := strings.Cut(v, ".")
	n, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || time.Now().Unix() > n {
		return ""
	}
	return person
}

func (s *Server) handleChooseOrgPage(c echo.Context) error {
	person := s.choosingPerson(c)
	if person == "" {
		return seeOther(c, "/login")
	}
	ms, err := s.db.Memberships(c.Request().Context(), person)
	if err != nil {
		return fmt.Errorf("memberships: %w", err)
	}
	ms = joined(ms)
	p, err := s.page(c, "Choose an organization", "")
	if err != nil {
		return err
	}
	if principalOf(c) == nil {
		p.CSRF = s.preSessionToken(c)
	}
	d := views.ChooseOrg{Next: c.QueryParam("next")}
	if safeNext(d.Next) != d.Next {
		d.Next = ""
	}
	for _, m := range ms {
		d.Orgs = append(d.Orgs, views.OrgChoice{TenantID: m.Tenant.ID, Name: m.Tenant.Name, Role: m.User.Role,
			Current: principalOf(c) != nil && principalOf(c).TenantID == m.Tenant.ID})
	}
	return render(c, http.StatusOK, views.ChooseOrgPage(p, d))
}

func (s *Server) handleChooseOrg(c echo.Context) error {
	person := s.choosingPerson(c)
	if person == "" {
		return seeOther(c, "/login")
	}
	if pr := principalOf(c); pr != nil {
		if err := s.csrf(func(echo.Context) error { return nil })(c); err != nil {
			return err
		}
	} else if !checkPreSessionToken(c) {
		return errBadCSRF
	}
	ms, err := s.db.Memberships(c.Request().Context(), person)
	if err != nil {
		return fmt.Errorf("memberships: %w", err)
	}
	ms = joined(ms)
	want := c.FormValue("tenant_id")
	for _, m := range ms {
		if m.Tenant.ID != want {
			continue
		}
		if err := s.endSession(c); err != nil {
			return err
		}
		s.clearChooseTicket(c)
		if err := s.startSession(c, m.User); err != nil {
			return err
		}
		return seeOther(c, safeNext(c.FormValue("next")))
	}
	return errorf(CodeNotFound, "you are not a member of that organization")
}

func (s *Server) handleForgotPage(c echo.Context) error {
	return s.renderForgot(c, http.StatusOK, views.ForgotForm{Email: c.QueryParam("email")}, nil)
}

func (s *Server) renderForgot(c echo.Context, status int, f views.ForgotForm, errs views.FormErrors) error {
	p, err := s.page(c, "Reset your password", "")
	if err != nil {
		return err
	}
	p.CSRF = s.preSessionToken(c)
	f.EmailOn = s.emailOn()
	return render(c, status, views.ForgotPage(p, f, errs))
}

// handleForgot emails a reset link when the address belongs to someone. The
// answer is the same whether it does or not, and the email goes from the
// background so the answer's timing tells nothing either.
func (s *Server) handleForgot(c echo.Context) error {
	f := views.ForgotForm{Email: strings.ToLower(strings.TrimSpace(c.FormValue("email")))}
	if !checkPreSessionToken(c) {
		return s.renderForgot(c, http.StatusForbidden, f, views.FormErrors{"": staleFormMessage})
	}
	if !s.emailOn() {
		return s.renderForgot(c, http.StatusConflict, f, nil)
	}
	if !validEmail(f.Email) {
		return s.renderForgot(c, http.StatusUnprocessableEntity, f, views.FormErrors{"email": "Enter a valid email address."})
	}
	ip := c.RealIP()
	if s.resets.reserve(ip) {
		s.goBackground(func(ctx context.Context) { s.sendReset(ctx, f.Email) })
	}
	s.setFlash(c, "success", "If "+f.Email+" has a Candor account, we sent it a link to choose a new password. It works for one hour.")
	return seeOther(c, "/login")
}

// goBackground runs fn on a context owned by the server (s.owned), so
// Close cancels it and waits for it.
func (s *Server) goBackground(fn func(ctx context.Context)) {
	ctx, done := s.owned(0)
	go func() {
		defer done()
		fn(ctx)
	}()
}

func (s *Server) sendReset(ctx context.Context, email string) {
	p, err := s.db.PersonByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		return
	}
	if err != nil {
		s.log.Error("password reset: look up person", "err", err)
		return
	}
	token := randomToken()
	exp := time.Now().Add(resetTTL)
	if err := s.db.CreatePersonToken(ctx, store.PersonToken{Hash: tokenHash(token), PersonID: p.ID, Purpose: store.TokenReset, ExpiresAt: exp}); err != nil {
		s.log.Error("password reset: store token", "err", err)
		return
	}
	if err := s.sendMail(ctx, p.Email, resetEmail, memberData{Link: s.cfg.PublicURL + resetPath + token, Expires: exp}); err != nil {
		s.log.Error("password reset: send email", "person", p.ID, "err", err)
		return
	}
	s.log.Info("password reset email sent", "person", p.ID)
}

// tokenPage loads what a set-password link's page shows; ok is false when
// the link is unknown, used or expired.
func (s *Server) tokenPage(c echo.Context, purpose string) (views.SetPassword, store.PersonToken, store.Person, bool, error) {
	ctx := c.Request().Context()
	tok := c.Param("token")
	d := views.SetPassword{Purpose: purpose, Action: c.Request().URL.Path}
	if tok == "" || len(tok) > 128 {
		return d, store.PersonToken{}, store.Person{}, false, nil
	}
	t, err := s.db.PersonToken(ctx, tokenHash(tok), purpose)
	if errors.Is(err, store.ErrNotFound) {
		return d, t, store.Person{}, false, nil
	}
	if err != nil {
		return d, t, store.Person{}, false, fmt.Errorf("look up token: %w", err)
	}
	person, err := s.db.Person(ctx, t.PersonID)
	if err != nil {
		return d, t, person, false, fmt.Errorf("person of token: %w", err)
	}
	d.Email = person.Email
	d.HasPassword = person.PasswordHash != ""
	if t.TenantID != "" {
		if tn, err := s.db.Tenant(ctx, t.TenantID); err == nil {
			d.Org = tn.Name
		}
	}
	return d, t, person, true, nil
}

func (s *Server) handleSetPasswordPage(purpose string) echo.HandlerFunc {
	return func(c echo.Context) error {
		d, _, _, ok, err := s.tokenPage(c, purpose)
		if err != nil {
			return err
		}
		return s.renderSetPassword(c, d, ok, nil)
	}
}

func (s *Server) renderSetPassword(c echo.Context, d views.SetPassword, ok bool, errs views.FormErrors) error {
	title := "Choose a new password"
	if d.Purpose == store.TokenInvite {
		title = "Welcome to Candor"
	}
	p, err := s.page(c, title, "")
	if err != nil {
		return err
	}
	p.CSRF = s.preSessionToken(c)
	status := http.StatusOK
	if !ok {
		d.Invalid = true
		status = http.StatusGone
	} else if len(errs) > 0 {
		status = http.StatusUnprocessableEntity
		if errs[""] == staleFormMessage {
			status = http.StatusForbidden
		}
	}
	// The token is in the URL: no Referer may carry it anywhere.
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
	return render(c, status, views.SetPasswordPage(p, d, errs))
}

// handleSetPassword spends a set-password link: it sets the password, ends
// every session the person had, and signs them in (in the organization
// that invited them, or where they choose).
func (s *Server) handleSetPassword(purpose string) echo.HandlerFunc {
	return func(c echo.Context) error {
		d, t, person, ok, err := s.tokenPage(c, purpose)
		if err != nil {
			return err
		}
		if !ok {
			return s.renderSetPassword(c, d, ok, nil)
		}
		if purpose == store.TokenInvite && d.HasPassword {
			// Someone who has a password joins by proving it here; the
			// invitation never replaces it.
			return s.acceptInvitation(c, d, t, person)
		}
		if !checkPreSessionToken(c) {
			return s.renderSetPassword(c, d, true, views.FormErrors{"": staleFormMessage})
		}
		password := c.FormValue("password")
		if errs := checkNewPassword(password, c.FormValue("confirm")); len(errs) > 0 {
			return s.renderSetPassword(c, d, true, errs)
		}
		ctx := c.Request().Context()
		hash, err := s.hashPassword(ctx, password)
		if err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		if _, err := s.db.UsePersonToken(ctx, t.Hash, purpose, hash); errors.Is(err, store.ErrNotFound) {
			return s.renderSetPassword(c, d, false, nil) // spent or expired meanwhile
		} else if err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		s.log.Info("password set from emailed link", "person", person.ID, "purpose", purpose)
		ms, err := s.db.Memberships(ctx, person.ID)
		if err != nil {
			return fmt.Errorf("memberships: %w", err)
		}
		if purpose == store.TokenInvite {
			// The invitation joins its own organization, and only that.
			var mine []store.Membership
			for _, m := range ms {
				if m.Tenant.ID == t.TenantID {
					mine = append(mine, m)
				}
			}
			ms = mine
		} else {
			ms = joined(ms)
		}
		if len(ms) == 0 {
			s.setFlash(c, "success", "Your password is set, but you no longer belong to any organization.")
			return seeOther(c, "/login")
		}
		s.setFlash(c, "success", "Your password is set. You are signed in.")
		return s.signIn(c, person.ID, ms, "")
	}
}

// checkNewPassword says what is wrong with a new password and its
// confirmation; nil when nothing is.
func checkNewPassword(password, confirm string) views.FormErrors {
	errs := views.FormErrors{}
	switch {
	case len(password) < minPasswordLen:
		errs["password"] = fmt.Sprintf("Use at least %d characters.", minPasswordLen)
	case len(password) > maxPasswordLen:
		errs["password"] = fmt.Sprintf("Use at most %d characters.", maxPasswordLen)
	case password != confirm:
		errs["confirm"] = "The two passwords differ. Type the same password twice."
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func (s *Server) handleAccountPage(c echo.Context) error {
	return s.renderAccount(c, http.StatusOK, nil)
}

func (s *Server) renderAccount(c echo.Context, status int, errs views.FormErrors) error {
	pr := principalOf(c)
	ms, err := s.db.Memberships(c.Request().Context(), pr.PersonID)
	if err != nil {
		return fmt.Errorf("memberships: %w", err)
	}
	p, err := s.page(c, "Your account", "")
	if err != nil {
		return err
	}
	return render(c, status, views.AccountPage(p, views.Account{Organizations: len(joined(ms))}, errs))
}

// handleChangePassword changes the signed-in person's password after
// checking the current one (a left-open browser is not enough). Their other
// sessions end; this one stays.
func (s *Server) handleChangePassword(c echo.Context) error {
	pr := principalOf(c)
	ctx := c.Request().Context()
	_, _, err := s.checkLogin(ctx, c.RealIP(), pr.Email, c.FormValue("current"))
	switch {
	case errors.Is(err, errTooManyAttempts):
		return s.renderAccount(c, http.StatusTooManyRequests, views.FormErrors{"current": "Too many failed attempts. Wait 15 minutes and try again."})
	case errors.Is(err, errBadLogin):
		return s.renderAccount(c, http.StatusUnprocessableEntity, views.FormErrors{"current": "This is not your current password."})
	case err != nil:
		return err
	}
	password := c.FormValue("password")
	if errs := checkNewPassword(password, c.FormValue("confirm")); len(errs) > 0 {
		return s.renderAccount(c, http.StatusUnprocessableEntity, errs)
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	keep := ""
	if ck, err := c.Cookie(SessionCookie); err == nil {
		keep = tokenHash(ck.Value)
	}
	if err := s.db.SetPassword(ctx, pr.PersonID, hash, keep); err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	s.setFlash(c, "success", "Your password is changed. Other browsers signed in as you were signed out.")
	return seeOther(c, "/account")
}

// acceptInvitation joins a person who has a password to the organization
// whose invitation link this is, once they type that password.
func (s *Server) acceptInvitation(c echo.Context, d views.SetPassword, t store.PersonToken, person store.Person) error {
	if c.Request().Method != http.MethodPost {
		return s.renderSetPassword(c, d, true, nil)
	}
	if !checkPreSessionToken(c) {
		return s.renderSetPassword(c, d, true, views.FormErrors{"": staleFormMessage})
	}
	ctx := c.Request().Context()
	_, ms, err := s.checkLogin(ctx, c.RealIP(), person.Email, c.FormValue("password"))
	switch {
	case errors.Is(err, errTooManyAttempts):
		return s.renderSetPassword(c, d, true, views.FormErrors{"password": "Too many failed attempts. Wait 15 minutes and try again."})
	case errors.Is(err, errBadLogin):
		return s.renderSetPassword(c, d, true, views.FormErrors{"password": "This is not your Candor password."})
	case err != nil:
		return err
	}
	if _, err := s.db.AcceptInvitation(ctx, t.Hash); errors.Is(err, store.ErrNotFound) {
		return s.renderSetPassword(c, d, false, nil)
	} else if err != nil {
		return fmt.Errorf("accept invitation: %w", err)
	}
	for _, m := range ms {
		if m.Tenant.ID == t.TenantID {
			if err := s.startSession(c, m.User); err != nil {
				return err
			}
			s.setFlash(c, "success", "You joined "+m.Tenant.Name+".")
			return seeOther(c, "/interviews")
		}
	}
	return seeOther(c, "/login")
}
