package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrSecretKey means stored secrets cannot be decrypted with the configured
// key: CANDOR_SECRET_KEY (or secret.key) is not the key they were written with.
var ErrSecretKey = errors.New("secret key does not decrypt stored secrets (is CANDOR_SECRET_KEY the key they were written with?)")

// SecretKeyFile is the key file's name in the data dir (backups carry it).
const SecretKeyFile = "secret.key"

// LoadSecretKey returns the 32-byte key for secrets at rest. A non-empty
// envValue (CANDOR_SECRET_KEY) must be 32 bytes in base64 or hex. Otherwise the
// key lives in <dataDir>/secret.key: created with mode 0600 on first run and
// read on every later one.
func LoadSecretKey(dataDir, envValue string) ([]byte, error) {
	if v := strings.TrimSpace(envValue); v != "" {
		key, err := decodeKey(v)
		if err != nil {
			return nil, fmt.Errorf("CANDOR_SECRET_KEY: %w", err)
		}
		return key, nil
	}
	path := filepath.Join(dataDir, SecretKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := decodeKey(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w (restore the original file, or set CANDOR_SECRET_KEY)", path, err)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read secret key: %w", err)
	}
	return createKeyFile(dataDir, path)
}

// createKeyFile writes a fresh key to a temporary file and links it into
// place, so the key file appears complete or not at all, and a process that
// loses the race to create it uses the winner's key.
func createKeyFile(dataDir, path string) ([]byte, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir for secret key: %w", err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	tmp, err := os.CreateTemp(dataDir, ".secret.key-*")
	if err != nil {
		return nil, fmt.Errorf("create secret key: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600 already; Chmod states it.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create secret key: %w", err)
	}
	if _, err := tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write secret key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write secret key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write secret key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return LoadSecretKey(dataDir, "")
		}
		return nil, fmt.Errorf("install secret key: %w", err)
	}
	return key, nil
}

// decodeKey accepts 32 bytes as hex or as base64 (standard or URL alphabet,
// padded or not).
func decodeKey(s string) ([]byte, error) {
	if len(s) == 64 {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("key decodes to %d bytes, want 32 (make one with: openssl rand -base64 32)", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("key is neither 64 hex characters nor base64 of 32 bytes (make one with: openssl rand -base64 32)")
}

func (db *DB) gcm() (cipher.AEAD, error) {
	if len(db.secretKey) != 32 {
		return nil, errors.New("store: no secret key configured (Options.SecretKey)")
	}
	block, err := aes.NewCipher(db.secretKey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// secretAD binds a ciphertext to its row, so a value copied to another tenant
// or name does not decrypt.
func secretAD(tenantID, name string) []byte { return []byte(tenantID + "\x00" + name) }

// SetSecret stores value under name for the tenant, encrypted with a fresh
// nonce; an existing value is replaced.
func (db *DB) SetSecret(ctx context.Context, tenantID, name, value string) error {
	if name == "" {
		return fmt.Errorf("secret name is empty: %w", ErrInvalid)
	}
	aead, err := db.gcm()
	if err != nil {
		return err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	ct := aead.Seal(nil, nonce, []byte(value), secretAD(tenantID, name))
	now := fmtTime(db.nowUTC())
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO secrets (tenant_id, name, nonce, ciphertext, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant_id, name) DO UPDATE SET nonce = excluded.nonce,
				ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`,
			tenantID, name, nonce, ct, now, now)
		if err != nil {
			return fmt.Errorf("store: set secret %q: %w", name, mapErr(err))
		}
		return nil
	})
}

// Secret returns the decrypted value of the tenant's secret name.
func (db *DB) Secret(ctx context.Context, tenantID, name string) (string, error) {
	aead, err := db.gcm()
	if err != nil {
		return "", err
	}
	var value string
	err = db.inRead(ctx, func(tx *sql.Tx) error {
		var nonce, ct []byte
		err := tx.QueryRowContext(ctx, `SELECT nonce, ciphertext FROM secrets WHERE tenant_id = ? AND name = ?`,
			tenantID, name).Scan(&nonce, &ct)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("secret %q: %w", name, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: secret %q: %w", name, err)
		}
		value, err = openSecret(aead, tenantID, name, nonce, ct)
		return err
	})
	return value, err
}

// Secrets returns every secret of the tenant, decrypted, by name.
func (db *DB) Secrets(ctx context.Context, tenantID string) (map[string]string, error) {
	aead, err := db.gcm()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	err = db.inRead(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT name, nonce, ciphertext FROM secrets WHERE tenant_id = ? ORDER BY name`, tenantID)
		if err != nil {
			return fmt.Errorf("store: secrets: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var nonce, ct []byte
			if err := rows.Scan(&name, &nonce, &ct); err != nil {
				return fmt.Errorf("store: secrets: %w", err)
			}
			if out[name], err = openSecret(aead, tenantID, name, nonce, ct); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func openSecret(aead cipher.AEAD, tenantID, name string, nonce, ct []byte) (string, error) {
	pt, err := aead.Open(nil, nonce, ct, secretAD(tenantID, name))
	if err != nil {
		return "", fmt.Errorf("store: secret %q: %w", name, ErrSecretKey)
	}
	return string(pt), nil
}

// ListSecrets names the tenant's secrets without decrypting them.
func (db *DB) ListSecrets(ctx context.Context, tenantID string) ([]SecretInfo, error) {
	var out []SecretInfo
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = queryAll(ctx, tx, func(s scanner) (SecretInfo, error) {
			var si SecretInfo
			return si, s.Scan(&si.Name, timeCol{&si.UpdatedAt})
		}, `SELECT name, updated_at FROM secrets WHERE tenant_id = ? ORDER BY name`, tenantID)
		if err != nil {
			return fmt.Errorf("store: list secrets: %w", err)
		}
		return nil
	})
	return out, err
}

// DeleteSecret removes the tenant's secret name; ErrNotFound if absent.
func (db *DB) DeleteSecret(ctx context.Context, tenantID, name string) error {
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM secrets WHERE tenant_id = ? AND name = ?`, tenantID, name)
		if err != nil {
			return fmt.Errorf("store: delete secret %q: %w", name, err)
		}
		return rowsChanged(res, fmt.Sprintf("secret %q", name))
	})
}
