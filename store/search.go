package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"unicode"
)

// Search hit kinds.
const (
	HitCandidate = "candidate"
	HitEntry     = "entry"
)

// Marks around the matched terms in Hit.Snippet. They are control characters
// that never occur in stored text, so a page can escape the snippet and then
// turn them into <mark> without trusting the text.
const (
	MarkStart = "\x02"
	MarkEnd   = "\x03"
)

// Hit is one search result. For a candidate, CandidateID and Name are set;
// for a transcript entry also InterviewID, Seq, StartMS, Speaker and the
// interview's position title.
type Hit struct {
	Kind          string
	CandidateID   string
	CandidateName string
	InterviewID   string
	PositionTitle string
	Seq           int64
	Speaker       string
	StartMS       int64
	Snippet       string // with MarkStart/MarkEnd around matches
}

// MaxSearchQuery bounds a search query's length in bytes.
const MaxSearchQuery = 200

// FTSQuery turns what a person typed into an FTS5 query: every word must
// occur (as a prefix for the last one, so results follow typing); FTS5's
// operators and quotes are taken literally. "" when nothing is searchable.
func FTSQuery(q string) string {
	words := strings.FieldsFunc(q, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\'' && r != '@' && r != '.' && r != '-' && r != '_'
	})
	var parts []string
	for _, w := range words {
		w = strings.Trim(w, "'.-_@")
		if w == "" {
			continue
		}
		parts = append(parts, `"`+strings.ReplaceAll(w, `"`, `""`)+`"`)
		if len(parts) == 8 {
			break
		}
	}
	if len(parts) == 0 {
		return ""
	}
	parts[len(parts)-1] += "*"
	return strings.Join(parts, " ")
}

// Search finds the tenant's candidates and transcript entries matching q
// (see FTSQuery), best first, at most limit. An empty query finds nothing.
func (db *DB) Search(ctx context.Context, tenantID, q string, limit int) ([]Hit, error) {
	if len(q) > MaxSearchQuery {
		return nil, fmt.Errorf("search query longer than %d bytes: %w", MaxSearchQuery, ErrInvalid)
	}
	match := FTSQuery(q)
	if match == "" {
		return nil, nil
	}
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	if err := db.indexPendingEntries(ctx); err != nil {
		return nil, err
	}
	const query = `
		SELECT d.kind, d.seq,
			coalesce(c.id, ic.id, ''), coalesce(c.name, ic.name, ''),
			coalesce(i.id, ''), coalesce(p.title, ''),
			coalesce(e.speaker, ''), coalesce(e.start_ms, 0),
			snippet(search_fts, 0, char(2), char(3), '…', 16)
		FROM search_fts
		JOIN search_docs d ON d.id = search_fts.rowid
		LEFT JOIN candidates c ON d.kind = 'candidate' AND c.tenant_id = d.tenant_id AND c.id = d.ref_id
		LEFT JOIN transcript_entries e ON d.kind = 'entry' AND e.interview_id = d.ref_id AND e.seq = d.seq
		LEFT JOIN interviews i ON d.kind = 'entry' AND i.tenant_id = d.tenant_id AND i.id = d.ref_id
		LEFT JOIN candidates ic ON ic.tenant_id = i.tenant_id AND ic.id = i.candidate_id
		LEFT JOIN positions p ON p.tenant_id = i.tenant_id AND p.id = i.position_id
		WHERE search_fts MATCH ? AND d.tenant_id = ?
		ORDER BY d.kind = 'entry', rank
		LIMIT ?`
	var hits []Hit
	err := db.inRead(ctx, func(tx *sql.Tx) (err error) {
		hits, err = queryAll(ctx, tx, func(s scanner) (Hit, error) {
			var h Hit
			err := s.Scan(&h.Kind, &h.Seq, &h.CandidateID, &h.CandidateName, &h.InterviewID, &h.PositionTitle, &h.Speaker, &h.StartMS, &h.Snippet)
			return h, err
		}, query, match, tenantID, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: search: %w", err)
	}
	return hits, nil
}
