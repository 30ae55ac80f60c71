package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"candor/fly"
	"candor/store"
)

// Supervision (DESIGN §7). A running interview whose processor has sent no
// heartbeat for Config.HeartbeatTimeout is investigated, not replaced: the
// control plane asks the machine provider for the machine's state and
// probes the processor's /healthz itself.
//
//   - gone, stopped, failed or destroyed: replaced at once;
//   - alive and reachable: kept, however long its bridge is cut (it keeps
//     working into its spool); bridge.partitioned is recorded, and
//     bridge.restored once it beats again;
//   - alive but unreachable from here too: replaced once it has been
//     unreachable for Config.ReplaceAfter, and drained rather than
//     destroyed (it may hold a spool): see replace.
//
// A replacement retires the old machine and installs a new bridge
// credential in one step (a new epoch: the old processor can no longer
// write as the current one), launches a new machine without holding any
// lock, and records it in a second step. Replacements of different
// interviews run in parallel.

// silence is what supervision knows of a silent interview.
type silence struct {
	partitioned      bool      // bridge.partitioned recorded
	unreachableSince time.Time // zero while the processor answers probes
}

func (s *Service) superviseLoop(ctx context.Context) {
	tick := time.NewTicker(max(s.cfg.HeartbeatTimeout/4, 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s.supervise(ctx, now, nil)
		}
	}
}

// SuperviseOnce investigates every interview silent at now, as one tick of
// the supervisor does, and waits until what it decided (replacements
// included) is done.
func (s *Service) SuperviseOnce(ctx context.Context, now time.Time) {
	var wg sync.WaitGroup
	s.supervise(ctx, now, &wg)
	wg.Wait()
}

// supervise starts an investigation of each interview silent at now that
// is not under investigation already; each runs on its own goroutine,
// counted in wg if given. Failures are logged here, the boundary of this
// background work.
func (s *Service) supervise(ctx context.Context, now time.Time, wg *sync.WaitGroup) {
	stale, err := s.db.ListStaleInterviews(ctx, now.Add(-s.cfg.HeartbeatTimeout))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("supervise: list stale interviews", "err", err)
		}
		return
	}
	silent := make(map[string]bool, len(stale))
	for _, iv := range stale {
		silent[iv.ID] = true
	}
	s.mu.Lock()
	if s.silences == nil {
		s.silences = map[string]*silence{}
	}
	var restored []string
	for id, si := range s.silences {
		if !silent[id] && !s.investigating[id] {
			if si.partitioned {
				restored = append(restored, id)
			}
			delete(s.silences, id)
		}
	}
	s.mu.Unlock()
	for _, id := range restored {
		iv, err := s.db.InterviewByID(ctx, id)
		if err == nil && iv.Status == store.StatusRunning {
			err = s.Record(ctx, iv.TenantID, id, "bridge.restored", map[string]any{"media_ms": iv.MediaMS})
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("supervise: record bridge.restored", "interview", id, "err", err)
		}
	}
	for _, iv := range stale {
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		if s.investigating == nil {
			s.investigating = map[string]bool{}
		}
		busy := s.investigating[iv.ID] || s.ops[iv.ID] != nil
		if !busy {
			s.investigating[iv.ID] = true
		}
		s.mu.Unlock()
		if busy {
			continue
		}
		if wg != nil {
			wg.Add(1)
		}
		s.background(func(bctx context.Context) {
			if wg != nil {
				defer wg.Done()
			}
			defer func() {
				s.mu.Lock()
				delete(s.investigating, iv.ID)
				s.mu.Unlock()
			}()
			if err := s.investigate(ctx, iv, now); err != nil {
				s.log.Error("supervise: investigate a silent processor", "interview", iv.ID, "tenant", iv.TenantID, "err", err)
			}
		})
	}
}

