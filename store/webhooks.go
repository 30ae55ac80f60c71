package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Webhook is a tenant's endpoint for outbox events. Its signing secret is
// stored encrypted and only handed to the deliverer.
type Webhook struct {
	ID, TenantID, URL string
	Events            []string
	CreatedAt         time.Time
	// FailingSince is when deliveries to it started failing (nil while it
	// works); DisabledAt is when Candor gave up on it.
	FailingSince, DisabledAt *time.Time
	DisabledReason           string
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery is one event for one webhook; its ID is the webhook-id header of
// every attempt.
type Delivery struct {
	ID, WebhookID, TenantID string
	OutboxID                int64
	EventType, SubjectID    string
	Body                    []byte `json:"-"`
	Status                  string
	Attempts                int
	NextAttemptAt           *time.Time
	LastStatus              int
	LastError               string
	CreatedAt, UpdatedAt    time.Time
}

// DueDelivery is a delivery to attempt now, with what signing needs.
type DueDelivery struct {
	Delivery
	URL    string
	Secret string
}

// Attempt is one try of a delivery.
type Attempt struct {
	At         time.Time
	StatusCode int
	Error      string
	DurationMS int64
}

func webhookAD(tenantID, id string) []byte { return []byte("webhook\x00" + tenantID + "\x00" + id) }

// CreateWebhook stores w with its signing secret (encrypted).
func (db *DB) CreateWebhook(ctx context.Context, w Webhook, secret string) (Webhook, error) {
	aead, err := db.gcm()
	if err != nil {
		return Webhook{}, err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	ct := aead.Seal(nil, nonce, []byte(secret), webhookAD(w.TenantID, w.ID))
	events, err := json.Marshal(w.Events)
	if err != nil {
		return Webhook{}, err
	}
	w.CreatedAt = db.nowUTC()
	err = db.inWrite(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO webhooks (id, tenant_id, url, events, secret_nonce, secret_ct, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, w.ID, w.TenantID, w.URL, string(events), nonce, ct, fmtTime(w.CreatedAt))
		if err != nil {
			return fmt.Errorf("store: create webhook: %w", mapErr(err))
		}
		return nil
	})
	return w, err
}

const webhookCols = `id, tenant_id, url, events, created_at, failing_since, disabled_at, disabled_reason`

func scanWebhook(s scanner) (Webhook, error) {
	var w Webhook
	var events string
	err := s.Scan(&w.ID, &w.TenantID, &w.URL, &events, timeCol{&w.CreatedAt}, nullTimeCol{&w.FailingSince},
		nullTimeCol{&w.DisabledAt}, &w.DisabledReason)
	if err == nil {
		err = json.Unmarshal([]byte(events), &w.Events)
	}
	return w, err
}

// Webhooks lists the tenant's webhooks, oldest first.
func (db *DB) Webhooks(ctx context.Context, tenantID string) ([]Webhook, error) {
	var out []Webhook
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = queryAll(ctx, tx, scanWebhook, `SELECT `+webhookCols+` FROM webhooks WHERE tenant_id = ? ORDER BY created_at, id`, tenantID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: webhooks: %w", err)
	}
	return out, nil
}

// Webhook returns one of the tenant's webhooks; ErrNotFound if none.
func (db *DB) Webhook(ctx context.Context, tenantID, id string) (Webhook, error) {
	var w Webhook
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		var err error
		w, err = queryOne(ctx, tx, scanWebhook, "webhook "+id, `SELECT `+webhookCols+` FROM webhooks WHERE tenant_id = ? AND id = ?`, tenantID, id)
		return err
	})
	return w, err
}

