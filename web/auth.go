package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"candor/store"
	"candor/web/account"
)

// SessionCookie is the name of the dashboard's login cookie.
const SessionCookie = "candor_session"

// sessionTTL is how long a login lasts.
const sessionTTL = 14 * 24 * time.Hour

// apiKeyRole is the role an API key acts with: it may read and write
// interview data, not manage users (dashboard-only, owner).
const apiKeyRole = store.RoleRecruiter

// principal is who makes a request: a dashboard user (cookie session, CSRF
// set) or an API key (APIKeyID set, no CSRF: a bearer token is not sent by
// browsers on their own).
type principal struct {
	TenantID, UserID, PersonID, Email, Name string
	Role                                    store.Role
	APIKeyID                                string
	CSRF                                    string
	// credHash is the hash of the credential the request presented (the
	// session cookie or the API key), so a long-lived connection can
	// check that it is still valid.
	credHash string
}

// seesInvites reports whether p may see invite links: an invite link
// starts and ends the interview, which viewers may not.
func (p *principal) seesInvites() bool {
	return p != nil && (p.Role == store.RoleOwner || p.Role == store.RoleRecruiter)
}

// viewerID names the principal in presence lists.
func (p *principal) viewerID() string {
	if p.UserID != "" {
		return p.UserID
	}
	return p.APIKeyID
}

const principalKey = "candor.principal"

// principalOf returns the request's principal, nil when anonymous.
func principalOf(c echo.Context) *principal {
	p, _ := c.Get(principalKey).(*principal)
	return p
}

var (
	errTooManyAttempts = errorf(CodeTooManyRequests, "too many failed sign-in attempts; wait 15 minutes and try again")
	errBadLogin        = errorf(CodeUnauthorized, "email or password is wrong")
	errNoCredentials   = errorf(CodeUnauthorized, "sign in, or send an API key as Authorization: Bearer <key>")
	errBadAPIKey       = errorf(CodeUnauthorized, "the API key is invalid or revoked")
	errBadCSRF         = errorf(CodeForbidden, "missing or wrong CSRF token: send the form field _csrf or the header X-CSRF-Token")
)

// sessionAuth loads the cookie session, if any, as the request's principal.
// Anonymous requests pass through; use requireLogin to insist.
func (s *Server) sessionAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := s.loadSession(c); err != nil {
			return err
		}
		return next(c)
	}
}

func (s *Server) loadSession(c echo.Context) error {
	if principalOf(c) != nil {
		return nil
	}
	ck, err := c.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	ctx := c.Request().Context()
	sess, err := s.db.SessionByHash(ctx, tokenHash(ck.Value))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load session: %w", err)
	}
	u, err := s.db.User(ctx, sess.TenantID, sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the user was deleted; the session dies with them
	}
	if err != nil {
		return fmt.Errorf("load session user: %w", err)
	}
	c.Set(principalKey, &principal{
		TenantID: u.TenantID, UserID: u.ID, PersonID: u.PersonID, Email: u.Email, Name: u.Name,
		Role: u.Role, CSRF: sess.CSRFToken, credHash: tokenHash(ck.Value),
	})
	return nil
}

// requireLogin sends anonymous page requests to /login, or to /setup while
// no user exists. Put it after sessionAuth.
func (s *Server) requireLogin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if principalOf(c) != nil {
			return next(c)
		}
		n, err := s.db.CountUsers(c.Request().Context())
		if err != nil {
			return fmt.Errorf("count users: %w", err)
		}
		if n == 0 {
			return c.Redirect(http.StatusSeeOther, "/setup")
		}
		to := "/login"
		if c.Request().Method == http.MethodGet && c.Request().URL.Path != "/" {
			to += "?next=" + url.QueryEscape(c.Request().URL.RequestURI())
		}
		return c.Redirect(http.StatusSeeOther, to)
	}
}

// requireRole lets through principals with one of roles: 401 when
// anonymous, 403 otherwise. Viewers are read-only, so write routes use
// requireRole(store.RoleOwner, store.RoleRecruiter).
func (s *Server) requireRole(roles ...store.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := principalOf(c)
			if p == nil {
				return errNoCredentials
			}
			if !slices.Contains(roles, p.Role) {
				return errorf(CodeForbidden, "your role (%s) cannot do this", p.Role)
			}
			return next(c)
		}
	}
}

