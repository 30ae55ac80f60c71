package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Actor is who did something the audit log records.
type Actor struct {
	Kind string // user, api_key or system
	ID   string
}

// AuditEntry is one row of the audit log: IDs and counts, never personal
// data (no names, emails or words).
type AuditEntry struct {
	ID                     int64
	TenantID               string
	At                     time.Time
	Actor                  Actor
	Action                 string
	SubjectKind, SubjectID string
	Data                   json.RawMessage
}

// Erased is what an erasure removed from the database, so the caller can
// remove the files that belonged to it.
type Erased struct {
	InterviewIDs []string
	// RecordingPaths are the interviews' recording_path values (relative
	// to the data dir).
	RecordingPaths []string
	// MachineIDs are the provider IDs of the interviews' machines (a local
	// processor's working directory is named by it).
	MachineIDs []string
	Entries    int64
}

// EraseInterview deletes one interview and everything that holds its
// words — transcript, events, machines, scorecard, reviews, outbox rows,
// webhook deliveries (bodies included), search index rows — and records
// the erasure in the audit log, in one transaction. ErrNotFound if the
// interview is not the tenant's.
func (db *DB) EraseInterview(ctx context.Context, tenantID, interviewID string, by Actor) (Erased, error) {
	var out Erased
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		if err := ensureExists(ctx, tx, "interviews", tenantID, interviewID, "interview"); err != nil {
			return err
		}
		if err := eraseInterviewTx(ctx, tx, tenantID, interviewID, &out); err != nil {
			return err
		}
		return insertAudit(ctx, tx, tenantID, by, "interview.erased", "interview", interviewID, db.nowUTC(),
			map[string]any{"transcript_entries": out.Entries, "recordings": len(out.RecordingPaths)})
	})
	if err != nil {
		return Erased{}, err
	}
	return out, db.afterErasure(ctx)
}

// EraseCandidate deletes a candidate, every interview of theirs (as
// EraseInterview does) and the outbox and webhook rows about them, records
// the erasure in the audit log and writes candidate.erased to the outbox,
// in one transaction. ErrNotFound if the candidate is not the tenant's.
func (db *DB) EraseCandidate(ctx context.Context, tenantID, candidateID string, by Actor) (Erased, error) {
	var out Erased
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		if err := ensureExists(ctx, tx, "candidates", tenantID, candidateID, "candidate"); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT id FROM interviews WHERE tenant_id = ? AND candidate_id = ? ORDER BY created_at`, tenantID, candidateID)
		if err != nil {
			return fmt.Errorf("store: erase candidate: %w", err)
		}
		ids, err := scanIDs(rows)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := eraseInterviewTx(ctx, tx, tenantID, id, &out); err != nil {
				return err
			}
		}
		if err := eraseSubjectTx(ctx, tx, tenantID, candidateID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM candidates WHERE tenant_id = ? AND id = ?`, tenantID, candidateID); err != nil {
			return fmt.Errorf("store: erase candidate: %w", err)
		}
		now := db.nowUTC()
		if err := insertAudit(ctx, tx, tenantID, by, "candidate.erased", "candidate", candidateID, now,
			map[string]any{"interviews": len(ids), "transcript_entries": out.Entries, "recordings": len(out.RecordingPaths)}); err != nil {
			return err
		}
		_, err = db.insertOutbox(ctx, tx, tenantID, "candidate.erased", candidateID,
			map[string]any{"candidate_id": candidateID, "interview_ids": nonNil(ids), "erased_at": now})
		return err
	})
	if err != nil {
		return Erased{}, err
	}
	return out, db.afterErasure(ctx)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func eraseInterviewTx(ctx context.Context, tx *sql.Tx, tenantID, id string, out *Erased) error {
	var rec string
	if err := tx.QueryRowContext(ctx, `SELECT recording_path FROM interviews WHERE tenant_id = ? AND id = ?`, tenantID, id).Scan(&rec); err != nil {
		return fmt.Errorf("store: erase interview %s: %w", id, err)
	}
	out.InterviewIDs = append(out.InterviewIDs, id)
	if rec != "" {
		out.RecordingPaths = append(out.RecordingPaths, rec)
	}
	rows, err := tx.QueryContext(ctx, `SELECT provider_id FROM machines WHERE tenant_id = ? AND interview_id = ? AND provider_id <> ''`, tenantID, id)
	if err != nil {
		return fmt.Errorf("store: erase interview %s: %w", id, err)
	}
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			rows.Close()
			return err
		}
		out.MachineIDs = append(out.MachineIDs, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var n int64
	tx.QueryRowContext(ctx, `SELECT count(*) FROM transcript_entries WHERE tenant_id = ? AND interview_id = ?`, tenantID, id).Scan(&n)
	out.Entries += n
	// Children first, explicitly: the result does not depend on foreign
	// key enforcement being on, and triggers on them (the search index)
	// run for each row.
	for _, q := range []string{
		`DELETE FROM transcript_entries WHERE tenant_id = ? AND interview_id = ?`,
		`DELETE FROM interview_events WHERE tenant_id = ? AND interview_id = ?`,
		`DELETE FROM scorecards WHERE tenant_id = ? AND interview_id = ?`,
		`DELETE FROM reviews WHERE tenant_id = ? AND interview_id = ?`,
		`DELETE FROM machines WHERE tenant_id = ? AND interview_id = ?`,
		`DELETE FROM interviews WHERE tenant_id = ? AND id = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, tenantID, id); err != nil {
			return fmt.Errorf("store: erase interview %s: %w", id, err)
		}
	}
	return eraseSubjectTx(ctx, tx, tenantID, id)
}

// eraseSubjectTx deletes the outbox rows and webhook deliveries about
// subject: their data and bodies may hold what was erased.
func eraseSubjectTx(ctx context.Context, tx *sql.Tx, tenantID, subject string) error {
	for _, q := range []string{
		`DELETE FROM webhook_deliveries WHERE tenant_id = ? AND subject_id = ?`,
		`DELETE FROM outbox WHERE tenant_id = ? AND subject_id = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, tenantID, subject); err != nil {
			return fmt.Errorf("store: erase rows about %s: %w", subject, err)
		}
	}
	return nil
}

