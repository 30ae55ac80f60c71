package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"candor/store"
	"candor/web/views"
)

// afterDashRoutes registers the dashboard pages of what follows an
// interview: reviews and re-runs from the interview page, webhooks, and
// retention with the audit log.
func (s *Server) afterDashRoutes() {
	read := []echo.MiddlewareFunc{s.sessionAuth, s.requireLogin}
	write := []echo.MiddlewareFunc{s.sessionAuth, s.requireLogin, s.csrf, s.requireRole(store.RoleOwner, store.RoleRecruiter)}
	owner := []echo.MiddlewareFunc{s.sessionAuth, s.requireLogin, s.csrf, s.requireRole(store.RoleOwner)}

	s.e.POST("/interviews/:id/review", s.handleReviewForm, write...)
	s.e.POST("/interviews/:id/rescore", s.handleRescoreForm, write...)

	s.e.GET("/webhooks", s.handleWebhooksPage, append(read, s.requireRole(store.RoleOwner, store.RoleRecruiter))...)
	s.e.POST("/webhooks", s.handleAddWebhookForm, write...)
	s.e.POST("/webhooks/:id/delete", s.handleDeleteWebhookForm, write...)
	s.e.POST("/webhooks/:id/deliveries/:delivery_id/retry", s.handleRetryDeliveryForm, write...)

	s.e.GET("/retention", s.handleRetentionPage, read...)
	s.e.POST("/retention", s.handleRetentionForm, owner...)
}

// afterView builds the interview page's scorecard card.
func (s *Server) afterView(ctx context.Context, p *principal, iv store.Interview, pos store.Position, entries []store.Entry, seekable bool) (*views.AfterView, error) {
	sc, err := s.scorecardOf(ctx, iv, entries)
	if err != nil {
		return nil, err
	}
	rs, err := s.db.Reviews(ctx, iv.TenantID, iv.ID)
	if err != nil {
		return nil, err
	}
	startOf := make(map[int64]int64, len(entries))
	for _, e := range entries {
		startOf[e.Seq] = e.StartMS
	}
	d := &views.AfterView{InterviewID: iv.ID, Status: sc.Status, Evaluator: sc.Evaluator, Error: sc.Error,
		Seekable: seekable, Done: iv.Status.Terminal(), MyReview: map[string]int{}}
	if sc.Overall != nil {
		score := sc.Overall.Score
		d.AIOverall, d.AIRec, d.Summary = &score, sc.Overall.Recommendation, sc.Overall.Summary
	}
	if sc.Validation != nil {
		d.Dropped = sc.Validation.DroppedQuotes
	}
	st := sc.Stats
	d.Stats = views.StatsView{CandidateTalkMS: st.CandidateTalkMS, InterviewerTalkMS: st.InterviewerTalkMS,
		LongestPauseMS: st.LongestPauseMS, QuestionsAsked: st.QuestionsAsked, QuestionsAnswered: st.QuestionsAnswered,
		WordsPerMinute: st.WordsPerMinute}

	// Reviewers' scores per criterion, averaged.
	sums, counts := map[string]float64{}, map[string]int{}
	var overallSum float64
	overallN := 0
	for _, r := range rs {
		rj := toReviewJSON(r)
		rv := views.ReviewView{Reviewer: rj.Reviewer.Name, Kind: rj.Reviewer.Kind, Overall: rj.Overall,
			Recommendation: rj.Recommendation, Note: rj.Note, Scores: map[string]int{}, UpdatedAt: rj.UpdatedAt}
		for _, c := range rj.Criteria {
			rv.Scores[c.Name] = c.Score
			sums[c.Name] += float64(c.Score)
			counts[c.Name]++
		}
		if rj.Overall != nil {
			overallSum += *rj.Overall
			overallN++
		}
		if (p.APIKeyID == "" && r.ReviewerID == p.UserID) || (p.APIKeyID != "" && r.ReviewerID == p.APIKeyID) {
			d.MyReview, d.MyRec, d.MyNote = rv.Scores, rv.Recommendation, rv.Note
		}
		d.Reviews = append(d.Reviews, rv)
	}
	if overallN > 0 {
		avg := roundScore(overallSum / float64(overallN))
		d.HumanAvg = &avg
	}
	ai := map[string]int{}
	for _, c := range sc.Criteria {
		ai[c.Name] = c.Score
	}
	for _, r := range pos.Rubric {
		row := views.ScoreRow{Name: r.Name, Weight: r.Weight, AIScore: ai[r.Name]}
		for _, c := range sc.Criteria {
			if c.Name == r.Name {
				row.Rationale, row.NoEvidence = c.Rationale, c.NoEvidence
				for _, ev := range c.Evidence {
					row.Evidence = append(row.Evidence, views.EvidenceView{Seq: ev.Seq, Quote: ev.Quote, StartMS: startOf[ev.Seq]})
				}
			}
		}
		if n := counts[r.Name]; n > 0 {
			avg := roundScore(sums[r.Name] / float64(n))
			row.HumanAvg = &avg
		}
		d.Criteria = append(d.Criteria, row)
	}
	return d, nil
}