// csrf guards cookie-authenticated unsafe requests: they must carry the
// session's CSRF token as form field _csrf or header X-CSRF-Token. API keys
// and anonymous requests pass (there is no ambient credential to abuse).
func (s *Server) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := principalOf(c)
		if p == nil || p.APIKeyID != "" || safeMethod(c.Request().Method) {
			return next(c)
		}
		got := c.Request().Header.Get("X-CSRF-Token")
		if got == "" {
			ct := c.Request().Header.Get(echo.HeaderContentType)
			if strings.HasPrefix(ct, echo.MIMEApplicationForm) || strings.HasPrefix(ct, echo.MIMEMultipartForm) {
				got = c.FormValue("_csrf")
			}
		}
		if got == "" || p.CSRF == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.CSRF)) != 1 {
			return errBadCSRF
		}
		return next(c)
	}
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

// apiAuth authenticates /api/v1: a Bearer API key, or else the dashboard's
// session cookie (then with CSRF on unsafe methods). A bad API key is
// refused even when a cookie is present.
func (s *Server) apiAuth(next echo.HandlerFunc) echo.HandlerFunc {
	withCSRF := s.csrf(next)
	return func(c echo.Context) error {
		if h := c.Request().Header.Get(echo.HeaderAuthorization); h != "" {
			p, err := s.apiKeyPrincipal(c.Request().Context(), h)
			if err != nil {
				return err
			}
			c.Set(principalKey, p)
			return next(c)
		}
		if err := s.loadSession(c); err != nil {
			return err
		}
		if principalOf(c) == nil {
			return errNoCredentials
		}
		return withCSRF(c)
	}
}

func (s *Server) apiKeyPrincipal(ctx context.Context, authorization string) (*principal, error) {
	key, ok := bearerToken(authorization)
	if !ok {
		return nil, errBadAPIKey
	}
	k, err := s.db.APIKeyByHash(ctx, tokenHash(key))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadAPIKey
	}
	if err != nil {
		return nil, fmt.Errorf("look up API key: %w", err)
	}
	return &principal{TenantID: k.TenantID, Name: k.Name, Role: apiKeyRole, APIKeyID: k.ID, credHash: tokenHash(key)}, nil
}

// bearerToken extracts the token of an "Authorization: Bearer <token>".
func bearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// startSession logs u in: a new session row (only the token's hash is
// stored) and its cookie. The principal is set on c so the same request
// can render with the new CSRF token.
func (s *Server) startSession(c echo.Context, u store.User) error {
	token := randomToken()
	now := time.Now().UTC()
	sess := store.Session{
		IDHash:    tokenHash(token),
		UserID:    u.ID,
		TenantID:  u.TenantID,
		CSRFToken: randomToken(),
		CreatedAt: now,
		ExpiresAt: now.Add(sessionTTL),
	}
	ctx := c.Request().Context()
	// Expired sessions are swept at each login: logins are rare, so the
	// table stays small without a background sweeper.
	if _, err := s.db.DeleteExpiredSessions(ctx); err != nil {
		return fmt.Errorf("sweep expired sessions: %w", err)
	}
	if err := s.db.CreateSession(ctx, sess); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	if u.JoinedAt == nil {
		if err := s.db.MarkJoined(ctx, u.TenantID, u.ID); err != nil {
			return err
		}
	}
	c.SetCookie(s.sessionCookie(token, sess.ExpiresAt))
	c.Set(principalKey, &principal{
		TenantID: u.TenantID, UserID: u.ID, PersonID: u.PersonID, Email: u.Email, Name: u.Name,
		Role: u.Role, CSRF: sess.CSRFToken,
	})
	return nil
}

// endSession logs out: deletes the session row, if any, and the cookie.
func (s *Server) endSession(c echo.Context) error {
	if ck, err := c.Cookie(SessionCookie); err == nil && ck.Value != "" {
		hash := tokenHash(ck.Value)
		err := s.db.DeleteSession(c.Request().Context(), hash)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete session: %w", err)
		}
		s.revokeLive(func(p *principal) bool { return p.credHash == hash })
	}
	ck := s.sessionCookie("", time.Unix(0, 0))
	ck.MaxAge = -1
	c.SetCookie(ck)
	c.Set(principalKey, nil)
	return nil
}

