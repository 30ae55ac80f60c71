package web

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"

	"candor/store"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestErrorAnswers(t *testing.T) {
	var logs syncBuffer
	e := newTestEnv(t, withLog(&logs))
	e.srv.e.GET("/api/v1/test/panic", func(echo.Context) error { panic("boom: secret detail") })
	e.srv.e.GET("/api/v1/test/internal", func(echo.Context) error {
		return fmt.Errorf("query users: %w", errors.New("disk I/O error at /var/secret"))
	})
	e.srv.e.GET("/api/v1/test/notfound", func(echo.Context) error { return fmt.Errorf("load: %w", store.ErrNotFound) })
	e.srv.e.GET("/api/v1/test/conflict", func(echo.Context) error { return fmt.Errorf("save: %w", store.ErrConflict) })
	e.srv.e.GET("/page/internal", func(echo.Context) error { return errors.New("template exploded") })

	for _, tc := range []struct {
		name, path string
		status     int
		code       string
	}{
		{"a panic is a generic 500", "/api/v1/test/panic", 500, CodeInternal},
		{"an internal error is a generic 500", "/api/v1/test/internal", 500, CodeInternal},
		{"store.ErrNotFound is a 404", "/api/v1/test/notfound", 404, CodeNotFound},
		{"store.ErrConflict is a 409", "/api/v1/test/conflict", 409, CodeConflict},
		{"a wrong method is a 405", "/healthz", 405, CodeMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := "GET"
			if tc.status == 405 {
				method = "DELETE"
			}
			res := e.do(t, request{Method: method, Path: tc.path, Header: map[string]string{"Accept": "application/json"}})
			if res.Status != tc.status || res.errorCode() != tc.code {
				t.Errorf("status %d code %q, want %d %q: %s", res.Status, res.errorCode(), tc.status, tc.code, res.Body)
			}
			if strings.Contains(string(res.Body), "secret") {
				t.Errorf("answer leaks the cause: %s", res.Body)
			}
		})
	}
	t.Run("internal causes are logged once, with the request id", func(t *testing.T) {
		out := logs.String()
		if n := strings.Count(out, "disk I/O error at /var/secret"); n != 1 {
			t.Errorf("cause logged %d times:\n%s", n, out)
		}
		if !strings.Contains(out, "boom: secret detail") || !strings.Contains(out, `"request_id":"`) {
			t.Errorf("panic or request id missing from the log:\n%s", out)
		}
	})
	t.Run("browser pages get the dashboard's error page", func(t *testing.T) {
		var got []any
		e.srv.renderErrorPage = func(c echo.Context, status int, msg string) error {
			got = append(got, status, msg)
			return c.HTML(status, "<p>sorry</p>")
		}
		res := e.do(t, request{Method: "GET", Path: "/page/internal", Header: map[string]string{"Accept": "text/html"}})
		if res.Status != 500 || string(res.Body) != "<p>sorry</p>" || len(got) != 2 || got[0] != 500 {
			t.Errorf("status %d body %q, hook got %v", res.Status, res.Body, got)
		}
		e.srv.renderErrorPage = nil
		res = e.do(t, request{Method: "GET", Path: "/page/internal", Header: map[string]string{"Accept": "text/html"}})
		if res.Status != 500 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("without a hook: status %d type %q", res.Status, res.Header.Get("Content-Type"))
		}
		res = e.do(t, request{Method: "GET", Path: "/api/v1/test/notfound", Header: map[string]string{"Accept": "text/html"}})
		if res.errorCode() != CodeNotFound {
			t.Errorf("API paths answer JSON even to browsers: %s", res.Body)
		}
	})
	if len(errorStatus) != len(codeOfStatus) {
		t.Errorf("two codes share a status: %v", errorStatus)
	}
	var _ http.Handler = e.srv.Handler()
}
