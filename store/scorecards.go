package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Scorecard statuses.
const (
	ScorecardPending     = "pending"
	ScorecardReady       = "ready"
	ScorecardFailed      = "failed"
	ScorecardUnavailable = "unavailable"
)

// Scorecard is an interview's stored evaluation. Body is the evaluator's
// validated card (criteria, overall, validation), whose shape the scorecard
// package owns; Error says why a failed one failed.
type Scorecard struct {
	InterviewID, TenantID string
	Status                string
	Evaluator             string
	Body                  json.RawMessage
	Error                 string
	CreatedAt, UpdatedAt  time.Time
}

// OutboxCursor returns where consumer left off in the outbox, 0 if it never
// ran.
func (db *DB) OutboxCursor(ctx context.Context, consumer string) (int64, error) {
	var after int64
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT after_id FROM outbox_cursors WHERE consumer = ?`, consumer).Scan(&after)
		if errors.Is(err, sql.ErrNoRows) {
			after = 0
			return nil
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: outbox cursor of %s: %w", consumer, err)
	}
	return after, nil
}

// SetOutboxCursor records that consumer has finished every event up to
// and including after.
func (db *DB) SetOutboxCursor(ctx context.Context, consumer string, after int64) error {
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		return setCursor(ctx, tx, consumer, after)
	})
}

func setCursor(ctx context.Context, tx *sql.Tx, consumer string, after int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO outbox_cursors (consumer, after_id) VALUES (?, ?)
		ON CONFLICT (consumer) DO UPDATE SET after_id = max(after_id, excluded.after_id)`, consumer, after)
	if err != nil {
		return fmt.Errorf("store: set outbox cursor of %s: %w", consumer, mapErr(err))
	}
	return nil
}

// ScorecardReadyData is the data of a scorecard.ready outbox event.
type ScorecardReadyData struct {
	InterviewID    string   `json:"interview_id"`
	CandidateID    string   `json:"candidate_id"`
	PositionID     string   `json:"position_id"`
	OverallScore   *float64 `json:"overall_score"`
	Recommendation string   `json:"recommendation,omitempty"`
	Evaluator      string   `json:"evaluator"`
}

// SaveScorecard stores sc as the interview's scorecard, replacing any
// earlier one (its created_at is kept). A ready scorecard writes its
// scorecard.ready outbox event in the same transaction; ready, when not
// nil, supplies the event's score and recommendation. ErrNotFound if the
// interview is not the tenant's.
func (db *DB) SaveScorecard(ctx context.Context, sc Scorecard, ready *ScorecardReadyData) error {
	if len(sc.Body) == 0 {
		sc.Body = json.RawMessage("{}")
	}
	now := db.nowUTC()
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		var positionID, candidateID string
		err := tx.QueryRowContext(ctx, `SELECT position_id, candidate_id FROM interviews WHERE tenant_id = ? AND id = ?`,
			sc.TenantID, sc.InterviewID).Scan(&positionID, &candidateID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("interview %s: %w", sc.InterviewID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: save scorecard: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO scorecards (interview_id, tenant_id, status, evaluator, body, error, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (interview_id) DO UPDATE SET status = excluded.status, evaluator = excluded.evaluator,
				body = excluded.body, error = excluded.error, updated_at = excluded.updated_at`,
			sc.InterviewID, sc.TenantID, sc.Status, sc.Evaluator, string(sc.Body), sc.Error, fmtTime(now), fmtTime(now))
		if err != nil {
			return fmt.Errorf("store: save scorecard of %s: %w", sc.InterviewID, mapErr(err))
		}
		if sc.Status != ScorecardReady {
			return nil
		}
		data := ScorecardReadyData{}
		if ready != nil {
			data = *ready
		}
		data.InterviewID, data.CandidateID, data.PositionID, data.Evaluator = sc.InterviewID, candidateID, positionID, sc.Evaluator
		_, err = db.insertOutbox(ctx, tx, sc.TenantID, "scorecard.ready", sc.InterviewID, data)
		return err
	})
}

const scorecardCols = `interview_id, tenant_id, status, evaluator, body, error, created_at, updated_at`

func scanScorecard(s scanner) (Scorecard, error) {
	var sc Scorecard
	var body string
	err := s.Scan(&sc.InterviewID, &sc.TenantID, &sc.Status, &sc.Evaluator, &body, &sc.Error,
		timeCol{&sc.CreatedAt}, timeCol{&sc.UpdatedAt})
	sc.Body = json.RawMessage(body)
	return sc, err
}

// Scorecard returns the interview's scorecard; ErrNotFound when it has none
// (or is not the tenant's).
func (db *DB) Scorecard(ctx context.Context, tenantID, interviewID string) (Scorecard, error) {
	var sc Scorecard
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		var err error
		sc, err = queryOne(ctx, tx, scanScorecard, "scorecard of interview "+interviewID,
			`SELECT `+scorecardCols+` FROM scorecards WHERE tenant_id = ? AND interview_id = ?`, tenantID, interviewID)
		return err
	})
	return sc, err
}

// Scorecards returns the tenant's scorecards by interview ID.
func (db *DB) Scorecards(ctx context.Context, tenantID string) (map[string]Scorecard, error) {
	out := map[string]Scorecard{}
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		scs, err := queryAll(ctx, tx, scanScorecard, `SELECT `+scorecardCols+` FROM scorecards WHERE tenant_id = ?`, tenantID)
		for _, sc := range scs {
			out[sc.InterviewID] = sc
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: scorecards: %w", err)
	}
	return out, nil
}

// Review is one reviewer's scores of an interview. ReviewerID is a user's
// or an API key's ID (ReviewerKind says which); Body holds the criteria
// scores and notes, in the shape the web package owns.
type Review struct {
	InterviewID, TenantID              string
	ReviewerID, ReviewerKind, Reviewer string
	Body                               json.RawMessage
	Overall                            *float64
	Recommendation                     string
	CreatedAt, UpdatedAt               time.Time
}

// Reviewer kinds.
const (
	ReviewerUser   = "user"
	ReviewerAPIKey = "api_key"
)

// SaveReview stores r, replacing the same reviewer's earlier review of the
// interview (its created_at is kept). ErrNotFound if the interview is not
// the tenant's.
func (db *DB) SaveReview(ctx context.Context, r Review) (Review, error) {
	now := db.nowUTC()
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		if err := ensureExists(ctx, tx, "interviews", r.TenantID, r.InterviewID, "interview"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO reviews (interview_id, tenant_id, reviewer_id, reviewer_kind, reviewer_name,
				body, overall, recommendation, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (interview_id, reviewer_id) DO UPDATE SET reviewer_name = excluded.reviewer_name,
				body = excluded.body, overall = excluded.overall, recommendation = excluded.recommendation,
				updated_at = excluded.updated_at`,
			r.InterviewID, r.TenantID, r.ReviewerID, r.ReviewerKind, r.Reviewer, string(r.Body), r.Overall,
			r.Recommendation, fmtTime(now), fmtTime(now))
		if err != nil {
			return fmt.Errorf("store: save review: %w", mapErr(err))
		}
		r, err = queryOne(ctx, tx, scanReview, "review", `SELECT `+reviewCols+` FROM reviews
			WHERE tenant_id = ? AND interview_id = ? AND reviewer_id = ?`, r.TenantID, r.InterviewID, r.ReviewerID)
		return err
	})
	return r, err
}

