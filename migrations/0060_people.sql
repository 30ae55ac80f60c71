-- One person may belong to several organizations (issue 14). A person is an
-- email and a password: the login. A user is that person's membership of one
-- tenant (name, role); sessions stay per membership. users.email was unique
-- across all tenants, a constraint SQLite cannot drop, so users and the
-- sessions that reference it are rebuilt. Existing logins keep working: every
-- user becomes a person with the same email and password hash, and keeps its
-- id, so sessions survive; API keys belong to tenants and are untouched.
--
-- The rebuild runs with foreign key checks deferred to commit. sessions is
-- rebuilt pointing at users_new (renamed afterwards), so dropping the old
-- users table cascades into nothing.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE people (
    id            TEXT NOT NULL PRIMARY KEY,
    email         TEXT NOT NULL COLLATE NOCASE UNIQUE CHECK (email <> ''),
    -- '' until the person sets a password from their invitation: no
    -- password verifies against it.
    password_hash TEXT NOT NULL DEFAULT '',
    created_at    TEXT NOT NULL
) STRICT;

INSERT INTO people (id, email, password_hash, created_at)
    SELECT 'per_' || id, email, password_hash, created_at FROM users;

CREATE TABLE users_new (
    id         TEXT NOT NULL PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    person_id  TEXT NOT NULL REFERENCES people (id),
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'recruiter', 'viewer')),
    created_at TEXT NOT NULL,
    -- When the person first signed in to this organization; NULL while an
    -- invitation is pending.
    joined_at  TEXT,
    UNIQUE (tenant_id, id),
    -- A person is a member of a tenant at most once.
    UNIQUE (tenant_id, person_id)
) STRICT;

INSERT INTO users_new (id, tenant_id, person_id, name, role, created_at, joined_at)
    SELECT id, tenant_id, 'per_' || id, name, role, created_at, created_at FROM users;

CREATE TABLE sessions_new (
    id_hash    TEXT NOT NULL PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users_new (tenant_id, id) ON DELETE CASCADE
) STRICT;

INSERT INTO sessions_new (id_hash, tenant_id, user_id, csrf_token, created_at, expires_at)
    SELECT id_hash, tenant_id, user_id, csrf_token, created_at, expires_at FROM sessions;

DROP TABLE sessions;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
ALTER TABLE sessions_new RENAME TO sessions;

CREATE INDEX users_tenant_created ON users (tenant_id, created_at);
CREATE INDEX users_person ON users (person_id);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Links sent by email that let a person set a password: 'invite' for a new
-- member, 'reset' for a forgotten password. Only the token's hash is stored;
-- a token works once (used_at) and until expires_at.
CREATE TABLE person_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY,
    person_id  TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('invite', 'reset')),
    -- The organization to sign in to once the password is set ('' for a
    -- reset: the person chooses).
    tenant_id  TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;

CREATE INDEX person_tokens_person ON person_tokens (person_id);

-- Scheduling window and invitation mail. available_from NULL means the link
-- works at once; invited_at is the last time the invitation was emailed,
-- reminded_at when the one reminder went (claimed before sending, so it goes
-- once).
ALTER TABLE interviews ADD COLUMN available_from TEXT;
ALTER TABLE interviews ADD COLUMN invited_at TEXT;
ALTER TABLE interviews ADD COLUMN reminded_at TEXT;

CREATE INDEX interviews_reminder_due ON interviews (expires_at)
    WHERE status = 'scheduled' AND reminded_at IS NULL AND invited_at IS NOT NULL;
