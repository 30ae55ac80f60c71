package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"candor/store"
)

// End completes a started interview. A running one's processor first
// flushes everything it holds (so the transcript is complete when End
// returns), then its machine is destroyed. An interview whose machine is
// still being launched is completed at once: the launch is abandoned and
// its machine destroyed in the background. Ending a completed interview
// changes nothing.
func (s *Service) End(ctx context.Context, tenantID, id string) (store.Interview, error) {
	if s.machines == nil {
		return store.Interview{}, ErrNoMachines
	}
	for {
		iv, wait, err := s.endOrWait(ctx, tenantID, id)
		if err != nil || wait == nil {
			return iv, err
		}
		// Another end is in flight: its outcome is ours.
		select {
		case <-wait:
		case <-ctx.Done():
			return store.Interview{}, ctx.Err()
		}
	}
}

// endOrWait ends interview id, or returns a channel to wait on when another
// end of it is in flight.
func (s *Service) endOrWait(ctx context.Context, tenantID, id string) (store.Interview, <-chan struct{}, error) {
	unlock := s.locks.Lock(id)
	iv, err := s.db.Interview(ctx, tenantID, id)
	if err != nil {
		unlock()
		return store.Interview{}, nil, notFound(err)
	}
	switch iv.Status {
	case store.StatusCompleted:
		unlock()
		return iv, nil, nil
	case store.StatusStarting, store.StatusRunning:
	default:
		unlock()
		return store.Interview{}, nil, refuse(Conflict, "the interview is %s; only a started interview can be ended", iv.Status)
	}
	cur := s.currentOp(id)
	switch {
	case cur != nil && cur.kind == opEnd:
		unlock()
		return store.Interview{}, cur.done, nil
	case cur != nil && cur.kind == opLaunch:
		// Nothing ran yet: complete now, and let the launch undo itself.
		s.abandon(cur)
		res, err := s.step(ctx, store.Step{
			TenantID: tenantID, InterviewID: id, From: []store.Status{store.StatusStarting, store.StatusRunning},
			To: store.StatusCompleted, Event: "interview.ended",
			EventData: map[string]any{"reason": "ended while its machine was starting"},
		})
		unlock()
		if err != nil {
			return store.Interview{}, nil, fmt.Errorf("mark interview completed: %w", err)
		}
		s.metrics.interviewsEnd.Inc()
		return res.Interview, nil, nil
	case cur != nil && cur.kind == opReplace:
		// The replacement's machine, if it comes up, is destroyed by the
		// replacement itself; the end flushes whatever is current.
		s.abandon(cur)
	}
	ectx, done := s.owned(s.cfg.EndTimeout + s.cfg.EndTimeout/2)
	ectx, cancel := context.WithCancel(ectx)
	o := s.takeOver(id, opEnd, cancel)
	unlock()
	defer done()
	defer cancel()
	iv, err = s.end(ectx, iv)
	unlock = s.locks.Lock(id)
	s.finishOp(id, o)
	unlock()
	return iv, nil, err
}

// end flushes and destroys interview iv's current machine, then completes
// it; the caller registered the op.
func (s *Service) end(ctx context.Context, iv store.Interview) (store.Interview, error) {
	flushed := -1
	var retire []store.Retirement
	m, err := s.db.CurrentMachine(ctx, iv.TenantID, iv.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// No live machine (its launch failed or it was already destroyed).
	case err != nil:
		return store.Interview{}, fmt.Errorf("current machine: %w", err)
	default:
		if m.URL != "" {
			n, err := s.flush(ctx, m)
			if err != nil {
				// What was said matters most, but a processor that cannot
				// flush must not keep the machine alive: note it, go on.
				if eerr := s.Record(ctx, iv.TenantID, iv.ID, "error", map[string]string{
					"message": "the processor did not confirm its final flush: " + err.Error(),
				}); eerr != nil {
					return store.Interview{}, fmt.Errorf("record flush error: %w", eerr)
				}
			}
			flushed = n
		}
		if err := s.machines.Destroy(ctx, flyMachine(m)); err != nil {
			return store.Interview{}, &Error{Kind: LaunchFailed, Cause: err,
				Message: "the interview machine could not be destroyed; retry ending the interview"}
		}
		retire = []store.Retirement{{ID: m.ID, State: store.MachineDestroyed}}
	}
	data := map[string]any{"machine_id": m.ID}
	if flushed >= 0 {
		data["flushed_entries"] = flushed
	}
	unlock := s.locks.Lock(iv.ID)
	defer unlock()
	res, err := s.step(context.WithoutCancel(ctx), store.Step{
		TenantID: iv.TenantID, InterviewID: iv.ID, From: []store.Status{store.StatusStarting, store.StatusRunning},
		To: store.StatusCompleted, Event: "interview.ended", EventData: data, Retire: retire,
	})
	if errors.Is(err, store.ErrConflict) {
		// Something else ended it meanwhile: answer the current state.
		return s.db.Interview(ctx, iv.TenantID, iv.ID)
	}
	if err != nil {
		return store.Interview{}, fmt.Errorf("mark interview completed: %w", err)
	}
	s.metrics.interviewsEnd.Inc()
	return res.Interview, nil
}

