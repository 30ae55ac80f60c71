package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"candor/store"
	"candor/web"
)

// bootstrapData creates a data dir with a tenant and returns the bootstrap
// answer.
func bootstrapData(t *testing.T, dir string) web.BootstrapResult {
	t.Helper()
	var boot bytes.Buffer
	if err := run(context.Background(), []string{"admin", "bootstrap", "--tenant", "Acme", "--email", "o@acme.test", "--password", "correct horse", "--data", dir}, nil, &boot, io.Discard); err != nil {
		t.Fatal(err)
	}
	var res web.BootstrapResult
	if err := json.Unmarshal(boot.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// seedDir adds n transcript entries (in interviews of per entries) to the
// data dir while no server runs, and returns the interview ids.
func seedDir(t *testing.T, dir, tenantID string, n, per int) []string {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, dbFileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ids, err := seedTranscripts(ctx, db, tenantID, n, per, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestBackupTakenWhileTheControlPlaneWritesRestoresIntoAFreshDirThatServesTheSameData(t *testing.T) {
	src := t.TempDir()
	boot := bootstrapData(t, src)
	ids := seedDir(t, src, boot.TenantID, 3000, 1000)
	// A recording, as the bridge stores it.
	recRel := filepath.Join("recordings", boot.TenantID, ids[0], "000000000000-seg1.wav")
	recBody := append([]byte("RIFF\x24\x00\x00\x00WAVE"), bytes.Repeat([]byte{7}, 4096)...)
	if err := os.MkdirAll(filepath.Dir(filepath.Join(src, recRel)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, recRel), recBody, 0o600); err != nil {
		t.Fatal(err)
	}

	file := filepath.Join(t.TempDir(), "candor.tar.gz")
	var created atomic.Int64
	var out, progress bytes.Buffer
	serveWhile(t, src, func(base string) {
		// Writes through the API go on for the whole backup.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				apiCall(t, base, boot.APIKey, "POST", "/api/v1/positions", fmt.Sprintf(`{"title":"Role %d","description":"","questions":["Why?"],"rubric":[]}`, i), http.StatusCreated, nil)
				created.Add(1)
			}
		})
		waitUntil(t, 20*time.Second, "writes before the backup", func() bool { return created.Load() >= 5 })
		err := run(context.Background(), []string{"backup", "--data", src, "--to", file}, nil, &out, &progress)
		before := created.Load()
		waitUntil(t, 20*time.Second, "writes after the backup", func() bool { return created.Load() >= before+5 })
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatalf("backup: %v\n%s", err, progress.String())
		}
	})
	if !strings.Contains(out.String(), "3000 transcript entries") || !strings.Contains(out.String(), "holds the secret key") {
		t.Errorf("backup output does not say what it holds:\n%s", out.String())
	}
	if !strings.Contains(progress.String(), "snapshotting the database") {
		t.Errorf("backup shows no progress:\n%s", progress.String())
	}

	// The manifest records the snapshot's fingerprint; the restore checks
	// the database against it.
	m := readManifest(t, file)
	if m.Fingerprint.Entries() != 3000 || !m.SecretKey || m.Recordings != 1 {
		t.Fatalf("manifest %+v, want 3000 entries, the key and 1 recording", m)
	}
	positions := m.Fingerprint.Rows["positions"]
	if positions < 1+5 || positions > 1+created.Load() {
		t.Errorf("backup holds %d positions; the API created %d (after the first 5 at least)", positions, created.Load())
	}

	dst := filepath.Join(t.TempDir(), "restored")
	out.Reset()
	if err := run(context.Background(), []string{"restore", "--from", file, "--data", dst}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	got, err := store.FingerprintOf(context.Background(), filepath.Join(dst, dbFileName))
	if err != nil {
		t.Fatal(err)
	}
	for table, n := range m.Fingerprint.Rows {
		if got.Rows[table] != n {
			t.Errorf("restored %s has %d rows, backup %d", table, got.Rows[table], n)
		}
	}
	if got.Transcripts != m.Fingerprint.Transcripts {
		t.Errorf("restored transcripts differ: %s, want %s", got.Transcripts, m.Fingerprint.Transcripts)
	}
	for _, f := range []string{"secret.key", recRel} {
		a, _ := os.ReadFile(filepath.Join(src, f))
		b, err := os.ReadFile(filepath.Join(dst, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("restored %s differs from the original (%v)", f, err)
		}
	}

	// The restored dir serves: the same API key, the same transcript.
	serveWhile(t, dst, func(base string) {
		var tr struct {
			Entries []struct {
				Seq  int64
				Text string
			}
		}
		apiCall(t, base, boot.APIKey, "GET", "/api/v1/interviews/"+ids[2]+"/transcript", "", http.StatusOK, &tr)
		if len(tr.Entries) != 1000 || tr.Entries[999].Seq != 1000 || !strings.Contains(tr.Entries[0].Text, "utterance 1 of interview 3") {
			t.Errorf("restored transcript has %d entries (%+v...)", len(tr.Entries), tr.Entries[:min(1, len(tr.Entries))])
		}
	})
}

func readManifest(t *testing.T, file string) backupManifest {
	t.Helper()
	dir := t.TempDir()
	m, err := extractBackup(context.Background(), file, dir, func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRestoreRefusesANonEmptyDataDirAndBadBackupsAndChangesNothing(t *testing.T) {
	src := t.TempDir()
	boot := bootstrapData(t, src)
	seedDir(t, src, boot.TenantID, 10, 10)
	good := filepath.Join(t.TempDir(), "b.tar")
	if err := run(context.Background(), []string{"backup", "--data", src, "--to", good}, nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"backup", "--data", src, "--to", good}, nil, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("a second backup over the first: %v, want a refusal", err)
	}

	// A tar with a path escaping the data dir, after a valid manifest.
	evil := filepath.Join(t.TempDir(), "evil.tar")
	{
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		mb, _ := json.Marshal(backupManifest{Format: 1})
		tw.WriteHeader(&tar.Header{Name: backupManifestName, Size: int64(len(mb)), Mode: 0o600})
		tw.Write(mb)
		tw.WriteHeader(&tar.Header{Name: "recordings/../../escape", Size: 1, Mode: 0o600})
		tw.Write([]byte("x"))
		tw.Close()
		os.WriteFile(evil, buf.Bytes(), 0o600)
	}
	junk := filepath.Join(t.TempDir(), "junk.tar")
	os.WriteFile(junk, []byte("not a tar file at all"), 0o600)

	nonEmpty := t.TempDir()
	os.WriteFile(filepath.Join(nonEmpty, "keep.txt"), []byte("mine"), 0o600)

	tests := []struct {
		name, from, data string
		want             string
	}{
		{"a non-empty data dir without --force", good, nonEmpty, "not empty"},
		{"a file that is no tar", junk, filepath.Join(t.TempDir(), "a"), "not a Candor backup"},
		{"an entry escaping the data dir", evil, filepath.Join(t.TempDir(), "b"), "unexpected entry"},
		{"a missing file", filepath.Join(t.TempDir(), "nope.tar"), filepath.Join(t.TempDir(), "c"), "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), []string{"restore", "--from", tt.from, "--data", tt.data}, nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("restore: %v, want an error mentioning %q", err, tt.want)
			}
			if _, err := os.Stat(filepath.Join(tt.data, dbFileName)); err == nil {
				t.Error("a database appeared in the data dir")
			}
			siblings, _ := filepath.Glob(filepath.Join(filepath.Dir(tt.data), ".*restoring*"))
			if len(siblings) != 0 {
				t.Errorf("work dirs left behind: %v", siblings)
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(nonEmpty, "keep.txt")); string(b) != "mine" {
		t.Error("the non-empty data dir was changed")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(nonEmpty), "escape")); err == nil {
		t.Error("the evil entry escaped")
	}

	// --force moves the old content aside instead of deleting it.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"restore", "--from", good, "--data", nonEmpty, "--force"}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	aside, _ := filepath.Glob(nonEmpty + ".replaced-*")
	if len(aside) != 1 {
		t.Fatalf("old content not moved aside: %v", aside)
	}
	if b, _ := os.ReadFile(filepath.Join(aside[0], "keep.txt")); string(b) != "mine" {
		t.Error("the old content was not kept")
	}
	if !strings.Contains(out.String(), "10 transcript entries") {
		t.Errorf("restore output: %s", out.String())
	}
}

func TestBackupWithTheKeyInTheEnvironmentLeavesTheKeyOutAndSaysSo(t *testing.T) {
	src := t.TempDir()
	env := map[string]string{"CANDOR_SECRET_KEY": strings.Repeat("ab", 32)}
	if err := run(context.Background(), []string{"admin", "bootstrap", "--tenant", "Acme", "--email", "o@acme.test", "--password", "correct horse", "--data", src}, env, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "b.tar")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"backup", "--data", src, "--to", file}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "CANDOR_SECRET_KEY is set, so the backup holds no key") {
		t.Errorf("output does not say the key is left out:\n%s", out.String())
	}
	if m := readManifest(t, file); m.SecretKey {
		t.Error("manifest says the key is included")
	}
	dst := filepath.Join(t.TempDir(), "r")
	out.Reset()
	if err := run(context.Background(), []string{"restore", "--from", file, "--data", dst}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dst, "secret.key")); err == nil {
		t.Error("a key file was restored")
	}
	if !strings.Contains(out.String(), "CANDOR_SECRET_KEY") {
		t.Errorf("restore does not say the key is needed:\n%s", out.String())
	}
}

