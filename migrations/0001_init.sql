-- Candor's initial schema (DESIGN §3).
--
-- Conventions:
--   * Every table holding tenant data has tenant_id with a foreign key to
--     tenants. Child rows reference their parent through (tenant_id, id), so
--     the database itself refuses a row whose parent belongs to another
--     tenant.
--   * Times are TEXT in UTC, RFC 3339 with exactly nine fractional digits
--     (2006-01-02T15:04:05.000000000Z), so that text order is time order and
--     range comparisons work on the column directly.
--   * Enumerations are guarded by CHECK constraints.
--   * Tables are STRICT: a value of the wrong type is an error, not a coercion.

CREATE TABLE tenants (
    id         TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL COLLATE NOCASE UNIQUE CHECK (name <> ''),
    slug       TEXT NOT NULL UNIQUE CHECK (slug <> '' AND length(slug) <= 40),
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    id            TEXT NOT NULL PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- Email is unique across tenants: it is the login name.
    email         TEXT NOT NULL COLLATE NOCASE UNIQUE CHECK (email <> ''),
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'recruiter', 'viewer')),
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    UNIQUE (tenant_id, id)
) STRICT;

CREATE INDEX users_tenant_created ON users (tenant_id, created_at);

CREATE TABLE sessions (
    id_hash    TEXT NOT NULL PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE INDEX sessions_user ON sessions (tenant_id, user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE api_keys (
    id           TEXT NOT NULL PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE CHECK (key_hash <> ''),
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
) STRICT;

CREATE INDEX api_keys_tenant_created ON api_keys (tenant_id, created_at);

CREATE TABLE positions (
    id          TEXT NOT NULL PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    title       TEXT NOT NULL CHECK (title <> ''),
    description TEXT NOT NULL,
    questions   TEXT NOT NULL CHECK (json_valid(questions) AND json_type(questions) = 'array'),
    rubric      TEXT NOT NULL CHECK (json_valid(rubric) AND json_type(rubric) = 'array'),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (tenant_id, id)
) STRICT;

CREATE INDEX positions_tenant_created ON positions (tenant_id, created_at);

CREATE TABLE candidates (
    id         TEXT NOT NULL PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    email      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (tenant_id, id)
) STRICT;

CREATE INDEX candidates_tenant_created ON candidates (tenant_id, created_at);
-- A candidate's email is unique within a tenant; candidates without an email
-- do not collide with each other.
CREATE UNIQUE INDEX candidates_tenant_email ON candidates (tenant_id, email COLLATE NOCASE)
    WHERE email <> '';

CREATE TABLE interviews (
    id                   TEXT NOT NULL PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    position_id          TEXT NOT NULL,
    candidate_id         TEXT NOT NULL,
    status               TEXT NOT NULL DEFAULT 'scheduled'
        CHECK (status IN ('scheduled', 'starting', 'running', 'completed', 'failed', 'cancelled')),
    region               TEXT NOT NULL DEFAULT '',
    -- NULL when no invite was issued; unique across tenants because the
    -- candidate's link is looked up by it alone.
    invite_token_hash    TEXT UNIQUE,
    expires_at           TEXT NOT NULL,
    consent_at           TEXT,
    started_at           TEXT,
    ended_at             TEXT,
    created_at           TEXT NOT NULL,
    processor_token_hash TEXT,
    media_ms             INTEGER NOT NULL DEFAULT 0 CHECK (media_ms >= 0),
    last_heartbeat_at    TEXT,
    recording_path       TEXT NOT NULL DEFAULT '',
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, position_id) REFERENCES positions (tenant_id, id),
    FOREIGN KEY (tenant_id, candidate_id) REFERENCES candidates (tenant_id, id)
) STRICT;

CREATE INDEX interviews_tenant_created ON interviews (tenant_id, created_at);
CREATE INDEX interviews_tenant_status_created ON interviews (tenant_id, status, created_at);
CREATE INDEX interviews_position ON interviews (tenant_id, position_id);
CREATE INDEX interviews_candidate ON interviews (tenant_id, candidate_id);
-- Supervision scans running interviews for missed heartbeats.
CREATE INDEX interviews_running_heartbeat ON interviews (last_heartbeat_at)
    WHERE status = 'running';

CREATE TABLE machines (
    id             TEXT NOT NULL PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    interview_id   TEXT NOT NULL,
    provider       TEXT NOT NULL CHECK (provider IN ('local', 'fly')),
    provider_id    TEXT NOT NULL DEFAULT '',
    app            TEXT NOT NULL DEFAULT '',
    region         TEXT NOT NULL DEFAULT '',
    state          TEXT NOT NULL DEFAULT 'starting'
        CHECK (state IN ('starting', 'running', 'stopping', 'destroyed', 'failed')),
    url            TEXT NOT NULL DEFAULT '',
    created_at     TEXT NOT NULL,
    destroyed_at   TEXT,
    seconds_billed REAL NOT NULL DEFAULT 0 CHECK (seconds_billed >= 0),
    FOREIGN KEY (tenant_id, interview_id) REFERENCES interviews (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE INDEX machines_interview_created ON machines (tenant_id, interview_id, created_at);
CREATE INDEX machines_tenant_created ON machines (tenant_id, created_at);
CREATE INDEX machines_live ON machines (created_at)
    WHERE destroyed_at IS NULL AND state <> 'destroyed';

-- PRIMARY KEY (interview_id, seq) is the UNIQUE (interview_id, seq) that makes
-- bridge deliveries idempotent; WITHOUT ROWID keeps entries clustered by
-- interview and seq, the order every read wants.
CREATE TABLE transcript_entries (
    interview_id TEXT NOT NULL,
    seq          INTEGER NOT NULL CHECK (seq > 0),
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    speaker      TEXT NOT NULL CHECK (speaker IN ('candidate', 'interviewer')),
    text         TEXT NOT NULL,
    start_ms     INTEGER NOT NULL CHECK (start_ms >= 0),
    end_ms       INTEGER NOT NULL CHECK (end_ms >= start_ms),
    confidence   REAL NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (interview_id, seq),
    FOREIGN KEY (tenant_id, interview_id) REFERENCES interviews (tenant_id, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE INDEX transcript_entries_tenant ON transcript_entries (tenant_id, interview_id);

-- Append-only: rows are inserted and never changed (a trigger refuses
-- UPDATE). They go only together with their interview.
CREATE TABLE interview_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    interview_id TEXT NOT NULL,
    type         TEXT NOT NULL CHECK (type <> ''),
    at           TEXT NOT NULL,
    data         TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data)),
    FOREIGN KEY (tenant_id, interview_id) REFERENCES interviews (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE INDEX interview_events_interview ON interview_events (tenant_id, interview_id, id);

CREATE TRIGGER interview_events_append_only
BEFORE UPDATE ON interview_events
BEGIN
    SELECT RAISE(ABORT, 'interview_events is append-only');
END;

-- Values are AES-256-GCM ciphertexts; the nonce is fresh for every write and
-- the additional data binds a ciphertext to its (tenant_id, name).
CREATE TABLE secrets (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       TEXT NOT NULL CHECK (name <> ''),
    nonce      BLOB NOT NULL CHECK (length(nonce) = 12),
    ciphertext BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
) STRICT;
