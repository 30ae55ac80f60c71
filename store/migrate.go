package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"

	"candor/migrations"
)

var migrationName = regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.sql$`)

// migrate applies, in order, every migration not yet recorded in
// schema_migrations, each in its own transaction together with its record.
// Running it again applies nothing.
func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TEXT NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		return fmt.Errorf("store: list migrations: %w", err)
	}
	slices.Sort(names)
	seen := map[int]string{}
	for _, name := range names {
		m := migrationName.FindStringSubmatch(name)
		if m == nil {
			return fmt.Errorf("store: migration %q: name must look like 0001_what.sql", name)
		}
		version, _ := strconv.Atoi(m[1])
		if prev, ok := seen[version]; ok {
			return fmt.Errorf("store: migrations %q and %q share version %d", prev, name, version)
		}
		seen[version] = name
		body, err := fs.ReadFile(migrations.FS, name)
		if err != nil {
			return fmt.Errorf("store: read migration %s: %w", name, err)
		}
		if err := db.inWrite(ctx, func(tx *sql.Tx) error {
			return db.applyMigration(ctx, tx, version, name, string(body))
		}); err != nil {
			return err
		}
	}
	return nil
}

// applyMigration runs one migration unless it is recorded already. The check
// is inside the (immediate) transaction, so two processes opening the same
// file at once cannot both apply it.
func (db *DB) applyMigration(ctx context.Context, tx *sql.Tx, version int, name, body string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return fmt.Errorf("store: migration %s: %w", name, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return fmt.Errorf("store: apply migration %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		version, name, fmtTime(db.nowUTC())); err != nil {
		return fmt.Errorf("store: record migration %s: %w", name, err)
	}
	return nil
}
