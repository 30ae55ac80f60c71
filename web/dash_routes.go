package web

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"candor/store"
	"candor/web/views"
)

// staticFiles are the dashboard's hand-written CSS and JS.
//
//go:embed static
var staticFiles embed.FS

// dashboardRoutes registers the recruiter dashboard's server-rendered pages
// and its embedded static assets. server.go calls it once while building the
// echo instance.
func (s *Server) dashboardRoutes() {
	s.renderErrorPage = s.renderDashError

	s.e.GET("/static/*", handleStatic)
	s.e.HEAD("/static/*", handleStatic)

	// Pages reached before signing in.
	s.e.GET("/", s.handleRoot, s.sessionAuth)
	s.e.GET("/setup", s.handleSetupForm, s.sessionAuth)
	s.e.POST("/setup", s.handleSetup, s.sessionAuth)
	s.e.GET("/login", s.handleLoginForm, s.sessionAuth)
	s.e.POST("/login", s.handleLogin, s.sessionAuth)
	s.e.POST("/logout", s.handleLogout, s.sessionAuth, s.csrf)

	// Signed-in pages. Reads are open to every role; writes need the role
	// as well, enforced here whatever the page shows.
	read := []echo.MiddlewareFunc{s.sessionAuth, s.requireLogin}
	write := []echo.MiddlewareFunc{s.sessionAuth, s.requireLogin, s.csrf, s.requireRole(store.RoleOwner, store.RoleRecruiter)}
	owner := []echo.MiddlewareFunc{s.sessionAuth, s.requireLogin, s.csrf, s.requireRole(store.RoleOwner)}

	s.e.GET("/interviews", s.handleInterviewsPage, read...)
	s.e.POST("/interviews", s.handleCreateInterviewForm, write...)
	s.e.GET("/interviews/:id", s.handleInterviewPage, read...)
	s.e.POST("/interviews/:id/invite", s.handleResendInviteForm, write...)

	s.e.GET("/positions", s.handlePositionsPage, read...)
	s.e.GET("/positions/new", s.handleNewPositionPage, read...)
	s.e.POST("/positions", s.handleCreatePositionForm, write...)
	s.e.GET("/positions/:id", s.handlePositionPage, read...)
	s.e.POST("/positions/:id", s.handleUpdatePositionForm, write...)
	s.e.POST("/positions/:id/delete", s.handleDeletePositionForm, write...)

	s.e.GET("/candidates", s.handleCandidatesPage, read...)
	s.e.POST("/candidates", s.handleCreateCandidateForm, write...)
	s.e.GET("/candidates/:id", s.handleCandidateRecordPage, read...)
	s.e.POST("/candidates/:id", s.handleUpdateCandidateForm, write...)

	s.e.GET("/search", s.handleSearchPage, read...)

	s.e.GET("/members", s.handleMembersPage, read...)
	s.e.POST("/members", s.handleAddMember, owner...)
	s.e.POST("/members/:id/role", s.handleChangeMemberRole, owner...)
	s.e.POST("/members/:id/invite", s.handleResendMemberInvite, owner...)
	s.e.POST("/members/:id/delete", s.handleRemoveMember, owner...)

	s.e.GET("/api-keys", s.handleAPIKeysPage, read...)
	s.e.POST("/api-keys", s.handleCreateAPIKeyForm, write...)
	s.e.POST("/api-keys/:id/revoke", s.handleRevokeAPIKey, write...)

	s.e.GET("/settings", s.handleSettingsPage, read...)
	s.e.POST("/settings/secrets", s.handleSetSecret, owner...)
	s.e.POST("/settings/secrets/delete", s.handleDeleteSecret, owner...)
	s.candidateRoutes()
	s.accountRoutes()
	s.afterDashRoutes()
}

// render writes a page. The component renders into a buffer first, so a
// template error becomes a clean 500 instead of half a page.
func render(c echo.Context, status int, page templ.Component) error {
	buf := templ.GetBuffer()
	defer templ.ReleaseBuffer(buf)
	if err := page.Render(c.Request().Context(), buf); err != nil {
		return fmt.Errorf("render %s: %w", c.Path(), err)
	}
	h := c.Response().Header()
	// Pages hold tenant data and CSRF tokens: never keep them in caches.
	h.Set("Cache-Control", "no-store")
	// nosniff, framing, referrer policy and CSP: securityHeaders.
	return c.HTMLBlob(status, buf.Bytes())
}

