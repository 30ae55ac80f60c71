package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// OutboxEvent is a domain event recorded in the same transaction as the
// change it describes (see migrations/0002_outbox.sql). Its ID orders all
// events of the control plane; consumers keep a cursor on it.
type OutboxEvent struct {
	ID        int64
	TenantID  string
	Type      string // interview.started, candidate.erased, …
	SubjectID string // the interview or candidate the event is about
	Data      json.RawMessage
	CreatedAt time.Time
}

// insertOutbox appends e inside tx; callers pass the tx of the change that e
// records, so the event exists if and only if that change committed. data is
// encoded as AppendEvent's data is.
func (db *DB) insertOutbox(ctx context.Context, tx *sql.Tx, tenantID, typ, subjectID string, data any) (OutboxEvent, error) {
	if typ == "" {
		return OutboxEvent{}, fmt.Errorf("outbox event type is empty: %w", ErrInvalid)
	}
	raw, err := eventData(data)
	if err != nil {
		return OutboxEvent{}, err
	}
	e := OutboxEvent{TenantID: tenantID, Type: typ, SubjectID: subjectID, Data: raw, CreatedAt: db.nowUTC()}
	res, err := tx.ExecContext(ctx, `INSERT INTO outbox (tenant_id, type, subject_id, data, created_at)
		VALUES (?, ?, ?, ?, ?)`, tenantID, typ, subjectID, string(raw), fmtTime(e.CreatedAt))
	if err != nil {
		return OutboxEvent{}, fmt.Errorf("store: outbox %q: %w", typ, mapErr(err))
	}
	e.ID, err = res.LastInsertId()
	return e, err
}

// OutboxAfter returns up to limit events with an ID above after, oldest
// first, across all tenants.
func (db *DB) OutboxAfter(ctx context.Context, after int64, limit int) ([]OutboxEvent, error) {
	var evs []OutboxEvent
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		var err error
		evs, err = queryAll(ctx, tx, func(s scanner) (OutboxEvent, error) {
			var e OutboxEvent
			var data string
			err := s.Scan(&e.ID, &e.TenantID, &e.Type, &e.SubjectID, &data, timeCol{&e.CreatedAt})
			e.Data = json.RawMessage(data)
			return e, err
		}, `SELECT id, tenant_id, type, subject_id, data, created_at FROM outbox
			WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
		if err != nil {
			return fmt.Errorf("store: outbox after %d: %w", after, err)
		}
		return nil
	})
	return evs, err
}

// outboxPruneBatch bounds one delete, so pruning a long backlog never holds
// the writer for long.
const outboxPruneBatch = 5000

// PruneOutbox deletes outbox events created before cutoff that every one of
// consumers has finished (its cursor is past them), and returns how many.
// A consumer without a cursor has finished nothing, so then nothing goes.
func (db *DB) PruneOutbox(ctx context.Context, consumers []string, cutoff time.Time) (int64, error) {
	if len(consumers) == 0 {
		return 0, nil
	}
	var total int64
	for {
		var n int64
		err := db.inWrite(ctx, func(tx *sql.Tx) error {
			upTo := int64(-1)
			for _, c := range consumers {
				var after int64
				err := tx.QueryRowContext(ctx, `SELECT after_id FROM outbox_cursors WHERE consumer = ?`, c).Scan(&after)
				if errors.Is(err, sql.ErrNoRows) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("store: outbox cursor of %s: %w", c, err)
				}
				if upTo < 0 || after < upTo {
					upTo = after
				}
			}
			res, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id IN (
				SELECT id FROM outbox WHERE id <= ? AND created_at < ? ORDER BY id LIMIT ?)`,
				upTo, fmtTime(cutoff), outboxPruneBatch)
			if err != nil {
				return fmt.Errorf("store: prune outbox: %w", err)
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil || n < outboxPruneBatch {
			return total, err
		}
	}
}
