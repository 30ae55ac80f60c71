package processor

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	_ "modernc.org/sqlite" // driver "sqlite"

	"candor/processor/contract"
)

// spool keeps entries that the bridge has not acknowledged yet. An entry is
// committed (fsync'd, synchronous=FULL) before anyone tries to send it and is
// removed only after the bridge acked it; the bridge is idempotent on seq, so a
// resend after a lost ack never duplicates.
type spool struct {
	db *sql.DB
}

func openSpool(ctx context.Context, path string) (*spool, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	const schema = `CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)`
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create spool schema in %s: %w", path, err)
	}
	return &spool{db: db}, nil
}

func (s *spool) Close() error { return s.db.Close() }

// Append commits e. Appending an existing seq replaces it (same entry).
func (s *spool) Append(ctx context.Context, e contract.Entry) error {
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode entry %d: %w", e.Seq, err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO entries (seq, body) VALUES (?, ?)`, e.Seq, string(body)); err != nil {
		return fmt.Errorf("spool entry %d: %w", e.Seq, err)
	}
	return nil
}

// Pending returns up to limit undelivered entries, oldest first.
func (s *spool) Pending(ctx context.Context, limit int) ([]contract.Entry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT body FROM entries ORDER BY seq LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read spool: %w", err)
	}
	defer rows.Close()
	var out []contract.Entry
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("read spool: %w", err)
		}
		var e contract.Entry
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			return nil, fmt.Errorf("decode spooled entry: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Ack removes delivered entries.
func (s *spool) Ack(ctx context.Context, es []contract.Entry) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ack spool: %w", err)
	}
	defer tx.Rollback()
	for _, e := range es {
		if _, err := tx.ExecContext(ctx, `DELETE FROM entries WHERE seq = ?`, e.Seq); err != nil {
			return fmt.Errorf("ack entry %d: %w", e.Seq, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ack spool: %w", err)
	}
	return nil
}

// Len counts undelivered entries.
func (s *spool) Len(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM entries`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count spool: %w", err)
	}
	return n, nil
}

// MaxSeq is the highest spooled seq, 0 when empty: a restarted processor must
// not reuse a seq it spooled but never delivered.
func (s *spool) MaxSeq(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT max(seq) FROM entries`).Scan(&n); err != nil {
		return 0, fmt.Errorf("read spool max seq: %w", err)
	}
	return n.Int64, nil
}
