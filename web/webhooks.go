package web

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"candor/store"
)

// WebhookEvents are the event types a webhook may subscribe to: every type
// the outbox carries.
var WebhookEvents = []string{
	"interview.scheduled", "interview.started", "interview.completed", "interview.failed",
	"interview.cancelled", "scorecard.ready", "candidate.erased",
}

// webhookSchedule is the documented retry schedule (README "Webhooks"):
// the delay before each attempt, the first immediate. After the last
// attempt fails the delivery is failed. Config.WebhookRetryScale
// multiplies it.
var webhookSchedule = []time.Duration{
	0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// webhookDisableAfter is how long an endpoint may fail every delivery
// before it is disabled (scaled like the schedule).
const webhookDisableAfter = 5 * 24 * time.Hour

const (
	webhookConsumer   = "webhooks"
	webhookTimeout    = 15 * time.Second
	webhookMaxPerTick = 50
	maxWebhooks       = 20
)

func (s *Server) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * s.cfg.WebhookRetryScale)
}

type webhookJSON struct {
	ID             string     `json:"id"`
	URL            string     `json:"url"`
	Events         []string   `json:"events"`
	Secret         string     `json:"secret,omitempty"` // only when created
	CreatedAt      time.Time  `json:"created_at"`
	FailingSince   *time.Time `json:"failing_since"`
	Disabled       bool       `json:"disabled"`
	DisabledAt     *time.Time `json:"disabled_at"`
	DisabledReason string     `json:"disabled_reason,omitempty"`
}

func toWebhookJSON(w store.Webhook) webhookJSON {
	return webhookJSON{ID: w.ID, URL: w.URL, Events: w.Events, CreatedAt: w.CreatedAt.UTC(),
		FailingSince: utcPtr(w.FailingSince), Disabled: w.DisabledAt != nil, DisabledAt: utcPtr(w.DisabledAt),
		DisabledReason: w.DisabledReason}
}

type webhookInput struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

// validate checks the fields that need no network; the target check is
// separate (checkWebhookURL).
func (in *webhookInput) validate() error {
	in.URL = strings.TrimSpace(in.URL)
	if in.URL == "" {
		return invalid("url", "is required")
	}
	if len(in.URL) > 2000 {
		return invalid("url", "is longer than 2000 characters")
	}
	if len(in.Events) == 0 {
		return invalid("events", "name at least one of %s", strings.Join(WebhookEvents, ", "))
	}
	seen := map[string]bool{}
	out := in.Events[:0]
	for i, ev := range in.Events {
		if !slices.Contains(WebhookEvents, ev) {
			return invalid(fmt.Sprintf("events[%d]", i), "%q is not one of %s", ev, strings.Join(WebhookEvents, ", "))
		}
		if !seen[ev] {
			seen[ev] = true
			out = append(out, ev)
		}
	}
	in.Events = out
	return nil
}

func (s *Server) handleCreateWebhook(c echo.Context) error {
	var in webhookInput
	if err := s.decode(c, &in); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.checkWebhookURL(ctx, in.URL); err != nil {
		return invalid("url", "%v", err)
	}
	tenantID := principalOf(c).TenantID
	existing, err := s.db.Webhooks(ctx, tenantID)
	if err != nil {
		return err
	}
	if len(existing) >= maxWebhooks {
		return errorf(CodeConflict, "a tenant may have at most %d webhooks: delete one first", maxWebhooks)
	}
	secret := newWebhookSecret()
	w, err := s.db.CreateWebhook(ctx, store.Webhook{ID: store.NewID("wh_"), TenantID: tenantID, URL: in.URL, Events: in.Events}, secret)
	if err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	out := toWebhookJSON(w)
	out.Secret = secret
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) handleListWebhooks(c echo.Context) error {
	ws, err := s.db.Webhooks(c.Request().Context(), principalOf(c).TenantID)
	if err != nil {
		return err
	}
	return listJSON(c, "webhooks", ws, toWebhookJSON)
}

func (s *Server) handleDeleteWebhook(c echo.Context) error {
	if err := s.db.DeleteWebhook(c.Request().Context(), principalOf(c).TenantID, c.Param("id")); err != nil {
		return notFound(err, "webhook")
	}
	return c.NoContent(http.StatusNoContent)
}

type attemptJSON struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

type deliveryJSON struct {
	ID            string        `json:"id"` // the webhook-id header
	EventType     string        `json:"event_type"`
	SubjectID     string        `json:"subject_id"`
	Status        string        `json:"status"`
	Attempts      []attemptJSON `json:"attempts"`
	NextAttemptAt *time.Time    `json:"next_attempt_at"`
	LastStatus    int           `json:"last_status"`
	LastError     string        `json:"last_error,omitempty"`
	CreatedAt     time.Time     `json:"created_at"`
}

func toDeliveryJSON(d store.Delivery, as []store.Attempt) deliveryJSON {
	out := deliveryJSON{ID: d.ID, EventType: d.EventType, SubjectID: d.SubjectID, Status: d.Status,
		Attempts: []attemptJSON{}, NextAttemptAt: utcPtr(d.NextAttemptAt), LastStatus: d.LastStatus,
		LastError: d.LastError, CreatedAt: d.CreatedAt.UTC()}
	for _, a := range as {
		out.Attempts = append(out.Attempts, attemptJSON{At: a.At.UTC(), StatusCode: a.StatusCode, Error: a.Error, DurationMS: a.DurationMS})
	}
	return out
}

