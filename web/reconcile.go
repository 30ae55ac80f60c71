package web

import (
	"context"
	"errors"
	"fmt"
	"time"

	"candor/fly"
	"candor/store"
)

// Reconciliation (DESIGN §7) brings what the machine backend runs and what
// the store believes back in line, at start-up and every
// Config.ReconcileInterval:
//
//   - a machine the backend runs whose interview is over, unknown, or has
//     another current machine is an orphan: it is destroyed;
//   - a machine the store holds live that the backend no longer runs has
//     vanished: it is marked failed and, if its interview is running, the
//     interview is re-dispatched to a new machine (the supervision path);
//     an interview still starting on it (the control plane stopped
//     mid-start) is marked failed.
//
// Every step on an interview lands in its events and on its topic.
// Decisions are taken under the interview's lock with the store read again,
// so a start, end or replacement in flight is never mistaken for drift.

// EventTypeRealtime is the realtime message type of an interview event
// (additive to DESIGN §6): data is {type, at, data} as in GET …/events.
const EventTypeRealtime = "interview.event"

// ReconcileReport counts what one reconciliation pass did.
type ReconcileReport struct {
	OrphansDestroyed int // backend machines destroyed
	Vanished         int // store machines the backend no longer runs
	Redispatched     int // running interviews moved to a new machine
	Failed           int // interviews marked failed
}

