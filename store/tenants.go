package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

const maxSlugLen = 40

// Slug derives a tenant's slug from its name: lowercase ASCII letters and
// digits, every other run of characters becomes one '-', no leading or
// trailing '-', at most 40 characters. It is an error (ErrInvalid) when
// nothing is left.
func Slug(name string) (string, error) {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	s := b.String()
	if len(s) > maxSlugLen {
		s = strings.TrimRight(s[:maxSlugLen], "-")
	}
	if s == "" {
		return "", fmt.Errorf("tenant name %q has no letters or digits for a slug: %w", name, ErrInvalid)
	}
	return s, nil
}

// CreateTenantWithOwner creates a tenant, a person with this email and
// password, and the person's owner membership, in one transaction.
// ErrConflict if the name, its slug or the email is taken (a person who
// exists joins another organization by invitation, not by setup).
func (db *DB) CreateTenantWithOwner(ctx context.Context, tenantName, email, name, passwordHash string) (Tenant, User, error) {
	tenantName = strings.TrimSpace(tenantName)
	slug, err := Slug(tenantName)
	if err != nil {
		return Tenant{}, User{}, err
	}
	now := db.nowUTC()
	t := Tenant{ID: NewID("ten_"), Name: tenantName, Slug: slug, CreatedAt: now}
	p := Person{ID: NewID("per_"), Email: strings.TrimSpace(email), PasswordHash: passwordHash, CreatedAt: now}
	u := User{ID: NewID("usr_"), TenantID: t.ID, PersonID: p.ID, Email: p.Email, Name: name,
		Role: RoleOwner, PasswordHash: passwordHash, CreatedAt: now, JoinedAt: &now}
	err = db.inWrite(ctx, func(tx *sql.Tx) error {
		if err := insertTenant(ctx, tx, t); err != nil {
			return err
		}
		if err := insertPerson(ctx, tx, p); err != nil {
			return err
		}
		return insertUser(ctx, tx, u)
	})
	if err != nil {
		return Tenant{}, User{}, err
	}
	return t, u, nil
}

