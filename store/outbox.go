package store

import (
	"context"
	"database/sql"
	"encoding/json"
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
