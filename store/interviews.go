package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultInviteTTL is how long an invite stays valid when CreateInterview is
// given no ExpiresAt.
const DefaultInviteTTL = 7 * 24 * time.Hour

// CreateInterview schedules an interview. The position and candidate must
// belong to iv.TenantID (ErrNotFound otherwise, also when they exist in
// another tenant). CreatedAt is assigned, ID when empty, Status defaults to
// scheduled and ExpiresAt to CreatedAt+DefaultInviteTTL. An empty
// inviteTokenHash stores no invite.
func (db *DB) CreateInterview(ctx context.Context, iv Interview, inviteTokenHash string) (Interview, error) {
	if iv.ID == "" {
		iv.ID = NewID("int_")
	}
	if iv.Status == "" {
		iv.Status = StatusScheduled
	}
	if !iv.Status.Valid() {
		return Interview{}, fmt.Errorf("status %q: %w", iv.Status, ErrInvalid)
	}
	iv.CreatedAt = db.nowUTC()
	if iv.ExpiresAt.IsZero() {
		iv.ExpiresAt = iv.CreatedAt.Add(DefaultInviteTTL)
	}
	var invite any
	if inviteTokenHash != "" {
		invite = inviteTokenHash
	}
	var out Interview
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		if err := ensureExists(ctx, tx, "positions", iv.TenantID, iv.PositionID, "position"); err != nil {
			return err
		}
		if err := ensureExists(ctx, tx, "candidates", iv.TenantID, iv.CandidateID, "candidate"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO interviews (id, tenant_id, position_id, candidate_id, status, region,
				invite_token_hash, expires_at, consent_at, started_at, ended_at, created_at, media_ms, last_heartbeat_at, recording_path,
				available_from)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			iv.ID, iv.TenantID, iv.PositionID, iv.CandidateID, string(iv.Status), iv.Region,
			invite, fmtTime(iv.ExpiresAt), fmtNullTime(iv.ConsentAt), fmtNullTime(iv.StartedAt), fmtNullTime(iv.EndedAt),
			fmtTime(iv.CreatedAt), iv.MediaMS, fmtNullTime(iv.LastHeartbeatAt), iv.RecordingPath,
			fmtNullTime(iv.AvailableFrom))
		if err != nil {
			return fmt.Errorf("store: create interview: %w", mapErr(err))
		}
		out, err = findInterview(ctx, tx, iv.TenantID, iv.ID)
		if err != nil {
			return err
		}
		_, err = db.insertOutbox(ctx, tx, iv.TenantID, "interview.scheduled", iv.ID, map[string]any{
			"interview_id": out.ID, "position_id": out.PositionID, "candidate_id": out.CandidateID,
			"status": out.Status, "region": out.Region, "expires_at": out.ExpiresAt, "at": out.CreatedAt,
		})
		return err
	})
	return out, err
}

// ensureExists reports ErrNotFound unless table has row id in the tenant.
// table is always a constant of this package.
func ensureExists(ctx context.Context, tx *sql.Tx, table, tenantID, id, what string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM `+table+` WHERE tenant_id = ? AND id = ?`, tenantID, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s %s: %w", what, id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: look up %s %s: %w", what, id, err)
	}
	return nil
}

const interviewCols = `id, tenant_id, position_id, candidate_id, status, region, expires_at, consent_at,
	started_at, ended_at, created_at, media_ms, last_heartbeat_at, recording_path,
	available_from, invited_at, reminded_at`

func scanInterview(s scanner) (Interview, error) {
	var iv Interview
	err := s.Scan(&iv.ID, &iv.TenantID, &iv.PositionID, &iv.CandidateID, &iv.Status, &iv.Region,
		timeCol{&iv.ExpiresAt}, nullTimeCol{&iv.ConsentAt}, nullTimeCol{&iv.StartedAt}, nullTimeCol{&iv.EndedAt},
		timeCol{&iv.CreatedAt}, &iv.MediaMS, nullTimeCol{&iv.LastHeartbeatAt}, &iv.RecordingPath,
		nullTimeCol{&iv.AvailableFrom}, nullTimeCol{&iv.InvitedAt}, nullTimeCol{&iv.RemindedAt})
	return iv, err
}

func findInterview(ctx context.Context, tx *sql.Tx, tenantID, id string) (Interview, error) {
	return queryOne(ctx, tx, scanInterview, "interview "+id,
		`SELECT `+interviewCols+` FROM interviews WHERE tenant_id = ? AND id = ?`, tenantID, id)
}

// Interview returns the tenant's interview id; ErrNotFound if it is not the
// tenant's.
func (db *DB) Interview(ctx context.Context, tenantID, id string) (Interview, error) {
	var iv Interview
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		iv, err = findInterview(ctx, tx, tenantID, id)
		return err
	})
	return iv, err
}

// ListInterviews returns the tenant's interviews narrowed and ordered by f,
// newest first by default.
func (db *DB) ListInterviews(ctx context.Context, tenantID string, f InterviewFilter) ([]Interview, error) {
	q := `SELECT ` + prefixCols("i.", interviewCols) + ` FROM interviews i
		JOIN candidates c ON c.tenant_id = i.tenant_id AND c.id = i.candidate_id
		JOIN positions p ON p.tenant_id = i.tenant_id AND p.id = i.position_id
		WHERE i.tenant_id = ?`
	args := []any{tenantID}
	if f.Status != "" {
		q += ` AND i.status = ?`
		args = append(args, string(f.Status))
	}
	if f.PositionID != "" {
		q += ` AND i.position_id = ?`
		args = append(args, f.PositionID)
	}
	if f.CandidateID != "" {
		q += ` AND i.candidate_id = ?`
		args = append(args, f.CandidateID)
	}
	if s := strings.TrimSpace(f.Query); s != "" {
		like := "%" + escapeLike(strings.ToLower(s)) + "%"
		q += ` AND (lower(c.name) LIKE ? ESCAPE '\' OR lower(c.email) LIKE ? ESCAPE '\' OR lower(p.title) LIKE ? ESCAPE '\')`
		args = append(args, like, like, like)
	}
	if !f.From.IsZero() {
		q += ` AND i.created_at >= ?`
		args = append(args, fmtTime(f.From))
	}
	if !f.To.IsZero() {
		q += ` AND i.created_at < ?`
		args = append(args, fmtTime(f.To))
	}
	order, ok := InterviewSorts[f.Sort]
	if !ok {
		order = InterviewSorts["newest"]
	}
	q += ` ORDER BY ` + order
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	var ivs []Interview
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		ivs, err = queryAll(ctx, tx, scanInterview, q, args...)
		return err
	})
	return ivs, err
}