func insertTenant(ctx context.Context, tx *sql.Tx, t Tenant) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, name, slug, created_at) VALUES (?, ?, ?, ?)`,
		t.ID, t.Name, t.Slug, fmtTime(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("store: create tenant %q: %w", t.Name, mapErr(err))
	}
	return nil
}

const tenantCols = `id, name, slug, created_at`

func scanTenant(s scanner) (Tenant, error) {
	var t Tenant
	err := s.Scan(&t.ID, &t.Name, &t.Slug, timeCol{&t.CreatedAt})
	return t, err
}

// Tenant returns the tenant with id; ErrNotFound if there is none.
func (db *DB) Tenant(ctx context.Context, id string) (Tenant, error) {
	var t Tenant
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		t, err = queryOne(ctx, tx, scanTenant, "tenant "+id, `SELECT `+tenantCols+` FROM tenants WHERE id = ?`, id)
		return err
	})
	return t, err
}

// TenantBySlug returns the tenant with slug; ErrNotFound if there is none.
func (db *DB) TenantBySlug(ctx context.Context, slug string) (Tenant, error) {
	var t Tenant
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		t, err = queryOne(ctx, tx, scanTenant, "tenant "+slug, `SELECT `+tenantCols+` FROM tenants WHERE slug = ?`, slug)
		return err
	})
	return t, err
}

// ListTenants returns every tenant, oldest first.
func (db *DB) ListTenants(ctx context.Context) ([]Tenant, error) {
	var ts []Tenant
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		ts, err = queryAll(ctx, tx, scanTenant, `SELECT `+tenantCols+` FROM tenants ORDER BY created_at, id`)
		return err
	})
	return ts, err
}

// CountUsers counts users across all tenants (zero means a fresh install).
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n)
	})
	return n, err
}

// CreateUser adds a new person with this email and password as a member of
// a tenant. ErrConflict if a person with the email exists already (add them
// with AddMember); an unknown tenant is ErrNotFound.
func (db *DB) CreateUser(ctx context.Context, tenantID, email, name string, role Role, passwordHash string) (User, error) {
	if !role.Valid() {
		return User{}, fmt.Errorf("role %q: %w", role, ErrInvalid)
	}
	now := db.nowUTC()
	p := Person{ID: NewID("per_"), Email: strings.TrimSpace(email), PasswordHash: passwordHash, CreatedAt: now}
	u := User{ID: NewID("usr_"), TenantID: tenantID, PersonID: p.ID, Email: p.Email, Name: name,
		Role: role, PasswordHash: passwordHash, CreatedAt: now, JoinedAt: &now}
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		if err := insertPerson(ctx, tx, p); err != nil {
			return err
		}
		return insertUser(ctx, tx, u)
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// AddMember makes the person with this email a member of the tenant,
// creating the person (without a password) when there is none. ErrConflict
// if they are a member already. The answer's PasswordHash is "" when the
// person has yet to set a password.
func (db *DB) AddMember(ctx context.Context, tenantID, email, name string, role Role) (User, error) {
	if !role.Valid() {
		return User{}, fmt.Errorf("role %q: %w", role, ErrInvalid)
	}
	email = strings.TrimSpace(email)
	var out User
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		now := db.nowUTC()
		p, err := findPersonByEmail(ctx, tx, email)
		if errors.Is(err, ErrNotFound) {
			p = Person{ID: NewID("per_"), Email: email, CreatedAt: now}
			err = insertPerson(ctx, tx, p)
		}
		if err != nil {
			return err
		}
		u := User{ID: NewID("usr_"), TenantID: tenantID, PersonID: p.ID, Email: p.Email, Name: name,
			Role: role, PasswordHash: p.PasswordHash, CreatedAt: now}
		if err := insertUser(ctx, tx, u); err != nil {
			return err
		}
		out = u
		return nil
	})
	return out, err
}

func insertUser(ctx context.Context, tx *sql.Tx, u User) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO users (id, tenant_id, person_id, name, role, created_at, joined_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.TenantID, u.PersonID, u.Name, string(u.Role), fmtTime(u.CreatedAt), fmtNullTime(u.JoinedAt))
	if err != nil {
		return fmt.Errorf("store: create user %q: %w", u.Email, mapErr(err))
	}
	return nil
}

// userCols select a membership with its person's login: FROM usersFrom.
const (
	userCols  = `u.id, u.tenant_id, u.person_id, p.email, u.name, u.role, p.password_hash, u.created_at, u.joined_at`
	usersFrom = `users u JOIN people p ON p.id = u.person_id`
)

func scanUser(s scanner) (User, error) {
	var u User
	err := s.Scan(&u.ID, &u.TenantID, &u.PersonID, &u.Email, &u.Name, &u.Role, &u.PasswordHash, timeCol{&u.CreatedAt}, nullTimeCol{&u.JoinedAt})
	return u, err
}

// UserByEmail finds the tenant's member with this email; case-insensitive.
func (db *DB) UserByEmail(ctx context.Context, tenantID, email string) (User, error) {
	var u User
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		u, err = queryOne(ctx, tx, scanUser, "user "+email,
			`SELECT `+userCols+` FROM `+usersFrom+` WHERE u.tenant_id = ? AND p.email = ?`, tenantID, strings.TrimSpace(email))
		return err
	})
	return u, err
}

// User returns the tenant's user id; ErrNotFound if it is not the tenant's.
func (db *DB) User(ctx context.Context, tenantID, id string) (User, error) {
	var u User
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		u, err = findUser(ctx, tx, tenantID, id)
		return err
	})
	return u, err
}

func findUser(ctx context.Context, tx *sql.Tx, tenantID, id string) (User, error) {
	return queryOne(ctx, tx, scanUser, "user "+id, `SELECT `+userCols+` FROM `+usersFrom+` WHERE u.tenant_id = ? AND u.id = ?`, tenantID, id)
}

// ListUsers returns the tenant's users, oldest first.
func (db *DB) ListUsers(ctx context.Context, tenantID string) ([]User, error) {
	var us []User
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		us, err = queryAll(ctx, tx, scanUser, `SELECT `+userCols+` FROM `+usersFrom+` WHERE u.tenant_id = ? ORDER BY u.created_at, u.id`, tenantID)
		return err
	})
	return us, err
}

// UpdateUserRole changes a user's role. Demoting the tenant's last owner is
// ErrConflict: a tenant always keeps someone who can administer it.
func (db *DB) UpdateUserRole(ctx context.Context, tenantID, id string, role Role) error {
	if !role.Valid() {
		return fmt.Errorf("role %q: %w", role, ErrInvalid)
	}
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		u, err := findUser(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		if u.Role == RoleOwner && role != RoleOwner {
			if err := ensureAnotherOwner(ctx, tx, tenantID, id); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET role = ? WHERE tenant_id = ? AND id = ?`, string(role), tenantID, id)
		if err != nil {
			return fmt.Errorf("store: update role of user %s: %w", id, err)
		}
		return nil
	})
}

