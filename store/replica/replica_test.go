package replica_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"candor/store"
	"candor/store/replica"
)

// clearAWSCABundle unsets AWS_CA_BUNDLE for the test: this environment
// exports one, and the AWS SDK then fails to build its HTTP client even for
// a plain-http endpoint.
func clearAWSCABundle(t *testing.T) {
	t.Helper()
	if v, ok := os.LookupEnv("AWS_CA_BUNDLE"); ok {
		t.Setenv("AWS_CA_BUNDLE", v) // restored after the test
		os.Unsetenv("AWS_CA_BUNDLE")
	}
}

func TestReplicaRestoredIntoAFreshDirEqualsTheSource(t *testing.T) {
	clearAWSCABundle(t)
	backend := s3mem.New()
	if err := backend.CreateBucket("candor"); err != nil {
		t.Fatal(err)
	}
	s3srv := httptest.NewServer(gofakes3.New(backend).Server())
	defer s3srv.Close()
	s3env := map[string]string{
		"AWS_ACCESS_KEY_ID":     "test-key",
		"AWS_SECRET_ACCESS_KEY": "test-secret",
		"AWS_REGION":            "us-east-1",
		"AWS_ENDPOINT_URL_S3":   s3srv.URL,
	}
	tests := []struct {
		name string
		url  func(t *testing.T) string
		env  map[string]string
	}{
		{"a directory", func(t *testing.T) string { return "file://" + t.TempDir() }, nil},
		{"an S3-compatible bucket, endpoint from AWS_ENDPOINT_URL_S3", func(*testing.T) string { return "s3://candor/prod/db" }, s3env},
		{"an S3-compatible bucket, endpoint in the URL", func(*testing.T) string { return "s3://candor/other?endpoint=" + s3srv.URL }, map[string]string{"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			url := tt.url(t)
			dbPath := filepath.Join(t.TempDir(), "candor.db")
			work := t.TempDir()
			db, err := store.Open(ctx, dbPath, store.Options{ExternalCheckpoints: true})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := replica.Start(ctx, dbPath, replica.Config{URL: url, WorkDir: work, Env: tt.env})
			if err != nil {
				db.Close()
				t.Fatal(err)
			}
			// Enough writes, from several writers at once, that the WAL
			// passes Litestream's checkpoint threshold (1000 pages) while
			// it replicates.
			seed(t, ctx, db, 4, 3000)
			if err := rep.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if err := rep.Close(ctx); err != nil {
				t.Fatal(err)
			}
			want, err := store.FingerprintOf(ctx, dbPath)
			if err != nil {
				t.Fatal(err)
			}
			if want.Entries() != 12000 {
				t.Fatalf("source holds %d entries, want 12000", want.Entries())
			}
			if entries, _ := filepath.Glob(filepath.Join(filepath.Dir(dbPath), ".*litestream*")); len(entries) != 0 {
				t.Errorf("litestream working files in the data dir: %v", entries)
			}

			restored := filepath.Join(t.TempDir(), "fresh", "candor.db")
			if err := os.MkdirAll(filepath.Dir(restored), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := replica.Restore(ctx, url, tt.env, restored, nil); err != nil {
				t.Fatal(err)
			}
			got, err := store.FingerprintOf(ctx, restored)
			if err != nil {
				t.Fatal(err)
			}
			for table, n := range want.Rows {
				if got.Rows[table] != n {
					t.Errorf("restored %s: %d rows, source %d", table, got.Rows[table], n)
				}
			}
			if got.Transcripts != want.Transcripts {
				t.Errorf("restored transcripts checksum %s, source %s", got.Transcripts, want.Transcripts)
			}
			// The restored file is a working Candor database.
			db2, err := store.Open(ctx, restored, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			db2.Close()
		})
	}
}

// seed writes interviews×per transcript entries, one writer per interview.
func seed(t *testing.T, ctx context.Context, db *store.DB, interviews, per int) {
	t.Helper()
	ten, _, err := db.CreateTenantWithOwner(ctx, "Acme", "o@acme.test", "Owner", "x")
	if err != nil {
		t.Fatal(err)
	}
	pos, err := db.CreatePosition(ctx, store.Position{TenantID: ten.ID, Title: "Engineer"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range interviews {
		cand, err := db.CreateCandidate(ctx, store.Candidate{TenantID: ten.ID, Name: "C", Email: fmt.Sprintf("c%d@x.test", i)})
		if err != nil {
			t.Fatal(err)
		}
		iv, err := db.CreateInterview(ctx, store.Interview{TenantID: ten.ID, PositionID: pos.ID, CandidateID: cand.ID}, "")
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for seq := 1; seq <= per; seq += 50 {
				var es []store.Entry
				for s := seq; s < seq+50 && s <= per; s++ {
					es = append(es, store.Entry{Seq: int64(s), Speaker: "candidate", Text: strings.Repeat(fmt.Sprintf("word %d ", s), 40), StartMS: int64(s) * 1000, EndMS: int64(s)*1000 + 900})
				}
				if _, err := db.AppendEntries(ctx, ten.ID, iv.ID, es); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestRestoreFromAnEmptyReplicaSaysWhatIsWrong(t *testing.T) {
	err := replica.Restore(context.Background(), "file://"+t.TempDir(), nil, filepath.Join(t.TempDir(), "x.db"), nil)
	if err == nil || !strings.Contains(err.Error(), "holds no database yet") {
		t.Fatalf("restore from an empty replica: %v", err)
	}
}

func TestCheckURLAcceptsOnlyFileAndS3(t *testing.T) {
	for u, ok := range map[string]bool{
		"file:///var/backups/candor": true,
		"s3://bucket/candor":         true,
		"s3://bucket":                true,
		"file://relative/dir":        false,
		"gs://bucket/x":              false,
		"s3:///nobucket":             false,
		"/just/a/path":               false,
	} {
		if err := replica.CheckURL(u); (err == nil) != ok {
			t.Errorf("CheckURL(%q) = %v, want ok=%v", u, err, ok)
		}
	}
}