// Cancel calls off an interview that has not started: a scheduled one, or
// one whose launch failed before it ever ran (LaunchRetryable), so its
// invite link stops working. It needs no machine provisioner: there is no
// machine to stop. Cancelling a cancelled interview changes nothing; a
// started one is ended instead (Conflict).
func (s *Service) Cancel(ctx context.Context, tenantID, id string) (store.Interview, error) {
	unlock := s.locks.Lock(id)
	defer unlock()
	iv, err := s.db.Interview(ctx, tenantID, id)
	if err != nil {
		return store.Interview{}, notFound(err)
	}
	switch {
	case iv.Status == store.StatusCancelled:
		return iv, nil
	case iv.Status == store.StatusScheduled, LaunchRetryable(iv):
	case iv.Status == store.StatusStarting || iv.Status == store.StatusRunning:
		return store.Interview{}, refuse(Conflict, "the interview is %s; end it instead of cancelling it", iv.Status)
	default:
		return store.Interview{}, refuse(Conflict, "the interview is %s; only a scheduled interview can be cancelled", iv.Status)
	}
	res, err := s.step(ctx, store.Step{
		TenantID: tenantID, InterviewID: id, From: []store.Status{iv.Status}, To: store.StatusCancelled,
		Event: "interview.cancelled", EventData: map[string]string{"from": string(iv.Status)},
	})
	if errors.Is(err, store.ErrConflict) {
		return store.Interview{}, refuse(Conflict, "the interview changed state meanwhile; reload and retry")
	}
	if err != nil {
		return store.Interview{}, fmt.Errorf("mark interview cancelled: %w", err)
	}
	return res.Interview, nil
}

// ProcessorReady records that interview iv's processor is serving; a
// starting interview becomes running in the same transaction.
func (s *Service) ProcessorReady(ctx context.Context, iv store.Interview, data any) error {
	unlock := s.locks.Lock(iv.ID)
	defer unlock()
	cur, err := s.db.Interview(ctx, iv.TenantID, iv.ID)
	if err != nil {
		return notFound(err)
	}
	st := store.Step{
		TenantID: iv.TenantID, InterviewID: iv.ID, From: []store.Status{store.StatusStarting, store.StatusRunning},
		Event: "processor.ready", EventData: data,
	}
	if cur.Status == store.StatusStarting {
		st.To = store.StatusRunning
	}
	if _, err := s.step(ctx, st); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return refuse(Conflict, "the interview is %s; the bridge accepts nothing more for it", cur.Status)
		}
		return fmt.Errorf("record processor.ready: %w", err)
	}
	return nil
}

// flush calls the processor's POST /end and returns how many entries it
// delivered; bounded by Config.EndTimeout.
func (s *Service) flush(ctx context.Context, m store.Machine) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.EndTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(m.URL, "/")+"/end", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+s.processorToken(m.InterviewID, m.ID))
	for k, v := range MachineHeaders(m) {
		req.Header.Set(k, v)
	}
	res, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("POST /end answered %d: %s", res.StatusCode, strings.TrimSpace(string(body)))
	}
	var out struct {
		Entries int `json:"entries"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return 0, fmt.Errorf("POST /end answered 200 with a body that is not {\"entries\":n}: %w", err)
	}
	return out.Entries, nil
}