// prefixCols qualifies each column of a comma-separated list.
func prefixCols(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// escapeLike escapes LIKE's wildcards for ESCAPE '\'.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// InterviewByInviteHash finds an interview in any tenant by the hash of its
// invite token. Expiry is the caller's to judge (ExpiresAt).
func (db *DB) InterviewByInviteHash(ctx context.Context, hash string) (Interview, error) {
	var iv Interview
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		iv, err = queryOne(ctx, tx, scanInterview, "interview invite",
			`SELECT `+interviewCols+` FROM interviews WHERE invite_token_hash = ?`, hash)
		return err
	})
	return iv, err
}

// InterviewByID finds an interview in any tenant. Only for callers that
// establish the tenant from the interview itself: bridge authentication and
// machine reconciliation.
func (db *DB) InterviewByID(ctx context.Context, id string) (Interview, error) {
	var iv Interview
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		iv, err = queryOne(ctx, tx, scanInterview, "interview "+id,
			`SELECT `+interviewCols+` FROM interviews WHERE id = ?`, id)
		return err
	})
	return iv, err
}

// SetInterviewStatus moves an interview to status to. When from is given and
// the current status is not among them, nothing changes and the error is
// ErrConflict. Entering running sets started_at, entering a terminal status
// sets ended_at (each only once); leaving a terminal status clears ended_at.
func (db *DB) SetInterviewStatus(ctx context.Context, tenantID, id string, to Status, from ...Status) (Interview, error) {
	if !to.Valid() {
		return Interview{}, fmt.Errorf("status %q: %w", to, ErrInvalid)
	}
	var out Interview
	defer db.credentials.forget(id)
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		iv, err := findInterview(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		if len(from) > 0 && !slices.Contains(from, iv.Status) {
			return fmt.Errorf("interview %s is %s, not %v: %w", id, iv.Status, from, ErrConflict)
		}
		if err := setStatusTx(ctx, tx, iv, to, db.nowUTC()); err != nil {
			return err
		}
		out, err = findInterview(ctx, tx, tenantID, id)
		return err
	})
	return out, err
}

