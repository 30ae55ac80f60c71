package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"candor/migrations"
)

// testKey is a fixed AES-256 key for tests.
var testKey = bytes.Repeat([]byte{7}, 32)

func openTestDB(t testing.TB) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "candor.db")
	db, err := Open(context.Background(), path, Options{SecretKey: testKey})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// fixture is one tenant with a position, a candidate and an interview.
type fixture struct {
	tenant    Tenant
	owner     User
	position  Position
	candidate Candidate
	interview Interview
}

func newFixture(t testing.TB, db *DB, name string) fixture {
	t.Helper()
	ctx := context.Background()
	var f fixture
	var err error
	f.tenant, f.owner, err = db.CreateTenantWithOwner(ctx, name, strings.ToLower(strings.ReplaceAll(name, " ", ""))+"@example.com", "Owner of "+name, "hash")
	if err != nil {
		t.Fatalf("CreateTenantWithOwner(%q): %v", name, err)
	}
	f.position, err = db.CreatePosition(ctx, Position{TenantID: f.tenant.ID, Title: "Engineer", Description: "Builds things",
		Questions: []string{"Why?"}, Rubric: []RubricItem{{Name: "clarity", Description: "is clear", Weight: 1}}})
	if err != nil {
		t.Fatalf("CreatePosition: %v", err)
	}
	f.candidate, err = db.CreateCandidate(ctx, Candidate{TenantID: f.tenant.ID, Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatalf("CreateCandidate: %v", err)
	}
	f.interview, err = db.CreateInterview(ctx, Interview{TenantID: f.tenant.ID, PositionID: f.position.ID,
		CandidateID: f.candidate.ID, Region: "ams"}, "invite-"+f.tenant.ID)
	if err != nil {
		t.Fatalf("CreateInterview: %v", err)
	}
	return f
}

func TestOpenAppliesMigrationsOnceAndKeepsDataAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "candor.db")
	db, err := Open(ctx, path, Options{SecretKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, db, "Acme")
	if _, err := db.AppendEntries(ctx, f.tenant.ID, f.interview.ID, []Entry{{Seq: 1, Speaker: SpeakerCandidate, Text: "hello"}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		db, err = Open(ctx, path, Options{SecretKey: testKey})
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		var n int
		if err := db.read.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		files, _ := fs.Glob(migrations.FS, "*.sql")
		if n != len(files) {
			t.Errorf("schema_migrations has %d rows, want one per migration (%d)", n, len(files))
		}
		got, err := db.Interview(ctx, f.tenant.ID, f.interview.ID)
		if err != nil {
			t.Fatalf("interview after reopen: %v", err)
		}
		if got.ID != f.interview.ID || !got.CreatedAt.Equal(f.interview.CreatedAt) {
			t.Errorf("interview after reopen = %+v, want %+v", got, f.interview)
		}
		es, err := db.Entries(ctx, f.tenant.ID, f.interview.ID, 0)
		if err != nil || len(es) != 1 || es[0].Text != "hello" {
			t.Errorf("entries after reopen = %+v, %v", es, err)
		}
		db.Close()
	}
}

func TestOpenConfiguresConnections(t *testing.T) {
	db, _ := openTestDB(t)
	var mode string
	if err := db.write.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	for name, pool := range map[string]*sql.DB{"writer": db.write, "reader": db.read} {
		var fk, busy, sync int
		if err := pool.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Errorf("%s foreign_keys = %d, %v", name, fk, err)
		}
		if err := pool.QueryRow(`PRAGMA busy_timeout`).Scan(&busy); err != nil || busy != 5000 {
			t.Errorf("%s busy_timeout = %d, %v", name, busy, err)
		}
		if err := pool.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 1 {
			t.Errorf("%s synchronous = %d, %v; want 1 (NORMAL)", name, sync, err)
		}
	}
	if _, err := db.read.Exec(`DELETE FROM tenants`); err == nil {
		t.Error("the read pool accepted a write")
	}
}

func TestSlug(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"a plain name is lowercased", "Acme", "acme", false},
		{"punctuation and spaces become single dashes", "Acme, Inc. (EU)", "acme-inc-eu", false},
		{"leading and trailing junk is trimmed", "  --Acme!!  ", "acme", false},
		{"digits are kept", "Route 66 Ltd", "route-66-ltd", false},
		{"non-ASCII letters become dashes", "Zürich AG", "z-rich-ag", false},
		{"long names are cut to 40 characters without a trailing dash",
			strings.Repeat("abcdefghi ", 6), "abcdefghi-abcdefghi-abcdefghi-abcdefghi", false},
		{"a name without letters or digits is refused", "!!! ---", "", true},
		{"an empty name is refused", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Slug(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Slug(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			if got != tt.want {
				t.Errorf("Slug(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if len(got) > 40 {
				t.Errorf("slug %q longer than 40", got)
			}
		})
	}
}

