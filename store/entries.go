package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
)

const insertEntrySQL = `INSERT INTO transcript_entries
	(interview_id, seq, tenant_id, speaker, text, start_ms, end_ms, confidence, created_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (interview_id, seq) DO NOTHING`

func validEntry(e Entry) error {
	if e.Seq < 1 {
		return fmt.Errorf("entry seq %d must be 1 or more: %w", e.Seq, ErrInvalid)
	}
	if e.Speaker != SpeakerCandidate && e.Speaker != SpeakerInterviewer {
		return fmt.Errorf("entry %d speaker %q: %w", e.Seq, e.Speaker, ErrInvalid)
	}
	if e.StartMS < 0 || e.EndMS < e.StartMS {
		return fmt.Errorf("entry %d times %d..%d: %w", e.Seq, e.StartMS, e.EndMS, ErrInvalid)
	}
	return nil
}

// AppendEntries stores transcript entries of the tenant's interview in one
// transaction. It is idempotent on (interview, seq): entries whose seq is
// stored already (or repeats within es) are skipped, so a retried delivery
// inserts nothing. It returns only the entries it inserted, in the order
// given, with InterviewID and CreatedAt set. The whole batch is refused
// (ErrInvalid) if any entry is malformed.
func (db *DB) AppendEntries(ctx context.Context, tenantID, interviewID string, es []Entry) (inserted []Entry, err error) {
	for _, e := range es {
		if err := validEntry(e); err != nil {
			return nil, err
		}
	}
	now := db.nowUTC()
	created := fmtTime(now)
	inserted = make([]Entry, 0, len(es))
	err = db.inWrite(ctx, func(tx *sql.Tx) error {
		if err := ensureExists(ctx, tx, "interviews", tenantID, interviewID, "interview"); err != nil {
			return err
		}
		if len(es) == 0 {
			return nil
		}
		stmt := tx.StmtContext(ctx, db.insertEntry)
		for _, e := range es {
			res, err := stmt.ExecContext(ctx, interviewID, e.Seq, tenantID, e.Speaker, e.Text,
				e.StartMS, e.EndMS, e.Confidence, created)
			if err != nil {
				return fmt.Errorf("store: append entry %d to interview %s: %w", e.Seq, interviewID, mapErr(err))
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("store: append entry %d: %w", e.Seq, err)
			}
			if n == 1 {
				e.InterviewID = interviewID
				e.CreatedAt = now
				inserted = append(inserted, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return inserted, nil
}

// Entries returns the interview's entries with seq > afterSeq, ordered by
// seq. ErrNotFound if the interview is not the tenant's.
func (db *DB) Entries(ctx context.Context, tenantID, interviewID string, afterSeq int64) ([]Entry, error) {
	var es []Entry
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		if err := ensureExists(ctx, tx, "interviews", tenantID, interviewID, "interview"); err != nil {
			return err
		}
		var err error
		es, err = queryAll(ctx, tx, func(s scanner) (Entry, error) {
			var e Entry
			err := s.Scan(&e.InterviewID, &e.Seq, &e.Speaker, &e.Text, &e.StartMS, &e.EndMS, &e.Confidence, timeCol{&e.CreatedAt})
			return e, err
		}, `SELECT interview_id, seq, speaker, text, start_ms, end_ms, confidence, created_at
			FROM transcript_entries WHERE interview_id = ? AND tenant_id = ? AND seq > ? ORDER BY seq`,
			interviewID, tenantID, afterSeq)
		if err != nil {
			return fmt.Errorf("store: entries of interview %s: %w", interviewID, err)
		}
		return nil
	})
	return es, err
}

// LastSeq returns the highest stored seq of the interview, 0 when it has no
// entries. ErrNotFound if the interview is not the tenant's.
func (db *DB) LastSeq(ctx context.Context, tenantID, interviewID string) (int64, error) {
	var seq int64
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		if err := ensureExists(ctx, tx, "interviews", tenantID, interviewID, "interview"); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM transcript_entries
			WHERE interview_id = ? AND tenant_id = ?`, interviewID, tenantID).Scan(&seq)
		if err != nil {
			return fmt.Errorf("store: last seq of interview %s: %w", interviewID, err)
		}
		return nil
	})
	return seq, err
}

// AppendEvent adds an event to the interview's log. data is stored as JSON:
// a json.RawMessage or []byte as is, nil as {}, anything else marshalled.
func (db *DB) AppendEvent(ctx context.Context, tenantID, interviewID, typ string, data any) (Event, error) {
	if typ == "" {
		return Event{}, fmt.Errorf("event type is empty: %w", ErrInvalid)
	}
	raw, err := eventData(data)
	if err != nil {
		return Event{}, err
	}
	ev := Event{InterviewID: interviewID, Type: typ, At: db.nowUTC(), Data: raw}
	err = db.inWrite(ctx, func(tx *sql.Tx) error {
		if err := ensureExists(ctx, tx, "interviews", tenantID, interviewID, "interview"); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO interview_events (tenant_id, interview_id, type, at, data)
			VALUES (?, ?, ?, ?, ?)`, tenantID, interviewID, typ, fmtTime(ev.At), string(raw))
		if err != nil {
			return fmt.Errorf("store: append event %q: %w", typ, mapErr(err))
		}
		ev.ID, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return Event{}, err
	}
	return ev, nil
}

func eventData(data any) (json.RawMessage, error) {
	var raw []byte
	switch d := data.(type) {
	case nil:
		return json.RawMessage(`{}`), nil
	case json.RawMessage:
		raw = d
	case []byte:
		raw = d
	default:
		b, err := json.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("store: encode event data: %w", err)
		}
		raw = b
	}
	if len(raw) == 0 {
		return json.RawMessage(`{}`), nil
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("event data is not JSON: %w", ErrInvalid)
	}
	return json.RawMessage(raw), nil
}

// Events returns the interview's log, oldest first. ErrNotFound if the
// interview is not the tenant's.
func (db *DB) Events(ctx context.Context, tenantID, interviewID string) ([]Event, error) {
	var evs []Event
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		if err := ensureExists(ctx, tx, "interviews", tenantID, interviewID, "interview"); err != nil {
			return err
		}
		var err error
		evs, err = queryAll(ctx, tx, func(s scanner) (Event, error) {
			var ev Event
			var data string
			err := s.Scan(&ev.ID, &ev.InterviewID, &ev.Type, timeCol{&ev.At}, &data)
			ev.Data = json.RawMessage(data)
			return ev, err
		}, `SELECT id, interview_id, type, at, data FROM interview_events
			WHERE tenant_id = ? AND interview_id = ? ORDER BY id`, tenantID, interviewID)
		if err != nil {
			return fmt.Errorf("store: events of interview %s: %w", interviewID, err)
		}
		return nil
	})
	return evs, err
}
