package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"candor/processor/contract"
	"candor/processor/contract/egress"
	"candor/store"
	"candor/web/scorecard"
)

// Evaluator scores an interview's transcript against its rubric
// (scorecard.OpenAI is the one Candor has).
type Evaluator interface {
	Name() string
	Evaluate(ctx context.Context, in scorecard.Input) (scorecard.Card, error)
}

var _ Evaluator = (*scorecard.OpenAI)(nil)

const (
	scorecardReady = store.ScorecardReady
	// scorerConsumer is the scorer's outbox cursor name.
	scorerConsumer = "scorer"
)

// scorecardJSON is the API's scorecard (DESIGN §10).
type scorecardJSON struct {
	Status     string                `json:"status"`
	Criteria   []scorecard.Criterion `json:"criteria"`
	Overall    *scorecard.Overall    `json:"overall"`
	Stats      scorecard.Stats       `json:"stats"`
	Evaluator  string                `json:"evaluator"`
	Validation *scorecard.Validation `json:"validation,omitempty"`
	// Error says, in the user's terms, why a failed scorecard failed.
	Error     string     `json:"error,omitempty"`
	CreatedAt *time.Time `json:"created_at"`
}

func (s *Server) evaluatorName() string {
	if s.cfg.Evaluator == nil {
		return scorecard.EvaluatorNone
	}
	return s.cfg.Evaluator.Name()
}

// scorecardOf builds the interview's scorecard answer: the stored
// evaluation if any, and stats from its entries (always).
func (s *Server) scorecardOf(ctx context.Context, iv store.Interview, entries []store.Entry) (scorecardJSON, error) {
	out := scorecardJSON{Criteria: []scorecard.Criterion{}, Stats: scorecard.ComputeStats(entries), Evaluator: s.evaluatorName()}
	sc, err := s.db.Scorecard(ctx, iv.TenantID, iv.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		out.Status = store.ScorecardPending
		if s.cfg.Evaluator == nil {
			out.Status = store.ScorecardUnavailable
		}
		return out, nil
	case err != nil:
		return out, fmt.Errorf("scorecard of %s: %w", iv.ID, err)
	}
	out.Status, out.Evaluator, out.Error = sc.Status, sc.Evaluator, sc.Error
	created := sc.CreatedAt.UTC()
	out.CreatedAt = &created
	if sc.Status == store.ScorecardReady {
		var card scorecard.Card
		if err := json.Unmarshal(sc.Body, &card); err != nil {
			return out, fmt.Errorf("scorecard of %s: stored body: %w", iv.ID, err)
		}
		out.Criteria, out.Overall, out.Validation = card.Criteria, &card.Overall, &card.Validation
	}
	return out, nil
}

