package web

import (
	"context"
	"errors"
	"fmt"
	"time"

	"candor/store"
)

// Supervision (DESIGN §7): a running interview whose processor has not sent
// a heartbeat for Config.HeartbeatTimeout gets a new machine. The new
// processor has a new token (the old one stops working, so a processor
// that was only slow cannot write beside its replacement) and resumes the
// sequence and media clock from GET …/bridge/…/state. Every step lands in
// the interview's events: heartbeat.lost, machine.launched, machine.replaced
// (or error and status failed when no replacement can be launched).

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
	if _, err := s.db.AppendEvent(ctx, iv.TenantID, iv.ID, "heartbeat.lost", map[string]any{
		"last_heartbeat_at": lastBeat, "media_ms": iv.MediaMS,
	}); err != nil {
		return fmt.Errorf("record heartbeat.lost: %w", err)
	}

	old, err := s.db.CurrentMachine(ctx, iv.TenantID, iv.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("current machine: %w", err)
	default:
		if derr := s.destroy(ctx, old); derr != nil {
			// Do not let a stuck machine block the interview: mark it
			// failed (reconciliation destroys leftovers) and go on.
			old.State = store.MachineFailed
			t := now.UTC()
			old.DestroyedAt = &t
			if uerr := s.db.UpdateMachine(ctx, old); uerr != nil {
				return fmt.Errorf("destroy silent machine: %w; mark it failed: %w", derr, uerr)
			}
			s.log.Warn("supervise: silent machine not destroyed, marked failed", "machine", old.ID, "err", derr)
		}
	}

	lctx, done := s.owned(s.cfg.LaunchTimeout)
	defer done()
	m, err := s.launch(lctx, iv)
	if err != nil {
		s.metrics.launches.WithLabelValues("failed").Inc()
		msg := "the processor stopped responding and no replacement could be launched: " + err.Error()
		if _, eerr := s.db.AppendEvent(ctx, iv.TenantID, iv.ID, "error", map[string]string{"message": msg}); eerr != nil {
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
	if _, err := s.db.AppendEvent(ctx, iv.TenantID, iv.ID, "machine.replaced", map[string]any{
		"old_machine_id": old.ID, "new_machine_id": m.ID, "media_ms": iv.MediaMS,
	}); err != nil {
		return fmt.Errorf("record machine.replaced: %w", err)
	}
	return nil
}