// afterErasure makes erased text unrecoverable from the files: the FTS5
// index (when there is one) rewrites its segments without the deleted
// tokens, and the WAL is checkpointed into the database (where
// secure_delete has zeroed the freed cells) and truncated.
func (db *DB) afterErasure(ctx context.Context) error {
	var fts int
	db.write.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'search_fts'`).Scan(&fts)
	if fts > 0 {
		if _, err := db.write.ExecContext(ctx, `INSERT INTO search_fts (search_fts) VALUES ('optimize')`); err != nil {
			return fmt.Errorf("store: after erasure: optimize search index: %w", err)
		}
	}
	if db.externalCheckpoints {
		// Litestream holds the WAL until it has copied it, then
		// checkpoints it itself (README: erasure and replicas).
		return nil
	}
	return db.Checkpoint(ctx)
}

// Checkpoint copies the WAL into the database file and truncates it.
func (db *DB) Checkpoint(ctx context.Context) error {
	var busy, logFrames, checkpointed int
	if err := db.write.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &checkpointed); err != nil {
		return fmt.Errorf("store: checkpoint: %w", err)
	}
	if busy != 0 {
		return fmt.Errorf("store: checkpoint: a reader held the WAL (%d of %d frames copied)", checkpointed, logFrames)
	}
	return nil
}

func insertAudit(ctx context.Context, tx *sql.Tx, tenantID string, by Actor, action, subjectKind, subjectID string, at time.Time, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	if by.Kind == "" {
		by.Kind = "system"
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_log (tenant_id, at, actor_kind, actor_id, action, subject_kind, subject_id, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, tenantID, fmtTime(at), by.Kind, by.ID, action, subjectKind, subjectID, string(raw))
	if err != nil {
		return fmt.Errorf("store: audit %s: %w", action, mapErr(err))
	}
	return nil
}

// AuditLog returns the tenant's audit entries, newest first, up to limit.
func (db *DB) AuditLog(ctx context.Context, tenantID string, limit int) ([]AuditEntry, error) {
	var out []AuditEntry
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = queryAll(ctx, tx, func(s scanner) (AuditEntry, error) {
			var a AuditEntry
			var data string
			err := s.Scan(&a.ID, &a.TenantID, timeCol{&a.At}, &a.Actor.Kind, &a.Actor.ID, &a.Action, &a.SubjectKind, &a.SubjectID, &data)
			a.Data = json.RawMessage(data)
			return a, err
		}, `SELECT id, tenant_id, at, actor_kind, actor_id, action, subject_kind, subject_id, data FROM audit_log
			WHERE tenant_id = ? ORDER BY id DESC LIMIT ?`, tenantID, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: audit log: %w", err)
	}
	return out, nil
}

// Retention is a tenant's retention policy; nil keeps forever.
type Retention struct {
	RecordingsDays, TranscriptsDays *int
	UpdatedAt                       time.Time
}

// Retention returns the tenant's policy (zero: keep everything).
func (db *DB) Retention(ctx context.Context, tenantID string) (Retention, error) {
	var r Retention
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		var rec, tr sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT recordings_days, transcripts_days, updated_at FROM retention_policies WHERE tenant_id = ?`,
			tenantID).Scan(&rec, &tr, timeCol{&r.UpdatedAt})
		if err == sql.ErrNoRows {
			return nil
		}
		if rec.Valid {
			v := int(rec.Int64)
			r.RecordingsDays = &v
		}
		if tr.Valid {
			v := int(tr.Int64)
			r.TranscriptsDays = &v
		}
		return err
	})
	if err != nil {
		return Retention{}, fmt.Errorf("store: retention: %w", err)
	}
	return r, nil
}