func TestConflicts(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	a := newFixture(t, db, "Acme")
	b := newFixture(t, db, "Globex")

	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"a second tenant with the same name conflicts", func() error {
			_, _, err := db.CreateTenantWithOwner(ctx, "acme", "new@example.com", "N", "h")
			return err
		}, ErrConflict},
		{"a tenant whose name slugs like another's conflicts", func() error {
			_, _, err := db.CreateTenantWithOwner(ctx, "Acme!", "new@example.com", "N", "h")
			return err
		}, ErrConflict},
		{"a tenant owner with a taken email conflicts", func() error {
			_, _, err := db.CreateTenantWithOwner(ctx, "Initech", a.owner.Email, "N", "h")
			return err
		}, ErrConflict},
		{"a user email is unique across tenants, ignoring case", func() error {
			_, err := db.CreateUser(ctx, b.tenant.ID, strings.ToUpper(a.owner.Email), "N", RoleViewer, "h")
			return err
		}, ErrConflict},
		{"a candidate email is unique within a tenant", func() error {
			_, err := db.CreateCandidate(ctx, Candidate{TenantID: a.tenant.ID, Name: "Ada 2", Email: "ADA@example.com"})
			return err
		}, ErrConflict},
		{"the same candidate email in another tenant is fine", func() error {
			_, err := db.CreateCandidate(ctx, Candidate{TenantID: b.tenant.ID, Name: "Ada", Email: "ada+b@example.com"})
			return err
		}, nil},
		{"candidates without email do not collide", func() error {
			if _, err := db.CreateCandidate(ctx, Candidate{TenantID: a.tenant.ID, Name: "X"}); err != nil {
				return err
			}
			_, err := db.CreateCandidate(ctx, Candidate{TenantID: a.tenant.ID, Name: "Y"})
			return err
		}, nil},
		{"an invite token hash is unique", func() error {
			_, err := db.CreateInterview(ctx, Interview{TenantID: a.tenant.ID, PositionID: a.position.ID,
				CandidateID: a.candidate.ID}, "invite-"+a.tenant.ID)
			return err
		}, ErrConflict},
		{"an api key hash is unique", func() error {
			if _, err := db.CreateAPIKey(ctx, a.tenant.ID, "k1", "cnd_ab", "samehash"); err != nil {
				return err
			}
			_, err := db.CreateAPIKey(ctx, b.tenant.ID, "k2", "cnd_cd", "samehash")
			return err
		}, ErrConflict},
		{"demoting the last owner conflicts", func() error {
			return db.UpdateUserRole(ctx, a.tenant.ID, a.owner.ID, RoleViewer)
		}, ErrConflict},
		{"deleting the last owner conflicts", func() error {
			return db.DeleteUser(ctx, a.tenant.ID, a.owner.ID)
		}, ErrConflict},
		{"an unknown role is invalid", func() error {
			_, err := db.CreateUser(ctx, a.tenant.ID, "r@example.com", "R", Role("admin"), "h")
			return err
		}, ErrInvalid},
		{"a user in an unknown tenant is not found", func() error {
			_, err := db.CreateUser(ctx, "ten_missing", "m@example.com", "M", RoleViewer, "h")
			return err
		}, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestTenantIsolation checks that every tenant-scoped getter answers
// ErrNotFound, and every list omits the row, when asked for another tenant's
// object.
func TestTenantIsolation(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	a := newFixture(t, db, "Acme")
	b := newFixture(t, db, "Globex")
	key, err := db.CreateAPIKey(ctx, a.tenant.ID, "ci", "cnd_12", "keyhash-a")
	if err != nil {
		t.Fatal(err)
	}
	mach, err := db.CreateMachine(ctx, Machine{TenantID: a.tenant.ID, InterviewID: a.interview.ID, Provider: "local"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AppendEntries(ctx, a.tenant.ID, a.interview.ID, []Entry{{Seq: 1, Speaker: SpeakerCandidate, Text: "hi"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AppendEvent(ctx, a.tenant.ID, a.interview.ID, "interview.started", nil); err != nil {
		t.Fatal(err)
	}
	if err := db.SetSecret(ctx, a.tenant.ID, "OPENAI_API_KEY", "sk-a"); err != nil {
		t.Fatal(err)
	}
	bID := b.tenant.ID

	getters := []struct {
		name string
		do   func() error
	}{
		{"user", func() error { _, err := db.User(ctx, bID, a.owner.ID); return err }},
		{"position", func() error { _, err := db.Position(ctx, bID, a.position.ID); return err }},
		{"candidate", func() error { _, err := db.Candidate(ctx, bID, a.candidate.ID); return err }},
		{"interview", func() error { _, err := db.Interview(ctx, bID, a.interview.ID); return err }},
		{"current machine", func() error { _, err := db.CurrentMachine(ctx, bID, a.interview.ID); return err }},
		{"latest machine", func() error { _, err := db.LatestMachine(ctx, bID, a.interview.ID); return err }},
		{"entries", func() error { _, err := db.Entries(ctx, bID, a.interview.ID, 0); return err }},
		{"last seq", func() error { _, err := db.LastSeq(ctx, bID, a.interview.ID); return err }},
		{"events", func() error { _, err := db.Events(ctx, bID, a.interview.ID); return err }},
		{"secret", func() error { _, err := db.Secret(ctx, bID, "OPENAI_API_KEY"); return err }},
		{"update user role", func() error { return db.UpdateUserRole(ctx, bID, a.owner.ID, RoleOwner) }},
		{"delete user", func() error { return db.DeleteUser(ctx, bID, a.owner.ID) }},
		{"revoke api key", func() error { return db.RevokeAPIKey(ctx, bID, key.ID) }},
		{"update position", func() error {
			p := a.position
			p.TenantID = bID
			_, err := db.UpdatePosition(ctx, p)
			return err
		}},
		{"create interview with another tenant's position", func() error {
			_, err := db.CreateInterview(ctx, Interview{TenantID: bID, PositionID: a.position.ID, CandidateID: b.candidate.ID}, "")
			return err
		}},
		{"create interview with another tenant's candidate", func() error {
			_, err := db.CreateInterview(ctx, Interview{TenantID: bID, PositionID: b.position.ID, CandidateID: a.candidate.ID}, "")
			return err
		}},
		{"set interview status", func() error {
			_, err := db.SetInterviewStatus(ctx, bID, a.interview.ID, StatusCancelled)
			return err
		}},
		{"set consent", func() error { return db.SetConsent(ctx, bID, a.interview.ID, time.Now()) }},
		{"set processor token", func() error { return db.SetProcessorTokenHash(ctx, bID, a.interview.ID, "x") }},
		{"record heartbeat", func() error { return db.RecordHeartbeat(ctx, bID, a.interview.ID, 10, time.Now()) }},
		{"set recording", func() error { return db.SetRecording(ctx, bID, a.interview.ID, "rec.ogg") }},
		{"create machine", func() error {
			_, err := db.CreateMachine(ctx, Machine{TenantID: bID, InterviewID: a.interview.ID, Provider: "local"})
			return err
		}},
		{"update machine", func() error {
			m := mach
			m.TenantID = bID
			m.State = MachineRunning
			return db.UpdateMachine(ctx, m)
		}},
		{"append entries", func() error {
			_, err := db.AppendEntries(ctx, bID, a.interview.ID, []Entry{{Seq: 2, Speaker: SpeakerCandidate}})
			return err
		}},
		{"append event", func() error { _, err := db.AppendEvent(ctx, bID, a.interview.ID, "x", nil); return err }},
		{"delete secret", func() error { return db.DeleteSecret(ctx, bID, "OPENAI_API_KEY") }},
	}
	for _, g := range getters {
		t.Run("another tenant's "+g.name+" is not found", func(t *testing.T) {
			if err := g.do(); !errors.Is(err, ErrNotFound) {
				t.Errorf("got %v, want ErrNotFound", err)
			}
		})
	}

	lists := []struct {
		name string
		ids  func() ([]string, error)
		aID  string
	}{
		{"users", func() ([]string, error) { return ids(db.ListUsers(ctx, bID)) }, a.owner.ID},
		{"api keys", func() ([]string, error) { return ids(db.ListAPIKeys(ctx, bID)) }, key.ID},
		{"positions", func() ([]string, error) { return ids(db.ListPositions(ctx, bID)) }, a.position.ID},
		{"candidates", func() ([]string, error) { return ids(db.ListCandidates(ctx, bID)) }, a.candidate.ID},
		{"interviews", func() ([]string, error) { return ids(db.ListInterviews(ctx, bID, InterviewFilter{})) }, a.interview.ID},
		{"machines", func() ([]string, error) { return ids(db.ListMachines(ctx, bID, a.interview.ID)) }, mach.ID},
		{"secrets", func() ([]string, error) {
			infos, err := db.ListSecrets(ctx, bID)
			var out []string
			for _, s := range infos {
				out = append(out, s.Name)
			}
			return out, err
		}, "OPENAI_API_KEY"},
		{"decrypted secrets", func() ([]string, error) {
			m, err := db.Secrets(ctx, bID)
			var out []string
			for k := range m {
				out = append(out, k)
			}
			return out, err
		}, "OPENAI_API_KEY"},
	}
	for _, l := range lists {
		t.Run("another tenant's "+l.name+" are absent from the list", func(t *testing.T) {
			got, err := l.ids()
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(got, l.aID) {
				t.Errorf("tenant B's list %v contains tenant A's %s", got, l.aID)
			}
		})
	}

	t.Run("tenant B's machine seconds exclude tenant A's machines", func(t *testing.T) {
		m := mach
		m.State, m.SecondsBilled = MachineDestroyed, 42
		if err := db.UpdateMachine(ctx, m); err != nil {
			t.Fatal(err)
		}
		got, err := db.MachineSeconds(ctx, bID, time.Time{})
		if err != nil || got != 0 {
			t.Errorf("MachineSeconds(B) = %v, %v; want 0", got, err)
		}
		got, err = db.MachineSeconds(ctx, a.tenant.ID, time.Time{})
		if err != nil || got != 42 {
			t.Errorf("MachineSeconds(A) = %v, %v; want 42", got, err)
		}
	})
}

// ids collects the IDs of a list result.
func ids[T any](items []T, err error) ([]string, error) {
	var out []string
	for _, it := range items {
		switch v := any(it).(type) {
		case User:
			out = append(out, v.ID)
		case APIKey:
			out = append(out, v.ID)
		case Position:
			out = append(out, v.ID)
		case Candidate:
			out = append(out, v.ID)
		case Interview:
			out = append(out, v.ID)
		case Machine:
			out = append(out, v.ID)
		}
	}
	return out, err
}

func TestAppendEntriesIsIdempotentOnSeq(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	f := newFixture(t, db, "Acme")
	entry := func(seq int64) Entry {
		return Entry{Seq: seq, Speaker: SpeakerCandidate, Text: "word", StartMS: seq * 100, EndMS: seq*100 + 50, Confidence: 0.9}
	}
	batch := []Entry{entry(1), entry(2), entry(3)}

	tests := []struct {
		name    string
		batch   []Entry
		want    []int64
		wantAll []int64
	}{
		{"a new batch inserts every entry", batch, []int64{1, 2, 3}, []int64{1, 2, 3}},
		{"a retried batch inserts nothing", batch, nil, []int64{1, 2, 3}},
		{"a mixed batch inserts only the new entries", []Entry{entry(2), entry(4), entry(3), entry(5)}, []int64{4, 5}, []int64{1, 2, 3, 4, 5}},
		{"a seq repeated within a batch is inserted once", []Entry{entry(6), entry(6)}, []int64{6}, []int64{1, 2, 3, 4, 5, 6}},
		{"an empty batch inserts nothing", nil, nil, []int64{1, 2, 3, 4, 5, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.AppendEntries(ctx, f.tenant.ID, f.interview.ID, tt.batch)
			if err != nil {
				t.Fatal(err)
			}
			if s := seqs(got); !slices.Equal(s, tt.want) {
				t.Errorf("inserted seqs %v, want %v", s, tt.want)
			}
			for _, e := range got {
				if e.CreatedAt.IsZero() || e.InterviewID != f.interview.ID {
					t.Errorf("inserted entry lacks CreatedAt or InterviewID: %+v", e)
				}
			}
			all, err := db.Entries(ctx, f.tenant.ID, f.interview.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			if s := seqs(all); !slices.Equal(s, tt.wantAll) {
				t.Errorf("stored seqs %v, want %v", s, tt.wantAll)
			}
		})
	}

	t.Run("entries after a seq skip the earlier ones", func(t *testing.T) {
		got, err := db.Entries(ctx, f.tenant.ID, f.interview.ID, 4)
		if err != nil || !slices.Equal(seqs(got), []int64{5, 6}) {
			t.Errorf("Entries(after 4) = %v, %v", seqs(got), err)
		}
		if got[0].StartMS != 500 || got[0].EndMS != 550 || got[0].Confidence != 0.9 || got[0].Text != "word" {
			t.Errorf("entry fields did not round-trip: %+v", got[0])
		}
	})
	t.Run("last seq is the highest stored seq", func(t *testing.T) {
		if n, err := db.LastSeq(ctx, f.tenant.ID, f.interview.ID); err != nil || n != 6 {
			t.Errorf("LastSeq = %d, %v; want 6", n, err)
		}
	})
	t.Run("a malformed entry refuses the whole batch", func(t *testing.T) {
		_, err := db.AppendEntries(ctx, f.tenant.ID, f.interview.ID, []Entry{entry(7), {Seq: 8, Speaker: "narrator"}})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("got %v, want ErrInvalid", err)
		}
		if n, _ := db.LastSeq(ctx, f.tenant.ID, f.interview.ID); n != 6 {
			t.Errorf("LastSeq after refused batch = %d, want 6", n)
		}
	})
	t.Run("an interview without entries has last seq 0", func(t *testing.T) {
		g := newFixture(t, db, "Globex")
		if n, err := db.LastSeq(ctx, g.tenant.ID, g.interview.ID); err != nil || n != 0 {
			t.Errorf("LastSeq = %d, %v; want 0", n, err)
		}
	})
}

func seqs(es []Entry) []int64 {
	var out []int64
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

func TestSecrets(t *testing.T) {
	ctx := context.Background()
	db, path := openTestDB(t)
	f := newFixture(t, db, "Acme")
	const value = "sk-very-secret-value"
	if err := db.SetSecret(ctx, f.tenant.ID, "OPENAI_API_KEY", value); err != nil {
		t.Fatal(err)
	}

	t.Run("the stored row holds no plaintext", func(t *testing.T) {
		var nonce, ct []byte
		if err := db.read.QueryRow(`SELECT nonce, ciphertext FROM secrets WHERE name = 'OPENAI_API_KEY'`).Scan(&nonce, &ct); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(ct, []byte(value)) || bytes.Contains(ct, []byte("secret")) {
			t.Errorf("ciphertext contains the plaintext: %q", ct)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		wal, _ := os.ReadFile(path + "-wal")
		if bytes.Contains(raw, []byte(value)) || bytes.Contains(wal, []byte(value)) {
			t.Error("the database file contains the plaintext")
		}
	})
	t.Run("a secret decrypts back", func(t *testing.T) {
		got, err := db.Secret(ctx, f.tenant.ID, "OPENAI_API_KEY")
		if err != nil || got != value {
			t.Errorf("Secret = %q, %v", got, err)
		}
		all, err := db.Secrets(ctx, f.tenant.ID)
		if err != nil || all["OPENAI_API_KEY"] != value || len(all) != 1 {
			t.Errorf("Secrets = %v, %v", all, err)
		}
	})
	t.Run("each write uses a fresh nonce", func(t *testing.T) {
		var n1, n2 []byte
		db.read.QueryRow(`SELECT nonce FROM secrets WHERE name = 'OPENAI_API_KEY'`).Scan(&n1)
		if err := db.SetSecret(ctx, f.tenant.ID, "OPENAI_API_KEY", value); err != nil {
			t.Fatal(err)
		}
		db.read.QueryRow(`SELECT nonce FROM secrets WHERE name = 'OPENAI_API_KEY'`).Scan(&n2)
		if bytes.Equal(n1, n2) {
			t.Error("nonce reused across writes")
		}
	})
	t.Run("listing names secrets without values", func(t *testing.T) {
		infos, err := db.ListSecrets(ctx, f.tenant.ID)
		if err != nil || len(infos) != 1 || infos[0].Name != "OPENAI_API_KEY" || infos[0].UpdatedAt.IsZero() {
			t.Errorf("ListSecrets = %+v, %v", infos, err)
		}
	})
	t.Run("a wrong key fails clearly", func(t *testing.T) {
		other, err := Open(ctx, path, Options{SecretKey: bytes.Repeat([]byte{9}, 32)})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		_, err = other.Secret(ctx, f.tenant.ID, "OPENAI_API_KEY")
		if !errors.Is(err, ErrSecretKey) || !strings.Contains(err.Error(), "CANDOR_SECRET_KEY") {
			t.Errorf("got %v, want ErrSecretKey naming CANDOR_SECRET_KEY", err)
		}
		if _, err := other.Secrets(ctx, f.tenant.ID); !errors.Is(err, ErrSecretKey) {
			t.Errorf("Secrets got %v, want ErrSecretKey", err)
		}
	})
	t.Run("a ciphertext moved to another tenant does not decrypt", func(t *testing.T) {
		g := newFixture(t, db, "Globex")
		_, err := db.write.Exec(`INSERT INTO secrets (tenant_id, name, nonce, ciphertext, created_at, updated_at)
			SELECT ?, name, nonce, ciphertext, created_at, updated_at FROM secrets WHERE tenant_id = ?`, g.tenant.ID, f.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Secret(ctx, g.tenant.ID, "OPENAI_API_KEY"); !errors.Is(err, ErrSecretKey) {
			t.Errorf("got %v, want ErrSecretKey", err)
		}
	})
	t.Run("a deleted secret is gone", func(t *testing.T) {
		if err := db.DeleteSecret(ctx, f.tenant.ID, "OPENAI_API_KEY"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Secret(ctx, f.tenant.ID, "OPENAI_API_KEY"); !errors.Is(err, ErrNotFound) {
			t.Errorf("got %v, want ErrNotFound", err)
		}
		if err := db.DeleteSecret(ctx, f.tenant.ID, "OPENAI_API_KEY"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete got %v, want ErrNotFound", err)
		}
	})
	t.Run("without a key secrets are refused", func(t *testing.T) {
		nokey, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer nokey.Close()
		if err := nokey.SetSecret(ctx, f.tenant.ID, "X", "y"); err == nil {
			t.Error("SetSecret without a key succeeded")
		}
	})
}

func TestLoadSecretKey(t *testing.T) {
	key32 := bytes.Repeat([]byte{0xab}, 32)
	tests := []struct {
		name    string
		env     string
		want    []byte
		wantErr string
	}{
		{"a hex key is accepted", strings.Repeat("ab", 32), key32, ""},
		{"a base64 key is accepted", "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=", key32, ""},
		{"an unpadded base64 key is accepted", "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s", key32, ""},
		{"a short key names the length", "q6urq6ur", nil, "decodes to 6 bytes, want 32"},
		{"garbage is refused with a hint", "not a key!", nil, "openssl rand -base64 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadSecretKey(t.TempDir(), tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "CANDOR_SECRET_KEY") {
					t.Errorf("error %v, want one naming CANDOR_SECRET_KEY and %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Errorf("got %x, %v; want %x", got, err, tt.want)
			}
		})
	}

	t.Run("without env a key file is created 0600 and reused", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		k1, err := LoadSecretKey(dir, "")
		if err != nil || len(k1) != 32 {
			t.Fatalf("first load: %x, %v", k1, err)
		}
		st, err := os.Stat(filepath.Join(dir, "secret.key"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
		}
		k2, err := LoadSecretKey(dir, "")
		if err != nil || !bytes.Equal(k1, k2) {
			t.Errorf("second load %x, %v; want %x", k2, err, k1)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("data dir holds %d files, want only secret.key", len(entries))
		}
	})
	t.Run("a corrupted key file is refused", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "secret.key"), []byte("short\n"), 0o600)
		if _, err := LoadSecretKey(dir, ""); err == nil || !strings.Contains(err.Error(), "secret.key") {
			t.Errorf("got %v, want an error naming secret.key", err)
		}
	})
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	f := newFixture(t, db, "Acme")
	now := time.Now().UTC()
	db.now = func() time.Time { return now }
	for _, s := range []Session{
		{IDHash: "live", UserID: f.owner.ID, TenantID: f.tenant.ID, CSRFToken: "csrf", ExpiresAt: now.Add(time.Hour)},
		{IDHash: "expired", UserID: f.owner.ID, TenantID: f.tenant.ID, CSRFToken: "csrf", ExpiresAt: now.Add(-time.Second)},
		{IDHash: "edge", UserID: f.owner.ID, TenantID: f.tenant.ID, CSRFToken: "csrf", ExpiresAt: now.Add(time.Millisecond)},
	} {
		if err := db.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		hash    string
		advance time.Duration
		want    error
	}{
		{"a live session is found", "live", 0, nil},
		{"an expired session is not found", "expired", 0, ErrNotFound},
		{"an unknown session is not found", "nope", 0, ErrNotFound},
		{"a session is found until its expiry", "edge", 0, nil},
		{"a session is not found once its expiry passes", "edge", 2 * time.Millisecond, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db.now = func() time.Time { return now.Add(tt.advance) }
			s, err := db.SessionByHash(ctx, tt.hash)
			if !errors.Is(err, tt.want) || tt.want == nil && err != nil {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if err == nil && (s.UserID != f.owner.ID || s.TenantID != f.tenant.ID || s.CSRFToken != "csrf") {
				t.Errorf("session = %+v", s)
			}
		})
	}
	t.Run("a session for another tenant's user is refused", func(t *testing.T) {
		g := newFixture(t, db, "Globex")
		err := db.CreateSession(ctx, Session{IDHash: "x", UserID: f.owner.ID, TenantID: g.tenant.ID, ExpiresAt: now.Add(time.Hour)})
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("got %v, want ErrNotFound", err)
		}
	})
	t.Run("a deleted session is not found and deleting again is harmless", func(t *testing.T) {
		db.now = func() time.Time { return now }
		if err := db.DeleteSession(ctx, "live"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SessionByHash(ctx, "live"); !errors.Is(err, ErrNotFound) {
			t.Errorf("got %v, want ErrNotFound", err)
		}
		if err := db.DeleteSession(ctx, "live"); err != nil {
			t.Errorf("second delete: %v", err)
		}
	})
	t.Run("expired sessions are swept", func(t *testing.T) {
		n, err := db.DeleteExpiredSessions(ctx)
		if err != nil || n != 1 {
			t.Errorf("DeleteExpiredSessions = %d, %v; want 1", n, err)
		}
	})
	t.Run("deleting a user deletes their sessions", func(t *testing.T) {
		u, err := db.CreateUser(ctx, f.tenant.ID, "rec@example.com", "Rec", RoleRecruiter, "h")
		if err != nil {
			t.Fatal(err)
		}
		db.CreateSession(ctx, Session{IDHash: "rec", UserID: u.ID, TenantID: f.tenant.ID, ExpiresAt: now.Add(time.Hour)})
		if err := db.DeleteUser(ctx, f.tenant.ID, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SessionByHash(ctx, "rec"); !errors.Is(err, ErrNotFound) {
			t.Errorf("got %v, want ErrNotFound", err)
		}
	})
}

func TestSetInterviewStatus(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	f := newFixture(t, db, "Acme")
	id, tid := f.interview.ID, f.tenant.ID

	tests := []struct {
		name        string
		to          Status
		from        []Status
		want        error
		wantStatus  Status
		wantStarted bool
		wantEnded   bool
	}{
		{"a guarded move from the wrong status conflicts", StatusRunning, []Status{StatusStarting}, ErrConflict, StatusScheduled, false, false},
		{"a guarded move from the right status succeeds", StatusStarting, []Status{StatusScheduled}, nil, StatusStarting, false, false},
		{"entering running sets started_at", StatusRunning, []Status{StatusScheduled, StatusStarting}, nil, StatusRunning, true, false},
		{"running again is allowed when running is among from", StatusRunning, []Status{StatusRunning}, nil, StatusRunning, true, false},
		{"entering a terminal status sets ended_at", StatusCompleted, []Status{StatusRunning}, nil, StatusCompleted, true, true},
		{"a completed interview cannot be cancelled by a guarded move", StatusCancelled, []Status{StatusScheduled, StatusRunning}, ErrConflict, StatusCompleted, true, true},
		{"an unguarded move always applies", StatusFailed, nil, nil, StatusFailed, true, true},
		{"an unknown status is invalid", Status("paused"), nil, ErrInvalid, StatusFailed, true, true},
		{"leaving a terminal status clears ended_at", StatusStarting, []Status{StatusFailed}, nil, StatusStarting, true, false},
		{"ending again sets ended_at anew", StatusCompleted, nil, nil, StatusCompleted, true, true},
	}
	var startedAt *time.Time
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.SetInterviewStatus(ctx, tid, id, tt.to, tt.from...)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			iv, err := db.Interview(ctx, tid, id)
			if err != nil {
				t.Fatal(err)
			}
			if iv.Status != tt.wantStatus || (iv.StartedAt != nil) != tt.wantStarted || (iv.EndedAt != nil) != tt.wantEnded {
				t.Errorf("interview = status %s started %v ended %v; want %s %v %v",
					iv.Status, iv.StartedAt, iv.EndedAt, tt.wantStatus, tt.wantStarted, tt.wantEnded)
			}
			if startedAt != nil && iv.StartedAt != nil && !iv.StartedAt.Equal(*startedAt) {
				t.Errorf("started_at moved from %v to %v", startedAt, iv.StartedAt)
			}
			if iv.StartedAt != nil {
				startedAt = iv.StartedAt
			}
		})
	}
}

func TestInterviews(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	f := newFixture(t, db, "Acme")
	tid := f.tenant.ID

	t.Run("an interview is found by its invite hash and by id alone", func(t *testing.T) {
		iv, err := db.InterviewByInviteHash(ctx, "invite-"+tid)
		if err != nil || iv.ID != f.interview.ID {
			t.Errorf("InterviewByInviteHash = %v, %v", iv.ID, err)
		}
		iv, err = db.InterviewByID(ctx, f.interview.ID)
		if err != nil || iv.TenantID != tid {
			t.Errorf("InterviewByID = %+v, %v", iv, err)
		}
		if _, err := db.InterviewByInviteHash(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown invite: %v", err)
		}
	})
	t.Run("a new interview is scheduled with a default expiry", func(t *testing.T) {
		if f.interview.Status != StatusScheduled || f.interview.ExpiresAt.Sub(f.interview.CreatedAt) != DefaultInviteTTL {
			t.Errorf("interview = %+v", f.interview)
		}
	})
	t.Run("interviews list newest first and filter by status with a limit", func(t *testing.T) {
		second, err := db.CreateInterview(ctx, Interview{TenantID: tid, PositionID: f.position.ID, CandidateID: f.candidate.ID}, "")
		if err != nil {
			t.Fatal(err)
		}
		third, err := db.CreateInterview(ctx, Interview{TenantID: tid, PositionID: f.position.ID, CandidateID: f.candidate.ID}, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.SetInterviewStatus(ctx, tid, second.ID, StatusRunning); err != nil {
			t.Fatal(err)
		}
		all, _ := ids(db.ListInterviews(ctx, tid, InterviewFilter{}))
		if !slices.Equal(all, []string{third.ID, second.ID, f.interview.ID}) {
			t.Errorf("list = %v", all)
		}
		sched, _ := ids(db.ListInterviews(ctx, tid, InterviewFilter{Status: StatusScheduled, Limit: 1}))
		if !slices.Equal(sched, []string{third.ID}) {
			t.Errorf("scheduled, limit 1 = %v", sched)
		}
	})
	t.Run("consent keeps its first time", func(t *testing.T) {
		first := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
		db.SetConsent(ctx, tid, f.interview.ID, first)
		db.SetConsent(ctx, tid, f.interview.ID, first.Add(time.Hour))
		iv, _ := db.Interview(ctx, tid, f.interview.ID)
		if iv.ConsentAt == nil || !iv.ConsentAt.Equal(first) {
			t.Errorf("consent_at = %v, want %v", iv.ConsentAt, first)
		}
	})
	t.Run("a processor token hash is stored and looked up by interview", func(t *testing.T) {
		if pc, err := db.ProcessorCredentials(ctx, f.interview.ID); err != nil || pc.TokenHash != "" || pc.Epoch != 0 {
			t.Errorf("before set: %+v, %v, want no hash", pc, err)
		}
		if _, err := db.ProcessorCredentials(ctx, "iv_missing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown interview: %v, want ErrNotFound", err)
		}
		if err := db.SetProcessorTokenHash(ctx, tid, f.interview.ID, "h1"); err != nil {
			t.Fatal(err)
		}
		pc, err := db.ProcessorCredentials(ctx, f.interview.ID)
		if err != nil || pc.TenantID != tid || pc.InterviewID != f.interview.ID || pc.TokenHash != "h1" || pc.Epoch != 1 {
			t.Errorf("ProcessorCredentials = %+v, %v", pc, err)
		}
	})
	t.Run("cached processor credentials follow every status and token change", func(t *testing.T) {
		iv, err := db.CreateInterview(ctx, Interview{TenantID: tid, PositionID: f.position.ID, CandidateID: f.candidate.ID}, "")
		if err != nil {
			t.Fatal(err)
		}
		want := func(status Status, hash string) {
			t.Helper()
			for range 2 { // the first lookup may fill the cache, the second reads it
				pc, err := db.ProcessorCredentials(ctx, iv.ID)
				if err != nil || pc.InterviewID != iv.ID || pc.TenantID != tid || pc.Status != status || pc.TokenHash != hash {
					t.Fatalf("ProcessorCredentials = %+v, %v; want %s with hash %q", pc, err, status, hash)
				}
			}
		}
		if _, err := db.ProcessorCredentials(ctx, "iv_missing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown interview: %v, want ErrNotFound", err)
		}
		want(StatusScheduled, "")
		db.SetInterviewStatus(ctx, tid, iv.ID, StatusStarting)
		db.SetProcessorTokenHash(ctx, tid, iv.ID, "h1")
		want(StatusStarting, "h1")
		db.SetInterviewStatus(ctx, tid, iv.ID, StatusRunning)
		want(StatusRunning, "h1")
		db.SetProcessorTokenHash(ctx, tid, iv.ID, "h2") // a replaced processor
		want(StatusRunning, "h2")
		db.RecordHeartbeat(ctx, tid, iv.ID, 1000, time.Now())
		want(StatusRunning, "h2")
		db.SetInterviewStatus(ctx, tid, iv.ID, StatusCompleted)
		want(StatusCompleted, "h2")
	})
	t.Run("a lookup that raced with a change does not cache what it read", func(t *testing.T) {
		var c credentialCache
		gen := c.generation()
		c.forget("iv_1") // a change committed while the lookup ran
		c.fill(gen, ProcessorCredentials{InterviewID: "iv_1", Status: StatusRunning, TokenHash: "old"})
		if pc, ok := c.get("iv_1"); ok {
			t.Errorf("cached %+v read before the change", pc)
		}
		c.fill(c.generation(), ProcessorCredentials{InterviewID: "iv_1", Status: StatusRunning, TokenHash: "new"})
		if pc, ok := c.get("iv_1"); !ok || pc.TokenHash != "new" {
			t.Errorf("get = %+v, %v; want the fresh credentials", pc, ok)
		}
	})
	t.Run("heartbeats move the media clock forward only and stale interviews are listed", func(t *testing.T) {
		iv, err := db.CreateInterview(ctx, Interview{TenantID: tid, PositionID: f.position.ID, CandidateID: f.candidate.ID}, "")
		if err != nil {
			t.Fatal(err)
		}
		db.SetInterviewStatus(ctx, tid, iv.ID, StatusRunning)
		t0 := time.Now().UTC()
		if err := db.RecordHeartbeat(ctx, tid, iv.ID, 5000, t0); err != nil {
			t.Fatal(err)
		}
		if err := db.RecordHeartbeat(ctx, tid, iv.ID, 4000, t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		got, _ := db.Interview(ctx, tid, iv.ID)
		if got.MediaMS != 5000 || got.LastHeartbeatAt == nil || !got.LastHeartbeatAt.Equal(t0.Add(time.Second)) {
			t.Errorf("media_ms %d, last heartbeat %v", got.MediaMS, got.LastHeartbeatAt)
		}
		stale, _ := ids(db.ListStaleInterviews(ctx, t0.Add(2*time.Second)))
		if !slices.Contains(stale, iv.ID) {
			t.Errorf("stale %v lacks %s", stale, iv.ID)
		}
		if slices.Contains(stale, f.interview.ID) {
			t.Errorf("stale %v lists an interview that is not running", stale)
		}
		fresh, _ := ids(db.ListStaleInterviews(ctx, t0.Add(500*time.Millisecond)))
		if slices.Contains(fresh, iv.ID) {
			t.Errorf("interview with a recent heartbeat listed as stale")
		}
	})
	t.Run("a recording path is stored", func(t *testing.T) {
		db.SetRecording(ctx, tid, f.interview.ID, "recordings/x.ogg")
		iv, _ := db.Interview(ctx, tid, f.interview.ID)
		if iv.RecordingPath != "recordings/x.ogg" {
			t.Errorf("recording = %q", iv.RecordingPath)
		}
	})
}

func TestMachines(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	f := newFixture(t, db, "Acme")
	tid, iid := f.tenant.ID, f.interview.ID

	if _, err := db.CurrentMachine(ctx, tid, iid); !errors.Is(err, ErrNotFound) {
		t.Errorf("CurrentMachine with none: %v", err)
	}
	m1, err := db.CreateMachine(ctx, Machine{TenantID: tid, InterviewID: iid, Provider: "local", URL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := db.CreateMachine(ctx, Machine{TenantID: tid, InterviewID: iid, Provider: "fly", State: MachineRunning})
	if err != nil {
		t.Fatal(err)
	}
	m2.State, m2.SecondsBilled = MachineDestroyed, 12.5
	if err := db.UpdateMachine(ctx, m2); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		got  func() (string, error)
		want string
	}{
		{"the current machine is the latest one not destroyed", func() (string, error) {
			m, err := db.CurrentMachine(ctx, tid, iid)
			return m.ID, err
		}, m1.ID},
		{"the latest machine may be destroyed", func() (string, error) {
			m, err := db.LatestMachine(ctx, tid, iid)
			return m.ID, err
		}, m2.ID},
		{"live machines exclude destroyed ones", func() (string, error) {
			ms, err := ids(db.ListLiveMachines(ctx))
			return strings.Join(ms, ","), err
		}, m1.ID},
		{"all machines of an interview list oldest first", func() (string, error) {
			ms, err := ids(db.ListMachines(ctx, tid, iid))
			return strings.Join(ms, ","), err
		}, m1.ID + "," + m2.ID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.got()
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	t.Run("destroying stamps destroyed_at", func(t *testing.T) {
		m, _ := db.LatestMachine(ctx, tid, iid)
		if m.DestroyedAt == nil || m.SecondsBilled != 12.5 {
			t.Errorf("machine = %+v", m)
		}
	})
	t.Run("machine seconds count machines created since a time", func(t *testing.T) {
		if s, err := db.MachineSeconds(ctx, tid, time.Now().Add(-time.Hour)); err != nil || s != 12.5 {
			t.Errorf("MachineSeconds = %v, %v", s, err)
		}
		if s, err := db.MachineSeconds(ctx, tid, time.Now().Add(time.Hour)); err != nil || s != 0 {
			t.Errorf("MachineSeconds(future) = %v, %v", s, err)
		}
	})
	t.Run("a machine without a provider is invalid (which providers exist is package fly's registry)", func(t *testing.T) {
		_, err := db.CreateMachine(ctx, Machine{TenantID: tid, InterviewID: iid, Provider: ""})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("got %v, want ErrInvalid", err)
		}
	})
}

func TestEvents(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	f := newFixture(t, db, "Acme")
	tid, iid := f.tenant.ID, f.interview.ID
	inputs := []any{nil, map[string]any{"machine": "m1"}, []byte(`{"raw":true}`)}
	for i, d := range inputs {
		if _, err := db.AppendEvent(ctx, tid, iid, []string{"interview.started", "machine.launched", "processor.ready"}[i], d); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := db.Events(ctx, tid, iid)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Type+" "+string(e.Data))
	}
	want := []string{`interview.started {}`, `machine.launched {"machine":"m1"}`, `processor.ready {"raw":true}`}
	if !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
	if _, err := db.write.Exec(`UPDATE interview_events SET type = 'x'`); err == nil {
		t.Error("interview_events accepted an UPDATE")
	}
	if _, err := db.AppendEvent(ctx, tid, iid, "bad", []byte("{")); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid JSON: %v, want ErrInvalid", err)
	}
}

func TestAPIKeys(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	f := newFixture(t, db, "Acme")
	now := time.Now().UTC()
	db.now = func() time.Time { return now }
	k, err := db.CreateAPIKey(ctx, f.tenant.ID, "ci", "cnd_ab", "hash")
	if err != nil {
		t.Fatal(err)
	}
	lastUsed := func() *time.Time {
		ks, _ := db.ListAPIKeys(ctx, f.tenant.ID)
		return ks[0].LastUsedAt
	}
	t.Run("using a key records when", func(t *testing.T) {
		got, err := db.APIKeyByHash(ctx, "hash")
		if err != nil || got.ID != k.ID || got.TenantID != f.tenant.ID {
			t.Fatalf("APIKeyByHash = %+v, %v", got, err)
		}
		if lu := lastUsed(); lu == nil || !lu.Equal(now) {
			t.Errorf("last_used_at = %v, want %v", lu, now)
		}
	})
	t.Run("using it again within a minute does not write", func(t *testing.T) {
		db.now = func() time.Time { return now.Add(30 * time.Second) }
		db.APIKeyByHash(ctx, "hash")
		if lu := lastUsed(); !lu.Equal(now) {
			t.Errorf("last_used_at = %v, want %v", lu, now)
		}
	})
	t.Run("using it after a minute records again", func(t *testing.T) {
		db.now = func() time.Time { return now.Add(61 * time.Second) }
		db.APIKeyByHash(ctx, "hash")
		if lu := lastUsed(); !lu.Equal(now.Add(61 * time.Second)) {
			t.Errorf("last_used_at = %v", lu)
		}
	})
	t.Run("a revoked key is not found", func(t *testing.T) {
		if err := db.RevokeAPIKey(ctx, f.tenant.ID, k.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.RevokeAPIKey(ctx, f.tenant.ID, k.ID); err != nil {
			t.Errorf("revoking twice: %v", err)
		}
		if _, err := db.APIKeyByHash(ctx, "hash"); !errors.Is(err, ErrNotFound) {
			t.Errorf("got %v, want ErrNotFound", err)
		}
	})
}

func TestPositionsRoundTrip(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	f := newFixture(t, db, "Acme")
	p := f.position
	p.Title, p.Questions, p.Rubric = "Staff Engineer", []string{"a", "b"}, nil
	got, err := db.UpdatePosition(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "Staff Engineer" || !slices.Equal(got.Questions, []string{"a", "b"}) || got.Rubric == nil || len(got.Rubric) != 0 {
		t.Errorf("updated position = %+v", got)
	}
	if got.UpdatedAt.Before(got.CreatedAt) {
		t.Errorf("updated_at %v before created_at %v", got.UpdatedAt, got.CreatedAt)
	}
	if _, err := db.CreatePosition(ctx, Position{TenantID: f.tenant.ID, Title: "  "}); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty title: %v, want ErrInvalid", err)
	}
}

func BenchmarkAppendEntries(b *testing.B) {
	ctx := context.Background()
	db, _ := openTestDB(b)
	f := newFixture(b, db, "Acme")
	const batch = 10
	es := make([]Entry, batch)
	seq := int64(0)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range es {
			seq++
			es[i] = Entry{Seq: seq, Speaker: SpeakerCandidate, Text: "the quick brown fox jumps over the lazy dog",
				StartMS: seq * 1000, EndMS: seq*1000 + 900, Confidence: 0.8}
		}
		if _, err := db.AppendEntries(ctx, f.tenant.ID, f.interview.ID, es); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
}

// TestConcurrentDeliveriesStoreEachEntryOnce runs overlapping deliveries of
// the same entries at once, as a processor retrying while its first attempt
// is still in flight would, with readers alongside.
func TestConcurrentDeliveriesStoreEachEntryOnce(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	f := newFixture(t, db, "Acme")
	const workers, perWorker = 4, 50
	var wg sync.WaitGroup
	insertedBy := make([]int, workers)
	errs := make(chan error, 2*workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				// Every worker delivers seqs 1..perWorker+1 in overlapping pairs.
				got, err := db.AppendEntries(ctx, f.tenant.ID, f.interview.ID, []Entry{
					{Seq: int64(i + 1), Speaker: SpeakerCandidate, Text: "a"},
					{Seq: int64(i + 2), Speaker: SpeakerInterviewer, Text: "b"},
				})
				if err != nil {
					errs <- err
					return
				}
				insertedBy[w] += len(got)
			}
		})
		wg.Go(func() {
			for range perWorker {
				if _, err := db.Entries(ctx, f.tenant.ID, f.interview.ID, 0); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for _, n := range insertedBy {
		total += n
	}
	all, err := db.Entries(ctx, f.tenant.ID, f.interview.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if total != perWorker+1 || len(all) != perWorker+1 {
		t.Errorf("inserted %d, stored %d; want %d each", total, len(all), perWorker+1)
	}
}

func TestConcurrentAppendsCommitTogetherAndABadBatchFailsAlone(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	a := newFixture(t, db, "Acme")
	b := newFixture(t, db, "Globex")
	entry := func(seq int64) Entry {
		return Entry{Seq: seq, Speaker: SpeakerCandidate, Text: "word", StartMS: seq * 100, EndMS: seq*100 + 50}
	}
	const writers, perWriter = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter*2)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := a
			if w%2 == 1 {
				f = b
			}
			for i := range perWriter {
				seq := int64(w/2*perWriter + i + 1)
				if _, err := db.AppendEntries(ctx, f.tenant.ID, f.interview.ID, []Entry{entry(seq)}); err != nil {
					errs <- err
				}
				// Interleaved with the good batches: another tenant's
				// interview, and a seq far past the end.
				if _, err := db.AppendEntries(ctx, b.tenant.ID, a.interview.ID, []Entry{entry(seq)}); !errors.Is(err, ErrNotFound) {
					errs <- fmt.Errorf("cross-tenant append: %v, want ErrNotFound", err)
				}
				if _, err := db.AppendEntries(ctx, f.tenant.ID, f.interview.ID, []Entry{entry(seq + 2*MaxSeqJump)}); !errors.Is(err, ErrInvalid) {
					errs <- fmt.Errorf("far seq: %v, want ErrInvalid", err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, f := range []fixture{a, b} {
		es, err := db.Entries(ctx, f.tenant.ID, f.interview.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != writers/2*perWriter {
			t.Fatalf("%s has %d entries, want %d", f.tenant.Name, len(es), writers/2*perWriter)
		}
		for i, e := range es {
			if e.Seq != int64(i+1) {
				t.Fatalf("%s entry %d has seq %d", f.tenant.Name, i, e.Seq)
			}
		}
	}
}

func TestAppendAfterCloseFailsClearly(t *testing.T) {
	db, _ := openTestDB(t)
	f := newFixture(t, db, "Acme")
	db.Close()
	_, err := db.AppendEntries(context.Background(), f.tenant.ID, f.interview.ID, []Entry{{Seq: 1, Speaker: SpeakerCandidate, Text: "x"}})
	if err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("err = %v, want database closed", err)
	}
}

func TestOutboxRowsAreOrderedAndReadAfterACursor(t *testing.T) {
	db, _ := openTestDB(t)
	ctx := context.Background()
	f := newFixture(t, db, "Acme")
	// Creating the fixture's interview wrote its interview.scheduled.
	before, err := db.OutboxAfter(ctx, 0, 10)
	if err != nil || len(before) != 1 || before[0].Type != "interview.scheduled" {
		t.Fatalf("outbox after creating an interview = %+v, %v", before, err)
	}
	cursor := before[0].ID
	for _, typ := range []string{"interview.started", "interview.completed"} {
		if err := db.inWrite(ctx, func(tx *sql.Tx) error {
			_, err := db.insertOutbox(ctx, tx, f.tenant.ID, typ, f.interview.ID, map[string]string{"interview_id": f.interview.ID})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	// A transaction that fails leaves no row.
	_ = db.inWrite(ctx, func(tx *sql.Tx) error {
		if _, err := db.insertOutbox(ctx, tx, f.tenant.ID, "interview.failed", f.interview.ID, nil); err != nil {
			return err
		}
		return errors.New("rolled back")
	})
	all, err := db.OutboxAfter(ctx, cursor, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Type != "interview.started" || all[1].Type != "interview.completed" || all[0].ID >= all[1].ID {
		t.Fatalf("outbox = %+v, want started then completed", all)
	}
	rest, err := db.OutboxAfter(ctx, all[0].ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 1 || rest[0].ID != all[1].ID || rest[0].SubjectID != f.interview.ID {
		t.Fatalf("after cursor = %+v, want only the second", rest)
	}
}

func TestInstallIDIsCreatedOnceAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "candor.db")
	ctx := context.Background()
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := db.InstallID(ctx)
	if err != nil || !regexp.MustCompile(`^[a-z0-9]{8}$`).MatchString(id) {
		t.Fatalf("InstallID = %q, %v", id, err)
	}
	db.Close()
	db, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if again, err := db.InstallID(ctx); err != nil || again != id {
		t.Errorf("after reopening: %q, %v; want %q", again, err, id)
	}
}