// page builds the layout data of a signed-in page and consumes the flash.
func (s *Server) page(c echo.Context, title, nav string) (views.Page, error) {
	p := views.Page{Title: title, Nav: nav, AssetVersion: assetVersion(), Flash: s.takeFlash(c)}
	pr := principalOf(c)
	if pr == nil {
		return p, nil
	}
	t, err := s.db.Tenant(c.Request().Context(), pr.TenantID)
	if err != nil {
		return p, fmt.Errorf("load tenant: %w", err)
	}
	p.Org = t.Name
	p.CSRF = pr.CSRF
	p.User = &views.User{ID: pr.UserID, Name: pr.Name, Email: pr.Email, Role: pr.Role}
	return p, nil
}

// renderDashError is the server's error page for browser requests.
func (s *Server) renderDashError(c echo.Context, status int, msg string) error {
	// Unmatched paths ran no middleware: load the session, if any, so a
	// signed-in user keeps their navigation on the 404 page.
	if principalOf(c) == nil {
		_ = s.loadSession(c)
	}
	p, err := s.page(c, "", "")
	if err != nil {
		// The error page must not fail in turn: show it without the org.
		p = views.Page{AssetVersion: assetVersion(), User: p.User, CSRF: p.CSRF}
	}
	title := http.StatusText(status)
	switch status {
	case http.StatusNotFound:
		title, msg = "Page not found", "There is nothing here, or it belongs to another organization."
	case http.StatusForbidden:
		title = "Not allowed"
		if strings.Contains(msg, "CSRF") {
			msg = "The form was stale or incomplete. Go back, reload the page and try again."
		}
	case http.StatusUnauthorized:
		title = "Please sign in"
	}
	if status >= 500 {
		title, msg = "Something went wrong", "The server could not complete this request. Try again; if it keeps failing, the operator can find the cause in the log."
	}
	p.Title = title
	return render(c, status, views.ErrorPage(p, status, title, msg))
}

// seeOther answers a POST with 303 to a GET page (post/redirect/get).
func seeOther(c echo.Context, to string) error {
	return c.Redirect(http.StatusSeeOther, to)
}

// Flash messages ride in a short-lived, HttpOnly cookie signed with the
// server's key, so a page can say what the previous POST did.

const flashCookie = "candor_flash"

func (s *Server) setFlash(c echo.Context, kind, msg string) {
	raw, _ := json.Marshal(views.Flash{Kind: kind, Message: msg})
	v := base64.RawURLEncoding.EncodeToString(raw)
	c.SetCookie(&http.Cookie{
		Name: flashCookie, Value: v + "." + hex.EncodeToString(s.mac("flash:"+v)),
		Path: "/", MaxAge: 60, HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) takeFlash(c echo.Context) *views.Flash {
	ck, err := c.Cookie(flashCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	c.SetCookie(&http.Cookie{Name: flashCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
	v, sig, ok := strings.Cut(ck.Value, ".")
	want := hex.EncodeToString(s.mac("flash:" + v))
	if !ok || !hmac.Equal([]byte(sig), []byte(want)) {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return nil
	}
	var f views.Flash
	if json.Unmarshal(raw, &f) != nil || (f.Kind != "success" && f.Kind != "error") {
		return nil
	}
	return &f
}

// assetVersion is a digest of the embedded assets: URLs carry it, so the
// assets can be cached for a year and still change with each build.
var assetVersion = sync.OnceValue(func() string {
	h := sha256.New()
	_ = fs.WalkDir(staticFiles, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFiles.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
})

// handleStatic serves the embedded assets: immutable for a year when asked
// for with the current version, revalidated (ETag) otherwise.
func handleStatic(c echo.Context) error {
	name := path.Clean("/" + c.Param("*"))
	b, err := staticFiles.ReadFile("static" + name)
	if err != nil {
		return echo.ErrNotFound
	}
	h := c.Response().Header()
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", `"`+assetVersion()+`"`)
	if c.QueryParam("v") == assetVersion() {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=0, must-revalidate")
	}
	http.ServeContent(c.Response(), c.Request(), name, time.Time{}, bytes.NewReader(b))
	return nil
}