func roundScore(f float64) float64 { return float64(int(f*100+0.5)) / 100 }

func (s *Server) handleReviewForm(c echo.Context) error {
	ctx := c.Request().Context()
	p := principalOf(c)
	iv, err := s.db.Interview(ctx, p.TenantID, c.Param("id"))
	if err != nil {
		return notFound(err, "interview")
	}
	pos, err := s.db.Position(ctx, p.TenantID, iv.PositionID)
	if err != nil {
		return err
	}
	in := reviewInput{Recommendation: c.FormValue("recommendation"), Note: c.FormValue("note")}
	for _, r := range pos.Rubric {
		n, _ := strconv.Atoi(c.FormValue("score:" + r.Name))
		in.Criteria = append(in.Criteria, reviewCriterion{Name: r.Name, Score: n})
	}
	criteria, overall, err := in.validate(pos.Rubric)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			s.setFlash(c, "error", "The review was not saved: "+e.Message)
			return seeOther(c, "/interviews/"+iv.ID)
		}
		return err
	}
	body, _ := json.Marshal(reviewBody{Criteria: criteria, Note: strings.TrimSpace(in.Note)})
	name := p.Name
	if name == "" {
		name = p.Email
	}
	if _, err := s.db.SaveReview(ctx, store.Review{InterviewID: iv.ID, TenantID: p.TenantID, ReviewerID: p.UserID,
		ReviewerKind: store.ReviewerUser, Reviewer: name, Body: body, Overall: &overall, Recommendation: in.Recommendation}); err != nil {
		return notFound(err, "interview")
	}
	s.setFlash(c, "success", "Your review is saved.")
	return seeOther(c, "/interviews/"+iv.ID)
}

func (s *Server) handleRescoreForm(c echo.Context) error {
	ctx := c.Request().Context()
	p := principalOf(c)
	iv, err := s.db.Interview(ctx, p.TenantID, c.Param("id"))
	if err != nil {
		return notFound(err, "interview")
	}
	if iv.Status != store.StatusCompleted || s.cfg.Evaluator == nil {
		s.setFlash(c, "error", "Only a completed interview can be evaluated, and only with an evaluator configured.")
		return seeOther(c, "/interviews/"+iv.ID)
	}
	if err := s.db.SaveScorecard(ctx, store.Scorecard{InterviewID: iv.ID, TenantID: iv.TenantID,
		Status: store.ScorecardPending, Evaluator: s.evaluatorName()}, nil); err != nil {
		return notFound(err, "interview")
	}
	work, done := s.owned(s.cfg.EvalTimeout)
	go func() {
		defer done()
		s.score(work, iv.TenantID, iv.ID)
	}()
	s.setFlash(c, "success", "The AI evaluation runs again; reload in a moment.")
	return seeOther(c, "/interviews/"+iv.ID)
}

