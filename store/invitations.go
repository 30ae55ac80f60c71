package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// MarkInvited records that the interview's invitation was emailed at at,
// with an event for the recruiter's timeline, in one transaction.
func (db *DB) MarkInvited(ctx context.Context, tenantID, id string, at time.Time, eventType string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("store: event data: %w", err)
	}
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE interviews SET invited_at = ? WHERE tenant_id = ? AND id = ?`,
			fmtTime(at), tenantID, id)
		if err != nil {
			return fmt.Errorf("store: mark interview %s invited: %w", id, err)
		}
		if err := rowsChanged(res, "interview "+id); err != nil {
			return err
		}
		return insertMailEvent(ctx, tx, tenantID, id, eventType, at, raw)
	})
}

func insertMailEvent(ctx context.Context, tx *sql.Tx, tenantID, id, eventType string, at time.Time, data []byte) error {
	if string(data) == "null" {
		data = []byte("{}")
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO interview_events (tenant_id, interview_id, type, at, data) VALUES (?, ?, ?, ?, ?)`,
		tenantID, id, eventType, fmtTime(at), string(data))
	if err != nil {
		return fmt.Errorf("store: record %s: %w", eventType, mapErr(err))
	}
	return nil
}

// DueReminders lists, across tenants, interviews whose invitation was
// emailed, whose candidate has not joined (still scheduled, no consent),
// whose window closes within (now, before] and whose reminder has not gone.
func (db *DB) DueReminders(ctx context.Context, now, before time.Time, limit int) ([]Interview, error) {
	var ivs []Interview
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		ivs, err = queryAll(ctx, tx, scanInterview, `SELECT `+interviewCols+` FROM interviews
			WHERE status = 'scheduled' AND reminded_at IS NULL AND invited_at IS NOT NULL AND consent_at IS NULL
				AND expires_at > ? AND expires_at <= ?
			ORDER BY expires_at LIMIT ?`, fmtTime(now), fmtTime(before), limit)
		return err
	})
	return ivs, err
}

// ClaimReminder marks the interview's reminder as sent at at, unless it was
// already (then ErrConflict): whoever claims it sends it, so it goes once.
func (db *DB) ClaimReminder(ctx context.Context, tenantID, id string, at time.Time) error {
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE interviews SET reminded_at = ?
			WHERE tenant_id = ? AND id = ? AND reminded_at IS NULL AND status = 'scheduled'`, fmtTime(at), tenantID, id)
		if err != nil {
			return fmt.Errorf("store: claim reminder of %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("reminder of interview %s: %w", id, ErrConflict)
		}
		return nil
	})
}

// ReleaseReminder undoes ClaimReminder after a failed send, so a later pass
// tries again.
func (db *DB) ReleaseReminder(ctx context.Context, tenantID, id string) error {
	return db.updateInterview(ctx, tenantID, id, `reminded_at = NULL`)
}

// RecordReminder adds the reminder's event to the interview's timeline.
func (db *DB) RecordReminder(ctx context.Context, tenantID, id string, at time.Time, eventType string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("store: event data: %w", err)
	}
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		return insertMailEvent(ctx, tx, tenantID, id, eventType, at, raw)
	})
}
