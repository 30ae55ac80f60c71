package web

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Limits on what a client may make the server hold: form bodies, slow
// requests, idle connections.

// formBodyLimit caps a form body (login, setup, every dashboard form):
// they hold a few fields, never files.
const formBodyLimit = 64 << 10

// Server timeouts (HTTPServer). Headers must arrive within
// readHeaderTimeout and a form or JSON body within bodyReadTimeout, so a
// slow client (slowloris) cannot hold a connection; uploads (recordings,
// video) and WebSockets stream, so there is no server-wide ReadTimeout.
const (
	readHeaderTimeout = 10 * time.Second
	bodyReadTimeout   = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

// limitForms refuses a form body past formBodyLimit with 413 before any of
// it is parsed (echo's FormValue would otherwise spool a multipart body to
// disk), and reads it eagerly so that a cut-off body is a 413 too, not a
// silently empty form.
func (s *Server) limitForms(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		ct := req.Header.Get(echo.HeaderContentType)
		isForm := strings.HasPrefix(ct, echo.MIMEApplicationForm) || strings.HasPrefix(ct, echo.MIMEMultipartForm)
		if !isForm || req.Body == nil || req.Body == http.NoBody || strings.HasPrefix(req.URL.Path, "/p/") {
			return next(c)
		}
		if req.ContentLength > formBodyLimit {
			return errorf(CodePayloadTooLarge, "a form body holds at most %d bytes", formBodyLimit)
		}
		req.Body = http.MaxBytesReader(c.Response(), req.Body, formBodyLimit)
		var err error
		if strings.HasPrefix(ct, echo.MIMEMultipartForm) {
			err = req.ParseMultipartForm(formBodyLimit)
		} else {
			err = req.ParseForm()
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorf(CodePayloadTooLarge, "a form body holds at most %d bytes", formBodyLimit)
		}
		if err != nil {
			return errorf(CodeBadRequest, "the form body is malformed")
		}
		return next(c)
	}
}

// bodyDeadline gives a request bodyReadTimeout to deliver its body, except
// streams (WebSocket upgrades, recording and video uploads, the processor
// route) that legitimately take longer.
func (s *Server) bodyDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		p := req.URL.Path
		streaming := websocketRequest(req) || strings.HasPrefix(p, "/p/") ||
			strings.HasSuffix(p, "/recording") || strings.HasSuffix(p, "/video")
		if !streaming && req.Body != nil && req.Body != http.NoBody {
			rc := http.NewResponseController(c.Response().Writer)
			// Not every ResponseWriter supports deadlines (tests'
			// recorders); then the server-wide limits are all there is.
			if rc.SetReadDeadline(time.Now().Add(s.cfg.BodyReadTimeout)) == nil {
				req.Body = &deadlineBody{ReadCloser: req.Body, rc: rc}
			}
		}
		return next(c)
	}
}

// deadlineBody lifts the body's read deadline once the body is read: the
// server then reads the connection in the background to notice a client
// hanging up, and a long handler (a launch) must not be cut off by it.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	// Only a complete body lifts it: after a timeout the deadline stays, so
	// the server's discard of the unread rest cannot hang on a slow client.
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// HTTPServer returns the http.Server to serve Handler with, its timeouts
// set against slow clients. The caller sets BaseContext and serves it.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
}
