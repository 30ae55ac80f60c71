-- What follows an interview: its scorecard, human reviews, webhooks and
-- their deliveries, per-tenant retention, and the audit log of erasures.

-- Consumers of the outbox (scorer, webhook fan-out) keep their cursor
-- here, so a restart resumes after the last event each one finished.
CREATE TABLE outbox_cursors (
    consumer TEXT NOT NULL PRIMARY KEY CHECK (consumer <> ''),
    after_id INTEGER NOT NULL CHECK (after_id >= 0)
) STRICT;

-- One scorecard per interview. body holds criteria, overall and the
-- validation counts (the API's shape, owned by web/scorecard).
CREATE TABLE scorecards (
    interview_id TEXT NOT NULL PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'failed', 'unavailable')),
    evaluator    TEXT NOT NULL,
    body         TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(body)),
    error        TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    FOREIGN KEY (tenant_id, interview_id) REFERENCES interviews (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE INDEX scorecards_tenant ON scorecards (tenant_id, interview_id);

-- One review per reviewer (a user, or an API key) and interview.
CREATE TABLE reviews (
    interview_id   TEXT NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    reviewer_id    TEXT NOT NULL CHECK (reviewer_id <> ''),
    reviewer_kind  TEXT NOT NULL CHECK (reviewer_kind IN ('user', 'api_key')),
    reviewer_name  TEXT NOT NULL,
    body           TEXT NOT NULL CHECK (json_valid(body)),
    overall        REAL,
    recommendation TEXT NOT NULL CHECK (recommendation IN ('strong_yes', 'yes', 'no', 'strong_no')),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (interview_id, reviewer_id),
    FOREIGN KEY (tenant_id, interview_id) REFERENCES interviews (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE INDEX reviews_tenant ON reviews (tenant_id, interview_id);

-- Webhook endpoints. The signing secret is encrypted like tenant secrets.
CREATE TABLE webhooks (
    id              TEXT NOT NULL PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url             TEXT NOT NULL CHECK (url <> ''),
    events          TEXT NOT NULL CHECK (json_valid(events) AND json_type(events) = 'array'),
    secret_nonce    BLOB NOT NULL,
    secret_ct       BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    failing_since   TEXT,
    disabled_at     TEXT,
    disabled_reason TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX webhooks_tenant ON webhooks (tenant_id, created_at);

-- One delivery per (webhook, outbox event): its id is the webhook-id every
-- attempt carries. body is the payload (erased with its subject).
CREATE TABLE webhook_deliveries (
    id              TEXT NOT NULL PRIMARY KEY,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    outbox_id       INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (webhook_id, outbox_id)
) STRICT;

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);
CREATE INDEX webhook_deliveries_subject ON webhook_deliveries (tenant_id, subject_id);

CREATE TABLE webhook_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    at          TEXT NOT NULL,
    status_code INTEGER NOT NULL DEFAULT 0,
    error       TEXT NOT NULL DEFAULT '',
    duration_ms INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);

-- Per-tenant retention; NULL keeps forever.
CREATE TABLE retention_policies (
    tenant_id        TEXT NOT NULL PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    recordings_days  INTEGER CHECK (recordings_days IS NULL OR recordings_days >= 1),
    transcripts_days INTEGER CHECK (transcripts_days IS NULL OR transcripts_days >= 1),
    updated_at       TEXT NOT NULL
) STRICT;

-- Who erased or swept what and when: IDs and counts, never personal data.
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at           TEXT NOT NULL,
    actor_kind   TEXT NOT NULL CHECK (actor_kind IN ('user', 'api_key', 'system')),
    actor_id     TEXT NOT NULL,
    action       TEXT NOT NULL CHECK (action <> ''),
    subject_kind TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    data         TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data))
) STRICT;

CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
