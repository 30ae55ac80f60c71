-- Epochs: every launch of an interview's processor (the first and each
-- replacement) is an epoch with its own bridge credential. The control
-- plane assigns an entry's seq when it commits it (the next one of the
-- interview); the processor's own number of the entry, local_seq, only
-- makes a retried delivery idempotent: (interview, epoch, local_seq) is
-- stored once. So a retired processor's late entries can never collide
-- with its replacement's, and seqs stay unique and increasing in commit
-- order, which is what a viewer resuming with since_seq relies on.
ALTER TABLE interviews ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;

ALTER TABLE transcript_entries ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE transcript_entries ADD COLUMN local_seq INTEGER NOT NULL DEFAULT 0;
UPDATE transcript_entries SET local_seq = seq;
CREATE UNIQUE INDEX transcript_entries_delivery ON transcript_entries (interview_id, epoch, local_seq);

-- A machine replaced while it may still be alive (unreachable, not known
-- dead) drains instead of being destroyed: it is 'stopping' until it
-- reports drained, vanishes, or drain_until passes.
ALTER TABLE machines ADD COLUMN drain_until TEXT;

-- The bridge credentials of retired epochs whose processor may still be
-- alive. Such a processor may deliver its spooled entries that start
-- before handover_media_ms (what it heard before the hand-over), and its
-- recording, until it reports drained or its machine's drain_until passes
-- (or the machine is destroyed); it can do nothing else.
CREATE TABLE retired_processors (
    token_hash        TEXT NOT NULL PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    interview_id      TEXT NOT NULL,
    epoch             INTEGER NOT NULL,
    machine_id        TEXT NOT NULL,
    handover_media_ms INTEGER NOT NULL CHECK (handover_media_ms >= 0),
    retired_at        TEXT NOT NULL,
    drained_at        TEXT,
    FOREIGN KEY (tenant_id, interview_id) REFERENCES interviews (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE INDEX retired_processors_interview ON retired_processors (interview_id);