// DeleteUser removes a user and their sessions. Deleting the tenant's last
// owner is ErrConflict.
func (db *DB) DeleteUser(ctx context.Context, tenantID, id string) error {
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		u, err := findUser(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		if u.Role == RoleOwner {
			if err := ensureAnotherOwner(ctx, tx, tenantID, id); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM users WHERE tenant_id = ? AND id = ?`, tenantID, id); err != nil {
			return fmt.Errorf("store: delete user %s: %w", id, err)
		}
		return nil
	})
}

func ensureAnotherOwner(ctx context.Context, tx *sql.Tx, tenantID, userID string) error {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE tenant_id = ? AND role = 'owner' AND id <> ?`,
		tenantID, userID).Scan(&n)
	if err != nil {
		return fmt.Errorf("store: count owners: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("user %s is the tenant's last owner: %w", userID, ErrConflict)
	}
	return nil
}

// CreateSession stores a login session. CreatedAt defaults to now. The user
// must belong to s.TenantID (ErrNotFound otherwise).
func (db *DB) CreateSession(ctx context.Context, s Session) error {
	if s.CreatedAt.IsZero() {
		s.CreatedAt = db.nowUTC()
	}
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id_hash, tenant_id, user_id, csrf_token, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`,
			s.IDHash, s.TenantID, s.UserID, s.CSRFToken, fmtTime(s.CreatedAt), fmtTime(s.ExpiresAt))
		if err != nil {
			return fmt.Errorf("store: create session: %w", mapErr(err))
		}
		return nil
	})
}

// SessionByHash returns the session whose id hashes to hash; an expired
// session is ErrNotFound.
func (db *DB) SessionByHash(ctx context.Context, hash string) (Session, error) {
	var s Session
	now := fmtTime(db.nowUTC())
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		s, err = queryOne(ctx, tx, func(sc scanner) (Session, error) {
			var s Session
			err := sc.Scan(&s.IDHash, &s.UserID, &s.TenantID, &s.CSRFToken, timeCol{&s.CreatedAt}, timeCol{&s.ExpiresAt})
			return s, err
		}, "session", `SELECT id_hash, user_id, tenant_id, csrf_token, created_at, expires_at
			FROM sessions WHERE id_hash = ? AND expires_at > ?`, hash, now)
		return err
	})
	return s, err
}

// DeleteSession removes a session. Deleting a missing one is not an error,
// so logging out twice is harmless.
func (db *DB) DeleteSession(ctx context.Context, hash string) error {
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, hash); err != nil {
			return fmt.Errorf("store: delete session: %w", err)
		}
		return nil
	})
}

// DeleteExpiredSessions removes sessions that expired before now and returns
// how many it removed.
func (db *DB) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	var n int64
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, fmtTime(db.nowUTC()))
		if err != nil {
			return fmt.Errorf("store: delete expired sessions: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// CreateAPIKey stores a key by its hash; prefix is the part shown to users.
func (db *DB) CreateAPIKey(ctx context.Context, tenantID, name, prefix, keyHash string) (APIKey, error) {
	k := APIKey{ID: NewID("key_"), TenantID: tenantID, Name: name, Prefix: prefix, CreatedAt: db.nowUTC()}
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`, k.ID, k.TenantID, k.Name, k.Prefix, keyHash, fmtTime(k.CreatedAt))
		if err != nil {
			return fmt.Errorf("store: create api key: %w", mapErr(err))
		}
		return nil
	})
	if err != nil {
		return APIKey{}, err
	}
	return k, nil
}

const apiKeyCols = `id, tenant_id, name, prefix, created_at, last_used_at, revoked_at`

func scanAPIKey(s scanner) (APIKey, error) {
	var k APIKey
	err := s.Scan(&k.ID, &k.TenantID, &k.Name, &k.Prefix, timeCol{&k.CreatedAt}, nullTimeCol{&k.LastUsedAt}, nullTimeCol{&k.RevokedAt})
	return k, err
}

// apiKeyTouchEvery bounds how often authenticating with a key writes its
// last_used_at: API traffic should not queue on the single writer.
const apiKeyTouchEvery = time.Minute

// APIKeyByHash returns the unrevoked key with this hash and records its use
// (at most once a minute). Revoked or unknown keys are ErrNotFound.
//
// The lookup is a read transaction; the rare touch is a second, write
// transaction, so authenticating a request rarely waits for the writer.
func (db *DB) APIKeyByHash(ctx context.Context, keyHash string) (APIKey, error) {
	var k APIKey
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		k, err = queryOne(ctx, tx, scanAPIKey, "api key",
			`SELECT `+apiKeyCols+` FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL`, keyHash)
		return err
	})
	if err != nil {
		return APIKey{}, err
	}
	now := db.nowUTC()
	if k.LastUsedAt != nil && now.Sub(*k.LastUsedAt) < apiKeyTouchEvery {
		return k, nil
	}
	err = db.inWrite(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE api_keys SET last_used_at = ?
			WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
			fmtTime(now), k.ID, fmtTime(now.Add(-apiKeyTouchEvery)))
		return err
	})
	if err != nil {
		return APIKey{}, fmt.Errorf("store: touch api key %s: %w", k.ID, err)
	}
	k.LastUsedAt = &now
	return k, nil
}

// ListAPIKeys returns the tenant's keys, revoked ones included, newest first.
func (db *DB) ListAPIKeys(ctx context.Context, tenantID string) ([]APIKey, error) {
	var ks []APIKey
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		ks, err = queryAll(ctx, tx, scanAPIKey,
			`SELECT `+apiKeyCols+` FROM api_keys WHERE tenant_id = ? ORDER BY created_at DESC, id`, tenantID)
		return err
	})
	return ks, err
}

// RevokeAPIKey revokes a key; revoking it again is a no-op.
func (db *DB) RevokeAPIKey(ctx context.Context, tenantID, id string) error {
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE tenant_id = ? AND id = ?`,
			fmtTime(db.nowUTC()), tenantID, id)
		if err != nil {
			return fmt.Errorf("store: revoke api key %s: %w", id, err)
		}
		return rowsChanged(res, "api key "+id)
	})
}
