package web

import (
	"context"
	"errors"
	"fmt"
	"time"

	"candor/fly"
	"candor/store"
)

// Supervision (DESIGN §7): a running interview whose processor has not sent
// a heartbeat for Config.HeartbeatTimeout gets a new machine. The new
// processor has a new token (the old one stops working, so a processor
// that was only slow cannot write beside its replacement) and resumes the
// sequence and media clock from GET …/bridge/…/state. Every step lands in
// the interview's events and on its realtime topic: heartbeat.lost,
// machine.launched, machine.replaced (or error and status failed when no
// replacement can be launched). Reconciliation (reconcile.go) re-dispatches
// an interview whose machine vanished through the same path.

// startSupervisor runs supervision in the background until Close, if
// Config.HeartbeatTimeout is set and there are machines to launch.
func (s *Server) startSupervisor() {
	if s.cfg.HeartbeatTimeout <= 0 || s.machines == nil {
		return
	}
	ctx, done := s.owned(0)
	go func() {
		defer done()
		tick := time.NewTicker(max(s.cfg.HeartbeatTimeout/4, 100*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				s.superviseOnce(ctx, now)
			}
		}
	}()
}

// superviseOnce replaces the machine of every interview that is stale at
// now. Failures are logged here, the boundary of this background work.
func (s *Server) superviseOnce(ctx context.Context, now time.Time) {
	stale, err := s.db.ListStaleInterviews(ctx, now.Add(-s.cfg.HeartbeatTimeout))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("supervise: list stale interviews", "err", err)
		}
		return
	}
	for _, iv := range stale {
		if ctx.Err() != nil {
			return
		}
		if err := s.replaceMachine(ctx, iv, now); err != nil {
			s.log.Error("supervise: replace machine", "interview", iv.ID, "tenant", iv.TenantID, "err", err)
		} else {
			s.log.Info("supervise: handled a lost processor", "interview", iv.ID, "tenant", iv.TenantID)
		}
	}
}

// replaceMachine destroys the silent machine of iv and launches another.
func (s *Server) replaceMachine(ctx context.Context, stale store.Interview, now time.Time) error {
	unlock := s.locks.lock(stale.ID)
	defer unlock()

	iv, err := s.db.Interview(ctx, stale.TenantID, stale.ID)
	if err != nil {
		return fmt.Errorf("reload interview: %w", err)
	}
	if iv.Status != store.StatusRunning || (iv.LastHeartbeatAt != nil && now.Sub(*iv.LastHeartbeatAt) < s.cfg.HeartbeatTimeout) {
		return nil // ended or recovered meanwhile
	}
	var lastBeat any
	if iv.LastHeartbeatAt != nil {
		lastBeat = iv.LastHeartbeatAt.UTC()
	}
	if err := s.recordEvent(ctx, iv.TenantID, iv.ID, "heartbeat.lost", map[string]any{
		"last_heartbeat_at": lastBeat, "media_ms": iv.MediaMS,
	}); err != nil {
		return err
	}
	return s.redispatch(ctx, iv, "the processor stopped responding")
}

// redispatch moves running interview iv to a new machine: it retires the
// current one (destroying it if it still exists) and launches another in
// the same region. If no replacement can be launched the interview fails,
// with an error event saying why. The caller holds iv's lock.
func (s *Server) redispatch(ctx context.Context, iv store.Interview, why string) error {
	now := time.Now().UTC()
	old, err := s.db.CurrentMachine(ctx, iv.TenantID, iv.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Already retired (reconciliation found it gone): it still tells
		// the region and which machine is being replaced.
		old, err = s.db.LatestMachine(ctx, iv.TenantID, iv.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("latest machine: %w", err)
		}
	case err != nil:
		return fmt.Errorf("current machine: %w", err)
	default:
		if derr := s.destroy(ctx, old); derr != nil {
			// Do not let a stuck machine block the interview: mark it
			// failed (reconciliation destroys leftovers) and go on.
			if uerr := s.retire(ctx, old, store.MachineFailed, now); uerr != nil {
				return fmt.Errorf("destroy old machine: %w; mark it failed: %w", derr, uerr)
			}
			s.log.Warn("old machine not destroyed, marked failed", "machine", old.ID, "interview", iv.ID, "err", derr)
		}
	}

	// Stay near the candidate: the old machine's region, unless it was a
	// local process (whose "region" means nothing to another backend).
	near := ""
	if old.Provider != "" && old.Provider != fly.ProviderLocal {
		near = old.Region
	}
	lctx, done := s.owned(s.cfg.LaunchTimeout)
	defer done()
	m, err := s.launch(lctx, iv, near)
	if err != nil {
		s.metrics.launches.WithLabelValues("failed").Inc()
		msg := why + " and no replacement could be launched: " + err.Error()
		if eerr := s.recordEvent(ctx, iv.TenantID, iv.ID, "error", map[string]string{"message": msg}); eerr != nil {
			return errors.Join(err, eerr)
		}
		failed, serr := s.db.SetInterviewStatus(ctx, iv.TenantID, iv.ID, store.StatusFailed, store.StatusRunning)
		if serr != nil {
			return errors.Join(err, serr)
		}
		s.publishStatus(failed)
		return nil
	}
	s.metrics.launches.WithLabelValues("ok").Inc()
	// The new processor gets a full timeout before it counts as silent.
	if err := s.db.RecordHeartbeat(ctx, iv.TenantID, iv.ID, iv.MediaMS, time.Now().UTC()); err != nil {
		return fmt.Errorf("reset heartbeat: %w", err)
	}
	return s.recordEvent(ctx, iv.TenantID, iv.ID, "machine.replaced", map[string]any{
		"old_machine_id": old.ID, "new_machine_id": m.ID, "media_ms": iv.MediaMS,
		"processor_url": s.processorURL(m), "reason": why,
	})
}

// retire records machine m as gone (state destroyed or failed) at now, with
// the seconds it ran billed up to then.
func (s *Server) retire(ctx context.Context, m store.Machine, state string, now time.Time) error {
	m.State = state
	if m.DestroyedAt == nil {
		m.DestroyedAt = &now
	}
	m.SecondsBilled = max(0, m.DestroyedAt.Sub(m.CreatedAt).Seconds())
	if err := s.db.UpdateMachine(ctx, m); err != nil {
		return fmt.Errorf("mark machine %s %s: %w", m.ID, state, err)
	}
	s.metrics.machineSecondsOK.Add(m.SecondsBilled)
	return nil
}
