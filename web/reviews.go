package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"candor/store"
	"candor/web/scorecard"
)

const maxReviewNote = 4000

type reviewCriterion struct {
	Name  string `json:"name"`
	Score int    `json:"score"`
	Note  string `json:"note"`
}

// reviewBody is what a review stores beside its overall score.
type reviewBody struct {
	Criteria []reviewCriterion `json:"criteria"`
	Note     string            `json:"note"`
}

type reviewerJSON struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // user or api_key
	Name string `json:"name"`
}

type reviewJSON struct {
	Reviewer       reviewerJSON      `json:"reviewer"`
	Criteria       []reviewCriterion `json:"criteria"`
	Overall        *float64          `json:"overall"`
	Recommendation string            `json:"recommendation"`
	Note           string            `json:"note"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

func toReviewJSON(r store.Review) reviewJSON {
	var b reviewBody
	json.Unmarshal(r.Body, &b)
	if b.Criteria == nil {
		b.Criteria = []reviewCriterion{}
	}
	return reviewJSON{Reviewer: reviewerJSON{ID: r.ReviewerID, Kind: r.ReviewerKind, Name: r.Reviewer},
		Criteria: b.Criteria, Overall: r.Overall, Recommendation: r.Recommendation, Note: b.Note,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

type reviewInput struct {
	Criteria       []reviewCriterion `json:"criteria"`
	Recommendation string            `json:"recommendation"`
	Note           string            `json:"note"`
}

// validate checks in against the position's rubric: every criterion scored
// once, 1–5, and nothing else. It returns the criteria in rubric order and
// the weighted overall score.
func (in *reviewInput) validate(rubric []store.RubricItem) ([]reviewCriterion, float64, error) {
	if !scorecard.ValidRecommendation(in.Recommendation) {
		return nil, 0, invalid("recommendation", "must be one of %s", strings.Join(scorecard.Recommendations, ", "))
	}
	if utf8.RuneCountInString(in.Note) > maxReviewNote {
		return nil, 0, invalid("note", "is longer than %d characters", maxReviewNote)
	}
	if len(rubric) == 0 {
		return nil, 0, errorf(CodeConflict, "the position has no rubric to review against")
	}
	byName := map[string]int{}
	for i, c := range in.Criteria {
		key := strings.ToLower(strings.TrimSpace(c.Name))
		if _, dup := byName[key]; dup {
			return nil, 0, invalid(fmt.Sprintf("criteria[%d].name", i), "%q is scored twice", c.Name)
		}
		byName[key] = i
		if c.Score < scorecard.MinScore || c.Score > scorecard.MaxScore {
			return nil, 0, invalid(fmt.Sprintf("criteria[%d].score", i), "must be from %d to %d", scorecard.MinScore, scorecard.MaxScore)
		}
		if utf8.RuneCountInString(c.Note) > maxReviewNote {
			return nil, 0, invalid(fmt.Sprintf("criteria[%d].note", i), "is longer than %d characters", maxReviewNote)
		}
	}
	var out []reviewCriterion
	var scored []scorecard.Criterion
	for _, r := range rubric {
		key := strings.ToLower(strings.TrimSpace(r.Name))
		i, ok := byName[key]
		if !ok {
			return nil, 0, invalid("criteria", "the rubric's %q is not scored", r.Name)
		}
		delete(byName, key)
		c := in.Criteria[i]
		out = append(out, reviewCriterion{Name: r.Name, Score: c.Score, Note: strings.TrimSpace(c.Note)})
		scored = append(scored, scorecard.Criterion{Weight: r.Weight, Score: c.Score})
	}
	for _, i := range byName {
		return nil, 0, invalid(fmt.Sprintf("criteria[%d].name", i), "%q is not in the position's rubric", in.Criteria[i].Name)
	}
	return out, scorecard.WeightedScore(scored), nil
}

// handleSaveReview stores the caller's review of the interview, replacing
// their earlier one: 201 the first time, 200 after. A review made with an
// API key is the key's.
func (s *Server) handleSaveReview(c echo.Context) error {
	var in reviewInput
	if err := s.decode(c, &in); err != nil {
		return err
	}
	ctx := c.Request().Context()
	p := principalOf(c)
	iv, err := s.db.Interview(ctx, p.TenantID, c.Param("id"))
	if err != nil {
		return notFound(err, "interview")
	}
	pos, err := s.db.Position(ctx, p.TenantID, iv.PositionID)
	if err != nil {
		return fmt.Errorf("review: position: %w", err)
	}
	criteria, overall, err := in.validate(pos.Rubric)
	if err != nil {
		return err
	}
	body, err := json.Marshal(reviewBody{Criteria: criteria, Note: strings.TrimSpace(in.Note)})
	if err != nil {
		return err
	}
	r := store.Review{InterviewID: iv.ID, TenantID: p.TenantID, Body: body, Overall: &overall, Recommendation: in.Recommendation}
	if p.APIKeyID != "" {
		r.ReviewerID, r.ReviewerKind, r.Reviewer = p.APIKeyID, store.ReviewerAPIKey, "API key "+p.Name
	} else {
		r.ReviewerID, r.ReviewerKind, r.Reviewer = p.UserID, store.ReviewerUser, p.Name
		if r.Reviewer == "" {
			r.Reviewer = p.Email
		}
	}
	saved, err := s.db.SaveReview(ctx, r)
	if err != nil {
		return notFound(err, "interview")
	}
	status := http.StatusOK
	if saved.CreatedAt.Equal(saved.UpdatedAt) {
		status = http.StatusCreated
	}
	return c.JSON(status, toReviewJSON(saved))
}

func (s *Server) handleListReviews(c echo.Context) error {
	p := principalOf(c)
	rs, err := s.db.Reviews(c.Request().Context(), p.TenantID, c.Param("id"))
	if err != nil {
		return notFound(err, "interview")
	}
	out := make([]reviewJSON, 0, len(rs))
	var sum float64
	n := 0
	for _, r := range rs {
		out = append(out, toReviewJSON(r))
		if r.Overall != nil {
			sum += *r.Overall
			n++
		}
	}
	var avg *float64
	if n > 0 {
		v := float64(int(sum/float64(n)*100+0.5)) / 100
		avg = &v
	}
	return c.JSON(http.StatusOK, map[string]any{"reviews": out, "average_overall": avg})
}
