package lifecycle

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
//   - a machine the backend runs that is the current machine of a running
//     interview is kept (after a control-plane restart this adopts the
//     processors that outlived it);
//   - a machine the store holds live that the backend no longer runs has
//     vanished: it is marked failed and, if its interview is running, the
//     interview moves to a new machine (Replace); an interview still
//     starting on it (the control plane stopped mid-start) fails.
//
// Decisions are taken under the interview's lock with the store read
// again, so a start, end or replacement in flight is never mistaken for
// drift; destroys and launches run outside it.

// ReconcileReport counts what one reconciliation pass did.
type ReconcileReport struct {
	OrphansDestroyed int // backend machines destroyed
	Vanished         int // store machines the backend no longer runs
	Redispatched     int // running interviews moved to a new machine
	Failed           int // interviews marked failed
}

func (s *Service) reconcileLoop(ctx context.Context) {
	tick := time.NewTicker(max(s.cfg.ReconcileInterval, time.Second))
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
}

// Reconcile runs one reconciliation pass. It goes on past a failure with
// one machine or interview and returns every failure joined.
func (s *Service) Reconcile(ctx context.Context) (ReconcileReport, error) {
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
// store accounts for, unless its interview recorded it meanwhile or a
// launch of its interview is in flight (the row is written once the
// launch returns).
func (s *Service) reconcileOrphan(ctx context.Context, fm fly.Machine) (destroyed bool, err error) {
	var iv store.Interview
	if fm.InterviewID != "" {
		unlock := s.locks.Lock(fm.InterviewID)
		keep, err := func() (bool, error) {
			if o := s.currentOp(fm.InterviewID); o != nil && (o.kind == opLaunch || o.kind == opReplace) {
				return true, nil
			}
			iv, err = s.db.InterviewByID(ctx, fm.InterviewID)
			switch {
			case errors.Is(err, store.ErrNotFound):
				return false, nil
			case err != nil:
				return false, fmt.Errorf("interview of machine %s: %w", fm.ID, err)
			}
			ms, err := s.db.ListMachines(ctx, iv.TenantID, iv.ID)
			if err != nil {
				return false, fmt.Errorf("machines of interview %s: %w", iv.ID, err)
			}
			for _, m := range ms {
				if m.Provider == fm.Provider && m.ProviderID == fm.ID && m.DestroyedAt == nil && m.State != store.MachineDestroyed {
					return true, nil
				}
			}
			return false, nil
		}()
		unlock()
		if keep || err != nil {
			return false, err
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
	return true, s.Record(ctx, iv.TenantID, iv.ID, "machine.orphan_destroyed", map[string]any{
		"provider": fm.Provider, "provider_id": fm.ID, "app": fm.App, "interview_status": iv.Status,
	})
}

// reconcileLive destroys machine m, alive and recorded, if its interview is
// over or has moved to another machine (an end or replacement that could
// not destroy it).
func (s *Service) reconcileLive(ctx context.Context, m store.Machine) (destroyed bool, err error) {
	unlock := s.locks.Lock(m.InterviewID)
	iv, err := s.db.Interview(ctx, m.TenantID, m.InterviewID)
	if err != nil {
		unlock()
		return false, fmt.Errorf("interview of machine %s: %w", m.ID, err)
	}
	cur, err := s.db.CurrentMachine(ctx, m.TenantID, m.InterviewID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		unlock()
		return false, fmt.Errorf("current machine of interview %s: %w", iv.ID, err)
	}
	// m was listed before the backend was asked (which may take a while):
	// a replacement may have retired it as draining meanwhile.
	m, live, err := s.freshMachine(ctx, m)
	if err != nil {
		unlock()
		return false, err
	}
	busy := s.currentOp(m.InterviewID) != nil
	unlock()
	if !live || busy || (!iv.Status.Terminal() && cur.ID == m.ID) {
		return false, nil
	}
	// A retired processor drains until it says so or its time is up
	// (replace); once the interview is over it can deliver nothing more.
	event := "machine.orphan_destroyed"
	if m.State == store.MachineStopping && m.DrainUntil != nil {
		if !iv.Status.Terminal() && time.Now().Before(*m.DrainUntil) {
			return false, nil
		}
		event = "machine.drain_ended"
	}
	if err := s.machines.Destroy(ctx, flyMachine(m)); err != nil {
		return false, fmt.Errorf("destroy orphan machine %s: %w", m.ID, err)
	}
	unlock = s.locks.Lock(m.InterviewID)
	defer unlock()
	_, err = s.step(ctx, store.Step{
		TenantID: m.TenantID, InterviewID: m.InterviewID, Event: event,
		Retire: []store.Retirement{{ID: m.ID, State: store.MachineDestroyed}},
		EventData: map[string]any{
			"machine_id": m.ID, "provider": m.Provider, "provider_id": m.ProviderID, "interview_status": iv.Status,
		},
	})
	return true, err
}

// freshMachine reads machine m's row again; live reports it is not
// destroyed.
func (s *Service) freshMachine(ctx context.Context, m store.Machine) (store.Machine, bool, error) {
	ms, err := s.db.ListMachines(ctx, m.TenantID, m.InterviewID)
	if err != nil {
		return m, false, fmt.Errorf("machines of interview %s: %w", m.InterviewID, err)
	}
	for _, x := range ms {
		if x.ID == m.ID {
			return x, x.DestroyedAt == nil && x.State != store.MachineDestroyed, nil
		}
	}
	return m, false, nil
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
func (s *Service) reconcileVanished(ctx context.Context, m store.Machine) (vanishedOutcome, error) {
	unlock := s.locks.Lock(m.InterviewID)
	if s.currentOp(m.InterviewID) != nil {
		unlock()
		return vanishedNone, nil // its end or replacement is on it
	}
	iv, err := s.db.Interview(ctx, m.TenantID, m.InterviewID)
	if err != nil {
		unlock()
		return vanishedNone, fmt.Errorf("interview of machine %s: %w", m.ID, err)
	}
	// As committed now, not as listed before the backend was asked: a
	// replacement may have retired it as draining meanwhile.
	m, live, err := s.freshMachine(ctx, m)
	if err != nil {
		unlock()
		return vanishedNone, err
	}
	if !live || m.State == store.MachineFailed {
		unlock()
		return vanishedNone, nil // ended or replaced meanwhile
	}
	data := map[string]any{
		"machine_id": m.ID, "provider": m.Provider, "provider_id": m.ProviderID, "interview_status": iv.Status,
	}
	retire := []store.Retirement{{ID: m.ID, State: store.MachineFailed}}
	if m.State == store.MachineStopping {
		// A retired processor that exited: its replacement runs already.
		data["draining"] = true
		_, err := s.step(ctx, store.Step{
			TenantID: iv.TenantID, InterviewID: iv.ID, Event: "machine.vanished", EventData: data,
			Retire: []store.Retirement{{ID: m.ID, State: store.MachineDestroyed}},
		})
		unlock()
		if err != nil {
			return vanishedNone, err
		}
		return vanishedRetired, nil
	}
	if iv.Status == store.StatusStarting {
		msg := "the interview's machine vanished while the interview was starting; start it again"
		data["message"] = msg
		_, err := s.step(ctx, store.Step{
			TenantID: iv.TenantID, InterviewID: iv.ID, From: []store.Status{store.StatusStarting},
			To: store.StatusFailed, Event: "machine.vanished", EventData: data, Retire: retire,
			OutboxData: map[string]any{"reason": msg},
		})
		unlock()
		if err != nil {
			return vanishedNone, fmt.Errorf("mark interview %s failed: %w", iv.ID, err)
		}
		return vanishedFailed, nil
	}
	_, err = s.step(ctx, store.Step{
		TenantID: iv.TenantID, InterviewID: iv.ID, Event: "machine.vanished", EventData: data, Retire: retire,
	})
	unlock()
	if err != nil {
		return vanishedNone, err
	}
	if iv.Status != store.StatusRunning {
		return vanishedRetired, nil
	}
	if err := s.Replace(ctx, iv, "the interview's machine vanished"); err != nil {
		return vanishedRetired, fmt.Errorf("re-dispatch interview %s: %w", iv.ID, err)
	}
	cur, err := s.db.Interview(ctx, iv.TenantID, iv.ID)
	if err == nil && cur.Status == store.StatusFailed {
		return vanishedFailed, nil
	}
	return vanishedRedispatched, nil
}