// updateInterview runs one UPDATE on the tenant's interview id; ErrNotFound
// when it matches no row.
func (db *DB) updateInterview(ctx context.Context, tenantID, id, set string, args ...any) error {
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE interviews SET `+set+` WHERE tenant_id = ? AND id = ?`,
			append(args, tenantID, id)...)
		if err != nil {
			return fmt.Errorf("store: update interview %s: %w", id, mapErr(err))
		}
		return rowsChanged(res, "interview "+id)
	})
}

// SetConsent records when the candidate consented; the first time stays.
func (db *DB) SetConsent(ctx context.Context, tenantID, id string, at time.Time) error {
	return db.updateInterview(ctx, tenantID, id, `consent_at = coalesce(consent_at, ?)`, fmtTime(at))
}

// SetProcessorTokenHash stores the hash of the token the interview's
// processor presents to the bridge; it replaces any earlier one, so a
// replaced processor's token stops working.
func (db *DB) SetProcessorTokenHash(ctx context.Context, tenantID, interviewID, hash string) error {
	defer db.credentials.forget(interviewID)
	return db.updateInterview(ctx, tenantID, interviewID, `processor_token_hash = ?, epoch = epoch + 1`, hash)
}

// ProcessorCredentials is what the bridge checks on every call: whose
// interview it is, its status and the hash of its processor token.
type ProcessorCredentials struct {
	InterviewID, TenantID string
	Status                Status
	TokenHash             string // "" when no processor token is set
	// Epoch is the current processor's launch: 1 for the first, one more
	// for each replacement (0 for interviews older than epochs).
	Epoch int64
	// Retired are the earlier epochs whose processor may still drain
	// (epochs.go); each is checked against its DrainUntil on use.
	Retired []RetiredProcessor
}

// ProcessorCredentials returns the credentials of interview id, whatever
// its tenant; ErrNotFound if there is no such interview.
//
// Those of a starting or running interview are cached, so the bridge's
// hot path (one call per entry batch) reads no SQL. The cache is exact for
// this process: status and token change only through SetInterviewStatus and
// SetProcessorTokenHash, which drop the entry after their commit, and a
// lookup that raced with such a change does not fill the cache (see
// credentialCache). An interview is never deleted on its own, nor moved to
// another tenant.
func (db *DB) ProcessorCredentials(ctx context.Context, id string) (ProcessorCredentials, error) {
	if pc, ok := db.credentials.get(id); ok {
		return pc, nil
	}
	gen := db.credentials.generation()
	// One snapshot: a replacement committed between reading the token and
	// the epoch would label the old processor's batch with the new epoch.
	pc, err := db.credentialsOf(ctx, id)
	if err != nil {
		return ProcessorCredentials{}, err
	}
	if pc.Status == StatusStarting || pc.Status == StatusRunning {
		db.credentials.fill(gen, pc)
	}
	return pc, nil
}

// credentialCache holds ProcessorCredentials by interview id. Every forget
// bumps gen; fill stores only if gen is unchanged since its lookup began,
// so a lookup that read the row before a change was committed cannot put
// the old credentials back after the change dropped them.
type credentialCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]ProcessorCredentials
}

func (c *credentialCache) get(id string) (ProcessorCredentials, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pc, ok := c.m[id]
	return pc, ok
}

func (c *credentialCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *credentialCache) fill(gen uint64, pc ProcessorCredentials) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.m == nil {
		c.m = make(map[string]ProcessorCredentials)
	}
	c.m[pc.InterviewID] = pc
}

// forget drops id's credentials; call it after committing a change to
// them (and on failure too: it is never wrong to forget).
func (c *credentialCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.m, id)
}

// RecordHeartbeat notes that the interview's processor is alive at media
// position mediaMS. The media clock only moves forward: a late heartbeat
// with a smaller position does not rewind it.
func (db *DB) RecordHeartbeat(ctx context.Context, tenantID, interviewID string, mediaMS int64, at time.Time) error {
	if mediaMS < 0 {
		return fmt.Errorf("media_ms %d: %w", mediaMS, ErrInvalid)
	}
	return db.updateInterview(ctx, tenantID, interviewID,
		`media_ms = max(media_ms, ?), last_heartbeat_at = ?`, mediaMS, fmtTime(at))
}

// SetRecording stores the recording's path relative to the data dir.
func (db *DB) SetRecording(ctx context.Context, tenantID, interviewID, relPath string) error {
	return db.updateInterview(ctx, tenantID, interviewID, `recording_path = ?`, relPath)
}

// ListStaleInterviews returns running interviews, across tenants, whose last
// sign of life is older than before. Without any heartbeat yet, the sign of
// life is started_at (or created_at).
func (db *DB) ListStaleInterviews(ctx context.Context, before time.Time) ([]Interview, error) {
	var ivs []Interview
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		ivs, err = queryAll(ctx, tx, scanInterview, `SELECT `+interviewCols+` FROM interviews
			WHERE status = 'running' AND coalesce(last_heartbeat_at, started_at, created_at) < ?
			ORDER BY created_at, id`, fmtTime(before))
		return err
	})
	return ivs, err
}

// Ordinal is an interview's place among its candidate's interviews, oldest
// first: N of Of.
type Ordinal struct{ N, Of int }

// InterviewOrdinals numbers each of the tenant's interviews among those of
// its candidate, so that a candidate's several interviews can be told apart
// in lists.
func (db *DB) InterviewOrdinals(ctx context.Context, tenantID string) (map[string]Ordinal, error) {
	out := map[string]Ordinal{}
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, row_number() OVER (PARTITION BY candidate_id ORDER BY created_at, rowid),
			count(*) OVER (PARTITION BY candidate_id) FROM interviews WHERE tenant_id = ?`, tenantID)
		if err != nil {
			return fmt.Errorf("store: interview ordinals: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var o Ordinal
			if err := rows.Scan(&id, &o.N, &o.Of); err != nil {
				return err
			}
			out[id] = o
		}
		return rows.Err()
	})
	return out, err
}
