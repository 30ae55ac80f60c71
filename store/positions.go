package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
)

// CreatePosition stores a new position for p.TenantID. CreatedAt and
// UpdatedAt are assigned, and ID when empty; nil Questions or Rubric are stored as empty lists.
func (db *DB) CreatePosition(ctx context.Context, p Position) (Position, error) {
	if p.ID == "" {
		p.ID = NewID("pos_")
	}
	p.CreatedAt = db.nowUTC()
	p.UpdatedAt = p.CreatedAt
	normalizePosition(&p)
	qs, rb, err := positionJSON(p)
	if err != nil {
		return Position{}, err
	}
	err = db.inWrite(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO positions (id, tenant_id, title, description, questions, rubric, interviewer_name, voice, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.TenantID, p.Title, p.Description, qs, rb, p.InterviewerName, p.Voice, fmtTime(p.CreatedAt), fmtTime(p.UpdatedAt))
		if err != nil {
			return fmt.Errorf("store: create position: %w", mapErr(err))
		}
		return nil
	})
	if err != nil {
		return Position{}, err
	}
	return p, nil
}

func normalizePosition(p *Position) {
	p.Title = strings.TrimSpace(p.Title)
	p.InterviewerName = strings.TrimSpace(p.InterviewerName)
	p.Voice = strings.TrimSpace(p.Voice)
	if p.Questions == nil {
		p.Questions = []string{}
	}
	if p.Rubric == nil {
		p.Rubric = []RubricItem{}
	}
}

func positionJSON(p Position) (questions, rubric string, err error) {
	if p.Title == "" {
		return "", "", fmt.Errorf("position title is empty: %w", ErrInvalid)
	}
	q, err := json.Marshal(p.Questions)
	if err != nil {
		return "", "", fmt.Errorf("store: encode questions: %w", err)
	}
	r, err := json.Marshal(p.Rubric)
	if err != nil {
		return "", "", fmt.Errorf("store: encode rubric: %w", err)
	}
	return string(q), string(r), nil
}

const positionCols = `id, tenant_id, title, description, questions, rubric, interviewer_name, voice, created_at, updated_at`

func scanPosition(s scanner) (Position, error) {
	var p Position
	var qs, rb string
	if err := s.Scan(&p.ID, &p.TenantID, &p.Title, &p.Description, &qs, &rb, &p.InterviewerName, &p.Voice, timeCol{&p.CreatedAt}, timeCol{&p.UpdatedAt}); err != nil {
		return p, err
	}
	if err := json.Unmarshal([]byte(qs), &p.Questions); err != nil {
		return p, fmt.Errorf("store: position %s questions: %w", p.ID, err)
	}
	if err := json.Unmarshal([]byte(rb), &p.Rubric); err != nil {
		return p, fmt.Errorf("store: position %s rubric: %w", p.ID, err)
	}
	return p, nil
}

func findPosition(ctx context.Context, tx *sql.Tx, tenantID, id string) (Position, error) {
	return queryOne(ctx, tx, scanPosition, "position "+id,
		`SELECT `+positionCols+` FROM positions WHERE tenant_id = ? AND id = ?`, tenantID, id)
}

// Position returns the tenant's position id; ErrNotFound if it is not the
// tenant's.
func (db *DB) Position(ctx context.Context, tenantID, id string) (Position, error) {
	var p Position
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		p, err = findPosition(ctx, tx, tenantID, id)
		return err
	})
	return p, err
}

// ListPositions returns the tenant's positions, newest first.
func (db *DB) ListPositions(ctx context.Context, tenantID string) ([]Position, error) {
	var ps []Position
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		ps, err = queryAll(ctx, tx, scanPosition,
			`SELECT `+positionCols+` FROM positions WHERE tenant_id = ? ORDER BY created_at DESC, id`, tenantID)
		return err
	})
	return ps, err
}

