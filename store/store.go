// Package store holds Candor's only SQL. A DB has one writer connection and a
// separate read-only pool over the same SQLite file; every public method is
// one transaction that hands its tx to unexported helpers.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var (
	// ErrNotFound means the row does not exist, or belongs to another tenant.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a uniqueness rule or a state guard refused the write.
	ErrConflict = errors.New("conflict")
	// ErrInvalid means an argument broke a rule of the domain (an unknown
	// role, an empty slug, a transcript seq below 1...).
	ErrInvalid = errors.New("invalid")
)

// Options configure Open.
type Options struct {
	// SecretKey is the 32-byte AES-256 key for tenant secrets. It may be nil
	// when the caller never touches secrets; the secret methods then fail.
	SecretKey []byte
	// ExternalCheckpoints turns SQLite's automatic WAL checkpoints off on
	// the writer: another component (Litestream, see store/replica) owns
	// checkpointing and must copy WAL pages before they are checkpointed.
	ExternalCheckpoints bool
}

// DB is the Candor database. It is safe for concurrent use.
type DB struct {
	write *sql.DB // exactly one connection: SQLite has one writer anyway
	read  *sql.DB // query_only connections for read transactions

	secretKey []byte
	// externalCheckpoints: Litestream checkpoints the WAL (Options).
	externalCheckpoints bool
	now                 func() time.Time // replaced in tests

	// Statements of the bridge's hot path, prepared once: preparing costs
	// more than running them.
	insertEntry, entryHead, savepoint, rollbackTo, release *sql.Stmt // writer

	// credentials caches ProcessorCredentials (interviews.go).
	credentials credentialCache

	// appends feeds appendLoop, which commits concurrent AppendEntries
	// together; closed stops it and appenderDone tells it has.
	appends      chan *appendReq
	closed       chan struct{}
	closeOnce    sync.Once
	appenderDone chan struct{}
}

var errClosed = errors.New("database closed")

// Pragmas common to every connection. busy_timeout matters even with a
// single writer: another process (candor admin) may hold the write lock.
const basePragmas = "_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"

// Open opens (creating if needed) the SQLite database at path, applies
// pending migrations and returns it ready for use.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if path == "" || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("store: open %q: path must be a non-empty file name without '?'", path)
	}
	if opts.SecretKey != nil && len(opts.SecretKey) != 32 {
		return nil, fmt.Errorf("store: secret key has %d bytes, want 32", len(opts.SecretKey))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create directory for %s: %w", path, err)
	}
	// BEGIN IMMEDIATE takes the write lock up front, so a write transaction
	// never fails half-way with SQLITE_BUSY when it upgrades from reading.
	// secure_delete zeroes what a DELETE frees, so erased words do not
	// linger in free pages (erasure, retention).
	writePragmas := basePragmas + "&_pragma=journal_mode(WAL)&_pragma=secure_delete(on)&_txlock=immediate"
	if opts.ExternalCheckpoints {
		writePragmas += "&_pragma=wal_autocheckpoint(0)"
	}
	write, err := sql.Open("sqlite", path+"?"+writePragmas)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	// The writer connection is opened first so the file exists and is in
	// WAL mode (persistent) before any reader opens it.
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db := &DB{write: write, secretKey: opts.SecretKey, now: time.Now, externalCheckpoints: opts.ExternalCheckpoints}
	if err := db.migrate(ctx); err != nil {
		write.Close()
		return nil, err
	}

	read, err := sql.Open("sqlite", path+"?"+basePragmas+"&_query_only=1")
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("store: open %s for reading: %w", path, err)
	}
	n := max(4, runtime.NumCPU())
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	db.read = read
	if err := read.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s for reading: %w", path, err)
	}

	for _, p := range []struct {
		on   *sql.DB
		dst  **sql.Stmt
		text string
	}{
		{write, &db.insertEntry, insertEntrySQL},
		{write, &db.entryHead, entryHeadSQL},
		{write, &db.savepoint, `SAVEPOINT append_entries`},
		{write, &db.rollbackTo, `ROLLBACK TO append_entries`},
		{write, &db.release, `RELEASE append_entries`},
	} {
		if *p.dst, err = p.on.PrepareContext(ctx, p.text); err != nil {
			db.Close()
			return nil, fmt.Errorf("store: prepare %q: %w", p.text, err)
		}
	}
	db.appends = make(chan *appendReq)
	db.closed = make(chan struct{})
	db.appenderDone = make(chan struct{})
	go db.appendLoop()

	return db, nil
}

// Close closes both pools.
func (db *DB) Close() error {
	if db.appenderDone != nil {
		db.closeOnce.Do(func() { close(db.closed) })
		<-db.appenderDone
	}
	var errs []error
	for _, st := range []*sql.Stmt{db.insertEntry, db.entryHead, db.savepoint, db.rollbackTo, db.release} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if db.read != nil {
		errs = append(errs, db.read.Close())
	}
	errs = append(errs, db.write.Close())
	return errors.Join(errs...)
}

// NewID returns prefix followed by 32 hex characters from crypto/rand.
func NewID(prefix string) string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return prefix + hex.EncodeToString(b[:])
}

// inWrite runs fn in a transaction on the writer connection and commits it
// if fn succeeds.
func (db *DB) inWrite(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", mapErr(err))
	}
	return nil
}

// inRead runs fn in a read transaction on the read pool, so every query of
// fn sees one snapshot.
func (db *DB) inRead(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("store: begin read: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// mapErr turns SQLite constraint errors into the package's sentinel errors,
// keeping the driver's message for the logs.
func mapErr(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%w: %v", ErrConflict, err)
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		// A parent row is missing, which callers see as the parent not
		// being found (it may exist in another tenant).
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case sqlite3.SQLITE_CONSTRAINT_CHECK:
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return err
}

// rowsChanged returns ErrNotFound when res touched no row.
func rowsChanged(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// Times are stored as UTC text with a fixed nine-digit fraction: unlike
// time.RFC3339Nano, which drops trailing zeros, the fixed width makes text
// order equal time order, so SQL can compare and sort the columns.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// scanIDs reads a one-column result of ids and closes rows.
func scanIDs(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func fmtTime(t time.Time) string { return t.UTC().Format(timeFormat) }

// fmtNullTime returns nil for a nil or zero time.
func fmtNullTime(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return fmtTime(*t)
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("store: bad time %q in database: %w", s, err)
	}
	return t.UTC(), nil
}

// timeCol scans a NOT NULL time column.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("store: time column holds %T", v)
	}
	t, err := parseTime(s)
	*c.t = t
	return err
}

// nullTimeCol scans a nullable time column into a *time.Time.
type nullTimeCol struct{ t **time.Time }

func (c nullTimeCol) Scan(v any) error {
	if v == nil {
		*c.t = nil
		return nil
	}
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("store: time column holds %T", v)
	}
	t, err := parseTime(s)
	if err != nil {
		return err
	}
	*c.t = &t
	return nil
}

// nowUTC is the store's clock, truncated to what round-trips through the
// database unchanged.
func (db *DB) nowUTC() time.Time { return db.now().UTC().Round(0) }

// scanner is what *sql.Row and *sql.Rows share.
type scanner interface{ Scan(dest ...any) error }

// queryAll runs query and scans each row with scan.
func queryAll[T any](ctx context.Context, tx *sql.Tx, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// queryOne runs query and scans its single row; no row is ErrNotFound with
// what as context.
func queryOne[T any](ctx context.Context, tx *sql.Tx, scan func(scanner) (T, error), what, query string, args ...any) (T, error) {
	v, err := scan(tx.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return v, err
}
