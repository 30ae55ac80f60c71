package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// Step is one change in an interview's life. (*DB).Step commits all of it
// in one transaction or none of it: the status change (if To is set), the
// event row that records it, the machine rows it creates or retires, the
// bridge credential it installs and the outbox row a status change implies.
type Step struct {
	TenantID, InterviewID string
	// From lists the statuses the interview must be in; empty means any.
	// A status outside From is ErrConflict and changes nothing.
	From []Status
	// To is the new status; "" keeps the current one (a step that only
	// records, such as a machine replacement). A change that is not one
	// of the interview's legal transitions (legalTransition) is
	// ErrConflict.
	To Status
	// Event is the interview_events row of the step; required.
	Event     string
	EventData any
	// NewMachine, when set, is inserted (ID, CreatedAt and State are
	// filled in as CreateMachine does).
	NewMachine *Machine
	// Retire lists live machines of the interview to mark gone, with the
	// seconds they ran billed up to the step.
	Retire []Retirement
	// ProcessorTokenHash, when set, becomes the hash of the bridge
	// credential of the interview's current processor ("" removes it).
	ProcessorTokenHash *string
	// Drain, when set, retires the current processor's credential as a
	// draining one instead of dropping it, and marks its machine
	// stopping (epochs.go); it goes with a new ProcessorTokenHash.
	Drain *Drain
	// OutboxData is added to the outbox row's data (a failure's message).
	OutboxData map[string]any
	// Heartbeat, when set, becomes the interview's last sign of life (a
	// new processor gets a full timeout before it counts as silent).
	Heartbeat *time.Time
}

// Retirement marks machine ID gone in state State (destroyed or failed).
type Retirement struct {
	ID    string
	State string
}

// StepResult is what a Step committed.
type StepResult struct {
	Interview Interview
	From      Status // the status before the step
	Event     Event
	Machine   Machine   // the inserted machine, if NewMachine was set
	Retired   []Machine // the machines Retire changed, as committed
}

// legalTransition reports whether an interview may go from status from to
// status to. A failed interview goes back to starting (a retried launch) or
// to cancelled only if it never ran: the caller's From and the started_at
// check in Step guard that.
func legalTransition(from, to Status) bool {
	switch from {
	case StatusScheduled:
		return to == StatusStarting || to == StatusCancelled
	case StatusStarting:
		return to == StatusRunning || to == StatusCompleted || to == StatusFailed
	case StatusRunning:
		return to == StatusCompleted || to == StatusFailed
	case StatusFailed:
		return to == StatusStarting || to == StatusCancelled
	}
	return false
}

// outboxType is the outbox event of entering status to from interview iv
// ("" for none). interview.started is written once per interview: when it
// first runs, never again for a replacement machine.
func outboxType(iv Interview, to Status) string {
	switch to {
	case StatusRunning:
		if iv.StartedAt == nil {
			return "interview.started"
		}
	case StatusCompleted:
		return "interview.completed"
	case StatusFailed:
		return "interview.failed"
	case StatusCancelled:
		return "interview.cancelled"
	}
	return ""
}

