package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// searchIndexEvery is how often the writer indexes queued transcript
// entries (migrations/0066_search_batched.sql); a search indexes what is
// queued before it reads, so results never lag behind the transcript.
const searchIndexEvery = 500 * time.Millisecond

// indexPendingEntries moves every queued transcript entry into the
// full-text index in one write transaction. Entries deleted since they
// were queued (erasure, retention) are skipped.
func (db *DB) indexPendingEntries(ctx context.Context) error {
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		var upTo, docsBefore sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT max(id) FROM search_pending`).Scan(&upTo); err != nil {
			return fmt.Errorf("store: search queue: %w", err)
		}
		if !upTo.Valid {
			return nil
		}
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM search_docs`).Scan(&docsBefore); err != nil {
			return fmt.Errorf("store: search docs: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO search_docs (tenant_id, kind, ref_id, seq)
			SELECT e.tenant_id, 'entry', e.interview_id, e.seq
			FROM search_pending p JOIN transcript_entries e ON e.interview_id = p.interview_id AND e.seq = p.seq
			WHERE p.id <= ? ORDER BY p.id
			ON CONFLICT DO NOTHING`, upTo.Int64); err != nil {
			return fmt.Errorf("store: index entries: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO search_fts (rowid, body)
			SELECT d.id, e.text FROM search_docs d
			JOIN transcript_entries e ON e.interview_id = d.ref_id AND e.seq = d.seq
			WHERE d.id > ? AND d.kind = 'entry'`, docsBefore.Int64); err != nil {
			return fmt.Errorf("store: index entry text: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM search_pending WHERE id <= ?`, upTo.Int64); err != nil {
			return fmt.Errorf("store: drain search queue: %w", err)
		}
		return nil
	})
}
