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
	f := views.CandidateForm{
		Name:  strings.TrimSpace(c.FormValue("name")),
		Email: strings.ToLower(strings.TrimSpace(c.FormValue("email"))),
	}
	errs := views.FormErrors{}
	switch {
	case f.Name == "":
		errs["name"] = "Enter the candidate's name."
	case len(f.Name) > 200:
		errs["name"] = "Keep the name under 200 characters."
	}
	if !validEmail(f.Email) {
		errs["email"] = "Enter a valid email address."
	}
	if len(errs) > 0 {
		return s.renderCandidates(c, http.StatusUnprocessableEntity, f, errs)
	}
	_, err := s.db.CreateCandidate(c.Request().Context(), store.Candidate{
		ID: store.NewID("cand_"), TenantID: principalOf(c).TenantID, Name: f.Name, Email: f.Email,
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