func (s *Server) sessionCookie(value string, expires time.Time) *http.Cookie {
	return &http.Cookie{
		Name:     SessionCookie,
		Value:    value,
		Path:     "/",
		Expires:  expires,
		HttpOnly: true,
		Secure:   s.cfg.SecureCookies,
		SameSite: http.SameSiteLaxMode,
	}
}

// checkLogin returns the person whose email and password these are, with
// the organizations they belong to (at least one). Every attempt is
// reserved before the password is hashed, atomically, per account (5 in 15
// minutes, whatever the client address or concurrency) and per client
// address (50, against trying many emails): past either limit it answers
// errTooManyAttempts without hashing. A successful sign-in gives its
// reservations back. The hashing itself waits for one of a CPU-sized set of
// slots (each argon2id check holds 19 MiB): past Config.PasswordWait it
// answers errPasswordBusy.
func (s *Server) checkLogin(ctx context.Context, ip, email, password string) (store.Person, []store.Membership, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if !s.ipLogins.reserve(ip) {
		return store.Person{}, nil, errTooManyAttempts
	}
	if !s.logins.reserve(email) {
		s.ipLogins.release(ip)
		return store.Person{}, nil, errTooManyAttempts
	}
	ok, p, ms, err := s.verifyLogin(ctx, email, password)
	if err != nil || !ok {
		if errors.Is(err, errPasswordBusy) {
			// Nothing was checked: the attempt does not count.
			s.logins.release(email)
			s.ipLogins.release(ip)
		}
		if err == nil {
			err = errBadLogin
		}
		return store.Person{}, nil, err
	}
	s.logins.reset(email)
	s.ipLogins.release(ip)
	return p, ms, nil
}

func (s *Server) verifyLogin(ctx context.Context, email, password string) (bool, store.Person, []store.Membership, error) {
	p, err := s.db.PersonByEmail(ctx, email)
	hash := p.PasswordHash
	if errors.Is(err, store.ErrNotFound) {
		hash = dummyPasswordHash() // same cost as a real check
	} else if err != nil {
		return false, store.Person{}, nil, fmt.Errorf("look up person: %w", err)
	}
	var ok bool
	if err := s.passwordWork(ctx, func() { ok = verifyPassword(hash, password) && p.ID != "" }); err != nil {
		return false, store.Person{}, nil, err
	}
	if !ok {
		return false, p, nil, nil
	}
	ms, err := s.db.Memberships(ctx, p.ID)
	if err != nil {
		return false, store.Person{}, nil, fmt.Errorf("memberships: %w", err)
	}
	// Removed from every organization: as if the account did not exist.
	// (Callers sign in only to joined memberships: see joined.)
	return len(ms) > 0, p, ms, nil
}

// joined keeps the memberships a person has joined. A membership an owner
// added stays pending until the person uses its own invitation link (which
// went to their email, or which the owner passed on): knowing the password
// is not enough, so whoever set a person's password through one
// organization's link cannot walk into another organization that invited
// the same email.
func joined(ms []store.Membership) []store.Membership {
	out := ms[:0:0]
	for _, m := range ms {
		if m.User.JoinedAt != nil {
			out = append(out, m)
		}
	}
	return out
}

var errPasswordBusy = errorf(CodeTooManyRequests, "the server is busy checking other sign-ins; try again in a few seconds")

// passwordRetryAfter is the Retry-After (seconds) of errPasswordBusy.
const passwordRetryAfter = "2"

// passwordWork runs f, an argon2id hash or check, in one of the server's
// hashing slots, so that concurrent sign-ins cannot multiply its memory.
// It gives up with errPasswordBusy after Config.PasswordWait.
func (s *Server) passwordWork(ctx context.Context, f func()) error {
	t := time.NewTimer(s.cfg.PasswordWait)
	defer t.Stop()
	select {
	case s.hashSlots <- struct{}{}:
	case <-t.C:
		return errPasswordBusy
	case <-ctx.Done():
		return errPasswordBusy
	}
	defer func() { <-s.hashSlots }()
	s.passwordChecks.Add(1)
	f()
	return nil
}

// hashPassword hashes p in one of the server's hashing slots.
func (s *Server) hashPassword(ctx context.Context, p string) (hash string, err error) {
	if werr := s.passwordWork(ctx, func() { hash, err = hashPassword(p) }); werr != nil {
		return "", werr
	}
	return hash, err
}

