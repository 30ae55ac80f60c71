package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// Snapshot writes a consistent copy of the database at srcPath to dstPath
// while other connections (a serving control plane) keep writing: VACUUM
// INTO reads everything inside one read transaction, which WAL mode lets
// run beside the writer without blocking it. The copy is compact and
// self-contained (no -wal file). dstPath must not exist.
func Snapshot(ctx context.Context, srcPath, dstPath string) error {
	if _, err := os.Stat(srcPath); err != nil {
		return fmt.Errorf("store: snapshot: %w", err)
	}
	db, err := openPlain(srcPath)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dstPath); err != nil {
		return fmt.Errorf("store: snapshot %s into %s: %w", srcPath, dstPath, err)
	}
	return nil
}

// Fingerprint sums up a database's content so two copies can be compared:
// the row count of every table and a SHA-256 over every transcript entry in
// (interview, seq) order.
type Fingerprint struct {
	Rows        map[string]int64 `json:"rows"`
	Transcripts string           `json:"transcripts_sha256"`
}

// Entries is the number of transcript entries.
func (f Fingerprint) Entries() int64 { return f.Rows["transcript_entries"] }

// FingerprintOf reads the fingerprint of the database at path without
// changing it (no migration runs).
func FingerprintOf(ctx context.Context, path string) (Fingerprint, error) {
	if _, err := os.Stat(path); err != nil {
		return Fingerprint{}, fmt.Errorf("store: fingerprint: %w", err)
	}
	db, err := openPlain(path + "?mode=ro")
	if err != nil {
		return Fingerprint{}, err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Fingerprint{}, fmt.Errorf("store: fingerprint: %w", err)
	}
	defer tx.Rollback()
	fp := Fingerprint{Rows: map[string]int64{}}
	tables, err := queryAll(ctx, tx, func(s scanner) (string, error) {
		var name string
		return name, s.Scan(&name)
	}, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return Fingerprint{}, fmt.Errorf("store: fingerprint: list tables: %w", err)
	}
	for _, t := range tables {
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM "`+strings.ReplaceAll(t, `"`, `""`)+`"`).Scan(&n); err != nil {
			return Fingerprint{}, fmt.Errorf("store: fingerprint: count %s: %w", t, err)
		}
		fp.Rows[t] = n
	}
	h := sha256.New()
	if _, ok := fp.Rows["transcript_entries"]; ok {
		rows, err := tx.QueryContext(ctx, `SELECT interview_id, seq, speaker, text, start_ms, end_ms FROM transcript_entries ORDER BY interview_id, seq`)
		if err != nil {
			return Fingerprint{}, fmt.Errorf("store: fingerprint: transcripts: %w", err)
		}
		defer rows.Close()
		var num [8]byte
		for rows.Next() {
			var iv, speaker, text string
			var seq, start, end int64
			if err := rows.Scan(&iv, &seq, &speaker, &text, &start, &end); err != nil {
				return Fingerprint{}, fmt.Errorf("store: fingerprint: transcripts: %w", err)
			}
			for _, s := range []string{iv, speaker, text} {
				binary.BigEndian.PutUint64(num[:], uint64(len(s)))
				h.Write(num[:])
				h.Write([]byte(s))
			}
			for _, n := range []int64{seq, start, end} {
				binary.BigEndian.PutUint64(num[:], uint64(n))
				h.Write(num[:])
			}
		}
		if err := rows.Err(); err != nil {
			return Fingerprint{}, fmt.Errorf("store: fingerprint: transcripts: %w", err)
		}
	}
	fp.Transcripts = hex.EncodeToString(h.Sum(nil))
	return fp, nil
}

// CheckIntegrity runs SQLite's quick_check on the database at path and
// fails unless it answers ok.
func CheckIntegrity(ctx context.Context, path string) error {
	db, err := openPlain(path + "?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&res); err != nil {
		return fmt.Errorf("store: check %s: %w", path, err)
	}
	if res != "ok" {
		return fmt.Errorf("store: %s is damaged: %s", path, res)
	}
	return nil
}

// openPlain opens one connection to a database file for the operator tools
// above, without migrating it. path may carry URI parameters (?mode=ro).
func openPlain(path string) (*sql.DB, error) {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	db, err := sql.Open("sqlite", "file:"+path+sep+"_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}
