package web

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"candor/store"
	"candor/web/views"
)

// preSessionCookie carries the CSRF token of the forms shown before a
// session exists (setup, login): the form's _csrf must equal the cookie
// (double submit), so another site cannot sign a browser into an account
// of its choosing.
const preSessionCookie = "candor_precsrf"

func (s *Server) preSessionToken(c echo.Context) string {
	if ck, err := c.Cookie(preSessionCookie); err == nil && len(ck.Value) >= 32 {
		return ck.Value
	}
	tok := randomToken()
	c.SetCookie(&http.Cookie{
		Name: preSessionCookie, Value: tok, Path: "/", MaxAge: 3600,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
	return tok
}

func checkPreSessionToken(c echo.Context) bool {
	ck, err := c.Cookie(preSessionCookie)
	got := c.FormValue("_csrf")
	return err == nil && ck.Value != "" && got != "" && subtle.ConstantTimeCompare([]byte(ck.Value), []byte(got)) == 1
}

const staleFormMessage = "This form expired. Please try again."

// setupMu makes "no user exists yet, so create the first organization" one
// step within this process, so two racing setup forms cannot both create an
// organization (the control plane is one process over its SQLite file).
var setupMu sync.Mutex

// handleRoot sends the visitor where they can start: setup on a fresh
// install, the login page, or the interviews.
func (s *Server) handleRoot(c echo.Context) error {
	if principalOf(c) != nil {
		return seeOther(c, "/interviews")
	}
	n, err := s.db.CountUsers(c.Request().Context())
	if err != nil {
		return fmt.Errorf("count users: %w", err)
	}
	if n == 0 {
		return seeOther(c, "/setup")
	}
	return seeOther(c, "/login")
}

// setupOpen reports whether first-run setup may still happen: only while no
// user exists at all.
func (s *Server) setupOpen(c echo.Context) (bool, error) {
	n, err := s.db.CountUsers(c.Request().Context())
	if err != nil {
		return false, fmt.Errorf("count users: %w", err)
	}
	return n == 0, nil
}

func (s *Server) handleSetupForm(c echo.Context) error {
	open, err := s.setupOpen(c)
	if err != nil {
		return err
	}
	if !open {
		return seeOther(c, "/")
	}
	return s.renderSetup(c, http.StatusOK, views.SetupForm{}, nil)
}

func (s *Server) renderSetup(c echo.Context, status int, f views.SetupForm, errs views.FormErrors) error {
	p, err := s.page(c, "Set up", "")
	if err != nil {
		return err
	}
	p.CSRF = s.preSessionToken(c)
	return render(c, status, views.SetupPage(p, f, errs))
}

func (s *Server) handleSetup(c echo.Context) error {
	setupMu.Lock()
	defer setupMu.Unlock()
	open, err := s.setupOpen(c)
	if err != nil {
		return err
	}
	if !open {
		return seeOther(c, "/")
	}
	f := views.SetupForm{
		Org:   strings.TrimSpace(c.FormValue("org")),
		Name:  strings.TrimSpace(c.FormValue("name")),
		Email: strings.ToLower(strings.TrimSpace(c.FormValue("email"))),
	}
	password := c.FormValue("password")
	if !checkPreSessionToken(c) {
		return s.renderSetup(c, http.StatusForbidden, f, views.FormErrors{"": staleFormMessage})
	}
	errs := views.FormErrors{}
	if f.Org == "" {
		errs["org"] = "Enter your organization's name."
	} else if len(f.Org) > 100 {
		errs["org"] = "Keep the name under 100 characters."
	}
	if f.Name == "" {
		errs["name"] = "Enter your name."
	}
	if !validEmail(f.Email) {
		errs["email"] = "Enter a valid email address."
	}
	if len(password) < minPasswordLen {
		errs["password"] = fmt.Sprintf("Use at least %d characters.", minPasswordLen)
	}
	if len(errs) > 0 {
		return s.renderSetup(c, http.StatusUnprocessableEntity, f, errs)
	}
	hash, err := s.hashPassword(c.Request().Context(), password)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	_, u, err := s.db.CreateTenantWithOwner(c.Request().Context(), f.Org, f.Email, f.Name, hash)
	if errors.Is(err, store.ErrConflict) {
		// Someone completed setup at the same moment.
		return s.renderSetup(c, http.StatusConflict, f, views.FormErrors{"": "This organization or email exists already. Sign in instead."})
	}
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if err := s.startSession(c, u); err != nil {
		return err
	}
	s.setFlash(c, "success", "Welcome to Candor. Create a position and a candidate to schedule your first interview.")
	return seeOther(c, "/interviews")
}

func (s *Server) handleLoginForm(c echo.Context) error {
	next := safeNext(c.QueryParam("next"))
	if principalOf(c) != nil {
		return seeOther(c, next)
	}
	open, err := s.setupOpen(c)
	if err != nil {
		return err
	}
	if open {
		return seeOther(c, "/setup")
	}
	return s.renderLogin(c, http.StatusOK, views.LoginForm{Next: c.QueryParam("next"), Email: c.QueryParam("email")}, nil)
}

func (s *Server) renderLogin(c echo.Context, status int, f views.LoginForm, errs views.FormErrors) error {
	p, err := s.page(c, "Sign in", "")
	if err != nil {
		return err
	}
	p.CSRF = s.preSessionToken(c)
	if f.Next != "" && safeNext(f.Next) != f.Next {
		f.Next = ""
	}
	return render(c, status, views.LoginPage(p, f, errs))
}

func (s *Server) handleLogin(c echo.Context) error {
	f := views.LoginForm{Email: strings.TrimSpace(c.FormValue("email")), Next: c.FormValue("next")}
	password := c.FormValue("password")
	if !checkPreSessionToken(c) {
		return s.renderLogin(c, http.StatusForbidden, f, views.FormErrors{"": staleFormMessage})
	}
	errs := views.FormErrors{}
	if f.Email == "" {
		errs["email"] = "Enter your email."
	}
	if password == "" {
		errs["password"] = "Enter your password."
	}
	if len(errs) > 0 {
		return s.renderLogin(c, http.StatusUnprocessableEntity, f, errs)
	}
	person, ms, err := s.checkLogin(c.Request().Context(), c.RealIP(), f.Email, password)
	switch {
	case errors.Is(err, errPasswordBusy):
		c.Response().Header().Set("Retry-After", passwordRetryAfter)
		return s.renderLogin(c, http.StatusTooManyRequests, f, views.FormErrors{"": "Many people are signing in right now. Try again in a few seconds."})
	case errors.Is(err, errTooManyAttempts):
		return s.renderLogin(c, http.StatusTooManyRequests, f, views.FormErrors{"": "Too many failed attempts. Wait 15 minutes and try again."})
	case errors.Is(err, errBadLogin):
		return s.renderLogin(c, http.StatusUnauthorized, f, views.FormErrors{"": "Email or password is wrong."})
	case err != nil:
		return err
	}
	if ms = joined(ms); len(ms) == 0 {
		// Only pending invitations: they are joined through their links.
		return s.renderLogin(c, http.StatusUnauthorized, f, views.FormErrors{"": "Email or password is wrong."})
	}
	return s.signIn(c, person.ID, ms, f.Next)
}

func (s *Server) handleLogout(c echo.Context) error {
	if err := s.endSession(c); err != nil {
		return err
	}
	s.setFlash(c, "success", "You are signed out.")
	return seeOther(c, "/login")
}

// safeNext keeps a post-login redirect on this site: a path that starts
// with exactly one "/", parsed as a URL with no scheme or host, holding no
// control character (browsers drop tabs and newlines, so "/\t/evil.test"
// would become "//evil.test") and no backslash (which browsers read as
// "/"). Anything else goes to the interviews.
func safeNext(next string) string {
	const home = "/interviews"
	if next == "" || len(next) > 2048 || next[0] != '/' || strings.HasPrefix(next, "//") {
		return home
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f || r == '\\' || r == '\u00a0' || r == '\u2028' || r == '\u2029' {
			return home
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return home
	}
	return next
}
