package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// insertEntrySQL stores an entry under the seq the appender assigns; a
// delivery seen before (same epoch and processor's number) inserts nothing.
const insertEntrySQL = `INSERT INTO transcript_entries
	(interview_id, seq, tenant_id, speaker, text, start_ms, end_ms, confidence, created_at, epoch, local_seq)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (interview_id, epoch, local_seq) DO NOTHING`

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

// MaxSeqJump bounds how far past the interview's last stored seq a
// processor's own number of an entry may reach: a processor numbers on from
// the last stored seq, so a number far beyond it is corrupt.
const MaxSeqJump = 10000

// AppendEntries is Deliver in epoch 0, for entries written other than
// through the bridge (imports, tests): each entry's Seq is its number.
func (db *DB) AppendEntries(ctx context.Context, tenantID, interviewID string, es []Entry) (inserted []Entry, err error) {
	return db.Deliver(ctx, tenantID, interviewID, 0, es)
}

// Deliver stores transcript entries of the tenant's interview that the
// processor of epoch numbered es[i].Seq. The store assigns each new entry
// the interview's next seq as it commits it, so seqs are unique, dense and
// increasing in commit order whichever processor delivered them. It is
// idempotent on (interview, epoch, the processor's number): entries
// delivered before (or repeated within es) are skipped, so a retried
// delivery inserts nothing. It returns only the entries it inserted, in the
// order given, with the assigned Seq, LocalSeq (the processor's number),
// Epoch, InterviewID and CreatedAt set. The whole batch is refused
// (ErrInvalid) if any entry is malformed or numbered more than MaxSeqJump
// past the last stored seq.
//
// Concurrent calls are committed together (group commit): a batch is its own
// savepoint inside a transaction shared with the batches that arrived while
// the previous commit ran, so one bad batch never fails another, and SQLite
// commits once for all of them.
func (db *DB) Deliver(ctx context.Context, tenantID, interviewID string, epoch int64, es []Entry) (inserted []Entry, err error) {
	for _, e := range es {
		if err := validEntry(e); err != nil {
			return nil, err
		}
	}
	req := &appendReq{ctx: ctx, tenantID: tenantID, interviewID: interviewID, epoch: epoch, es: es, done: make(chan struct{})}
	select {
	case db.appends <- req:
	case <-db.closed:
		return nil, fmt.Errorf("store: append entries: %w", errClosed)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Once queued the request is always answered: the appender owns it.
	<-req.done
	return req.inserted, req.err
}

type appendReq struct {
	ctx                   context.Context
	tenantID, interviewID string
	epoch                 int64
	es                    []Entry

	done     chan struct{}
	inserted []Entry
	err      error
}

// maxGroup caps how many batches share one commit, so one commit never
// grows without bound under load.
const maxGroup = 256

// appendLoop is the one goroutine that writes entries; it runs from Open
// until Close.
func (db *DB) appendLoop() {
	defer close(db.appenderDone)
	index := time.NewTicker(searchIndexEvery)
	defer index.Stop()
	group := make([]*appendReq, 0, maxGroup)
	for {
		select {
		case req := <-db.appends:
			group = append(group[:0], req)
		case <-index.C:
			// A failure leaves the queue as it was: the next tick, or the
			// next search, tries again.
			_ = db.indexPendingEntries(context.Background())
			continue
		case <-db.closed:
			return
		}
	gather:
		for len(group) < maxGroup {
			select {
			case req := <-db.appends:
				group = append(group, req)
			default:
				break gather
			}
		}
		db.commitAppends(group)
		for _, req := range group {
			close(req.done)
		}
	}
}

// commitAppends writes every request of group in one transaction, each in
// its own savepoint. If the commit itself fails, every request fails.
func (db *DB) commitAppends(group []*appendReq) {
	now := db.nowUTC()
	err := db.inWrite(context.Background(), func(tx *sql.Tx) error {
		insert, head := tx.Stmt(db.insertEntry), tx.Stmt(db.entryHead)
		savepoint, rollbackTo, release := tx.Stmt(db.savepoint), tx.Stmt(db.rollbackTo), tx.Stmt(db.release)
		for _, req := range group {
			if req.ctx.Err() != nil {
				req.err = req.ctx.Err()
				continue
			}
			if _, err := savepoint.Exec(); err != nil {
				return fmt.Errorf("store: savepoint: %w", err)
			}
			req.inserted, req.err = appendEntriesTx(head, insert, req, now)
			if req.err != nil {
				req.inserted = nil
				if _, err := rollbackTo.Exec(); err != nil {
					return fmt.Errorf("store: rollback to savepoint: %w", err)
				}
			}
			if _, err := release.Exec(); err != nil {
				return fmt.Errorf("store: release savepoint: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		for _, req := range group {
			req.inserted, req.err = nil, err
		}
	}
}

// entryHeadSQL finds the tenant's interview and its last stored seq.
const entryHeadSQL = `SELECT coalesce((SELECT max(seq) FROM transcript_entries WHERE interview_id = i.id), 0)
	FROM interviews i WHERE i.tenant_id = ? AND i.id = ?`

func appendEntriesTx(head, stmt *sql.Stmt, req *appendReq, now time.Time) ([]Entry, error) {
	var last int64
	err := head.QueryRow(req.tenantID, req.interviewID).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("interview %s: %w", req.interviewID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: last seq of interview %s: %w", req.interviewID, err)
	}
	for _, e := range req.es {
		if e.Seq > last+MaxSeqJump {
			return nil, fmt.Errorf("entry seq %d is more than %d past the last stored seq %d: %w", e.Seq, MaxSeqJump, last, ErrInvalid)
		}
	}
	created := fmtTime(now)
	inserted := make([]Entry, 0, len(req.es))
	for _, e := range req.es {
		res, err := stmt.Exec(req.interviewID, last+1, req.tenantID, e.Speaker, e.Text,
			e.StartMS, e.EndMS, e.Confidence, created, req.epoch, e.Seq)
		if err != nil {
			return nil, fmt.Errorf("store: append entry %d to interview %s: %w", e.Seq, req.interviewID, mapErr(err))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("store: append entry %d: %w", e.Seq, err)
		}
		if n == 1 {
			last++
			e.Epoch, e.LocalSeq, e.Seq = req.epoch, e.Seq, last
			e.InterviewID = req.interviewID
			e.CreatedAt = now
			inserted = append(inserted, e)
		}
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
