package store

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"candor/migrations"
)

// TestUpgradeKeepsLoginsSessionsAndKeys builds a database as the first
// release left it (only the migrations before 0060), with a user, a
// session and an API key, then opens it: the user must become a person with
// the same email and password hash, the session must still resolve, and
// the key must still authenticate.
func TestUpgradeKeepsLoginsSessionsAndKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "candor.db")
	raw, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	names, _ := fs.Glob(migrations.FS, "*.sql")
	if _, err := raw.Exec(`CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		v, _ := strconv.Atoi(name[:4])
		if v >= 60 {
			break
		}
		body, _ := fs.ReadFile(migrations.FS, name)
		if _, err := raw.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := raw.Exec(`INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01T00:00:00.000000000Z')`, v, name); err != nil {
			t.Fatal(err)
		}
	}
	now := fmtTime(time.Now())
	later := fmtTime(time.Now().Add(time.Hour))
	for _, q := range []string{
		`INSERT INTO tenants (id, name, slug, created_at) VALUES ('ten_a', 'Acme', 'acme', '` + now + `')`,
		`INSERT INTO users (id, tenant_id, email, name, role, password_hash, created_at)
			VALUES ('usr_a', 'ten_a', 'Olive@Example.com', 'Olive', 'owner', 'HASH', '` + now + `')`,
		`INSERT INTO sessions (id_hash, tenant_id, user_id, csrf_token, created_at, expires_at)
			VALUES ('sess', 'ten_a', 'usr_a', 'csrf', '` + now + `', '` + later + `')`,
		`INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, created_at)
			VALUES ('key_a', 'ten_a', 'ci', 'cnd_abc', 'KEYHASH', '` + now + `')`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()

	db, err := Open(ctx, path, Options{SecretKey: testKey})
	if err != nil {
		t.Fatalf("Open after upgrade: %v", err)
	}
	defer db.Close()
	p, err := db.PersonByEmail(ctx, "olive@example.com")
	if err != nil || p.PasswordHash != "HASH" {
		t.Fatalf("person after upgrade = %+v, %v; want the user's email and password hash", p, err)
	}
	ms, err := db.Memberships(ctx, p.ID)
	if err != nil || len(ms) != 1 || ms[0].User.ID != "usr_a" || ms[0].User.Role != RoleOwner || ms[0].Tenant.Slug != "acme" {
		t.Fatalf("memberships = %+v, %v; want usr_a owner of acme", ms, err)
	}
	s, err := db.SessionByHash(ctx, "sess")
	if err != nil || s.UserID != "usr_a" {
		t.Fatalf("session after upgrade = %+v, %v", s, err)
	}
	if _, err := db.APIKeyByHash(ctx, "KEYHASH"); err != nil {
		t.Fatalf("API key after upgrade: %v", err)
	}
	var violations int
	if err := db.write.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&violations); err != nil || violations != 0 {
		t.Fatalf("foreign key violations after upgrade: %d, %v", violations, err)
	}
}

func TestOnePersonInSeveralOrganizations(t *testing.T) {
	db, _ := openTestDB(t)
	ctx := context.Background()
	a, owner, err := db.CreateTenantWithOwner(ctx, "Acme", "olive@example.com", "Olive", "HASH")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := db.CreateTenantWithOwner(ctx, "Beta", "bob@example.com", "Bob", "BOBHASH")
	if err != nil {
		t.Fatal(err)
	}
	// Olive joins Beta: same person, same password, a second membership.
	u, err := db.AddMember(ctx, b.ID, "OLIVE@example.com", "Olive B", RoleViewer)
	if err != nil {
		t.Fatalf("AddMember of an existing person to another tenant: %v", err)
	}
	if u.PersonID != owner.PersonID || u.PasswordHash != "HASH" {
		t.Fatalf("membership = %+v; want Olive's person and password", u)
	}
	if _, err := db.AddMember(ctx, b.ID, "olive@example.com", "Again", RoleViewer); !errors.Is(err, ErrConflict) {
		t.Fatalf("adding a member twice = %v, want ErrConflict", err)
	}
	ms, err := db.Memberships(ctx, owner.PersonID)
	if err != nil || len(ms) != 2 || ms[0].Tenant.ID != a.ID || ms[1].Tenant.ID != b.ID || ms[1].User.Role != RoleViewer {
		t.Fatalf("memberships = %+v, %v; want Acme (owner) and Beta (viewer)", ms, err)
	}
	if _, err := db.CreateUser(ctx, a.ID, "bob@example.com", "Bob", RoleViewer, "X"); !errors.Is(err, ErrConflict) {
		t.Fatalf("CreateUser with an existing person's email = %v, want ErrConflict", err)
	}
	// A new person invited has no password yet.
	n, err := db.AddMember(ctx, a.ID, "new@example.com", "New", RoleRecruiter)
	if err != nil || n.PasswordHash != "" {
		t.Fatalf("new member = %+v, %v; want no password", n, err)
	}
}

func TestPersonTokensWorkOnceAndExpire(t *testing.T) {
	db, _ := openTestDB(t)
	ctx := context.Background()
	_, owner, err := db.CreateTenantWithOwner(ctx, "Acme", "olive@example.com", "Olive", "OLD")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := db.CreateSession(ctx, Session{IDHash: "s1", UserID: owner.ID, TenantID: owner.TenantID, CSRFToken: "c", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, tk := range []PersonToken{
		{Hash: "first", PersonID: owner.PersonID, Purpose: TokenReset, ExpiresAt: now.Add(time.Hour)},
		{Hash: "second", PersonID: owner.PersonID, Purpose: TokenReset, ExpiresAt: now.Add(time.Hour)},
		{Hash: "stale", PersonID: owner.PersonID, Purpose: TokenReset, ExpiresAt: now.Add(-time.Second)},
	} {
		if err := db.CreatePersonToken(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.UsePersonToken(ctx, "stale", TokenReset, "NEW"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired token = %v, want ErrNotFound", err)
	}
	if _, err := db.UsePersonToken(ctx, "first", TokenInvite, "NEW"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("token used for another purpose = %v, want ErrNotFound", err)
	}
	if _, err := db.UsePersonToken(ctx, "first", TokenReset, "NEW"); err != nil {
		t.Fatalf("first use: %v", err)
	}
	p, _ := db.Person(ctx, owner.PersonID)
	if p.PasswordHash != "NEW" {
		t.Fatalf("password after reset = %q", p.PasswordHash)
	}
	if _, err := db.SessionByHash(ctx, "s1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session after reset = %v, want it ended", err)
	}
	for _, h := range []string{"first", "second"} {
		if _, err := db.UsePersonToken(ctx, h, TokenReset, "AGAIN"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("token %s after a reset = %v, want ErrNotFound (single use, older links revoked)", h, err)
		}
	}
	if p, _ := db.Person(ctx, owner.PersonID); p.PasswordHash != "NEW" {
		t.Fatalf("a spent token changed the password to %q", p.PasswordHash)
	}
}
