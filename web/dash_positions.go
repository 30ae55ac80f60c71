package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"candor/processor/contract"
	"candor/store"
	"candor/web/views"
)

func (s *Server) handlePositionsPage(c echo.Context) error {
	positions, err := s.db.ListPositions(c.Request().Context(), principalOf(c).TenantID)
	if err != nil {
		return fmt.Errorf("list positions: %w", err)
	}
	p, err := s.page(c, "Positions", "positions")
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.PositionsPage(p, positions))
}

func (s *Server) handleNewPositionPage(c echo.Context) error {
	return s.renderPosition(c, http.StatusOK, views.PositionForm{}, nil)
}

func (s *Server) handlePositionPage(c echo.Context) error {
	pos, err := s.db.Position(c.Request().Context(), principalOf(c).TenantID, c.Param("id"))
	if err != nil {
		return fmt.Errorf("load position: %w", err)
	}
	return s.renderPosition(c, http.StatusOK, views.PositionFormFrom(pos), nil)
}

// handleDeletePositionForm deletes a position without interviews.
func (s *Server) handleDeletePositionForm(c echo.Context) error {
	ctx := c.Request().Context()
	tenantID := principalOf(c).TenantID
	pos, err := s.db.Position(ctx, tenantID, c.Param("id"))
	if err != nil {
		return fmt.Errorf("load position: %w", err)
	}
	err = s.db.DeletePosition(ctx, tenantID, pos.ID)
	if errors.Is(err, store.ErrConflict) {
		s.setFlash(c, "error", fmt.Sprintf("“%s” has interviews, so it was not deleted.", pos.Title))
		return seeOther(c, positionPath(pos.ID))
	}
	if err != nil {
		return fmt.Errorf("delete position: %w", err)
	}
	s.setFlash(c, "success", fmt.Sprintf("Position “%s” deleted.", pos.Title))
	return seeOther(c, "/positions")
}

func positionPath(id string) string { return "/positions/" + id }

// voiceOptions are the choices of the position editor's voice field.
func voiceOptions() []views.Option {
	out := []views.Option{{Value: "", Label: "Default (" + contract.PlanVoices[0].Label + ")"}}
	for _, v := range contract.PlanVoices {
		out = append(out, views.Option{Value: v.ID, Label: v.Label})
	}
	return out
}

func (s *Server) renderPosition(c echo.Context, status int, f views.PositionForm, errs views.FormErrors) error {
	title := f.Title
	if f.ID == "" {
		title = "New position"
	}
	f.Voices = voiceOptions()
	if f.ID != "" {
		ivs, err := s.db.ListInterviews(c.Request().Context(), principalOf(c).TenantID, store.InterviewFilter{PositionID: f.ID, Limit: interviewListLimit})
		if err != nil {
			return fmt.Errorf("interviews of position: %w", err)
		}
		f.Interviews = len(ivs)
		r, err := s.positionRanking(c.Request().Context(), principalOf(c).TenantID, f.ID, c.QueryParam("sort"), store.Status(c.QueryParam("status")))
		if err != nil {
			return fmt.Errorf("ranking of position: %w", err)
		}
		f.Ranking = &r
	}
	p, err := s.page(c, title, "positions")
	if err != nil {
		return err
	}
	return render(c, status, views.PositionPage(p, f, errs))
}

func (s *Server) handleCreatePositionForm(c echo.Context) error {
	f, pos, errs := readPositionForm(c)
	if len(errs) > 0 {
		return s.renderPosition(c, http.StatusUnprocessableEntity, f, errs)
	}
	now := time.Now().UTC()
	pos.TenantID, pos.ID, pos.CreatedAt, pos.UpdatedAt = principalOf(c).TenantID, store.NewID("pos_"), now, now
	created, err := s.db.CreatePosition(c.Request().Context(), pos)
	if err != nil {
		return fmt.Errorf("create position: %w", err)
	}
	s.setFlash(c, "success", fmt.Sprintf("Position “%s” created.", created.Title))
	return seeOther(c, "/positions")
}

func (s *Server) handleUpdatePositionForm(c echo.Context) error {
	ctx := c.Request().Context()
	tenantID := principalOf(c).TenantID
	old, err := s.db.Position(ctx, tenantID, c.Param("id"))
	if err != nil {
		return fmt.Errorf("load position: %w", err)
	}
	f, pos, errs := readPositionForm(c)
	f.ID = old.ID
	if len(errs) > 0 {
		return s.renderPosition(c, http.StatusUnprocessableEntity, f, errs)
	}
	pos.ID, pos.TenantID, pos.CreatedAt, pos.UpdatedAt = old.ID, tenantID, old.CreatedAt, time.Now().UTC()
	if _, err := s.db.UpdatePosition(ctx, pos); err != nil {
		return fmt.Errorf("update position: %w", err)
	}
	s.setFlash(c, "success", fmt.Sprintf("Position “%s” saved.", pos.Title))
	return seeOther(c, "/positions/"+old.ID)
}

