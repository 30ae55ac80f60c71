package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"candor/web/views"
)

// handleSearchPage is the dashboard's search over candidates and
// transcripts; each transcript hit links to its moment in the interview.
func (s *Server) handleSearchPage(c echo.Context) error {
	q := strings.TrimSpace(c.QueryParam("q"))
	d := views.Search{Query: q}
	status := http.StatusOK
	if q != "" {
		hits, err := s.search(c, q)
		var apiErr *Error
		switch {
		case errors.As(err, &apiErr):
			d.Error = "Search for fewer words (at most 200 characters)."
			status = http.StatusUnprocessableEntity
		case err != nil:
			return err
		}
		for _, h := range hits {
			text, spans := splitMarks(h.Snippet)
			d.Hits = append(d.Hits, views.SearchHit{Hit: h, URL: hitURL(h), Parts: views.Highlight(text, spans)})
		}
	}
	p, err := s.page(c, "Search", "search")
	if err != nil {
		return err
	}
	return render(c, status, views.SearchPage(p, d))
}