func TestServingWithReplicateToThenRestoreFromReplicaGivesTheSameDatabase(t *testing.T) {
	src := t.TempDir()
	boot := bootstrapData(t, src)
	seedDir(t, src, boot.TenantID, 2000, 500)
	replicaDir := t.TempDir()
	work := t.TempDir()
	serveWhile(t, src, func(base string) {
		for i := range 20 {
			apiCall(t, base, boot.APIKey, "POST", "/api/v1/positions", fmt.Sprintf(`{"title":"Role %d","description":"","questions":["Why?"],"rubric":[]}`, i), http.StatusCreated, nil)
		}
	}, "--replicate-to=file://"+replicaDir, "--replicate-work-dir="+work)
	// The control plane stopped: its last sync holds every commit.
	want, err := store.FingerprintOf(context.Background(), filepath.Join(src, dbFileName))
	if err != nil {
		t.Fatal(err)
	}
	if want.Rows["positions"] != 21 {
		t.Fatalf("source has %d positions, want 21", want.Rows["positions"])
	}
	dst := filepath.Join(t.TempDir(), "fresh")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"restore", "--from-replica", "file://" + replicaDir, "--data", dst}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	got, err := store.FingerprintOf(context.Background(), filepath.Join(dst, dbFileName))
	if err != nil {
		t.Fatal(err)
	}
	for table, n := range want.Rows {
		if got.Rows[table] != n {
			t.Errorf("restored %s has %d rows, source %d", table, got.Rows[table], n)
		}
	}
	if got.Transcripts != want.Transcripts || !strings.Contains(out.String(), want.Transcripts) {
		t.Errorf("restored transcripts %s, source %s (output %q)", got.Transcripts, want.Transcripts, out.String())
	}
}

func TestReplicateWorkDirInsideTheDataDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	err := run(context.Background(), []string{"--addr=127.0.0.1:0", "--data=" + dir, "--warm-pool=0", "--replicate-to=file://" + t.TempDir(), "--replicate-work-dir=" + filepath.Join(dir, "ls")}, map[string]string{"PATH": "/usr/bin:/bin"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--replicate-work-dir") || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("start-up with the work dir in the data dir: %v", err)
	}
}