// DeleteWebhook removes the webhook and its deliveries; ErrNotFound if it
// is not the tenant's.
func (db *DB) DeleteWebhook(ctx context.Context, tenantID, id string) error {
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE tenant_id = ? AND id = ?`, tenantID, id)
		if err != nil {
			return fmt.Errorf("store: delete webhook: %w", err)
		}
		return rowsChanged(res, "webhook "+id)
	})
}

// FanOut creates, for outbox event ev, a pending delivery to each of its
// tenant's enabled webhooks that subscribed to ev's type (body is the
// payload), and moves consumer's cursor past ev — in one transaction, so
// every event is fanned out exactly once.
func (db *DB) FanOut(ctx context.Context, consumer string, ev OutboxEvent, body []byte, newID func() string) (int, error) {
	n := 0
	now := fmtTime(db.nowUTC())
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT w.id FROM webhooks w
			WHERE w.tenant_id = ? AND w.disabled_at IS NULL
			  AND EXISTS (SELECT 1 FROM json_each(w.events) e WHERE e.value = ?)`, ev.TenantID, ev.Type)
		if err != nil {
			return fmt.Errorf("store: fan out: %w", err)
		}
		ids, err := scanIDs(rows)
		if err != nil {
			return err
		}
		for _, wid := range ids {
			res, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, webhook_id, tenant_id, outbox_id, event_type,
					subject_id, body, status, next_attempt_at, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT (webhook_id, outbox_id) DO NOTHING`,
				newID(), wid, ev.TenantID, ev.ID, ev.Type, ev.SubjectID, string(body), now, now, now)
			if err != nil {
				return fmt.Errorf("store: fan out: %w", mapErr(err))
			}
			if k, _ := res.RowsAffected(); k > 0 {
				n++
			}
		}
		return setCursor(ctx, tx, consumer, ev.ID)
	})
	return n, err
}

// DueDeliveries returns up to limit pending deliveries whose next attempt
// is due at now, oldest first, with their webhook's URL and secret.
func (db *DB) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]DueDelivery, error) {
	aead, err := db.gcm()
	if err != nil {
		return nil, err
	}
	var out []DueDelivery
	err = db.inRead(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+deliveryCols("d")+`, w.url, w.secret_nonce, w.secret_ct
			FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
			WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND w.disabled_at IS NULL
			ORDER BY d.next_attempt_at, d.created_at LIMIT ?`, fmtTime(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var dd DueDelivery
			var nonce, ct []byte
			d, err := scanDelivery(rows, &dd.URL, &nonce, &ct)
			if err != nil {
				return err
			}
			dd.Delivery = d
			pt, err := aead.Open(nil, nonce, ct, webhookAD(d.TenantID, d.WebhookID))
			if err != nil {
				return fmt.Errorf("webhook %s secret: %w", d.WebhookID, ErrSecretKey)
			}
			dd.Secret = string(pt)
			out = append(out, dd)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: due deliveries: %w", err)
	}
	return out, nil
}

func deliveryCols(p string) string {
	return p + `.id, ` + p + `.webhook_id, ` + p + `.tenant_id, ` + p + `.outbox_id, ` + p + `.event_type, ` + p + `.subject_id, ` +
		p + `.body, ` + p + `.status, ` + p + `.attempts, ` + p + `.next_attempt_at, ` + p + `.last_status, ` + p + `.last_error, ` +
		p + `.created_at, ` + p + `.updated_at`
}

func scanDelivery(s scanner, extra ...any) (Delivery, error) {
	var d Delivery
	var body string
	dest := append([]any{&d.ID, &d.WebhookID, &d.TenantID, &d.OutboxID, &d.EventType, &d.SubjectID, &body, &d.Status,
		&d.Attempts, nullTimeCol{&d.NextAttemptAt}, &d.LastStatus, &d.LastError, timeCol{&d.CreatedAt}, timeCol{&d.UpdatedAt}}, extra...)
	err := s.Scan(dest...)
	d.Body = []byte(body)
	return d, err
}

// AttemptResult is what one delivery attempt found.
type AttemptResult struct {
	Attempt
	OK bool
	// Next is when to try again after a failure; nil gives up (the
	// delivery fails).
	Next *time.Time
	// DisableAfter disables the webhook when it has been failing since
	// before this time (an endpoint failing for days); zero never.
	DisableAfter time.Time
}

// RecordAttempt stores the outcome of one attempt of delivery id: the
// attempt row, the delivery's new state, and the webhook's health (failing
// since when, disabled once failing too long). It answers the webhook's
// state after the attempt.
func (db *DB) RecordAttempt(ctx context.Context, id string, r AttemptResult) (Webhook, error) {
	var w Webhook
	now := db.nowUTC()
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		var webhookID, tenantID string
		err := tx.QueryRowContext(ctx, `SELECT webhook_id, tenant_id FROM webhook_deliveries WHERE id = ?`, id).Scan(&webhookID, &tenantID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("delivery %s: %w", id, ErrNotFound) // erased or deleted meanwhile
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_attempts (delivery_id, at, status_code, error, duration_ms)
			VALUES (?, ?, ?, ?, ?)`, id, fmtTime(r.At), r.StatusCode, r.Error, r.DurationMS); err != nil {
			return fmt.Errorf("store: record attempt: %w", err)
		}
		status := DeliveryPending
		switch {
		case r.OK:
			status = DeliveryDelivered
		case r.Next == nil:
			status = DeliveryFailed
		}
		var next any
		if !r.OK {
			next = fmtNullTime(r.Next)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1,
				next_attempt_at = ?, last_status = ?, last_error = ?, updated_at = ? WHERE id = ?`,
			status, next, r.StatusCode, r.Error, fmtTime(now), id); err != nil {
			return fmt.Errorf("store: record attempt: %w", err)
		}
		if r.OK {
			_, err = tx.ExecContext(ctx, `UPDATE webhooks SET failing_since = NULL WHERE id = ?`, webhookID)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE webhooks SET failing_since = coalesce(failing_since, ?) WHERE id = ?`, fmtTime(r.At), webhookID)
			if err == nil && !r.DisableAfter.IsZero() {
				_, err = tx.ExecContext(ctx, `UPDATE webhooks SET disabled_at = ?, disabled_reason = ?
					WHERE id = ? AND disabled_at IS NULL AND failing_since < ?`,
					fmtTime(now), "every delivery failed since "+r.At.Format(time.RFC3339), webhookID, fmtTime(r.DisableAfter))
			}
		}
		if err != nil {
			return fmt.Errorf("store: webhook health: %w", err)
		}
		w, err = queryOne(ctx, tx, scanWebhook, "webhook", `SELECT `+webhookCols+` FROM webhooks WHERE id = ?`, webhookID)
		return err
	})
	return w, err
}