// investigate decides what to do about running interview iv, silent at now.
func (s *Service) investigate(ctx context.Context, iv store.Interview, now time.Time) error {
	s.mu.Lock()
	si := s.silences[iv.ID]
	first := si == nil
	if first {
		si = &silence{}
		s.silences[iv.ID] = si
	}
	s.mu.Unlock()
	if first {
		var lastBeat any
		if iv.LastHeartbeatAt != nil {
			lastBeat = iv.LastHeartbeatAt.UTC()
		}
		if err := s.Record(ctx, iv.TenantID, iv.ID, "heartbeat.lost", map[string]any{
			"last_heartbeat_at": lastBeat, "media_ms": iv.MediaMS,
		}); err != nil {
			return err
		}
	}
	m, err := s.db.CurrentMachine(ctx, iv.TenantID, iv.ID)
	if errors.Is(err, store.ErrNotFound) {
		return s.Replace(ctx, iv, "the interview has no live machine")
	}
	if err != nil {
		return fmt.Errorf("current machine: %w", err)
	}
	state, err := s.providerState(ctx, m)
	if err != nil {
		// The provider cannot tell: judge by the probe alone.
		s.log.Warn("supervise: machine state unknown", "interview", iv.ID, "machine", m.ID, "err", err)
	}
	switch state {
	case machineGone, "stopped", "failed", "destroyed":
		return s.Replace(ctx, iv, "the processor's machine is "+state)
	}
	if perr := s.probe(ctx, m); perr == nil {
		s.mu.Lock()
		si.unreachableSince = time.Time{}
		record := !si.partitioned
		si.partitioned = true
		s.mu.Unlock()
		if record {
			return s.Record(ctx, iv.TenantID, iv.ID, "bridge.partitioned", map[string]any{
				"machine_id": m.ID, "media_ms": iv.MediaMS,
			})
		}
		return nil
	} else { //nolint:revive // perr is scoped to the probe
		s.mu.Lock()
		if si.unreachableSince.IsZero() {
			si.unreachableSince = now
		}
		since := si.unreachableSince
		s.mu.Unlock()
		if now.Sub(since) >= s.cfg.ReplaceAfter {
			return s.replace(ctx, iv, fmt.Sprintf("the processor was unreachable for %s (%v)", now.Sub(since).Round(time.Second), perr), now)
		}
	}
	return nil
}

// machineGone is the provider state of a machine the provider no longer
// lists.
const machineGone = "gone"

// machineStater is a backend that can tell one machine's state cheaply.
type machineStater interface {
	State(ctx context.Context, m fly.Machine) (string, error)
}

// providerState asks the backend about machine row m: its state, or
// machineGone.
func (s *Service) providerState(ctx context.Context, m store.Machine) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if st, ok := s.machines.(machineStater); ok {
		return st.State(ctx, flyMachine(m))
	}
	ms, err := s.machines.List(ctx)
	if err != nil {
		return "", err
	}
	for _, fm := range ms {
		if fm.Provider == m.Provider && fm.ID == m.ProviderID {
			return fm.State, nil
		}
	}
	return machineGone, nil
}

// probe asks machine m's processor for /healthz, directly from here.
func (s *Service) probe(ctx context.Context, m store.Machine) error {
	if m.URL == "" {
		return errors.New("machine has no url")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(m.URL, "/")+"/healthz", nil)
	if err != nil {
		return err
	}
	for k, v := range MachineHeaders(m) {
		req.Header.Set(k, v)
	}
	res, err := s.client.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %d", res.StatusCode)
	}
	return nil
}

// Replace moves running interview iv to a new machine: it destroys the
// current one (if any), fences it out of the bridge, and launches another
// in the same region. If none can be launched the interview fails, with
// an error event saying why. It does nothing if the interview is not
// running or another operation on it is in flight.
func (s *Service) Replace(ctx context.Context, iv store.Interview, why string) error {
	return s.replace(ctx, iv, why, time.Time{})
}