// positionRanking ranks the position's interviews by score: AI overall,
// reviewers' average, or both (their mean where both exist).
func (s *Server) positionRanking(ctx context.Context, tenantID, positionID, sortBy string, status store.Status) (views.Ranking, error) {
	if sortBy != "ai" && sortBy != "human" {
		sortBy = "both"
	}
	if !status.Valid() {
		status = ""
	}
	r := views.Ranking{PositionID: positionID, Sort: sortBy, Status: status}
	ivs, err := s.db.ListInterviews(ctx, tenantID, store.InterviewFilter{Status: status, PositionID: positionID})
	if err != nil {
		return r, err
	}
	cards, err := s.db.Scorecards(ctx, tenantID)
	if err != nil {
		return r, err
	}
	avgs, err := s.db.ReviewAverages(ctx, tenantID)
	if err != nil {
		return r, err
	}
	cands, err := s.db.ListCandidates(ctx, tenantID)
	if err != nil {
		return r, err
	}
	names := map[string]string{}
	for _, c := range cands {
		names[c.ID] = c.Name
	}
	for _, iv := range ivs {
		if iv.PositionID != positionID {
			continue
		}
		row := views.RankRow{InterviewID: iv.ID, Candidate: names[iv.CandidateID], Status: iv.Status}
		if sc, ok := cards[iv.ID]; ok && sc.Status == store.ScorecardReady {
			var body struct {
				Overall struct {
					Score float64 `json:"score"`
				} `json:"overall"`
			}
			if json.Unmarshal(sc.Body, &body) == nil {
				v := body.Overall.Score
				row.AI = &v
			}
		}
		if a, ok := avgs[iv.ID]; ok {
			row.Human, row.Reviews = a.Overall, a.Count
		}
		switch {
		case row.AI != nil && row.Human != nil:
			v := roundScore((*row.AI + *row.Human) / 2)
			row.Both = &v
		case row.AI != nil:
			row.Both = row.AI
		case row.Human != nil:
			row.Both = row.Human
		}
		r.Rows = append(r.Rows, row)
	}
	key := func(row views.RankRow) *float64 {
		switch sortBy {
		case "ai":
			return row.AI
		case "human":
			return row.Human
		}
		return row.Both
	}
	sort.SliceStable(r.Rows, func(i, j int) bool {
		a, b := key(r.Rows[i]), key(r.Rows[j])
		switch {
		case a == nil:
			return false
		case b == nil:
			return true
		}
		return *a > *b
	})
	return r, nil
}

func (s *Server) handleWebhooksPage(c echo.Context) error {
	return s.renderWebhooks(c, http.StatusOK, views.WebhooksView{Selected: map[string]bool{}})
}

func (s *Server) renderWebhooks(c echo.Context, status int, d views.WebhooksView) error {
	ctx := c.Request().Context()
	tenantID := principalOf(c).TenantID
	ws, err := s.db.Webhooks(ctx, tenantID)
	if err != nil {
		return err
	}
	d.Events = WebhookEvents
	d.Deliveries = map[string][]views.DeliveryRow{}
	for _, w := range ws {
		d.Webhooks = append(d.Webhooks, views.WebhookRow{ID: w.ID, URL: w.URL, Events: w.Events,
			FailingSince: w.FailingSince, DisabledAt: w.DisabledAt, DisabledReason: w.DisabledReason})
		ds, _, err := s.db.Deliveries(ctx, tenantID, w.ID, 50)
		if err != nil {
			return err
		}
		for _, dl := range ds {
			d.Deliveries[w.ID] = append(d.Deliveries[w.ID], views.DeliveryRow{ID: dl.ID, Event: dl.EventType, Subject: dl.SubjectID,
				Status: dl.Status, Attempts: dl.Attempts, LastStatus: dl.LastStatus, LastError: dl.LastError,
				NextAttemptAt: dl.NextAttemptAt, CreatedAt: dl.CreatedAt})
		}
	}
	p, err := s.page(c, "Webhooks", "webhooks")
	if err != nil {
		return err
	}
	return render(c, status, views.WebhooksPage(p, d))
}

