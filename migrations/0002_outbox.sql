-- The transition outbox: one row per domain event (interview.scheduled,
-- interview.started, interview.completed, interview.failed,
-- interview.cancelled, scorecard.ready, candidate.erased), written in the same
-- transaction as the change it records. Consumers (webhook delivery) keep
-- their own cursor on id; a row exists if and only if its change committed.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    type       TEXT NOT NULL CHECK (type <> ''),
    subject_id TEXT NOT NULL,
    data       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data)),
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX outbox_tenant ON outbox (tenant_id, id);
CREATE INDEX outbox_subject ON outbox (tenant_id, subject_id);
