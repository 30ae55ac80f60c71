// Package account holds what accounts are made of, knowing no HTTP:
// password hashes, API keys, token hashes and the bootstrap of a first
// tenant (used by `candor admin bootstrap` and by web).
package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"

	"candor/store"
)

// argon2id parameters (OWASP's minimum: 19 MiB, 2 passes, 1 lane).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns p's argon2id hash as a PHC string:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty password")
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	sum := argon2.IDKey([]byte(p), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(sum)), nil
}

// VerifyPassword reports whether p matches a hash made by HashPassword
// (any parameters within sane bounds).
func VerifyPassword(hash, p string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var m, t uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &threads); err != nil {
		return false
	}
	if m == 0 || m > 1<<20 || t == 0 || t > 16 || threads == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(p), salt, t, m, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// APIKeyPrefix starts every API key.
const APIKeyPrefix = "cnd_"

// NewAPIKey creates an API key for tenantID and returns it in plain text
// (shown once), with its stored description.
func NewAPIKey(ctx context.Context, db *store.DB, tenantID, name string) (string, store.APIKey, error) {
	plaintext := APIKeyPrefix + RandomToken()
	prefix := plaintext[:len(APIKeyPrefix)+8]
	k, err := db.CreateAPIKey(ctx, tenantID, name, prefix, TokenHash(plaintext))
	if err != nil {
		return "", store.APIKey{}, fmt.Errorf("create API key: %w", err)
	}
	return plaintext, k, nil
}

// TokenHash is how secrets presented by clients (session cookies, API keys,
// invite and processor tokens) are stored: hex SHA-256. They are 256-bit
// random or HMAC outputs, so no slow hash is needed.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// RandomToken returns 256 random bits, base64url.
func RandomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// BootstrapResult is what `candor admin bootstrap` prints.
type BootstrapResult struct {
	TenantID   string `json:"tenant_id"`
	TenantSlug string `json:"tenant_slug"`
	UserID     string `json:"user_id"`
	APIKey     string `json:"api_key"`
}

// Bootstrap creates a tenant, its owner and an API key. A tenant or email
// that exists already gives an error wrapping store.ErrConflict.
func Bootstrap(ctx context.Context, db *store.DB, tenantName, email, password string) (BootstrapResult, error) {
	tenantName = strings.TrimSpace(tenantName)
	email = strings.ToLower(strings.TrimSpace(email))
	switch {
	case tenantName == "":
		return BootstrapResult{}, errors.New("bootstrap: the tenant name is empty (pass --tenant NAME)")
	case !store.ValidEmail(email):
		return BootstrapResult{}, fmt.Errorf("bootstrap: %q is not an email address (pass --email)", email)
	case len(password) < MinPasswordLen:
		return BootstrapResult{}, fmt.Errorf("bootstrap: the password needs at least %d characters (pass --password)", MinPasswordLen)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return BootstrapResult{}, fmt.Errorf("bootstrap: %w", err)
	}
	name, _, _ := strings.Cut(email, "@")
	t, u, err := db.CreateTenantWithOwner(ctx, tenantName, email, name, hash)
	if errors.Is(err, store.ErrConflict) {
		return BootstrapResult{}, fmt.Errorf("bootstrap: a tenant named %q or a user %s exists already: %w", tenantName, email, err)
	}
	if err != nil {
		return BootstrapResult{}, fmt.Errorf("bootstrap: %w", err)
	}
	key, _, err := NewAPIKey(ctx, db, t.ID, "bootstrap")
	if err != nil {
		return BootstrapResult{}, fmt.Errorf("bootstrap: %w", err)
	}
	return BootstrapResult{TenantID: t.ID, TenantSlug: t.Slug, UserID: u.ID, APIKey: key}, nil
}

// MinPasswordLen is the shortest password accepted for a new account.
const MinPasswordLen = 8
