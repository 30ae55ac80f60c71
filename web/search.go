package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"candor/store"
)

const searchLimit = 50

type searchHitJSON struct {
	Kind          string `json:"kind"` // "candidate" | "entry"
	CandidateID   string `json:"candidate_id"`
	CandidateName string `json:"candidate_name"`
	InterviewID   string `json:"interview_id,omitempty"`
	PositionTitle string `json:"position_title,omitempty"`
	Seq           int64  `json:"seq,omitempty"`
	Speaker       string `json:"speaker,omitempty"`
	StartMS       *int64 `json:"start_ms,omitempty"`
	// Snippet is plain text around the matches (never HTML).
	Snippet string `json:"snippet"`
	// Highlights are [start, end) byte offsets of the matches in Snippet.
	Highlights [][2]int `json:"highlights"`
	URL        string   `json:"url"`
}

// splitMarks removes store.MarkStart/MarkEnd from s and returns the text
// with the byte spans they enclosed.
func splitMarks(s string) (string, [][2]int) {
	var b strings.Builder
	spans := [][2]int{}
	start := -1
	for _, r := range s {
		switch string(r) {
		case store.MarkStart:
			start = b.Len()
		case store.MarkEnd:
			if start >= 0 {
				spans = append(spans, [2]int{start, b.Len()})
			}
			start = -1
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), spans
}

// hitURL is the dashboard page of a hit: the candidate, or the moment of the
// interview (the interview page seeks its recording to #entry-<seq>).
func hitURL(h store.Hit) string {
	if h.Kind == store.HitEntry {
		return fmt.Sprintf("/interviews/%s#entry-%d", h.InterviewID, h.Seq)
	}
	return "/candidates/" + h.CandidateID
}

func (s *Server) search(c echo.Context, q string) ([]store.Hit, error) {
	hits, err := s.db.Search(c.Request().Context(), principalOf(c).TenantID, q, searchLimit)
	if errors.Is(err, store.ErrInvalid) {
		return nil, invalid("q", "is longer than %d bytes", store.MaxSearchQuery)
	}
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	return hits, nil
}

// handleSearch is GET /api/v1/search?q=: the tenant's candidates and
// transcript lines matching every word of q, best first.
func (s *Server) handleSearch(c echo.Context) error {
	q := c.QueryParam("q")
	if strings.TrimSpace(q) == "" {
		return invalid("q", "is required")
	}
	hits, err := s.search(c, q)
	if err != nil {
		return err
	}
	out := make([]searchHitJSON, 0, len(hits))
	for _, h := range hits {
		text, spans := splitMarks(h.Snippet)
		j := searchHitJSON{
			Kind: h.Kind, CandidateID: h.CandidateID, CandidateName: h.CandidateName,
			Snippet: text, Highlights: spans, URL: s.cfg.PublicURL + hitURL(h),
		}
		if h.Kind == store.HitEntry {
			j.InterviewID, j.PositionTitle, j.Seq, j.Speaker = h.InterviewID, h.PositionTitle, h.Seq, h.Speaker
			j.StartMS = &h.StartMS
		}
		out = append(out, j)
	}
	return c.JSON(http.StatusOK, map[string]any{"query": q, "hits": out})
}