func (s *Server) handleGetScorecard(c echo.Context) error {
	ctx := c.Request().Context()
	iv, err := s.db.Interview(ctx, principalOf(c).TenantID, c.Param("id"))
	if err != nil {
		return notFound(err, "interview")
	}
	es, err := s.db.Entries(ctx, iv.TenantID, iv.ID, 0)
	if err != nil {
		return notFound(err, "interview")
	}
	out, err := s.scorecardOf(ctx, iv, es)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// handleRescore re-runs the evaluation in the background and answers 202
// with the scorecard as it stands (pending).
func (s *Server) handleRescore(c echo.Context) error {
	ctx := c.Request().Context()
	iv, err := s.db.Interview(ctx, principalOf(c).TenantID, c.Param("id"))
	if err != nil {
		return notFound(err, "interview")
	}
	if iv.Status != store.StatusCompleted {
		return errorf(CodeConflict, "the interview is %s: only a completed interview can be scored", iv.Status)
	}
	if s.cfg.Evaluator == nil {
		return errorf(CodeConflict, "no evaluator is configured (start the control plane with --evaluator=openai)")
	}
	if err := s.db.SaveScorecard(ctx, store.Scorecard{InterviewID: iv.ID, TenantID: iv.TenantID,
		Status: store.ScorecardPending, Evaluator: s.evaluatorName()}, nil); err != nil {
		return notFound(err, "interview")
	}
	// The answer is the pending scorecard, read before the evaluation
	// starts: a fast evaluator could otherwise finish first.
	es, err := s.db.Entries(ctx, iv.TenantID, iv.ID, 0)
	if err != nil {
		return notFound(err, "interview")
	}
	out, err := s.scorecardOf(ctx, iv, es)
	if err != nil {
		return err
	}
	work, done := s.owned(s.cfg.EvalTimeout)
	go func() {
		defer done()
		s.score(work, iv.TenantID, iv.ID)
	}()
	return c.JSON(http.StatusAccepted, out)
}

// rerun tracks evaluations in flight, so a re-run asked for while one runs
// happens once, after it, instead of interleaving their writes.
type rerun struct {
	mu      sync.Mutex
	running map[string]bool // interview ID → another run was asked for
}

// begin reports whether the caller should run interview id's evaluation;
// if one runs already, it is told to run again instead.
func (r *rerun) begin(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running == nil {
		r.running = map[string]bool{}
	}
	if _, ok := r.running[id]; ok {
		r.running[id] = true
		return false
	}
	r.running[id] = false
	return true
}

// again reports whether another run was asked for meanwhile; if not, the
// evaluation of id is over.
func (r *rerun) again(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running[id] {
		r.running[id] = false
		return true
	}
	delete(r.running, id)
	return false
}

// score evaluates one interview and stores the outcome. Failures are
// stored on the scorecard (and logged), not returned: there is no caller
// to return them to.
func (s *Server) score(ctx context.Context, tenantID, interviewID string) {
	if !s.scoring.begin(interviewID) {
		return
	}
	for {
		s.scoreOnce(ctx, tenantID, interviewID)
		if ctx.Err() != nil || !s.scoring.again(interviewID) {
			if ctx.Err() != nil {
				s.scoring.again(interviewID)
			}
			return
		}
	}
}

func (s *Server) scoreOnce(ctx context.Context, tenantID, interviewID string) {
	log := s.log.With("interview", interviewID)
	save := func(sc store.Scorecard, ready *store.ScorecardReadyData) {
		sc.TenantID, sc.InterviewID = tenantID, interviewID
		if sc.Evaluator == "" {
			sc.Evaluator = s.evaluatorName()
		}
		// Saving must outlive a cancelled evaluation.
		if err := s.db.SaveScorecard(context.WithoutCancel(ctx), sc, ready); err != nil && !errors.Is(err, store.ErrNotFound) {
			log.Error("save scorecard", "err", err)
		}
	}
	if s.cfg.Evaluator == nil {
		save(store.Scorecard{Status: store.ScorecardUnavailable}, nil)
		return
	}
	iv, err := s.db.Interview(ctx, tenantID, interviewID)
	if errors.Is(err, store.ErrNotFound) {
		return // erased meanwhile
	}
	if err != nil {
		log.Error("scorecard: load interview", "err", err)
		return
	}
	pos, err := s.db.Position(ctx, tenantID, iv.PositionID)
	if err != nil {
		log.Error("scorecard: load position", "err", err)
		return
	}
	es, err := s.db.Entries(ctx, tenantID, interviewID, 0)
	if err != nil {
		log.Error("scorecard: load entries", "err", err)
		return
	}
	store.InMediaOrder(es) // the evaluator reads the conversation as it went
	ev, err := s.evaluatorFor(ctx, tenantID)
	if err != nil {
		var tc *errEvaluatorConfig
		msg := "the evaluator could not be set up"
		if errors.As(err, &tc) {
			msg = tc.msg
		}
		log.Warn("scorecard: evaluator", "err", err)
		save(store.Scorecard{Status: store.ScorecardFailed, Error: msg}, nil)
		return
	}
	save(store.Scorecard{Status: store.ScorecardPending, Evaluator: ev.Name()}, nil)
	card, err := ev.Evaluate(ctx, scorecard.Input{Position: pos, Entries: es})
	if err != nil {
		msg := "the evaluator failed; POST …/scorecard to try again"
		switch {
		case errors.Is(err, scorecard.ErrNoRubric):
			msg = "the position has no rubric to score against"
		case errors.Is(err, scorecard.ErrAnswer):
			msg = "the evaluator's answer was unusable (" + err.Error() + ")"
		case ctx.Err() != nil:
			msg = "the evaluation was interrupted; POST …/scorecard to try again"
		}
		log.Warn("scorecard failed", "err", err)
		save(store.Scorecard{Status: store.ScorecardFailed, Error: msg}, nil)
		return
	}
	body, err := json.Marshal(card)
	if err != nil {
		log.Error("scorecard: encode", "err", err)
		return
	}
	score := card.Overall.Score
	save(store.Scorecard{Status: store.ScorecardReady, Body: body, Evaluator: ev.Name()},
		&store.ScorecardReadyData{OverallScore: &score, Recommendation: card.Overall.Recommendation})
}

// startScorer runs the consumer that scores every interview whose
// interview.completed event is in the outbox, from its own durable cursor.
func (s *Server) startScorer() {
	if s.cfg.OutboxPoll < 0 {
		return
	}
	ctx, done := s.owned(0)
	go func() {
		defer done()
		s.consumeOutbox(ctx, scorerConsumer, func(ev store.OutboxEvent) {
			if ev.Type != "interview.completed" {
				return
			}
			work, cancel := context.WithTimeout(ctx, s.cfg.EvalTimeout)
			defer cancel()
			s.score(work, ev.TenantID, ev.SubjectID)
		})
	}()
}

// consumeOutbox hands every outbox event after consumer's cursor to handle,
// in order, advancing the cursor after each; it polls until ctx ends.
func (s *Server) consumeOutbox(ctx context.Context, consumer string, handle func(store.OutboxEvent)) {
	t := time.NewTicker(s.cfg.OutboxPoll)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			after, err := s.db.OutboxCursor(ctx, consumer)
			if err != nil {
				break
			}
			evs, err := s.db.OutboxAfter(ctx, after, 100)
			if err != nil || len(evs) == 0 {
				if err != nil && ctx.Err() == nil {
					s.log.Error("outbox", "consumer", consumer, "err", err)
				}
				break
			}
			for _, ev := range evs {
				handle(ev)
				if ctx.Err() != nil {
					return // not finished: the event is handled again after a restart
				}
				if err := s.db.SetOutboxCursor(ctx, consumer, ev.ID); err != nil {
					s.log.Error("outbox cursor", "consumer", consumer, "err", err)
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// evaluatorFor is the evaluator of one tenant's interviews: the operator's,
// with the tenant's own key, model and base URL when it saved them as
// secrets (OPENAI_API_KEY, CANDOR_EVAL_MODEL, CANDOR_EVAL_BASE_URL, else
// OPENAI_BASE_URL). A tenant base URL needs the tenant's own key and
// follows the private-target rule, at save and at connect time.
func (s *Server) evaluatorFor(ctx context.Context, tenantID string) (Evaluator, error) {
	op, ok := s.cfg.Evaluator.(*scorecard.OpenAI)
	if !ok {
		return s.cfg.Evaluator, nil
	}
	all, err := s.db.Secrets(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("tenant secrets: %w", err)
	}
	sec := contract.TenantSecrets(all)
	ev := *op
	if m := sec[contract.EnvEvalModel]; m != "" {
		ev.Model = m
	}
	key := sec[contract.EnvOpenAIKey]
	base := sec[contract.EnvEvalBaseURL]
	if base == "" {
		base = sec[contract.EnvOpenAIBaseURL]
	}
	if base != "" {
		if key == "" {
			return nil, &errEvaluatorConfig{"the organization's base URL secret needs its own OPENAI_API_KEY secret as well: an owner sets it in Settings"}
		}
		if err := egress.CheckURL(ctx, base, s.cfg.AllowPrivateTargets); err != nil {
			return nil, &errEvaluatorConfig{fmt.Sprintf("the organization's evaluator base URL %v: an owner fixes it in Settings", err)}
		}
		ev.BaseURL = contract.OpenAIBaseURL(base)
		if !s.cfg.AllowPrivateTargets {
			ev.Client = &http.Client{Transport: egress.Transport(), Timeout: 5 * time.Minute}
		}
	}
	if key != "" {
		ev.APIKey = key
	}
	return &ev, nil
}

// errEvaluatorConfig is a tenant's evaluator configuration that cannot be
// used; its message is shown on the scorecard and never quotes a value.
type errEvaluatorConfig struct{ msg string }

func (e *errEvaluatorConfig) Error() string { return e.msg }