// startReconciler reconciles once at start-up, then every
// Config.ReconcileInterval, until Close.
func (s *Server) startReconciler() {
	if s.machines == nil || s.cfg.ReconcileInterval < 0 {
		return
	}
	ctx, done := s.owned(0)
	go func() {
		defer done()
		tick := time.NewTicker(s.cfg.ReconcileInterval)
		defer tick.Stop()
		for {
			if rep, err := s.Reconcile(ctx); err != nil {
				if ctx.Err() == nil {
					s.log.Error("reconcile machines", "err", err)
				}
			} else if rep != (ReconcileReport{}) {
				s.log.Info("reconciled machines", "orphans_destroyed", rep.OrphansDestroyed,
					"vanished", rep.Vanished, "redispatched", rep.Redispatched, "failed", rep.Failed)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// Reconcile runs one reconciliation pass. It goes on past a failure with
// one machine or interview and returns every failure joined.
func (s *Server) Reconcile(ctx context.Context) (ReconcileReport, error) {
	var rep ReconcileReport
	if s.machines == nil {
		return rep, nil
	}
	// The store first: a row listed now belongs to a machine launched
	// before the backend is asked, so a live one is in the backend's list.
	rows, err := s.db.ListLiveMachines(ctx)
	if err != nil {
		return rep, fmt.Errorf("list live machines: %w", err)
	}
	running, err := s.machines.List(ctx)
	if err != nil {
		return rep, fmt.Errorf("list backend machines: %w", err)
	}
	type key struct{ provider, id string }
	known := make(map[key]bool, len(rows))
	for _, m := range rows {
		known[key{m.Provider, m.ProviderID}] = true
	}
	alive := make(map[key]bool, len(running))
	var errs []error
	for _, fm := range running {
		alive[key{fm.Provider, fm.ID}] = true
		if known[key{fm.Provider, fm.ID}] {
			continue
		}
		destroyed, err := s.reconcileOrphan(ctx, fm)
		if err != nil {
			errs = append(errs, err)
		}
		if destroyed {
			rep.OrphansDestroyed++
		}
	}
	for _, m := range rows {
		if ctx.Err() != nil {
			break
		}
		if alive[key{m.Provider, m.ProviderID}] {
			if destroyed, err := s.reconcileLive(ctx, m); err != nil {
				errs = append(errs, err)
			} else if destroyed {
				rep.OrphansDestroyed++
			}
			continue
		}
		outcome, err := s.reconcileVanished(ctx, m)
		if err != nil {
			errs = append(errs, err)
		}
		switch outcome {
		case vanishedRedispatched:
			rep.Vanished++
			rep.Redispatched++
		case vanishedFailed:
			rep.Vanished++
			rep.Failed++
		case vanishedRetired:
			rep.Vanished++
		}
	}
	return rep, errors.Join(errs...)
}

// reconcileOrphan destroys backend machine fm, which no live row in the
// store accounts for, unless its interview recorded it meanwhile.
func (s *Server) reconcileOrphan(ctx context.Context, fm fly.Machine) (destroyed bool, err error) {
	var iv store.Interview
	if fm.InterviewID != "" {
		unlock := s.locks.lock(fm.InterviewID)
		defer unlock()
		iv, err = s.db.InterviewByID(ctx, fm.InterviewID)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return false, fmt.Errorf("interview of machine %s: %w", fm.ID, err)
		default:
			// Launched and recorded while the lists were taken?
			ms, err := s.db.ListMachines(ctx, iv.TenantID, iv.ID)
			if err != nil {
				return false, fmt.Errorf("machines of interview %s: %w", iv.ID, err)
			}
			for _, m := range ms {
				if m.Provider == fm.Provider && m.ProviderID == fm.ID && m.DestroyedAt == nil && m.State != store.MachineDestroyed {
					return false, nil
				}
			}
		}
	}
	if err := s.machines.Destroy(ctx, fm); err != nil {
		return false, fmt.Errorf("destroy orphan machine %s: %w", fm.ID, err)
	}
	if iv.ID == "" {
		s.log.Warn("destroyed a machine of no known interview", "machine", fm.ID, "provider", fm.Provider, "app", fm.App, "interview", fm.InterviewID)
		return true, nil
	}
	s.log.Warn("destroyed an orphan machine", "machine", fm.ID, "interview", iv.ID, "status", iv.Status)
	return true, s.recordEvent(ctx, iv.TenantID, iv.ID, "machine.orphan_destroyed", map[string]any{
		"provider": fm.Provider, "provider_id": fm.ID, "app": fm.App, "interview_status": iv.Status,
	})
}

// reconcileLive destroys machine m, alive and recorded, if its interview is
// over or has moved to another machine (an end or replacement that could
// not destroy it).
func (s *Server) reconcileLive(ctx context.Context, m store.Machine) (destroyed bool, err error) {
	unlock := s.locks.lock(m.InterviewID)
	defer unlock()
	iv, err := s.db.Interview(ctx, m.TenantID, m.InterviewID)
	if err != nil {
		return false, fmt.Errorf("interview of machine %s: %w", m.ID, err)
	}
	cur, err := s.db.CurrentMachine(ctx, m.TenantID, m.InterviewID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("current machine of interview %s: %w", iv.ID, err)
	}
	if !iv.Status.Terminal() && cur.ID == m.ID {
		return false, nil
	}
	if err := s.destroy(ctx, m); err != nil {
		return false, fmt.Errorf("destroy orphan machine %s: %w", m.ID, err)
	}
	return true, s.recordEvent(ctx, m.TenantID, m.InterviewID, "machine.orphan_destroyed", map[string]any{
		"machine_id": m.ID, "provider": m.Provider, "provider_id": m.ProviderID, "interview_status": iv.Status,
	})
}

type vanishedOutcome int

const (
	vanishedNone vanishedOutcome = iota
	vanishedRetired
	vanishedRedispatched
	vanishedFailed
)

// reconcileVanished handles machine m, live in the store, that the backend
// does not run.
func (s *Server) reconcileVanished(ctx context.Context, m store.Machine) (vanishedOutcome, error) {
	unlock := s.locks.lock(m.InterviewID)
	defer unlock()
	ms, err := s.db.ListMachines(ctx, m.TenantID, m.InterviewID)
	if err != nil {
		return vanishedNone, fmt.Errorf("machines of interview %s: %w", m.InterviewID, err)
	}
	i := -1
	for j := range ms {
		if ms[j].ID == m.ID {
			i = j
		}
	}
	if i < 0 || ms[i].DestroyedAt != nil || ms[i].State == store.MachineDestroyed || ms[i].State == store.MachineFailed {
		return vanishedNone, nil // ended or replaced meanwhile
	}
	m = ms[i]
	iv, err := s.db.Interview(ctx, m.TenantID, m.InterviewID)
	if err != nil {
		return vanishedNone, fmt.Errorf("interview of machine %s: %w", m.ID, err)
	}
	if err := s.retire(ctx, m, store.MachineFailed, time.Now().UTC()); err != nil {
		return vanishedNone, err
	}
	if err := s.recordEvent(ctx, iv.TenantID, iv.ID, "machine.vanished", map[string]any{
		"machine_id": m.ID, "provider": m.Provider, "provider_id": m.ProviderID, "interview_status": iv.Status,
	}); err != nil {
		return vanishedRetired, err
	}
	switch iv.Status {
	case store.StatusRunning:
		if err := s.redispatch(ctx, iv, "the interview's machine vanished"); err != nil {
			return vanishedRetired, fmt.Errorf("re-dispatch interview %s: %w", iv.ID, err)
		}
		cur, err := s.db.Interview(ctx, iv.TenantID, iv.ID)
		if err == nil && cur.Status == store.StatusFailed {
			return vanishedFailed, nil
		}
		return vanishedRedispatched, nil
	case store.StatusStarting:
		msg := "the interview's machine vanished while the interview was starting; start it again"
		if err := s.recordEvent(ctx, iv.TenantID, iv.ID, "error", map[string]string{"message": msg}); err != nil {
			return vanishedRetired, err
		}
		failed, err := s.db.SetInterviewStatus(ctx, iv.TenantID, iv.ID, store.StatusFailed, store.StatusStarting)
		if err != nil {
			return vanishedRetired, fmt.Errorf("mark interview %s failed: %w", iv.ID, err)
		}
		s.publishStatus(failed)
		return vanishedFailed, nil
	}
	return vanishedRetired, nil
}

// recordEvent appends an interview event and, once it is committed,
// publishes it on the interview's topic.
func (s *Server) recordEvent(ctx context.Context, tenantID, interviewID, typ string, data any) error {
	ev, err := s.db.AppendEvent(ctx, tenantID, interviewID, typ, data)
	if err != nil {
		return fmt.Errorf("record %s event: %w", typ, err)
	}
	s.hub.Publish("interview:"+interviewID, EventTypeRealtime, 0, toEventJSON(ev))
	return nil
}
