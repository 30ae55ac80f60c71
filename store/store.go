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
)

var (
	// ErrNotFound means the row does not exist, or belongs to another tenant.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a uniqueness rule or a state guard refused the write.
	ErrConflict = errors.New("conflict")
)

// Options configure Open.
type Options struct {
	SecretKey []byte // 32-byte AES-256 key for secrets
}

// DB is the Candor database.
type DB struct {
	write *sql.DB
	read  *sql.DB
}

// Open opens (creating if needed) the SQLite database at path and applies
// pending migrations.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	return nil, errNotImplemented
}

// Close closes both pools.
func (db *DB) Close() error {
	return errors.Join(db.write.Close(), db.read.Close())
}

// NewID returns prefix followed by 32 hex characters from crypto/rand.
func NewID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// LoadSecretKey returns the 32-byte key for secrets at rest.
func LoadSecretKey(dataDir, envValue string) ([]byte, error) {
	return nil, errNotImplemented
}
