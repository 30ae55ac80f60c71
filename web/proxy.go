package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"candor/store"
)

// The processor route: /p/<interview id>/<path> forwards to the interview's
// live processor, for machines that browsers cannot reach directly (Fly
// machines sit on a private network; processorURL hands out this route for
// them). The processor authenticates every call itself (processor or
// candidate token), so the route adds no auth of its own; it only refuses
// interviews that have no live machine. WebSocket upgrades (/events,
// /ws/audio) pass through.

func (s *Server) processorRoutes() {
	s.e.Any("/p/:id", s.handleProcessorProxy)
	s.e.Any("/p/:id/*", s.handleProcessorProxy)
}

func (s *Server) handleProcessorProxy(c echo.Context) error {
	req := c.Request()
	ctx := req.Context()
	id := c.Param("id")
	iv, err := s.db.InterviewByID(ctx, id)
	if err != nil {
		return notFound(err, "interview")
	}
	if iv.Status != store.StatusStarting && iv.Status != store.StatusRunning {
		return errorf(CodeNotFound, "the interview is %s; its processor is gone", iv.Status)
	}
	m, err := s.db.CurrentMachine(ctx, iv.TenantID, iv.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && m.URL == "") {
		return errorf(CodeServiceUnavailable, "the interview's processor is not up yet; retry in a moment")
	}
	if err != nil {
		return fmt.Errorf("machine of %s: %w", id, err)
	}
	if replay, ok := s.flyReplay(m, req); ok {
		c.Response().Header().Set("fly-replay", replay)
		return c.JSON(http.StatusConflict, map[string]any{"error": map[string]string{
			"code": "fly_replay", "message": "Fly's edge replays this request to the interview's machine",
		}})
	}
	target, err := url.Parse(m.URL)
	if err != nil {
		return fmt.Errorf("machine %s has a bad url %q: %w", m.ID, m.URL, err)
	}
	rest := "/" + strings.TrimPrefix(c.Param("*"), "/")
	headers := machineHeaders(m)

	// A proxied WebSocket outlives the request's normal handling; the
	// server's context ends it on Close.
	octx, done := s.owned(0)
	defer done()
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(octx, cancel)
	defer stop()

	var proxyErr error
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path = strings.TrimRight(target.Path, "/") + rest
			pr.Out.URL.RawPath = ""
			pr.Out.Host = target.Host
			pr.SetXForwarded()
			// The dashboard's session and flash cookies are this site's,
			// not the processor's: it authenticates by token only.
			pr.Out.Header.Del("Cookie")
			for k, v := range headers {
				pr.Out.Header.Set(k, v)
			}
		},
		ModifyResponse: func(res *http.Response) error {
			// A processor sets no cookies on the control plane's origin.
			res.Header.Del("Set-Cookie")
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			proxyErr = err
		},
	}
	rp.ServeHTTP(c.Response(), req.WithContext(pctx))
	if proxyErr != nil && !c.Response().Committed {
		if errors.Is(proxyErr, context.Canceled) {
			return nil
		}
		return errorf(CodeBadGateway, "the interview's processor did not answer")
	}
	return nil
}
