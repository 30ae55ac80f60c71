package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

func insertPerson(ctx context.Context, tx *sql.Tx, p Person) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO people (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)`,
		p.ID, p.Email, p.PasswordHash, fmtTime(p.CreatedAt))
	if err != nil {
		return fmt.Errorf("store: create person %q: %w", p.Email, mapErr(err))
	}
	return nil
}

const personCols = `id, email, password_hash, created_at`

func scanPerson(s scanner) (Person, error) {
	var p Person
	err := s.Scan(&p.ID, &p.Email, &p.PasswordHash, timeCol{&p.CreatedAt})
	return p, err
}

func findPersonByEmail(ctx context.Context, tx *sql.Tx, email string) (Person, error) {
	return queryOne(ctx, tx, scanPerson, "person", `SELECT `+personCols+` FROM people WHERE email = ?`, strings.TrimSpace(email))
}

// PersonByEmail finds the person who signs in with email (case-insensitive);
// ErrNotFound if there is none.
func (db *DB) PersonByEmail(ctx context.Context, email string) (Person, error) {
	var p Person
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		p, err = findPersonByEmail(ctx, tx, email)
		return err
	})
	return p, err
}

// Person returns the person id; ErrNotFound if there is none.
func (db *DB) Person(ctx context.Context, id string) (Person, error) {
	var p Person
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		p, err = queryOne(ctx, tx, scanPerson, "person", `SELECT `+personCols+` FROM people WHERE id = ?`, id)
		return err
	})
	return p, err
}

// Memberships lists the organizations a person belongs to, by organization
// name.
func (db *DB) Memberships(ctx context.Context, personID string) ([]Membership, error) {
	var ms []Membership
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		ms, err = queryAll(ctx, tx, func(s scanner) (Membership, error) {
			var m Membership
			err := s.Scan(&m.User.ID, &m.User.TenantID, &m.User.PersonID, &m.User.Email, &m.User.Name, &m.User.Role,
				&m.User.PasswordHash, timeCol{&m.User.CreatedAt}, nullTimeCol{&m.User.JoinedAt}, &m.Tenant.ID, &m.Tenant.Name, &m.Tenant.Slug, timeCol{&m.Tenant.CreatedAt})
			return m, err
		}, `SELECT `+userCols+`, t.id, t.name, t.slug, t.created_at FROM `+usersFrom+` JOIN tenants t ON t.id = u.tenant_id
			WHERE u.person_id = ? ORDER BY t.name, t.id`, personID)
		return err
	})
	return ms, err
}

// SetPassword sets a person's password and ends their sessions in every
// organization except the one whose hash is keepSession ("" ends all): a
// changed password locks out whoever else was signed in.
func (db *DB) SetPassword(ctx context.Context, personID, passwordHash, keepSession string) error {
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		return setPassword(ctx, tx, personID, passwordHash, keepSession)
	})
}

func setPassword(ctx context.Context, tx *sql.Tx, personID, passwordHash, keepSession string) error {
	res, err := tx.ExecContext(ctx, `UPDATE people SET password_hash = ? WHERE id = ?`, passwordHash, personID)
	if err != nil {
		return fmt.Errorf("store: set password: %w", err)
	}
	if err := rowsChanged(res, "person "+personID); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash <> ? AND user_id IN (SELECT id FROM users WHERE person_id = ?)`,
		keepSession, personID)
	if err != nil {
		return fmt.Errorf("store: end sessions of person %s: %w", personID, err)
	}
	return nil
}