// Deliveries lists a webhook's deliveries, newest first, up to limit, with
// their attempts. ErrNotFound if the webhook is not the tenant's.
func (db *DB) Deliveries(ctx context.Context, tenantID, webhookID string, limit int) ([]Delivery, map[string][]Attempt, error) {
	var out []Delivery
	attempts := map[string][]Attempt{}
	err := db.inRead(ctx, func(tx *sql.Tx) error {
		if err := ensureExists(ctx, tx, "webhooks", tenantID, webhookID, "webhook"); err != nil {
			return err
		}
		var err error
		out, err = queryAll(ctx, tx, func(s scanner) (Delivery, error) { return scanDelivery(s) },
			`SELECT `+deliveryCols("d")+` FROM webhook_deliveries d WHERE d.tenant_id = ? AND d.webhook_id = ?
			ORDER BY d.created_at DESC, d.outbox_id DESC LIMIT ?`, tenantID, webhookID, limit)
		if err != nil {
			return err
		}
		for _, d := range out {
			as, err := queryAll(ctx, tx, func(s scanner) (Attempt, error) {
				var a Attempt
				return a, s.Scan(timeCol{&a.At}, &a.StatusCode, &a.Error, &a.DurationMS)
			}, `SELECT at, status_code, error, duration_ms FROM webhook_attempts WHERE delivery_id = ? ORDER BY id`, d.ID)
			if err != nil {
				return err
			}
			attempts[d.ID] = as
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: deliveries: %w", err)
	}
	return out, attempts, nil
}

// RetryDelivery makes a delivery of the tenant's webhook pending and due
// now (again, if it was delivered or failed). ErrNotFound if it is not
// theirs.
func (db *DB) RetryDelivery(ctx context.Context, tenantID, webhookID, id string) (Delivery, error) {
	var d Delivery
	now := fmtTime(db.nowUTC())
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?
			WHERE tenant_id = ? AND webhook_id = ? AND id = ?`, now, now, tenantID, webhookID, id)
		if err != nil {
			return fmt.Errorf("store: retry delivery: %w", err)
		}
		if err := rowsChanged(res, "delivery "+id); err != nil {
			return err
		}
		d, err = queryOne(ctx, tx, func(s scanner) (Delivery, error) { return scanDelivery(s) }, "delivery",
			`SELECT `+deliveryCols("d")+` FROM webhook_deliveries d WHERE d.id = ?`, id)
		return err
	})
	return d, err
}

// EnableWebhook clears a webhook's disabled and failing state.
func (db *DB) EnableWebhook(ctx context.Context, tenantID, id string) error {
	return db.inWrite(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhooks SET disabled_at = NULL, disabled_reason = '', failing_since = NULL
			WHERE tenant_id = ? AND id = ?`, tenantID, id)
		if err != nil {
			return err
		}
		return rowsChanged(res, "webhook "+id)
	})
}