const reviewCols = `interview_id, tenant_id, reviewer_id, reviewer_kind, reviewer_name, body, overall, recommendation, created_at, updated_at`

func scanReview(s scanner) (Review, error) {
	var r Review
	var body string
	var overall sql.NullFloat64
	err := s.Scan(&r.InterviewID, &r.TenantID, &r.ReviewerID, &r.ReviewerKind, &r.Reviewer, &body, &overall,
		&r.Recommendation, timeCol{&r.CreatedAt}, timeCol{&r.UpdatedAt})
	r.Body = json.RawMessage(body)
	if overall.Valid {
		r.Overall = &overall.Float64
	}
	return r, err
}

// Reviews returns the interview's reviews, oldest first. ErrNotFound if the
// interview is not the tenant's.
func (db *DB) Reviews(ctx context.Context, tenantID, interviewID string) ([]Review, error) {
	var rs []Review
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		if err := ensureExists(ctx, tx, "interviews", tenantID, interviewID, "interview"); err != nil {
			return err
		}
		var err error
		rs, err = queryAll(ctx, tx, scanReview, `SELECT `+reviewCols+` FROM reviews
			WHERE tenant_id = ? AND interview_id = ? ORDER BY created_at, reviewer_id`, tenantID, interviewID)
		return err
	})
	return rs, err
}

// ReviewAverages returns, per interview of the tenant, the mean overall
// score of its reviews that have one, and how many there are.
func (db *DB) ReviewAverages(ctx context.Context, tenantID string) (map[string]ReviewAverage, error) {
	out := map[string]ReviewAverage{}
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT interview_id, avg(overall), count(*) FROM reviews
			WHERE tenant_id = ? GROUP BY interview_id`, tenantID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var avg sql.NullFloat64
			var n int
			if err := rows.Scan(&id, &avg, &n); err != nil {
				return err
			}
			ra := ReviewAverage{Count: n}
			if avg.Valid {
				ra.Overall = &avg.Float64
			}
			out[id] = ra
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: review averages: %w", err)
	}
	return out, nil
}

// ReviewAverage summarises an interview's reviews.
type ReviewAverage struct {
	Overall *float64
	Count   int
}
