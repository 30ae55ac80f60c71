-- Candidate records, position voices and full-text search (issue 14, part B).

-- How the interviewer introduces itself and which voice speaks for a position
-- ("" = the processor's default voice).
ALTER TABLE positions ADD COLUMN interviewer_name TEXT NOT NULL DEFAULT '';
ALTER TABLE positions ADD COLUMN voice TEXT NOT NULL DEFAULT '';

-- A recruiter's free-text notes on a candidate.
ALTER TABLE candidates ADD COLUMN notes TEXT NOT NULL DEFAULT '';

-- Full-text search over candidates and transcripts.
--
-- search_docs says what each indexed row is (kind 'candidate': ref_id is the
-- candidate id; kind 'entry': ref_id is the interview id and seq the entry's
-- seq) and which tenant owns it; search_fts holds the text under the same
-- rowid. Triggers below keep both in step with candidates and
-- transcript_entries, so writers need not know the index exists.
--
-- ERASURE: deleting a candidate row or a transcript_entries row (directly or
-- by ON DELETE CASCADE from interviews) removes its rows from search_docs and
-- search_fts through these triggers. To purge a tenant's index without the
-- source rows, delete from search_fts WHERE rowid IN (SELECT id FROM
-- search_docs WHERE tenant_id = ?) and then from search_docs. (`after`: the
-- tables are search_docs and search_fts.)
CREATE TABLE search_docs (
    id        INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('candidate', 'entry')),
    ref_id    TEXT NOT NULL,
    seq       INTEGER NOT NULL DEFAULT 0,
    UNIQUE (kind, ref_id, seq)
) STRICT;

CREATE INDEX search_docs_tenant ON search_docs (tenant_id);

CREATE VIRTUAL TABLE search_fts USING fts5(body, tokenize = 'porter unicode61 remove_diacritics 2');

CREATE TRIGGER search_candidate_insert AFTER INSERT ON candidates
BEGIN
    INSERT INTO search_docs (tenant_id, kind, ref_id, seq) VALUES (new.tenant_id, 'candidate', new.id, 0);
    INSERT INTO search_fts (rowid, body)
        VALUES (last_insert_rowid(), new.name || ' ' || new.email || ' ' || new.notes);
END;

CREATE TRIGGER search_candidate_update AFTER UPDATE OF name, email, notes ON candidates
BEGIN
    UPDATE search_fts SET body = new.name || ' ' || new.email || ' ' || new.notes
        WHERE rowid = (SELECT id FROM search_docs WHERE kind = 'candidate' AND ref_id = old.id AND seq = 0);
END;

CREATE TRIGGER search_candidate_delete AFTER DELETE ON candidates
BEGIN
    DELETE FROM search_fts WHERE rowid = (SELECT id FROM search_docs WHERE kind = 'candidate' AND ref_id = old.id AND seq = 0);
    DELETE FROM search_docs WHERE kind = 'candidate' AND ref_id = old.id AND seq = 0;
END;

CREATE TRIGGER search_entry_insert AFTER INSERT ON transcript_entries
BEGIN
    INSERT INTO search_docs (tenant_id, kind, ref_id, seq) VALUES (new.tenant_id, 'entry', new.interview_id, new.seq);
    INSERT INTO search_fts (rowid, body) VALUES (last_insert_rowid(), new.text);
END;

CREATE TRIGGER search_entry_delete AFTER DELETE ON transcript_entries
BEGIN
    DELETE FROM search_fts WHERE rowid = (SELECT id FROM search_docs WHERE kind = 'entry' AND ref_id = old.interview_id AND seq = old.seq);
    DELETE FROM search_docs WHERE kind = 'entry' AND ref_id = old.interview_id AND seq = old.seq;
END;

-- Rows that existed before this migration.
INSERT INTO search_docs (tenant_id, kind, ref_id, seq) SELECT tenant_id, 'candidate', id, 0 FROM candidates;
INSERT INTO search_docs (tenant_id, kind, ref_id, seq) SELECT tenant_id, 'entry', interview_id, seq FROM transcript_entries;
INSERT INTO search_fts (rowid, body)
    SELECT d.id, c.name || ' ' || c.email || ' ' || c.notes FROM search_docs d JOIN candidates c ON d.kind = 'candidate' AND c.id = d.ref_id;
INSERT INTO search_fts (rowid, body)
    SELECT d.id, e.text FROM search_docs d JOIN transcript_entries e ON d.kind = 'entry' AND e.interview_id = d.ref_id AND e.seq = d.seq;
