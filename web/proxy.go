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
	"candor/web/lifecycle"
)

// The processor route: /p/<interview id>/<path> reaches the interview's
// current processor. It is the one stable processor URL of an interview
// for every provisioner (the start answer and the candidate page hand it
// out), across replacements: while the interview is between processors it
// answers 503 with Retry-After, never a refused connection or a 404, so a
// client that retries reaches the replacement. The processor
// authenticates every call itself (processor or candidate token), so the
// route adds no auth of its own. WebSocket upgrades (/events, /ws/audio)
// pass through.

// retryAfterSeconds is the Retry-After of a hand-over answer: a local
// processor starts in well under a second, a Fly machine in a few.
const retryAfterSeconds = "1"

// processorRoute is where a request for interview id's processor goes.
type processorRoute struct {
	target  *url.URL
	headers map[string]string // route to exactly this machine
	// replay, when set, is the fly-replay answer that sends the request
	// to the machine through Fly's edge instead (flyReplay).
	replay string
}

// errHandOver is the answer while an interview is between processors.
var errHandOver = errorf(CodeServiceUnavailable, "the interview's processor is being replaced; retry in a moment")

// routeProcessor decides where request req for interview id's processor
// goes: the one place that decision is taken (on Fly it answers with
// fly-replay, so the bytes do not pass through here). errHandOver while no
// processor serves a started interview.
func (s *Server) routeProcessor(ctx context.Context, req *http.Request, id string) (processorRoute, error) {
	iv, err := s.db.InterviewByID(ctx, id)
	if err != nil {
		return processorRoute{}, notFound(err, "interview")
	}
	if iv.Status != store.StatusStarting && iv.Status != store.StatusRunning {
		return processorRoute{}, errorf(CodeNotFound, "the interview is %s; its processor is gone", iv.Status)
	}
	if s.lc.InHandOver(id) {
		return processorRoute{}, errHandOver
	}
	m, err := s.db.CurrentMachine(ctx, iv.TenantID, iv.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && m.URL == "") {
		return processorRoute{}, errHandOver
	}
	if err != nil {
		return processorRoute{}, fmt.Errorf("machine of %s: %w", id, err)
	}
	if replay, ok := s.flyReplay(m, req); ok {
		return processorRoute{replay: replay}, nil
	}
	target, err := url.Parse(m.URL)
	if err != nil {
		return processorRoute{}, fmt.Errorf("machine %s has a bad url %q: %w", m.ID, m.URL, err)
	}
	return processorRoute{target: target, headers: lifecycle.MachineHeaders(m)}, nil
}

func (s *Server) processorRoutes() {
	s.e.Any("/p/:id", s.handleProcessorProxy)
	s.e.Any("/p/:id/*", s.handleProcessorProxy)
}

func (s *Server) handleProcessorProxy(c echo.Context) error {
	req := c.Request()
	ctx := req.Context()
	route, err := s.routeProcessor(ctx, req, c.Param("id"))
	if errors.Is(err, errHandOver) {
		c.Response().Header().Set("Retry-After", retryAfterSeconds)
	}
	if err != nil {
		return err
	}
	if route.replay != "" {
		c.Response().Header().Set("fly-replay", route.replay)
		return c.JSON(http.StatusConflict, map[string]any{"error": map[string]string{
			"code": "fly_replay", "message": "Fly's edge replays this request to the interview's machine",
		}})
	}
	target, headers := route.target, route.headers
	rest := "/" + strings.TrimPrefix(c.Param("*"), "/")
	routePrefix := "/p/" + url.PathEscape(c.Param("id"))

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
			// The processor saw the path without /p/{id}; a Location it
			// gives as an absolute path (WHIP's session URL) is put back
			// under the route, so the client's DELETE comes back here and
			// not to the control plane's own root.
			if loc := res.Header.Get("Location"); strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") {
				res.Header.Set("Location", routePrefix+loc)
			}
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
		// The processor went away under us (killed, being replaced):
		// the client retries, as during any hand-over.
		c.Response().Header().Set("Retry-After", retryAfterSeconds)
		return errHandOver
	}
	return nil
}