// readPositionForm parses the editor: questions one per line (the JS editor
// writes the same textarea), rubric rows as parallel repeated fields. Rows
// left entirely empty are dropped.
func readPositionForm(c echo.Context) (views.PositionForm, store.Position, views.FormErrors) {
	f := views.PositionForm{
		Title:           strings.TrimSpace(c.FormValue("title")),
		Description:     strings.TrimSpace(c.FormValue("description")),
		InterviewerName: strings.TrimSpace(c.FormValue("interviewer_name")),
		Voice:           strings.TrimSpace(c.FormValue("voice")),
	}
	for _, line := range strings.Split(strings.ReplaceAll(c.FormValue("questions"), "\r\n", "\n"), "\n") {
		if q := strings.TrimSpace(line); q != "" {
			f.Questions = append(f.Questions, q)
		}
	}
	form, _ := c.FormParams()
	names, descs, weights := form["rubric_name"], form["rubric_description"], form["rubric_weight"]
	for i := range max(len(names), len(descs), len(weights)) {
		r := views.RubricRow{Name: strings.TrimSpace(nth(names, i)), Description: strings.TrimSpace(nth(descs, i)), Weight: strings.TrimSpace(nth(weights, i))}
		if r != (views.RubricRow{}) {
			f.Rubric = append(f.Rubric, r)
		}
	}

	errs := views.FormErrors{}
	switch {
	case f.Title == "":
		errs["title"] = "Give the position a title."
	case utf8.RuneCountInString(f.Title) > store.MaxTitleLen:
		errs["title"] = fmt.Sprintf("Keep the title under %d characters.", store.MaxTitleLen)
	}
	// No questions is allowed, as in the API: the interviewer then asks its
	// default ones (contract.DefaultQuestions).
	if len(f.Questions) > store.MaxQuestions {
		errs["questions"] = fmt.Sprintf("Plan at most %d questions.", store.MaxQuestions)
	}
	for _, q := range f.Questions {
		if utf8.RuneCountInString(q) > store.MaxQuestionLen {
			errs["questions"] = fmt.Sprintf("Keep each question under %d characters.", store.MaxQuestionLen)
		}
	}
	if utf8.RuneCountInString(f.Description) > store.MaxDescriptionLen {
		errs["description"] = fmt.Sprintf("Keep the description under %d characters.", store.MaxDescriptionLen)
	}
	if len(f.Rubric) > store.MaxRubricItems {
		errs["rubric"] = fmt.Sprintf("Use at most %d criteria.", store.MaxRubricItems)
	}
	if utf8.RuneCountInString(f.InterviewerName) > store.MaxInterviewerName {
		errs["interviewer_name"] = fmt.Sprintf("Keep the name under %d characters.", store.MaxInterviewerName)
	}
	if !validVoice(f.Voice) {
		errs["voice"] = "Choose one of the listed voices."
	}
	pos := store.Position{Title: f.Title, Description: f.Description, Questions: f.Questions, InterviewerName: f.InterviewerName, Voice: f.Voice}
	for i, r := range f.Rubric {
		w := 1.0
		if r.Weight != "" {
			v, err := strconv.ParseFloat(r.Weight, 64)
			if err != nil || math.IsNaN(v) || v < 0 || v > store.MaxRubricWeight {
				errs["rubric_weight_"+strconv.Itoa(i)] = fmt.Sprintf("A weight is a number from 0 to %d.", store.MaxRubricWeight)
				continue
			}
			w = v
		}
		if r.Name == "" {
			errs["rubric"] = "Every criterion needs a name."
			continue
		}
		pos.Rubric = append(pos.Rubric, store.RubricItem{Name: r.Name, Description: r.Description, Weight: w})
	}
	if len(errs) == 0 {
		// The API's rules are the last word, so both doors accept the same.
		in := positionInput{Title: pos.Title, Description: pos.Description, Questions: pos.Questions, Rubric: pos.Rubric,
			InterviewerName: pos.InterviewerName, Voice: pos.Voice}
		if err := in.validate(); err != nil {
			errs[""] = err.Error()
		}
		pos.Questions, pos.Rubric, pos.InterviewerName, pos.Voice = in.Questions, in.Rubric, in.InterviewerName, in.Voice
	}
	return f, pos, errs
}

func nth(vs []string, i int) string {
	if i < len(vs) {
		return vs[i]
	}
	return ""
}
