package processor

import (
	"bufio"
	"net"
	"net/http"
	"strings"
)

// The control plane's stable route for an interview is
// {public_url}/p/{interview id}/…; on Fly it answers with fly-replay and
// Fly's edge redelivers the request to this machine with its original path
// (https://fly.io/docs/networking/dynamic-request-routing/). So every
// route is also served under /p/{this interview's id}/, and a Location this
// processor sends (WHIP's session URL) keeps the prefix, so the client's
// DELETE comes back the same way. (A control plane that proxies instead
// strips the prefix on the way in and puts it back on a Location on the
// way out: web/proxy.go.)

// underInterviewRoute strips /p/{id} from requests for this processor's
// interview; any other /p/… is 404 (another interview's bytes must never
// land here).
func (srv *server) underInterviewRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/p/")
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		id, sub, _ := strings.Cut(rest, "/")
		cfg, _ := srv.current()
		if id == "" || id != cfg.SessionID {
			writeError(w, http.StatusNotFound, "not_found", "this processor serves another interview")
			return
		}
		prefix := "/p/" + id
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path, u.RawPath = "/"+sub, ""
		r2.URL = &u
		next.ServeHTTP(&prefixedLocation{ResponseWriter: w, prefix: prefix}, r2)
	})
}

// prefixedLocation puts the route prefix in front of an absolute-path
// Location header.
type prefixedLocation struct {
	http.ResponseWriter
	prefix string
	done   bool
}

func (p *prefixedLocation) fix() {
	if p.done {
		return
	}
	p.done = true
	h := p.Header()
	if loc := h.Get("Location"); strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") {
		h.Set("Location", p.prefix+loc)
	}
}

func (p *prefixedLocation) WriteHeader(code int) {
	p.fix()
	p.ResponseWriter.WriteHeader(code)
}

func (p *prefixedLocation) Write(b []byte) (int, error) {
	p.fix()
	return p.ResponseWriter.Write(b)
}

func (p *prefixedLocation) Unwrap() http.ResponseWriter { return p.ResponseWriter }

func (p *prefixedLocation) Flush() { _ = http.NewResponseController(p.ResponseWriter).Flush() }

// Hijack lets WebSocket upgrades (/ws/audio, /events) through: gorilla
// asserts http.Hijacker on the writer it is given.
func (p *prefixedLocation) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(p.ResponseWriter).Hijack()
}
