package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"candor/store"
	"candor/web/views"
)

func (s *Server) handleCandidatesPage(c echo.Context) error {
	return s.renderCandidates(c, http.StatusOK, views.CandidateForm{}, nil)
}

func (s *Server) renderCandidates(c echo.Context, status int, f views.CandidateForm, errs views.FormErrors) error {
	list, err := s.db.ListCandidates(c.Request().Context(), principalOf(c).TenantID)
	if err != nil {
		return fmt.Errorf("list candidates: %w", err)
	}
	p, err := s.page(c, "Candidates", "candidates")
	if err != nil {
		return err
	}
	return render(c, status, views.CandidatesPage(p, views.Candidates{Candidates: list, Form: f, Errors: errs}))
}

func (s *Server) handleCreateCandidateForm(c echo.Context) error {
	f, errs := candidateForm(c)
	if len(errs) > 0 {
		return s.renderCandidates(c, http.StatusUnprocessableEntity, f, errs)
	}
	_, err := s.db.CreateCandidate(c.Request().Context(), store.Candidate{
		ID: store.NewID("cand_"), TenantID: principalOf(c).TenantID, Name: f.Name, Email: f.Email, Notes: f.Notes,
	})
	if errors.Is(err, store.ErrConflict) {
		return s.renderCandidates(c, http.StatusConflict, f, views.FormErrors{"email": "A candidate with this email exists already."})
	}
	if err != nil {
		return fmt.Errorf("create candidate: %w", err)
	}
	s.setFlash(c, "success", fmt.Sprintf("%s added.", f.Name))
	return seeOther(c, "/candidates")
}

// candidateForm reads and checks the create and edit forms.
func candidateForm(c echo.Context) (views.CandidateForm, views.FormErrors) {
	f := views.CandidateForm{
		Name:  strings.TrimSpace(c.FormValue("name")),
		Email: strings.ToLower(strings.TrimSpace(c.FormValue("email"))),
		Notes: strings.TrimSpace(strings.ReplaceAll(c.FormValue("notes"), "\r\n", "\n")),
	}
	errs := views.FormErrors{}
	in := candidateInput{Name: f.Name, Email: f.Email, Notes: f.Notes}
	if err := in.validate(); err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) {
			switch {
			case strings.HasPrefix(apiErr.Message, "name"):
				errs["name"] = "Enter the candidate's name (at most 200 characters)."
			case strings.HasPrefix(apiErr.Message, "email"):
				errs["email"] = "Enter a valid email address."
			case strings.HasPrefix(apiErr.Message, "notes"):
				errs["notes"] = fmt.Sprintf("Keep the notes under %d characters.", store.MaxNotesLen)
			default:
				errs[""] = apiErr.Message
			}
		} else {
			errs[""] = err.Error()
		}
	}
	return f, errs
}

func (s *Server) handleCandidateRecordPage(c echo.Context) error {
	cand, err := s.db.Candidate(c.Request().Context(), principalOf(c).TenantID, c.Param("id"))
	if err != nil {
		return fmt.Errorf("load candidate: %w", err)
	}
	return s.renderCandidate(c, http.StatusOK, cand, views.CandidateForm{Name: cand.Name, Email: cand.Email, Notes: cand.Notes}, nil)
}

func (s *Server) renderCandidate(c echo.Context, status int, cand store.Candidate, f views.CandidateForm, errs views.FormErrors) error {
	ctx := c.Request().Context()
	tenantID := principalOf(c).TenantID
	ivs, err := s.db.ListInterviews(ctx, tenantID, store.InterviewFilter{CandidateID: cand.ID, Limit: interviewListLimit})
	if err != nil {
		return fmt.Errorf("interviews of candidate: %w", err)
	}
	positions, err := s.db.ListPositions(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("list positions: %w", err)
	}
	rows, err := s.interviewRows(ctx, tenantID, ivs, positions, []store.Candidate{cand})
	if err != nil {
		return err
	}
	hideInvites(principalOf(c), rows)
	p, err := s.page(c, cand.Name, "candidates")
	if err != nil {
		return err
	}
	d := views.CandidateDetail{Candidate: cand, Form: f, Errors: errs, Interviews: rows, Erasable: s.candidateErasure()}
	return render(c, status, views.CandidateRecordPage(p, d))
}

func (s *Server) handleUpdateCandidateForm(c echo.Context) error {
	ctx := c.Request().Context()
	tenantID := principalOf(c).TenantID
	old, err := s.db.Candidate(ctx, tenantID, c.Param("id"))
	if err != nil {
		return fmt.Errorf("load candidate: %w", err)
	}
	f, errs := candidateForm(c)
	if len(errs) > 0 {
		return s.renderCandidate(c, http.StatusUnprocessableEntity, old, f, errs)
	}
	_, err = s.db.UpdateCandidate(ctx, store.Candidate{ID: old.ID, TenantID: tenantID, Name: f.Name, Email: f.Email, Notes: f.Notes})
	if errors.Is(err, store.ErrConflict) {
		return s.renderCandidate(c, http.StatusConflict, old, f, views.FormErrors{"email": "Another candidate has this email."})
	}
	if err != nil {
		return fmt.Errorf("update candidate: %w", err)
	}
	s.setFlash(c, "success", fmt.Sprintf("%s saved.", f.Name))
	return seeOther(c, "/candidates/"+old.ID)
}

// candidateErasure reports whether DELETE /api/v1/candidates/:id (the
// erasure path) is served; the candidate page offers deletion only then.
func (s *Server) candidateErasure() bool {
	for _, r := range s.e.Routes() {
		if r.Method == http.MethodDelete && r.Path == "/api/v1/candidates/:id" {
			return true
		}
	}
	return false
}