// CreatePersonToken stores a set-password link by its hash. CreatedAt
// defaults to now.
func (db *DB) CreatePersonToken(ctx context.Context, t PersonToken) error {
	if t.Purpose != TokenInvite && t.Purpose != TokenReset {
		return fmt.Errorf("token purpose %q: %w", t.Purpose, ErrInvalid)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = db.nowUTC()
	}
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO person_tokens (token_hash, person_id, purpose, tenant_id, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`, t.Hash, t.PersonID, t.Purpose, t.TenantID, fmtTime(t.CreatedAt), fmtTime(t.ExpiresAt))
		if err != nil {
			return fmt.Errorf("store: create %s token: %w", t.Purpose, mapErr(err))
		}
		return nil
	})
}

const personTokenCols = `token_hash, person_id, purpose, tenant_id, created_at, expires_at, used_at`

func scanPersonToken(s scanner) (PersonToken, error) {
	var t PersonToken
	err := s.Scan(&t.Hash, &t.PersonID, &t.Purpose, &t.TenantID, timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt}, nullTimeCol{&t.UsedAt})
	return t, err
}

func findUsableToken(ctx context.Context, tx *sql.Tx, hash, purpose string, now time.Time) (PersonToken, error) {
	return queryOne(ctx, tx, scanPersonToken, "token", `SELECT `+personTokenCols+` FROM person_tokens
		WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?`, hash, purpose, fmtTime(now))
}

// PersonToken returns the unused, unexpired token with this hash and
// purpose; ErrNotFound for any other (unknown, used, expired).
func (db *DB) PersonToken(ctx context.Context, hash, purpose string) (PersonToken, error) {
	var t PersonToken
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		t, err = findUsableToken(ctx, tx, hash, purpose, db.nowUTC())
		return err
	})
	return t, err
}

// UsePersonToken spends a set-password link: in one transaction it checks
// the token is unused and unexpired (ErrNotFound otherwise), marks it and
// the person's open reset links used, sets the password and ends the
// person's sessions.
func (db *DB) UsePersonToken(ctx context.Context, hash, purpose, passwordHash string) (PersonToken, error) {
	var t PersonToken
	err := db.inWrite(ctx, func(tx *sql.Tx) (err error) {
		now := db.nowUTC()
		t, err = findUsableToken(ctx, tx, hash, purpose, now)
		if err != nil {
			return err
		}
		// This link, and every open reset link (made for the old password),
		// are spent; other organizations' invitations stay open.
		if _, err := tx.ExecContext(ctx, `UPDATE person_tokens SET used_at = ?
			WHERE person_id = ? AND used_at IS NULL AND (token_hash = ? OR purpose = 'reset')`,
			fmtTime(now), t.PersonID, hash); err != nil {
			return fmt.Errorf("store: spend token: %w", err)
		}
		return setPassword(ctx, tx, t.PersonID, passwordHash, "")
	})
	return t, err
}

// DeleteExpiredPersonTokens removes links that expired before now.
func (db *DB) DeleteExpiredPersonTokens(ctx context.Context) error {
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM person_tokens WHERE expires_at <= ?`, fmtTime(db.nowUTC()))
		if err != nil {
			return fmt.Errorf("store: delete expired tokens: %w", err)
		}
		return nil
	})
}

// MarkJoined records the first sign-in of a member to their organization;
// later calls change nothing.
func (db *DB) MarkJoined(ctx context.Context, tenantID, userID string) error {
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE users SET joined_at = ? WHERE tenant_id = ? AND id = ? AND joined_at IS NULL`,
			fmtTime(db.nowUTC()), tenantID, userID)
		if err != nil {
			return fmt.Errorf("store: mark user %s joined: %w", userID, err)
		}
		return nil
	})
}

// AcceptInvitation spends an invitation link of a person who has a password
// already (they proved it): the link is marked used and their membership of
// the inviting organization joined, in one transaction. ErrNotFound for an
// unknown, used or expired link.
func (db *DB) AcceptInvitation(ctx context.Context, hash string) (PersonToken, error) {
	var t PersonToken
	err := db.inWrite(ctx, func(tx *sql.Tx) (err error) {
		now := db.nowUTC()
		t, err = findUsableToken(ctx, tx, hash, TokenInvite, now)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE person_tokens SET used_at = ? WHERE token_hash = ?`, fmtTime(now), hash); err != nil {
			return fmt.Errorf("store: spend invitation: %w", err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE users SET joined_at = coalesce(joined_at, ?) WHERE tenant_id = ? AND person_id = ?`,
			fmtTime(now), t.TenantID, t.PersonID)
		if err != nil {
			return fmt.Errorf("store: join: %w", err)
		}
		return rowsChanged(res, "membership")
	})
	return t, err
}