// SetRetention stores the tenant's policy.
func (db *DB) SetRetention(ctx context.Context, tenantID string, r Retention, by Actor) (Retention, error) {
	now := db.nowUTC()
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO retention_policies (tenant_id, recordings_days, transcripts_days, updated_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id) DO UPDATE SET recordings_days = excluded.recordings_days,
			transcripts_days = excluded.transcripts_days, updated_at = excluded.updated_at`,
			tenantID, r.RecordingsDays, r.TranscriptsDays, fmtTime(now))
		if err != nil {
			return fmt.Errorf("store: set retention: %w", mapErr(err))
		}
		return insertAudit(ctx, tx, tenantID, by, "retention.updated", "tenant", tenantID, now,
			map[string]any{"recordings_days": r.RecordingsDays, "transcripts_days": r.TranscriptsDays})
	})
	r.UpdatedAt = now
	return r, err
}

// RetentionDue is an ended interview whose recording or transcript has
// outlived its tenant's policy.
type RetentionDue struct {
	TenantID, InterviewID, RecordingPath string
	Recording, Transcript                bool // which of the two is due
}

// RetentionDue lists, across tenants, ended interviews with a recording or
// transcript past its tenant's retention at now.
func (db *DB) RetentionDue(ctx context.Context, now time.Time, limit int) ([]RetentionDue, error) {
	var out []RetentionDue
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = queryAll(ctx, tx, func(s scanner) (RetentionDue, error) {
			var r RetentionDue
			return r, s.Scan(&r.TenantID, &r.InterviewID, &r.RecordingPath, &r.Recording, &r.Transcript)
		}, `WITH c AS (
				SELECT i.tenant_id, i.id, i.recording_path, i.ended_at,
					p.recordings_days IS NOT NULL AND i.recording_path <> ''
						AND i.ended_at < strftime('%Y-%m-%dT%H:%M:%fZ', ?1, '-' || p.recordings_days || ' days') AS rec,
					p.transcripts_days IS NOT NULL
						AND i.ended_at < strftime('%Y-%m-%dT%H:%M:%fZ', ?1, '-' || p.transcripts_days || ' days')
						AND EXISTS (SELECT 1 FROM transcript_entries e WHERE e.tenant_id = i.tenant_id AND e.interview_id = i.id) AS tr
				FROM interviews i JOIN retention_policies p ON p.tenant_id = i.tenant_id
				WHERE i.status IN ('completed', 'failed', 'cancelled') AND i.ended_at IS NOT NULL)
			SELECT tenant_id, id, recording_path, rec, tr FROM c WHERE rec OR tr ORDER BY ended_at LIMIT ?2`,
			fmtSQLTime(now), limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: retention due: %w", err)
	}
	return out, nil
}

// fmtSQLTime is t as SQLite's date functions read it.
func fmtSQLTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }

// SweepRecording clears an interview's recording (the caller removes the
// files) and records it in the audit log.
func (db *DB) SweepRecording(ctx context.Context, tenantID, interviewID string, days int) error {
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE interviews SET recording_path = '' WHERE tenant_id = ? AND id = ?`, tenantID, interviewID); err != nil {
			return fmt.Errorf("store: sweep recording: %w", err)
		}
		return insertAudit(ctx, tx, tenantID, Actor{Kind: "system", ID: "retention"}, "recording.expired", "interview", interviewID,
			db.nowUTC(), map[string]any{"recordings_days": days})
	})
}

// SweepTranscript deletes an interview's transcript (and the scorecard and
// outbox rows quoting it) and records it in the audit log.
func (db *DB) SweepTranscript(ctx context.Context, tenantID, interviewID string, days int) error {
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		var n int64
		tx.QueryRowContext(ctx, `SELECT count(*) FROM transcript_entries WHERE tenant_id = ? AND interview_id = ?`, tenantID, interviewID).Scan(&n)
		for _, q := range []string{
			`DELETE FROM transcript_entries WHERE tenant_id = ? AND interview_id = ?`,
			`DELETE FROM scorecards WHERE tenant_id = ? AND interview_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, tenantID, interviewID); err != nil {
				return fmt.Errorf("store: sweep transcript: %w", err)
			}
		}
		return insertAudit(ctx, tx, tenantID, Actor{Kind: "system", ID: "retention"}, "transcript.expired", "interview", interviewID,
			db.nowUTC(), map[string]any{"transcripts_days": days, "transcript_entries": n})
	})
	if err != nil {
		return err
	}
	return db.afterErasure(ctx)
}