// replace is Replace; with a drainAt (the supervisor's now), the current
// machine may still be alive
// (unreachable, not known dead) and is not destroyed: its processor is
// retired, keeping a credential that lets it deliver the entries it
// heard before the hand-over for Config.DrainTimeout, and its machine is
// stopping until it says it drained (DestroyDrained) or reconciliation
// finds it gone or past the drain. The hand-over is the media clock the
// processor last reported plus the time since (it cannot have heard more
// than that live), and the replacement continues from it, so the two never
// claim the same stretch of the media clock.
func (s *Service) replace(ctx context.Context, iv store.Interview, why string, drainAt time.Time) error {
	if s.machines == nil {
		return ErrNoMachines
	}
	if s.stopping.Load() {
		return nil // the next start's reconciliation moves it
	}
	unlock := s.locks.Lock(iv.ID)
	cur, err := s.db.Interview(ctx, iv.TenantID, iv.ID)
	if err != nil || cur.Status != store.StatusRunning {
		unlock()
		return err
	}
	lctx, done := s.owned(s.cfg.LaunchTimeout + s.cfg.EndTimeout)
	defer done()
	lctx, cancel := context.WithCancel(lctx)
	defer cancel()
	o, busy := s.beginOp(iv.ID, opReplace, cancel)
	unlock()
	if busy != nil {
		return nil
	}
	finished := false
	defer func() {
		if !finished {
			s.finishOp(iv.ID, o)
		}
	}()

	old, err := s.db.CurrentMachine(lctx, iv.TenantID, iv.ID)
	live := err == nil
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Already retired (reconciliation found it gone): it still tells
		// the region and which machine is being replaced.
		old, err = s.db.LatestMachine(lctx, iv.TenantID, iv.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("latest machine: %w", err)
		}
	case err != nil:
		return fmt.Errorf("current machine: %w", err)
	}
	var retire []store.Retirement
	var draining *store.Drain
	if live && !drainAt.IsZero() {
		handover := cur.MediaMS
		if cur.LastHeartbeatAt != nil {
			handover += max(drainAt.Sub(*cur.LastHeartbeatAt), 0).Milliseconds()
		}
		draining = &store.Drain{MachineID: old.ID, HandoverMediaMS: handover, Until: time.Now().Add(s.cfg.DrainTimeout)}
	} else if live {
		state := store.MachineDestroyed
		dctx, dcancel := context.WithTimeout(lctx, s.cfg.EndTimeout)
		derr := s.machines.Destroy(dctx, flyMachine(old))
		dcancel()
		if derr != nil {
			// A stuck machine must not block the interview: mark it
			// failed (reconciliation destroys leftovers) and go on.
			state = store.MachineFailed
			s.log.Warn("old machine not destroyed, marked failed", "machine", old.ID, "interview", iv.ID, "err", derr)
		}
		retire = []store.Retirement{{ID: old.ID, State: state}}
	}

	machineID := store.NewID("mch_")
	token := s.processorToken(iv.ID, machineID)
	hash := TokenHash(token)
	unlock = s.locks.Lock(iv.ID)
	if s.isAbandoned(o) {
		unlock()
		return nil
	}
	retired := map[string]any{"machine_id": old.ID, "reason": why}
	if draining != nil {
		retired["draining"] = true
		retired["handover_media_ms"] = draining.HandoverMediaMS
		retired["drain_until"] = draining.Until.UTC()
	}
	res, err := s.step(lctx, store.Step{
		TenantID: iv.TenantID, InterviewID: iv.ID, From: []store.Status{store.StatusRunning},
		Event: "machine.retired", Retire: retire, ProcessorTokenHash: &hash, Drain: draining,
		EventData: retired,
	})
	unlock()
	if errors.Is(err, store.ErrConflict) {
		return nil // ended meanwhile
	}
	if err != nil {
		return err
	}
	cur = res.Interview

	// Stay near the candidate: the old machine's region, unless it was a
	// local process (whose "region" means nothing to another backend).
	near := ""
	if old.Provider != "" && old.Provider != fly.ProviderLocal {
		near = old.Region
	}
	llctx, lcancel := context.WithTimeout(lctx, s.cfg.LaunchTimeout)
	fm, lerr := s.launch(llctx, cur, near, token)
	lcancel()

	unlock = s.locks.Lock(iv.ID)
	defer unlock()
	finished = true
	abandoned := s.finishOp(iv.ID, o)
	bg := context.WithoutCancel(ctx)
	if abandoned {
		if fm.ID != "" {
			s.destroyAbandoned(fm)
		}
		s.metrics.launches.WithLabelValues("abandoned").Inc()
		return nil
	}
	if lerr != nil {
		if fm.ID != "" {
			s.destroyAbandoned(fm)
		}
		s.metrics.launches.WithLabelValues("failed").Inc()
		msg := why + " and no replacement could be launched: " + lerr.Error()
		_, err := s.step(bg, store.Step{
			TenantID: iv.TenantID, InterviewID: iv.ID, From: []store.Status{store.StatusRunning},
			To: store.StatusFailed, Event: "error", EventData: map[string]string{"message": msg},
			OutboxData: map[string]any{"reason": msg},
		})
		if errors.Is(err, store.ErrConflict) {
			return nil
		}
		return err
	}
	region := fm.Region
	if region == "" {
		region = s.regionFor(cur, near)
	}
	m := store.Machine{
		ID: machineID, InterviewID: iv.ID, Provider: fm.Provider, ProviderID: fm.ID, App: fm.App, Region: region,
		State: store.MachineRunning, URL: fm.URL,
	}
	now := time.Now().UTC()
	_, err = s.step(bg, store.Step{
		TenantID: iv.TenantID, InterviewID: iv.ID, From: []store.Status{store.StatusRunning},
		Event: "machine.replaced", NewMachine: &m, Heartbeat: &now,
		EventData: map[string]any{
			"old_machine_id": old.ID, "new_machine_id": m.ID, "media_ms": cur.MediaMS,
			"provider": m.Provider, "provider_id": m.ProviderID, "region": m.Region, "url": m.URL,
			"processor_url": s.ProcessorURL(m), "reason": why,
		},
	})
	if err != nil {
		s.destroyAbandoned(fm)
		if errors.Is(err, store.ErrConflict) {
			return nil
		}
		return fmt.Errorf("record replacement machine: %w", err)
	}
	s.metrics.launches.WithLabelValues("ok").Inc()
	s.recordPlacement(bg, cur, m, fm)
	s.mu.Lock()
	delete(s.silences, iv.ID)
	s.mu.Unlock()
	return nil
}

