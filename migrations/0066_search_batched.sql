-- Transcript entries reach the full-text index in batches, not through a
-- trigger per entry: every FTS5 insert committed on its own adds a segment
-- and merge work, which halved the bridge's entry throughput under load
-- (candor bench realtime: 4,987 → 2,484 entries/s). An entry now only
-- queues its key here; the store's writer indexes the queue about twice a
-- second, and a search indexes what is queued before it reads
-- (store.indexPendingEntries). The queue holds keys, never text, so
-- erasure needs nothing here: an erased entry is simply not found when its
-- key is drained. Deleting an entry still removes its index rows through
-- search_entry_delete (0065).
DROP TRIGGER search_entry_insert;

CREATE TABLE search_pending (
    id           INTEGER PRIMARY KEY,
    interview_id TEXT NOT NULL,
    seq          INTEGER NOT NULL
) STRICT;

CREATE TRIGGER search_entry_queue AFTER INSERT ON transcript_entries
BEGIN
    INSERT INTO search_pending (interview_id, seq) VALUES (new.interview_id, new.seq);
END;
