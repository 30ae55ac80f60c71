package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Epochs (migrations/0070_epochs.sql). Every launch of an interview's
// processor is an epoch with its own bridge credential. A replacement
// normally fences the old processor out at once; one replaced while it may
// still be alive (unreachable, not known dead) is retired instead: its
// credential stays valid for a drain, during which it may deliver what it
// heard before the hand-over, and nothing else.

// RetiredProcessor is the bridge credential of a retired epoch that may
// still drain.
type RetiredProcessor struct {
	TokenHash string
	Epoch     int64
	MachineID string
	// HandoverMediaMS is where the replacement took over on the media
	// clock: the retired processor may deliver entries that start before
	// it.
	HandoverMediaMS int64
	DrainUntil      time.Time // its machine's: the one deadline of a drain
}

// Drain retires the current processor as draining rather than gone (see
// Step.Drain).
type Drain struct {
	MachineID       string
	HandoverMediaMS int64
	Until           time.Time
}

// credentialsOf reads interview id's processor credentials, the current
// epoch's and the retired ones that have not drained, in one read
// transaction (one snapshot).
func (db *DB) credentialsOf(ctx context.Context, id string) (ProcessorCredentials, error) {
	pc := ProcessorCredentials{InterviewID: id}
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		var hash sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT tenant_id, status, processor_token_hash, epoch FROM interviews WHERE id = ?`, id).
			Scan(&pc.TenantID, &pc.Status, &hash, &pc.Epoch)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("interview %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: credentials of interview %s: %w", id, err)
		}
		pc.TokenHash = hash.String
		pc.Retired, err = queryAll(ctx, tx, func(s scanner) (RetiredProcessor, error) {
			var r RetiredProcessor
			err := s.Scan(&r.TokenHash, &r.Epoch, &r.MachineID, &r.HandoverMediaMS, timeCol{&r.DrainUntil})
			return r, err
		}, `SELECT r.token_hash, r.epoch, r.machine_id, r.handover_media_ms, m.drain_until
			FROM retired_processors r JOIN machines m ON m.id = r.machine_id
			WHERE r.interview_id = ? AND r.drained_at IS NULL AND m.drain_until IS NOT NULL
				AND m.destroyed_at IS NULL AND m.state = 'stopping'
			ORDER BY r.epoch`, id)
		if err != nil {
			return fmt.Errorf("store: retired processors of interview %s: %w", id, err)
		}
		return nil
	})
	return pc, err
}

// retireDrainingTx keeps the interview's current credential as a retired
// one and marks machine d.MachineID stopping until d.Until; the media
// clock moves up to the hand-over, where the replacement continues.
func retireDrainingTx(ctx context.Context, tx *sql.Tx, tenantID, interviewID string, d Drain, now time.Time) error {
	if d.HandoverMediaMS < 0 {
		return fmt.Errorf("hand-over media_ms %d: %w", d.HandoverMediaMS, ErrInvalid)
	}
	var hash sql.NullString
	var epoch int64
	if err := tx.QueryRowContext(ctx, `SELECT processor_token_hash, epoch FROM interviews WHERE tenant_id = ? AND id = ?`,
		tenantID, interviewID).Scan(&hash, &epoch); err != nil {
		return fmt.Errorf("store: credential of interview %s: %w", interviewID, mapErr(err))
	}
	if hash.String != "" {
		if _, err := tx.ExecContext(ctx, `INSERT INTO retired_processors (token_hash, tenant_id, interview_id, epoch,
				machine_id, handover_media_ms, retired_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			hash.String, tenantID, interviewID, epoch, d.MachineID, d.HandoverMediaMS, fmtTime(now)); err != nil {
			return fmt.Errorf("store: retire the processor of interview %s: %w", interviewID, mapErr(err))
		}
	}
	res, err := tx.ExecContext(ctx, `UPDATE machines SET state = 'stopping', drain_until = ?
		WHERE tenant_id = ? AND interview_id = ? AND id = ? AND `+machineLive,
		fmtTime(d.Until), tenantID, interviewID, d.MachineID)
	if err != nil {
		return fmt.Errorf("store: drain machine %s: %w", d.MachineID, mapErr(err))
	}
	if err := rowsChanged(res, "live machine "+d.MachineID); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE interviews SET media_ms = max(media_ms, ?) WHERE tenant_id = ? AND id = ?`,
		d.HandoverMediaMS, tenantID, interviewID)
	if err != nil {
		return fmt.Errorf("store: hand-over clock of interview %s: %w", interviewID, mapErr(err))
	}
	return nil
}

// MarkDrained ends the drain of the retired processor whose credential
// hashes to tokenHash: its credential stops working. It returns the
// machine the processor ran on; ErrNotFound if no such retired processor
// of the tenant's interview is draining.
func (db *DB) MarkDrained(ctx context.Context, tenantID, interviewID, tokenHash string) (machineID string, err error) {
	defer db.credentials.forget(interviewID)
	err = db.inWrite(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE retired_processors SET drained_at = ?
			WHERE tenant_id = ? AND interview_id = ? AND token_hash = ? AND drained_at IS NULL
			RETURNING machine_id`, fmtTime(db.nowUTC()), tenantID, interviewID, tokenHash).Scan(&machineID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("draining processor of interview %s: %w", interviewID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: mark drained: %w", err)
		}
		return nil
	})
	return machineID, err
}

// InMediaOrder sorts es by where they start on the media clock, keeping
// seq order among equal starts. Seq is delivery order: a retired
// processor's late entries come after its replacement's, though they were
// spoken before; a reader of the whole transcript wants them where they
// were said (the replacement's clock starts after the hand-over, so the
// clocks never overlap).
func InMediaOrder(es []Entry) []Entry {
	slices.SortStableFunc(es, func(a, b Entry) int { return cmp.Compare(a.StartMS, b.StartMS) })
	return es
}