func (s *Service) isAbandoned(o *op) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return o.abandoned
}

// DestroyDrained destroys machine machineID of the interview, whose
// retired processor said it drained, and marks it destroyed. A machine
// that is not draining (stopping) is left alone.
func (s *Service) DestroyDrained(ctx context.Context, tenantID, interviewID, machineID string) error {
	if s.machines == nil {
		return ErrNoMachines
	}
	ms, err := s.db.ListMachines(ctx, tenantID, interviewID)
	if err != nil {
		return fmt.Errorf("machines of interview %s: %w", interviewID, err)
	}
	i := slices.IndexFunc(ms, func(m store.Machine) bool { return m.ID == machineID })
	if i < 0 || ms[i].State != store.MachineStopping || ms[i].DestroyedAt != nil {
		return nil
	}
	m := ms[i]
	state := store.MachineDestroyed
	if err := s.machines.Destroy(ctx, flyMachine(m)); err != nil {
		state = store.MachineFailed // reconciliation destroys it later
		s.log.Warn("drained machine not destroyed, marked failed", "machine", m.ID, "interview", interviewID, "err", err)
	}
	unlock := s.locks.Lock(interviewID)
	defer unlock()
	_, err = s.step(ctx, store.Step{
		TenantID: tenantID, InterviewID: interviewID, Event: "machine.drained",
		Retire:    []store.Retirement{{ID: m.ID, State: state}},
		EventData: map[string]any{"machine_id": m.ID, "provider": m.Provider, "provider_id": m.ProviderID},
	})
	return err
}
