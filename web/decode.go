package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// decode reads the request's JSON body into v with the default size limit.
// See decodeLimit.
func (s *Server) decode(c echo.Context, v any) error {
	return decodeLimit(c, v, s.cfg.BodyLimit)
}

// decodeLimit reads exactly one JSON value into v: Content-Type must be
// application/json (415), the body at most limit bytes (413), no unknown
// fields and nothing after the value (400, with a message that names the
// problem and, where it can, the field).
func decodeLimit(c echo.Context, v any, limit int64) error {
	req := c.Request()
	mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEApplicationJSON {
		return errorf(CodeUnsupportedMedia, "the body must be JSON, sent with Content-Type: application/json")
	}
	if req.ContentLength > limit {
		return errorf(CodePayloadTooLarge, "request body exceeds %d bytes", limit)
	}
	body := http.MaxBytesReader(c.Response(), req.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonDecodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return jsonDecodeError(err)
		}
		return errorf(CodeBadRequest, "the body must hold a single JSON value")
	}
	return nil
}

func jsonDecodeError(err error) error {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
		tooBig  *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooBig):
		return errorf(CodePayloadTooLarge, "request body exceeds %d bytes", tooBig.Limit)
	case errors.Is(err, io.EOF):
		return errorf(CodeBadRequest, "the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(CodeBadRequest, "malformed JSON: the body ends too early")
	case errors.As(err, &syntax):
		return errorf(CodeBadRequest, "malformed JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return errorf(CodeBadRequest, "the body must be a JSON %s, not %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
		}
		return invalid(field, "must be %s, not %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return errorf(CodeBadRequest, "unknown field %s", name)
	}
	return errorf(CodeBadRequest, "malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(goKind string) string {
	switch goKind {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "float32", "float64":
		return "a number"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	}
	return fmt.Sprintf("a %s", goKind)
}
