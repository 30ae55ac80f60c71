package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"candor/realtime"
	"candor/store"
)

// handleRealtime upgrades GET /api/v1/realtime to the hub's WebSocket
// protocol (DESIGN §6) for the authenticated principal. A browser using the
// session cookie must come from this server's own origin: a cookie is sent
// to cross-site WebSocket handshakes, so the origin is what stops another
// site from reading a user's transcripts.
func (s *Server) handleRealtime(c echo.Context) error {
	p := principalOf(c)
	if p.APIKeyID == "" && !s.sameOrigin(c.Request()) {
		return errorf(CodeForbidden, "cross-origin WebSocket connections are refused; connect from %s or use an API key", s.cfg.PublicURL)
	}
	if !websocketRequest(c.Request()) {
		return errorf(CodeBadRequest, "this endpoint speaks WebSocket: send an Upgrade: websocket request")
	}
	conn, err := s.upgrader.Upgrade(c.Response(), c.Request(), nil)
	if err != nil {
		// The upgrader has answered the client already.
		return nil
	}
	// The connection outlives the request's context handling (it is
	// hijacked); the server's context ends it on Close, and revokeLive
	// (or the periodic check) when its credential stops being valid.
	ctx, done := s.owned(0)
	defer done()
	lc := s.addLive(ctx, p)
	defer s.removeLive(lc)
	name := p.Name
	if name == "" {
		name = p.Email
	}
	s.hub.Serve(lc.ctx, conn, realtime.Viewer{ID: p.viewerID(), Name: name},
		&topicAuthorizer{db: s.db, tenantID: p.TenantID, check: func(ctx context.Context) error { return s.checkLive(ctx, lc) }})
	return nil
}

func websocketRequest(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// sameOrigin reports whether the request's Origin is the public URL's or the
// host the request was sent to.
func (s *Server) sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	o, err := url.Parse(origin)
	if err != nil || o.Host == "" {
		return false
	}
	if pub, err := url.Parse(s.cfg.PublicURL); err == nil && strings.EqualFold(o.Scheme, pub.Scheme) && strings.EqualFold(o.Host, pub.Host) {
		return true
	}
	// Otherwise the host the request was sent to, with the scheme it came
	// in on: http://host is another origin than https://host.
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(o.Scheme, scheme) && strings.EqualFold(o.Host, r.Host)
}

// topicAuthorizer lets one principal subscribe to its own tenant's topics,
// while its credential holds (check, on every subscribe).
type topicAuthorizer struct {
	db       *store.DB
	tenantID string
	check    func(context.Context) error
}

var _ realtime.Authorizer = (*topicAuthorizer)(nil)

var errTopicRefused = errors.New("no such topic, or it is not yours")

func (a *topicAuthorizer) Authorize(ctx context.Context, topic string) error {
	if a.check != nil {
		if err := a.check(ctx); err != nil {
			return err
		}
	}
	kind, id, ok := strings.Cut(topic, ":")
	if !ok || id == "" {
		return fmt.Errorf("topic %q: topics are interview:<id> or tenant:<id>", topic)
	}
	switch kind {
	case "tenant":
		if id != a.tenantID {
			return errTopicRefused
		}
		return nil
	case "interview":
		_, err := a.db.Interview(ctx, a.tenantID, id)
		if errors.Is(err, store.ErrNotFound) {
			return errTopicRefused
		}
		return err
	}
	return fmt.Errorf("topic %q: topics are interview:<id> or tenant:<id>", topic)
}

// Replay returns the interview's stored entries after since, so a
// reconnecting client misses nothing. Tenant topics carry no sequence.
func (a *topicAuthorizer) Replay(ctx context.Context, topic string, since int64) ([]realtime.Sequenced, error) {
	kind, id, _ := strings.Cut(topic, ":")
	if kind != "interview" {
		return nil, nil
	}
	es, err := a.db.Entries(ctx, a.tenantID, id, since)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", topic, err)
	}
	out := make([]realtime.Sequenced, 0, len(es))
	for _, e := range es {
		data, err := json.Marshal(toEntryJSON(e))
		if err != nil {
			return nil, err
		}
		out = append(out, realtime.Sequenced{Seq: e.Seq, Type: realtime.TypeTranscriptEntry, Data: data})
	}
	return out, nil
}
