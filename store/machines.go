package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

func validMachine(m Machine) error {
	// Which providers exist is package fly's registry; the store keeps the
	// name as text.
	if m.Provider == "" {
		return fmt.Errorf("machine provider is empty: %w", ErrInvalid)
	}
	switch m.State {
	case MachineStarting, MachineRunning, MachineStopping, MachineDestroyed, MachineFailed:
	default:
		return fmt.Errorf("machine state %q: %w", m.State, ErrInvalid)
	}
	return nil
}

// CreateMachine records a machine for an interview of m.TenantID
// (ErrNotFound if the interview is not the tenant's). CreatedAt is assigned,
// ID when empty, State defaults to starting.
func (db *DB) CreateMachine(ctx context.Context, m Machine) (Machine, error) {
	if m.ID == "" {
		m.ID = NewID("mach_")
	}
	if m.State == "" {
		m.State = MachineStarting
	}
	if err := validMachine(m); err != nil {
		return Machine{}, err
	}
	m.CreatedAt = db.nowUTC()
	if m.State == MachineDestroyed && m.DestroyedAt == nil {
		m.DestroyedAt = &m.CreatedAt
	}
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		if err := ensureExists(ctx, tx, "interviews", m.TenantID, m.InterviewID, "interview"); err != nil {
			return err
		}
		return insertMachine(ctx, tx, m)
	})
	if err != nil {
		return Machine{}, err
	}
	return m, nil
}

// UpdateMachine writes ProviderID, App, Region, State, URL, DestroyedAt and
// SecondsBilled of machine m.ID in m.TenantID. Moving to state destroyed
// without a DestroyedAt stamps it now; a DestroyedAt once set stays.
func (db *DB) UpdateMachine(ctx context.Context, m Machine) error {
	if err := validMachine(m); err != nil {
		return err
	}
	destroyed := fmtNullTime(m.DestroyedAt)
	if destroyed == nil && m.State == MachineDestroyed {
		destroyed = fmtTime(db.nowUTC())
	}
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE machines SET provider_id = ?, app = ?, region = ?, state = ?, url = ?,
				destroyed_at = coalesce(destroyed_at, ?), seconds_billed = ?
			WHERE tenant_id = ? AND id = ?`,
			m.ProviderID, m.App, m.Region, m.State, m.URL, destroyed, m.SecondsBilled, m.TenantID, m.ID)
		if err != nil {
			return fmt.Errorf("store: update machine %s: %w", m.ID, mapErr(err))
		}
		return rowsChanged(res, "machine "+m.ID)
	})
}

// insertMachine inserts m as it is.
func insertMachine(ctx context.Context, tx *sql.Tx, m Machine) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO machines (id, tenant_id, interview_id, provider, provider_id, app, region,
			state, url, created_at, destroyed_at, seconds_billed)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.TenantID, m.InterviewID, m.Provider, m.ProviderID, m.App, m.Region,
		m.State, m.URL, fmtTime(m.CreatedAt), fmtNullTime(m.DestroyedAt), m.SecondsBilled)
	if err != nil {
		return fmt.Errorf("store: create machine: %w", mapErr(err))
	}
	return nil
}

const machineCols = `id, tenant_id, interview_id, provider, provider_id, app, region, state, url,
	created_at, destroyed_at, seconds_billed, drain_until`

// machineLive is the SQL condition of a machine that has not been destroyed.
const machineLive = `destroyed_at IS NULL AND state <> 'destroyed'`

func scanMachine(s scanner) (Machine, error) {
	var m Machine
	err := s.Scan(&m.ID, &m.TenantID, &m.InterviewID, &m.Provider, &m.ProviderID, &m.App, &m.Region, &m.State, &m.URL,
		timeCol{&m.CreatedAt}, nullTimeCol{&m.DestroyedAt}, &m.SecondsBilled, nullTimeCol{&m.DrainUntil})
	return m, err
}

// CurrentMachine returns the interview's latest machine that is not
// destroyed nor draining (stopping); ErrNotFound if there is none.
func (db *DB) CurrentMachine(ctx context.Context, tenantID, interviewID string) (Machine, error) {
	var m Machine
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		m, err = queryOne(ctx, tx, scanMachine, "current machine of interview "+interviewID,
			`SELECT `+machineCols+` FROM machines WHERE tenant_id = ? AND interview_id = ? AND `+machineLive+`
			AND state <> 'stopping' ORDER BY created_at DESC, rowid DESC LIMIT 1`, tenantID, interviewID)
		return err
	})
	return m, err
}

// LatestMachine returns the interview's most recent machine, destroyed or
// not; ErrNotFound if it never had one.
func (db *DB) LatestMachine(ctx context.Context, tenantID, interviewID string) (Machine, error) {
	var m Machine
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		m, err = queryOne(ctx, tx, scanMachine, "machine of interview "+interviewID,
			`SELECT `+machineCols+` FROM machines WHERE tenant_id = ? AND interview_id = ?
			ORDER BY created_at DESC, rowid DESC LIMIT 1`, tenantID, interviewID)
		return err
	})
	return m, err
}

// ListMachines returns every machine of the interview, oldest first.
func (db *DB) ListMachines(ctx context.Context, tenantID, interviewID string) ([]Machine, error) {
	var ms []Machine
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		ms, err = queryAll(ctx, tx, scanMachine, `SELECT `+machineCols+` FROM machines
			WHERE tenant_id = ? AND interview_id = ? ORDER BY created_at, rowid`, tenantID, interviewID)
		return err
	})
	return ms, err
}

// ListLiveMachines returns machines of all tenants that are not destroyed,
// oldest first (for reconciliation at start-up).
func (db *DB) ListLiveMachines(ctx context.Context) ([]Machine, error) {
	var ms []Machine
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		ms, err = queryAll(ctx, tx, scanMachine, `SELECT `+machineCols+` FROM machines
			WHERE `+machineLive+` ORDER BY created_at, rowid`)
		return err
	})
	return ms, err
}

// MachineSeconds sums the seconds billed for the tenant's machines created
// at or after since.
func (db *DB) MachineSeconds(ctx context.Context, tenantID string, since time.Time) (float64, error) {
	var total float64
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT coalesce(sum(seconds_billed), 0.0) FROM machines
			WHERE tenant_id = ? AND created_at >= ?`, tenantID, fmtTime(since)).Scan(&total)
	})
	if err != nil {
		return 0, fmt.Errorf("store: machine seconds: %w", err)
	}
	return total, nil
}
