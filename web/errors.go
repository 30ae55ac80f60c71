package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"candor/store"
	"candor/web/lifecycle"
)

// Error codes of the API. Each maps to one HTTP status in errorStatus.
const (
	CodeBadRequest         = "bad_request"
	CodeUnauthorized       = "unauthorized"
	CodeForbidden          = "forbidden"
	CodeNotFound           = "not_found"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeConflict           = "conflict"
	CodePayloadTooLarge    = "payload_too_large"
	CodeUnsupportedMedia   = "unsupported_media_type"
	CodeTooManyRequests    = "too_many_requests"
	CodeInternal           = "internal"
	CodeNotImplemented     = "not_implemented"
	CodeBadGateway         = "bad_gateway"
	CodeServiceUnavailable = "service_unavailable"
)

var errorStatus = map[string]int{
	CodeBadRequest:         http.StatusBadRequest,
	CodeUnauthorized:       http.StatusUnauthorized,
	CodeForbidden:          http.StatusForbidden,
	CodeNotFound:           http.StatusNotFound,
	CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
	CodeConflict:           http.StatusConflict,
	CodePayloadTooLarge:    http.StatusRequestEntityTooLarge,
	CodeUnsupportedMedia:   http.StatusUnsupportedMediaType,
	CodeTooManyRequests:    http.StatusTooManyRequests,
	CodeInternal:           http.StatusInternalServerError,
	CodeNotImplemented:     http.StatusNotImplemented,
	CodeBadGateway:         http.StatusBadGateway,
	CodeServiceUnavailable: http.StatusServiceUnavailable,
}

// codeOfStatus is errorStatus inverted, for errors that arrive as a bare
// status (echo's router, middleware).
var codeOfStatus = func() map[int]string {
	m := make(map[int]string, len(errorStatus))
	for code, status := range errorStatus {
		m[status] = code
	}
	return m
}()

// Error is an error a client may see: Message is shown as is, so it must
// say what went wrong in the client's terms and leak nothing internal.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Status is the HTTP status of e.
func (e *Error) Status() int {
	if st, ok := errorStatus[e.Code]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// errorf returns an *Error with a formatted message.
func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// invalid reports a bad value of one request field.
func invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeBadRequest, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// publicError turns any error into what the client is told. Causes of
// 5xx answers stay out of it; logRequests logs them.
func publicError(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if he.Code >= 500 {
			return errInternal
		}
		code, ok := codeOfStatus[he.Code]
		if !ok {
			code = CodeBadRequest
		}
		msg := strings.ToLower(http.StatusText(he.Code))
		if m, ok := he.Message.(string); ok && m != "" {
			msg = strings.ToLower(m[:1]) + m[1:]
		}
		return &Error{Code: code, Message: msg}
	}
	var le *lifecycle.Error
	if errors.As(err, &le) {
		return lifecycleError(le)
	}
	var ve *store.ValidationError
	if errors.As(err, &ve) {
		return invalid(ve.Field, "%s", ve.Message)
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return errorf(CodePayloadTooLarge, "request body exceeds %d bytes", tooBig.Limit)
	case errors.Is(err, store.ErrNotFound):
		return errorf(CodeNotFound, "not found")
	case errors.Is(err, store.ErrConflict):
		return errorf(CodeConflict, "conflicts with the current state")
	case errors.Is(err, store.ErrInvalid):
		return errorf(CodeBadRequest, "the request breaks a rule of the data model")
	}
	return errInternal
}

var errInternal = &Error{Code: CodeInternal, Message: "internal error; the request ID in X-Request-Id helps the operator find the cause"}

// handleError is echo's HTTPErrorHandler: the one place errors become
// answers. JSON for the API (/api, /p) and for clients that ask for JSON;
// the dashboard's error page (renderErrorPage) or plain text otherwise.
// Internal causes are logged by logRequests, not here.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	pe := publicError(err)
	status := pe.Status()
	if status == http.StatusServiceUnavailable && c.Response().Header().Get("Retry-After") == "" {
		// Every 503 is temporary: say when to try again.
		c.Response().Header().Set("Retry-After", "5")
	}
	req := c.Request()
	if req.Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	var werr error
	switch {
	case wantsJSON(req):
		werr = c.JSON(status, map[string]*Error{"error": pe})
	case s.renderErrorPage != nil:
		werr = s.renderErrorPage(c, status, pe.Message)
	default:
		werr = c.String(status, pe.Message)
	}
	if werr != nil {
		s.log.Warn("writing error answer", "err", werr, "path", req.URL.Path)
	}
}

func wantsJSON(r *http.Request) bool {
	p := r.URL.Path
	if p == "/api" || strings.HasPrefix(p, "/api/") || p == "/p" || strings.HasPrefix(p, "/p/") {
		return true
	}
	accept := r.Header.Get("Accept")
	if strings.Contains(accept, "text/html") {
		return false
	}
	return strings.Contains(accept, "application/json") ||
		strings.HasPrefix(r.Header.Get(echo.HeaderContentType), echo.MIMEApplicationJSON)
}