// windowLimiter counts attempts (sign-ins, stored events) per key within a sliding window. It
// prunes itself as it grows (at most once a window), so it needs no
// goroutine.
type windowLimiter struct {
	mu       sync.Mutex
	max      int
	window   time.Duration
	failures map[string][]time.Time
	pruned   time.Time
	now      func() time.Time
}

func newWindowLimiter(max int, window time.Duration) *windowLimiter {
	return &windowLimiter{max: max, window: window, failures: map[string][]time.Time{}, now: time.Now}
}

// reserve counts an attempt for key unless key has had max in the window;
// check and count are one step, so concurrent attempts cannot all pass.
func (l *windowLimiter) reserve(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.recent(key)) >= l.max {
		return false
	}
	if len(l.failures) >= 10000 && l.now().Sub(l.pruned) > l.window {
		for k := range l.failures {
			l.recent(k)
		}
		l.pruned = l.now()
	}
	l.failures[key] = append(l.recent(key), l.now())
	return true
}

// release gives back one reservation of key (the attempt did not fail).
func (l *windowLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.recent(key)
	if len(ts) <= 1 {
		delete(l.failures, key)
		return
	}
	l.failures[key] = ts[:len(ts)-1]
}

func (l *windowLimiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, key)
}

// recent drops key's failures older than the window and returns the rest.
func (l *windowLimiter) recent(key string) []time.Time {
	cutoff := l.now().Add(-l.window)
	ts := l.failures[key]
	i := 0
	for i < len(ts) && ts[i].Before(cutoff) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.failures, key)
		return nil
	}
	l.failures[key] = ts
	return ts
}

var dummyPasswordHash = sync.OnceValue(func() string {
	h, _ := hashPassword("candor-timing-equalizer")
	return h
})

// newAPIKey creates an API key for tenantID and returns it in plain text
// (shown once), with its stored description.
func (s *Server) newAPIKey(ctx context.Context, tenantID, name string) (plaintext string, k store.APIKey, err error) {
	return createAPIKey(ctx, s.db, tenantID, name)
}

// invitePath is where the candidate page lives: invitePath + token.
const invitePath = "/i/"

// inviteToken is the secret of an interview's invite link:
// base64url(HMAC-SHA256(SecretKey, "invite:"+id)). Being derived, the link
// can be shown again; only its hash (tokenHash) is stored.
func (s *Server) inviteToken(interviewID string) string {
	return base64.RawURLEncoding.EncodeToString(s.mac("invite:" + interviewID))
}

// inviteURLFor is the invite link as p may see it: "" for viewers.
func (s *Server) inviteURLFor(p *principal, interviewID string) string {
	if !p.seesInvites() {
		return ""
	}
	return s.inviteURL(interviewID)
}

// inviteURL is the link a candidate joins with.
func (s *Server) inviteURL(interviewID string) string {
	return s.cfg.PublicURL + invitePath + s.inviteToken(interviewID)
}

func (s *Server) mac(msg string) []byte {
	m := hmac.New(sha256.New, s.cfg.SecretKey)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// validEmail is a sanity check, not RFC 5322: one @, something on both
// sides, a dot in the domain, no spaces.
func validEmail(e string) bool {
	local, domain, ok := strings.Cut(e, "@")
	return ok && local != "" && strings.Contains(domain, ".") && !strings.ContainsAny(e, " \t\r\n<>") &&
		!strings.Contains(domain, "@") && len(e) <= 254
}

// The account primitives live in package account (which knows no HTTP, so
// the CLI's bootstrap needs nothing of web); these are their names here.
var (
	hashPassword   = account.HashPassword
	verifyPassword = account.VerifyPassword
	tokenHash      = account.TokenHash
	randomToken    = account.RandomToken
	createAPIKey   = account.NewAPIKey
	// Bootstrap is account.Bootstrap (tests and benches call it here).
	Bootstrap = account.Bootstrap
)

// BootstrapResult is what `candor admin bootstrap` prints.
type BootstrapResult = account.BootstrapResult

// APIKeyPrefix starts every API key.
const APIKeyPrefix = account.APIKeyPrefix

// minPasswordLen is the shortest password accepted for a new account.
const minPasswordLen = account.MinPasswordLen