// Step commits st (see Step). ErrNotFound if the interview is not the
// tenant's, or a machine to retire is not one of its machines; ErrConflict
// if its status is not in st.From or the transition is illegal. Retiring a
// machine that is gone already changes nothing.
func (db *DB) Step(ctx context.Context, st Step) (StepResult, error) {
	if st.Event == "" {
		return StepResult{}, fmt.Errorf("step without an event: %w", ErrInvalid)
	}
	if st.To != "" && !st.To.Valid() {
		return StepResult{}, fmt.Errorf("status %q: %w", st.To, ErrInvalid)
	}
	raw, err := eventData(st.EventData)
	if err != nil {
		return StepResult{}, err
	}
	if st.NewMachine != nil {
		m := st.NewMachine
		if m.ID == "" {
			m.ID = NewID("mach_")
		}
		if m.State == "" {
			m.State = MachineStarting
		}
		m.TenantID, m.InterviewID = st.TenantID, st.InterviewID
		if err := validMachine(*m); err != nil {
			return StepResult{}, err
		}
	}
	var res StepResult
	if st.Drain != nil && (st.ProcessorTokenHash == nil || *st.ProcessorTokenHash == "") {
		return StepResult{}, fmt.Errorf("a drain without a new processor credential: %w", ErrInvalid)
	}
	// Retiring a machine ends its drain, so the retired credentials change
	// too.
	if st.To != "" || st.ProcessorTokenHash != nil || len(st.Retire) > 0 {
		defer db.credentials.forget(st.InterviewID)
	}
	err = db.inWrite(ctx, func(tx *sql.Tx) error {
		iv, err := findInterview(ctx, tx, st.TenantID, st.InterviewID)
		if err != nil {
			return err
		}
		res.From = iv.Status
		if len(st.From) > 0 && !slices.Contains(st.From, iv.Status) {
			return fmt.Errorf("interview %s is %s, not %v: %w", iv.ID, iv.Status, st.From, ErrConflict)
		}
		now := db.nowUTC()
		if st.To != "" {
			if !legalTransition(iv.Status, st.To) {
				return fmt.Errorf("interview %s cannot go from %s to %s: %w", iv.ID, iv.Status, st.To, ErrConflict)
			}
			if iv.Status == StatusFailed && iv.StartedAt != nil {
				return fmt.Errorf("interview %s failed after it had run; it cannot become %s: %w", iv.ID, st.To, ErrConflict)
			}
			if err := setStatusTx(ctx, tx, iv, st.To, now); err != nil {
				return err
			}
		}
		if st.Drain != nil {
			if err := retireDrainingTx(ctx, tx, st.TenantID, st.InterviewID, *st.Drain, now); err != nil {
				return err
			}
		}
		if st.ProcessorTokenHash != nil {
			// A new credential is a new epoch; removing it is not.
			var h any
			next := 0
			if *st.ProcessorTokenHash != "" {
				h, next = *st.ProcessorTokenHash, 1
			}
			if _, err := tx.ExecContext(ctx, `UPDATE interviews SET processor_token_hash = ?, epoch = epoch + ?
				WHERE tenant_id = ? AND id = ?`, h, next, st.TenantID, st.InterviewID); err != nil {
				return fmt.Errorf("store: set processor token of interview %s: %w", iv.ID, mapErr(err))
			}
		}
		if st.Heartbeat != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE interviews SET last_heartbeat_at = ? WHERE tenant_id = ? AND id = ?`,
				fmtTime(*st.Heartbeat), st.TenantID, st.InterviewID); err != nil {
				return fmt.Errorf("store: heartbeat of interview %s: %w", iv.ID, mapErr(err))
			}
		}
		for _, r := range st.Retire {
			m, err := retireMachineTx(ctx, tx, st.TenantID, st.InterviewID, r, now)
			if err != nil {
				return err
			}
			res.Retired = append(res.Retired, m)
		}
		if st.NewMachine != nil {
			m := *st.NewMachine
			m.CreatedAt = now
			if err := insertMachine(ctx, tx, m); err != nil {
				return err
			}
			res.Machine = m
		}
		ev := Event{InterviewID: iv.ID, Type: st.Event, At: now, Data: raw}
		r, err := tx.ExecContext(ctx, `INSERT INTO interview_events (tenant_id, interview_id, type, at, data)
			VALUES (?, ?, ?, ?, ?)`, st.TenantID, iv.ID, st.Event, fmtTime(now), string(raw))
		if err != nil {
			return fmt.Errorf("store: append event %q: %w", st.Event, mapErr(err))
		}
		if ev.ID, err = r.LastInsertId(); err != nil {
			return err
		}
		res.Event = ev
		if st.To != "" {
			if typ := outboxType(iv, st.To); typ != "" {
				data := map[string]any{
					"interview_id": iv.ID, "position_id": iv.PositionID, "candidate_id": iv.CandidateID,
					"status": st.To, "previous_status": iv.Status, "at": now,
				}
				for k, v := range st.OutboxData {
					data[k] = v
				}
				if _, err := db.insertOutbox(ctx, tx, st.TenantID, typ, iv.ID, data); err != nil {
					return err
				}
			}
		}
		res.Interview, err = findInterview(ctx, tx, st.TenantID, st.InterviewID)
		return err
	})
	if err != nil {
		return StepResult{}, err
	}
	return res, nil
}

// setStatusTx moves iv to status to at now. Entering running sets
// started_at, entering a terminal status sets ended_at (each only once);
// leaving a terminal status (a failed launch being retried) clears ended_at.
func setStatusTx(ctx context.Context, tx *sql.Tx, iv Interview, to Status, now time.Time) error {
	var started, ended any
	if to == StatusRunning {
		started = fmtTime(now)
	}
	if to.Terminal() {
		ended = fmtTime(now)
	}
	reopen := iv.Status.Terminal() && !to.Terminal()
	_, err := tx.ExecContext(ctx, `UPDATE interviews SET status = ?,
			started_at = coalesce(started_at, ?),
			ended_at = CASE WHEN ? THEN NULL ELSE coalesce(ended_at, ?) END
		WHERE tenant_id = ? AND id = ?`, string(to), started, reopen, ended, iv.TenantID, iv.ID)
	if err != nil {
		return fmt.Errorf("store: set status of interview %s: %w", iv.ID, mapErr(err))
	}
	return nil
}

// retireMachineTx marks live machine r.ID of the interview gone at now.
func retireMachineTx(ctx context.Context, tx *sql.Tx, tenantID, interviewID string, r Retirement, now time.Time) (Machine, error) {
	if r.State != MachineDestroyed && r.State != MachineFailed {
		return Machine{}, fmt.Errorf("retire machine %s as %q: %w", r.ID, r.State, ErrInvalid)
	}
	m, err := queryOne(ctx, tx, scanMachine, "machine "+r.ID,
		`SELECT `+machineCols+` FROM machines WHERE tenant_id = ? AND interview_id = ? AND id = ?`, tenantID, interviewID, r.ID)
	if err != nil {
		return Machine{}, err
	}
	if m.DestroyedAt != nil || m.State == MachineDestroyed {
		return m, nil // retired already (reconciliation got there first)
	}
	m.State = r.State
	m.DestroyedAt = &now
	m.SecondsBilled = max(0, now.Sub(m.CreatedAt).Seconds())
	_, err = tx.ExecContext(ctx, `UPDATE machines SET state = ?, destroyed_at = ?, seconds_billed = ?
		WHERE tenant_id = ? AND id = ?`, m.State, fmtTime(now), m.SecondsBilled, tenantID, m.ID)
	if err != nil {
		return Machine{}, fmt.Errorf("store: retire machine %s: %w", m.ID, mapErr(err))
	}
	return m, nil
}
