package web

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"candor/realtime"
	"candor/store"
)

// Live connections (realtime WebSockets) end when their credential stops
// being valid: within a second when it happens through this server
// (revokeLive from logout, member removal, role change, API key
// revocation), within Config.RealtimeRecheck otherwise (a session that
// expired, a change made by another path), and on every subscribe. They
// close with realtime.CloseRevoked (4401): the live page then asks the user
// to sign in again instead of reconnecting.

var errCredentialRevoked = &realtime.CloseError{Code: realtime.CloseRevoked, Text: "your sign-in or API key is no longer valid: sign in again"}

// liveConn is one live connection's credential and how to end it.
type liveConn struct {
	p      principal
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
}

type liveConns struct {
	mu    sync.Mutex
	conns map[*liveConn]struct{}
}

// addLive registers a connection of p; its ctx ends with the credential.
// removeLive must follow.
func (s *Server) addLive(parent context.Context, p *principal) *liveConn {
	ctx, cancel := context.WithCancelCause(parent)
	lc := &liveConn{p: *p, ctx: ctx, cancel: cancel}
	s.live.mu.Lock()
	if s.live.conns == nil {
		s.live.conns = map[*liveConn]struct{}{}
	}
	s.live.conns[lc] = struct{}{}
	s.live.mu.Unlock()
	lc.wg.Go(func() {
		t := time.NewTicker(s.cfg.RealtimeRecheck)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = s.checkLive(ctx, lc)
			}
		}
	})
	return lc
}

func (s *Server) removeLive(lc *liveConn) {
	lc.cancel(nil)
	lc.wg.Wait()
	s.live.mu.Lock()
	delete(s.live.conns, lc)
	s.live.mu.Unlock()
}

// revokeLive ends every live connection whose principal matches.
func (s *Server) revokeLive(match func(p *principal) bool) {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	for lc := range s.live.conns {
		if match(&lc.p) {
			lc.cancel(errCredentialRevoked)
		}
	}
}

// checkLive ends lc (and answers errCredentialRevoked) unless its
// credential is still what it was: the session or API key exists and, for
// a session, its user is still a member with the same role.
func (s *Server) checkLive(ctx context.Context, lc *liveConn) error {
	ok, err := s.credentialHolds(ctx, &lc.p)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("check credential: %w", err)
	}
	if !ok {
		lc.cancel(errCredentialRevoked)
		return errCredentialRevoked
	}
	return nil
}

func (s *Server) credentialHolds(ctx context.Context, p *principal) (bool, error) {
	if p.APIKeyID != "" {
		k, err := s.db.APIKeyByHash(ctx, p.credHash)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return err == nil && k.ID == p.APIKeyID, err
	}
	sess, err := s.db.SessionByHash(ctx, p.credHash)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	u, err := s.db.User(ctx, sess.TenantID, sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return u.ID == p.UserID && u.TenantID == p.TenantID && u.Role == p.Role, nil
}