func (s *Server) handleListDeliveries(c echo.Context) error {
	ds, attempts, err := s.db.Deliveries(c.Request().Context(), principalOf(c).TenantID, c.Param("id"), 200)
	if err != nil {
		return notFound(err, "webhook")
	}
	out := make([]deliveryJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, toDeliveryJSON(d, attempts[d.ID]))
	}
	return c.JSON(http.StatusOK, map[string]any{"deliveries": out})
}

func (s *Server) handleRetryDelivery(c echo.Context) error {
	d, err := s.db.RetryDelivery(c.Request().Context(), principalOf(c).TenantID, c.Param("id"), c.Param("delivery_id"))
	if err != nil {
		return notFound(err, "delivery")
	}
	s.kickWebhooks()
	return c.JSON(http.StatusAccepted, toDeliveryJSON(d, nil))
}

// newWebhookSecret is a Standard Webhooks secret: whsec_ and the base64 of
// 24 random bytes.
func newWebhookSecret() string {
	b := make([]byte, 24)
	rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// signWebhook is the Standard Webhooks signature of body: v1, and the
// base64 HMAC-SHA256 of "id.timestamp.body" under the secret's key.
func signWebhook(secret, id string, ts int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return "", fmt.Errorf("webhook secret: %w", err)
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// webhookBody is the payload of ev: {"type","timestamp","data"}.
func webhookBody(ev store.OutboxEvent) ([]byte, error) {
	data := ev.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	return json.Marshal(struct {
		Type      string          `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}{ev.Type, ev.CreatedAt.UTC(), data})
}

// startWebhooks runs the fan-out (outbox → one delivery per subscribed
// webhook, exactly once, from its own cursor) and the deliverer (due
// deliveries → signed POSTs, retried on the schedule). Both survive a
// restart: their state is in the database.
func (s *Server) startWebhooks() {
	if s.cfg.OutboxPoll < 0 {
		return
	}
	s.webhookKick = make(chan struct{}, 1)
	ctx, done := s.owned(0)
	go func() {
		defer done()
		t := time.NewTicker(s.cfg.OutboxPoll)
		defer t.Stop()
		for {
			s.fanOut(ctx)
			s.deliverDue(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-s.webhookKick:
			}
		}
	}()
}

// kickWebhooks asks the deliverer to look for due deliveries now.
func (s *Server) kickWebhooks() {
	select {
	case s.webhookKick <- struct{}{}:
	default:
	}
}

func (s *Server) fanOut(ctx context.Context) {
	for ctx.Err() == nil {
		after, err := s.db.OutboxCursor(ctx, webhookConsumer)
		if err != nil {
			return
		}
		evs, err := s.db.OutboxAfter(ctx, after, 100)
		if err != nil || len(evs) == 0 {
			return
		}
		for _, ev := range evs {
			body, err := webhookBody(ev)
			if err != nil {
				s.log.Error("webhook body", "event", ev.ID, "err", err)
				body = []byte(`{}`)
			}
			if _, err := s.db.FanOut(ctx, webhookConsumer, ev, body, func() string { return store.NewID("msg_") }); err != nil {
				if ctx.Err() == nil {
					s.log.Error("webhook fan-out", "event", ev.ID, "err", err)
				}
				return
			}
		}
	}
}

func (s *Server) deliverDue(ctx context.Context) {
	due, err := s.db.DueDeliveries(ctx, time.Now(), webhookMaxPerTick)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("webhook deliveries", "err", err)
		}
		return
	}
	// A few at once, so one slow endpoint does not hold up the rest.
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, d := range due {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.attempt(ctx, d)
		}()
	}
	wg.Wait()
}

// attempt POSTs one delivery, signed afresh (its own webhook-timestamp,
// the same webhook-id), and records what happened.
func (s *Server) attempt(ctx context.Context, d store.DueDelivery) {
	start := time.Now()
	res := store.AttemptResult{Attempt: store.Attempt{At: start.UTC()}}
	status, err := s.post(ctx, d)
	if ctx.Err() != nil {
		return // shutting down: the delivery stays due and is sent after the restart
	}
	res.DurationMS = time.Since(start).Milliseconds()
	res.StatusCode = status
	res.OK = err == nil && status >= 200 && status < 300
	if !res.OK {
		switch {
		case err != nil:
			res.Error = err.Error()
		default:
			res.Error = fmt.Sprintf("the endpoint answered %d", status)
		}
		if n := d.Attempts + 1; n < len(webhookSchedule) {
			next := time.Now().Add(s.scaled(webhookSchedule[n])).UTC()
			res.Next = &next
		}
		res.DisableAfter = time.Now().Add(-s.scaled(webhookDisableAfter)).UTC()
	}
	w, err := s.db.RecordAttempt(context.WithoutCancel(ctx), d.ID, res)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("webhook attempt", "delivery", d.ID, "err", err)
		}
		return
	}
	if w.DisabledAt != nil && !res.OK {
		s.log.Warn("webhook disabled: its endpoint failed for too long", "webhook", w.ID, "tenant", w.TenantID)
	}
}

func (s *Server) post(ctx context.Context, d store.DueDelivery) (int, error) {
	ts := time.Now().Unix()
	sig, err := signWebhook(d.Secret, d.ID, ts, d.Body)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		return 0, errors.New("the webhook URL is not valid")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Candor-Webhooks/1")
	req.Header.Set("webhook-id", d.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	res, err := s.webhookClient().Do(req)
	if err != nil {
		// The error names the cause, never the URL (it may hold a token).
		var msg string
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			msg = "the endpoint did not answer within " + webhookTimeout.String()
		case strings.Contains(err.Error(), errPrivateTarget.Error()):
			msg = "the endpoint " + errPrivateTarget.Error()
		default:
			msg = "could not reach the endpoint"
		}
		return 0, errors.New(msg)
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	return res.StatusCode, nil
}