// UpdatePosition replaces title, description, questions, rubric,
// interviewer name and voice of the
// position p.ID in p.TenantID and returns the stored result.
func (db *DB) UpdatePosition(ctx context.Context, p Position) (Position, error) {
	normalizePosition(&p)
	qs, rb, err := positionJSON(p)
	if err != nil {
		return Position{}, err
	}
	var out Position
	err = db.inWrite(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE positions SET title = ?, description = ?, questions = ?, rubric = ?, interviewer_name = ?, voice = ?, updated_at = ?
			WHERE tenant_id = ? AND id = ?`,
			p.Title, p.Description, qs, rb, p.InterviewerName, p.Voice, fmtTime(db.nowUTC()), p.TenantID, p.ID)
		if err != nil {
			return fmt.Errorf("store: update position %s: %w", p.ID, mapErr(err))
		}
		if err := rowsChanged(res, "position "+p.ID); err != nil {
			return err
		}
		out, err = findPosition(ctx, tx, p.TenantID, p.ID)
		return err
	})
	return out, err
}

// CreateCandidate stores a new candidate for c.TenantID; CreatedAt is
// assigned, and ID when empty. An email already used in the tenant is ErrConflict.
func (db *DB) CreateCandidate(ctx context.Context, c Candidate) (Candidate, error) {
	if c.ID == "" {
		c.ID = NewID("cand_")
	}
	c.CreatedAt = db.nowUTC()
	c.Email = strings.TrimSpace(c.Email)
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO candidates (id, tenant_id, name, email, notes, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			c.ID, c.TenantID, c.Name, c.Email, c.Notes, fmtTime(c.CreatedAt))
		if err != nil {
			return fmt.Errorf("store: create candidate: %w", mapErr(err))
		}
		return nil
	})
	if err != nil {
		return Candidate{}, err
	}
	return c, nil
}

const candidateCols = `id, tenant_id, name, email, notes, created_at`

func scanCandidate(s scanner) (Candidate, error) {
	var c Candidate
	err := s.Scan(&c.ID, &c.TenantID, &c.Name, &c.Email, &c.Notes, timeCol{&c.CreatedAt})
	return c, err
}

// Candidate returns the tenant's candidate id; ErrNotFound if it is not the
// tenant's.
func (db *DB) Candidate(ctx context.Context, tenantID, id string) (Candidate, error) {
	var c Candidate
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		c, err = queryOne(ctx, tx, scanCandidate, "candidate "+id,
			`SELECT `+candidateCols+` FROM candidates WHERE tenant_id = ? AND id = ?`, tenantID, id)
		return err
	})
	return c, err
}

// ListCandidates returns the tenant's candidates, newest first.
func (db *DB) ListCandidates(ctx context.Context, tenantID string) ([]Candidate, error) {
	var cs []Candidate
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		cs, err = queryAll(ctx, tx, scanCandidate,
			`SELECT `+candidateCols+` FROM candidates WHERE tenant_id = ? ORDER BY created_at DESC, id`, tenantID)
		return err
	})
	return cs, err
}

// DeletePosition removes the tenant's position id. ErrNotFound if it is not
// the tenant's; ErrConflict while any interview refers to it (interviews
// keep their position: delete or erase them first).
func (db *DB) DeletePosition(ctx context.Context, tenantID, id string) error {
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM interviews WHERE tenant_id = ? AND position_id = ?`, tenantID, id).Scan(&n); err != nil {
			return fmt.Errorf("store: count interviews of position %s: %w", id, err)
		}
		if _, err := findPosition(ctx, tx, tenantID, id); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("position %s has %d interviews: %w", id, n, ErrConflict)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM positions WHERE tenant_id = ? AND id = ?`, tenantID, id)
		if err != nil {
			return fmt.Errorf("store: delete position %s: %w", id, mapErr(err))
		}
		return rowsChanged(res, "position "+id)
	})
}

// UpdateCandidate replaces name, email and notes of the candidate c.ID in
// c.TenantID and returns the stored result. ErrNotFound if it is not the
// tenant's; ErrConflict if another of the tenant's candidates has the email.
func (db *DB) UpdateCandidate(ctx context.Context, c Candidate) (Candidate, error) {
	c.Name = strings.TrimSpace(c.Name)
	c.Email = strings.TrimSpace(c.Email)
	var out Candidate
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE candidates SET name = ?, email = ?, notes = ? WHERE tenant_id = ? AND id = ?`,
			c.Name, c.Email, c.Notes, c.TenantID, c.ID)
		if err != nil {
			return fmt.Errorf("store: update candidate %s: %w", c.ID, mapErr(err))
		}
		if err := rowsChanged(res, "candidate "+c.ID); err != nil {
			return err
		}
		out, err = queryOne(ctx, tx, scanCandidate, "candidate "+c.ID,
			`SELECT `+candidateCols+` FROM candidates WHERE tenant_id = ? AND id = ?`, c.TenantID, c.ID)
		return err
	})
	return out, err
}
