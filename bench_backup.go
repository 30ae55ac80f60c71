package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"candor/store"
	"candor/web"
)

// benchBackup serves `candor bench backup`: it fills a fresh data dir with
// --entries transcript entries, then times `candor backup` and `candor
// restore` of it, the figures issue 11 asks for (1 million entries).
func benchBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("candor bench backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	entries := fs.Int("entries", 1_000_000, "transcript entries to create")
	perInterview := fs.Int("per-interview", 2000, "entries per interview")
	dir := fs.String("dir", "", "work directory (default: a new temporary one, removed afterwards)")
	gz := fs.Bool("gzip", false, "compress the backup (.tar.gz)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *entries < 1 || *perInterview < 1 {
		return errors.New("--entries and --per-interview must be at least 1")
	}
	work := *dir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "candor-bench-backup-*"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	data := filepath.Join(work, "data")
	t0 := time.Now()
	if err := seedData(ctx, data, *entries, *perInterview, func(done int) {
		fmt.Fprintf(stderr, "seeding: %d/%d entries\n", done, *entries)
	}); err != nil {
		return err
	}
	st, err := os.Stat(filepath.Join(data, dbFileName))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded %d entries (%.1f MB database) in %s\n", *entries, float64(st.Size())/1e6, time.Since(t0).Round(time.Millisecond))

	file := filepath.Join(work, "backup.tar")
	if *gz {
		file += ".gz"
	}
	t1 := time.Now()
	if err := run(ctx, []string{"backup", "--data", data, "--to", file}, nil, io.Discard, io.Discard); err != nil {
		return err
	}
	backupTook := time.Since(t1)
	bst, err := os.Stat(file)
	if err != nil {
		return err
	}
	t2 := time.Now()
	if err := run(ctx, []string{"restore", "--from", file, "--data", filepath.Join(work, "restored")}, nil, io.Discard, io.Discard); err != nil {
		return err
	}
	restoreTook := time.Since(t2)
	fmt.Fprintf(stdout, "backup: %s (%.1f MB file)\nrestore: %s (extract, quick_check, fingerprint)\n",
		backupTook.Round(time.Millisecond), float64(bst.Size())/1e6, restoreTook.Round(time.Millisecond))
	return nil
}

// seedData creates a data dir with one tenant and n transcript entries,
// perInterview to an interview, through the store's own write path.
// progress is called every 100 000 entries.
func seedData(ctx context.Context, data string, n, perInterview int, progress func(done int)) error {
	key, err := store.LoadSecretKey(data, "")
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, filepath.Join(data, dbFileName), store.Options{SecretKey: key})
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := web.Bootstrap(ctx, db, "Bench", "bench@example.test", "bench password")
	if err != nil {
		return err
	}
	_, err = seedTranscripts(ctx, db, res.TenantID, n, perInterview, progress)
	return err
}

// seedTranscripts adds interviews holding n entries in all to tenantID and
// returns their ids.
func seedTranscripts(ctx context.Context, db *store.DB, tenantID string, n, perInterview int, progress func(done int)) ([]string, error) {
	pos, err := db.CreatePosition(ctx, store.Position{TenantID: tenantID, Title: "Backend engineer", Questions: []string{"Tell me about a system you built."}})
	if err != nil {
		return nil, err
	}
	const batch = 500
	var ids []string
	done := 0
	for done < n {
		cand, err := db.CreateCandidate(ctx, store.Candidate{TenantID: tenantID, Name: fmt.Sprintf("Candidate %d", len(ids)+1), Email: fmt.Sprintf("c%d@example.test", len(ids)+1)})
		if err != nil {
			return nil, err
		}
		iv, err := db.CreateInterview(ctx, store.Interview{TenantID: tenantID, PositionID: pos.ID, CandidateID: cand.ID}, "")
		if err != nil {
			return nil, err
		}
		ids = append(ids, iv.ID)
		for seq := 1; seq <= perInterview && done < n; {
			es := make([]store.Entry, 0, batch)
			for ; len(es) < batch && seq <= perInterview && done+len(es) < n; seq++ {
				speaker := "candidate"
				if seq%2 == 1 {
					speaker = "interviewer"
				}
				ms := int64(seq) * 4000
				es = append(es, store.Entry{Seq: int64(seq), Speaker: speaker, Text: fmt.Sprintf("utterance %d of interview %d: the quick brown fox jumps over the lazy dog", seq, len(ids)), StartMS: ms, EndMS: ms + 3000, Confidence: 0.9})
			}
			if _, err := db.AppendEntries(ctx, tenantID, iv.ID, es); err != nil {
				return nil, err
			}
			before := done
			done += len(es)
			if progress != nil && done/100_000 > before/100_000 {
				progress(done)
			}
		}
	}
	return ids, nil
}
