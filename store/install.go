package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
)

// InstallID returns this installation's id, creating it on first use: 8
// random lowercase letters and digits, stable for the database's life (a
// backup restored elsewhere keeps it, so the restored install adopts its
// machines).
func (db *DB) InstallID(ctx context.Context) (string, error) {
	var id string
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT id FROM install WHERE singleton = 1`).Scan(&id)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		id = newInstallID()
		_, err = tx.ExecContext(ctx, `INSERT INTO install (singleton, id, created_at) VALUES (1, ?, ?)`, id, fmtTime(db.nowUTC()))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("store: install id: %w", err)
	}
	return id, nil
}

func newInstallID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