func (s *Server) handleAddWebhookForm(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return err
	}
	in := webhookInput{URL: strings.TrimSpace(form.Get("url")), Events: form["events"]}
	d := views.WebhooksView{URL: in.URL, Selected: map[string]bool{}, Errors: views.FormErrors{}}
	for _, ev := range in.Events {
		d.Selected[ev] = true
	}
	if err := in.validate(); err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return err
		}
		field, _, _ := strings.Cut(e.Message, ":")
		if strings.HasPrefix(field, "events") {
			field = "events"
		}
		d.Errors[field] = e.Message
		return s.renderWebhooks(c, http.StatusUnprocessableEntity, d)
	}
	ctx := c.Request().Context()
	if err := s.checkWebhookURL(ctx, in.URL); err != nil {
		d.Errors["url"] = "The URL " + err.Error() + "."
		return s.renderWebhooks(c, http.StatusUnprocessableEntity, d)
	}
	secret := newWebhookSecret()
	if _, err := s.db.CreateWebhook(ctx, store.Webhook{ID: store.NewID("wh_"), TenantID: principalOf(c).TenantID,
		URL: in.URL, Events: in.Events}, secret); err != nil {
		return err
	}
	return s.renderWebhooks(c, http.StatusOK, views.WebhooksView{NewSecret: secret, Selected: map[string]bool{}})
}

func (s *Server) handleDeleteWebhookForm(c echo.Context) error {
	if err := s.db.DeleteWebhook(c.Request().Context(), principalOf(c).TenantID, c.Param("id")); err != nil {
		return notFound(err, "webhook")
	}
	s.setFlash(c, "success", "Webhook deleted.")
	return seeOther(c, "/webhooks")
}

func (s *Server) handleRetryDeliveryForm(c echo.Context) error {
	if _, err := s.db.RetryDelivery(c.Request().Context(), principalOf(c).TenantID, c.Param("id"), c.Param("delivery_id")); err != nil {
		return notFound(err, "delivery")
	}
	s.kickWebhooks()
	s.setFlash(c, "success", "The delivery is sent again.")
	return seeOther(c, "/webhooks")
}

func (s *Server) handleRetentionPage(c echo.Context) error {
	return s.renderRetention(c, http.StatusOK, nil)
}

func (s *Server) renderRetention(c echo.Context, status int, form *views.RetentionView) error {
	ctx := c.Request().Context()
	p := principalOf(c)
	d := views.RetentionView{}
	if form != nil {
		d = *form
	} else {
		r, err := s.db.Retention(ctx, p.TenantID)
		if err != nil {
			return err
		}
		if r.RecordingsDays != nil {
			d.RecordingsDays = strconv.Itoa(*r.RecordingsDays)
		}
		if r.TranscriptsDays != nil {
			d.TranscriptsDays = strconv.Itoa(*r.TranscriptsDays)
		}
	}
	if p.Role == store.RoleOwner {
		audit, err := s.db.AuditLog(ctx, p.TenantID, 200)
		if err != nil {
			return err
		}
		d.Audit = audit
	}
	page, err := s.page(c, "Data retention", "retention")
	if err != nil {
		return err
	}
	return render(c, status, views.RetentionPage(page, d))
}

func (s *Server) handleRetentionForm(c echo.Context) error {
	d := views.RetentionView{RecordingsDays: strings.TrimSpace(c.FormValue("recordings_days")),
		TranscriptsDays: strings.TrimSpace(c.FormValue("transcripts_days")), Errors: views.FormErrors{}}
	var in retentionJSON
	for field, pair := range map[string]struct {
		raw string
		dst **int
	}{"recordings_days": {d.RecordingsDays, &in.RecordingsDays}, "transcripts_days": {d.TranscriptsDays, &in.TranscriptsDays}} {
		if pair.raw == "" {
			continue
		}
		n, err := strconv.Atoi(pair.raw)
		if err != nil || n < 1 || n > maxRetentionDays {
			d.Errors[field] = fmt.Sprintf("Leave empty to keep forever, or enter a whole number of days from 1 to %d.", maxRetentionDays)
			continue
		}
		*pair.dst = &n
	}
	if len(d.Errors) > 0 {
		return s.renderRetention(c, http.StatusUnprocessableEntity, &d)
	}
	p := principalOf(c)
	if _, err := s.db.SetRetention(c.Request().Context(), p.TenantID,
		store.Retention{RecordingsDays: in.RecordingsDays, TranscriptsDays: in.TranscriptsDays}, actorOf(p)); err != nil {
		return err
	}
	s.kickSweeper()
	s.setFlash(c, "success", "Retention saved.")
	return seeOther(c, "/retention")
}
