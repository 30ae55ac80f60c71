package web

import (
	"strings"

	"github.com/labstack/echo/v4"
)

// Content-Security-Policy of every page. Pages load only this site's
// scripts and styles (no inline ones: templ renders none, and the JS sets
// styles through the CSSOM, which CSP allows), so an injected <script> or
// onerror= never runs. The candidate page also talks to its interview's
// processor, which a local provisioner serves on its own port: it may
// connect anywhere; and it loads its audio worklet from a blob: URL its own
// script made (only a script already running can make one).
const (
	cspDashboard = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"media-src 'self' blob:; font-src 'self'; connect-src 'self'; object-src 'none'; " +
		"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	cspCandidate = "default-src 'self'; script-src 'self' blob:; style-src 'self'; img-src 'self' data:; " +
		"media-src 'self' blob:; font-src 'self'; connect-src 'self' http: https: ws: wss:; object-src 'none'; " +
		"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

// securityHeaders sets the headers every answer carries: nosniff (a
// recording or an upload is never run as HTML or script), a Referrer-Policy
// that keeps paths (invite tokens) on this site, CSP and no framing, and
// HSTS when the public URL is https. The processor route passes the
// processor's own answers through untouched but for nosniff.
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	hsts := strings.HasPrefix(s.cfg.PublicURL, "https://")
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		p := c.Request().URL.Path
		if !strings.HasPrefix(p, "/p/") {
			csp, referrer := cspDashboard, "same-origin"
			if strings.HasPrefix(p, invitePath) {
				csp, referrer = cspCandidate, "no-referrer"
			}
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", referrer)
		}
		if hsts {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		return next(c)
	}
}
