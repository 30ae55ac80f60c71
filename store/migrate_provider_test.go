package store

import (
	"context"
	"database/sql"
	"strings"
	"testing"
)

// TestProviderMigrationKeepsMachinesAndTheirForeignKeys puts a database back
// in the state before 0030 (provider with its CHECK, a machine stored), opens
// it again so 0030 runs, and checks that the machine survived, that
// foreign keys still hold and cascade, and that a provider outside the old
// list is now stored.
func TestProviderMigrationKeepsMachinesAndTheirForeignKeys(t *testing.T) {
	ctx := context.Background()
	db, path := openTestDB(t)
	a := newFixture(t, db, "Acme")
	m, err := db.CreateMachine(ctx, Machine{TenantID: a.tenant.ID, InterviewID: a.interview.ID, Provider: "fly",
		ProviderID: "e784", App: "candor-acme", Region: "ams", State: MachineRunning, URL: "http://x"})
	if err != nil {
		t.Fatal(err)
	}
	err = db.inWrite(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			ALTER TABLE machines RENAME COLUMN provider TO provider_text;
			ALTER TABLE machines ADD COLUMN provider TEXT NOT NULL DEFAULT 'local' CHECK (provider IN ('local', 'fly'));
			UPDATE machines SET provider = provider_text;
			ALTER TABLE machines DROP COLUMN provider_text;
			DELETE FROM schema_migrations WHERE version = 30;`)
		return err
	})
	if err != nil {
		t.Fatalf("restore the pre-0030 schema: %v", err)
	}
	db.Close()

	db, err = Open(ctx, path, Options{SecretKey: testKey})
	if err != nil {
		t.Fatalf("reopen (applies 0030): %v", err)
	}
	defer db.Close()
	var schema string
	if err := db.read.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = 'machines'`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(schema, "'fly'") {
		t.Errorf("machines still checks the provider: %s", schema)
	}
	got, err := db.LatestMachine(ctx, a.tenant.ID, a.interview.ID)
	if err != nil || got.ID != m.ID || got.Provider != "fly" || got.ProviderID != "e784" || got.App != "candor-acme" || got.URL != "http://x" {
		t.Fatalf("machine after the migration = %+v, %v; want %+v", got, err, m)
	}
	if _, err := db.CreateMachine(ctx, Machine{TenantID: a.tenant.ID, InterviewID: a.interview.ID, Provider: "nomad"}); err != nil {
		t.Errorf("a provider outside the old list: %v", err)
	}
	if _, err := db.CreateMachine(ctx, Machine{TenantID: a.tenant.ID, InterviewID: "iv_nowhere", Provider: "local"}); err == nil {
		t.Error("a machine of no interview was stored: the foreign key is gone")
	}
	rows, err := db.read.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if rows.Next() {
		t.Error("foreign_key_check reports violations after the migration")
	}
}
