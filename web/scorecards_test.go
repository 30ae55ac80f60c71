package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"candor/store"
	"candor/web/scorecard"
	"candor/web/scorecard/chatfake"
)

// waitUntil polls cond until it holds, failing the test after a generous
// deadline (a loaded machine is slow, never wrong).
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ensureCompletedEvent checks that ending the interview wrote its
// interview.completed outbox row (the lifecycle does, in the end's
// transaction): the scorer and webhooks start from it.
func (e *testEnv) ensureCompletedEvent(t testing.TB, tenantID, interviewID string) {
	t.Helper()
	evs, err := e.db.OutboxAfter(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Type == "interview.completed" && ev.SubjectID == interviewID && ev.TenantID == tenantID {
			return
		}
	}
	t.Fatalf("ending interview %s wrote no interview.completed outbox row", interviewID)
}

func withEvaluator(ev Evaluator) envOption {
	return withConfig(func(c *Config) {
		c.Evaluator = ev
		c.OutboxPoll = 20 * time.Millisecond
	})
}

func (e *testEnv) scorecard(t testing.TB, key, interviewID string) scorecardJSON {
	t.Helper()
	var sc scorecardJSON
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + interviewID + "/scorecard", Key: key}, &sc)
	return sc
}

func TestScorecardOnCompletion(t *testing.T) {
	fake := chatfake.Start("sk-eval", chatfake.Inventing)
	defer fake.Close()
	e := newTestEnv(t, withEvaluator(&scorecard.OpenAI{BaseURL: fake.URL, APIKey: "sk-eval", Model: "gpt-eval"}))
	a := e.tenant(t, "Acme")
	ivID := e.seedTranscript(t, a, "Ada Lovelace")
	e.ensureCompletedEvent(t, a.ID, ivID)

	var sc scorecardJSON
	waitUntil(t, "the scorecard is ready", func() bool {
		sc = e.scorecard(t, a.Key, ivID)
		return sc.Status == "ready"
	})
	if sc.Evaluator != "openai:gpt-eval" || sc.CreatedAt == nil || sc.Overall == nil || len(sc.Criteria) != 2 {
		t.Fatalf("scorecard %+v", sc)
	}
	for _, c := range sc.Criteria {
		if len(c.Evidence) == 0 {
			t.Errorf("%s lost its real quote", c.Name)
		}
		for _, q := range c.Evidence {
			if q.Quote == chatfake.InventedQuote {
				t.Errorf("%s shows the invented quote", c.Name)
			}
		}
	}
	if sc.Validation == nil || sc.Validation.DroppedQuotes != 2 {
		t.Errorf("validation %+v, want 2 dropped quotes", sc.Validation)
	}
	want := scorecard.WeightedScore(sc.Criteria)
	if sc.Overall.Score != want {
		t.Errorf("overall %v, want %v from the weights", sc.Overall.Score, want)
	}
	if sc.Stats.QuestionsAsked != 1 || sc.Stats.QuestionsAnswered != 1 || sc.Stats.CandidateTalkMS != 5900+3600 {
		t.Errorf("stats %+v", sc.Stats)
	}

	// scorecard.ready is in the outbox, once, with the score.
	evs, _ := e.db.OutboxAfter(context.Background(), 0, 1000)
	var ready []store.OutboxEvent
	for _, ev := range evs {
		if ev.Type == "scorecard.ready" {
			ready = append(ready, ev)
		}
	}
	if len(ready) != 1 || ready[0].SubjectID != ivID || !strings.Contains(string(ready[0].Data), `"overall_score"`) {
		t.Fatalf("scorecard.ready events %+v", ready)
	}

	// A re-run asks the model again and writes a second scorecard.ready.
	fake.SetModel(chatfake.Quoting)
	var rerun scorecardJSON
	e.must(t, 202, request{Method: "POST", Path: "/api/v1/interviews/" + ivID + "/scorecard", Key: a.Key}, &rerun)
	if rerun.Status != "pending" {
		t.Errorf("a re-run answers %q, want pending", rerun.Status)
	}
	waitUntil(t, "the re-run is ready", func() bool {
		sc = e.scorecard(t, a.Key, ivID)
		return sc.Status == "ready" && sc.Validation.DroppedQuotes == 0
	})
	if n := len(fake.Requests()); n != 2 {
		t.Errorf("%d model calls, want 2", n)
	}

	// Viewers read scorecards but cannot re-run them; other tenants see 404.
	viewer := e.login(t, a, store.RoleViewer)
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + ivID + "/scorecard", Session: &viewer}, nil)
	e.must(t, 403, request{Method: "POST", Path: "/api/v1/interviews/" + ivID + "/scorecard", Session: &viewer, CSRF: viewer.CSRF}, nil)
	b := e.tenant(t, "Bobco")
	e.must(t, 404, request{Method: "GET", Path: "/api/v1/interviews/" + ivID + "/scorecard", Key: b.Key}, nil)
	e.must(t, 404, request{Method: "POST", Path: "/api/v1/interviews/" + ivID + "/scorecard", Key: b.Key}, nil)
}

func TestScorecardFailuresAndNoEvaluator(t *testing.T) {
	t.Run("a malformed answer fails the scorecard with a reason", func(t *testing.T) {
		fake := chatfake.Start("sk-eval", chatfake.Malformed)
		defer fake.Close()
		e := newTestEnv(t, withEvaluator(&scorecard.OpenAI{BaseURL: fake.URL, APIKey: "sk-eval", Model: "m"}))
		a := e.tenant(t, "Acme")
		ivID := e.seedTranscript(t, a, "Ada")
		e.ensureCompletedEvent(t, a.ID, ivID)
		var sc scorecardJSON
		waitUntil(t, "the scorecard failed", func() bool {
			sc = e.scorecard(t, a.Key, ivID)
			return sc.Status == "failed"
		})
		if !strings.Contains(sc.Error, "unusable") || strings.Contains(sc.Error, "sk-eval") || len(sc.Criteria) != 0 {
			t.Errorf("failed scorecard %+v", sc)
		}
		if sc.Stats.CandidateWords == 0 {
			t.Error("a failed scorecard still has stats")
		}
	})
	t.Run("without an evaluator the scorecard is unavailable, with stats", func(t *testing.T) {
		e := newTestEnv(t, withConfig(func(c *Config) { c.OutboxPoll = 20 * time.Millisecond }))
		a := e.tenant(t, "Acme")
		ivID := e.seedTranscript(t, a, "Ada")
		e.ensureCompletedEvent(t, a.ID, ivID)
		sc := e.scorecard(t, a.Key, ivID)
		if sc.Status != "unavailable" || sc.Evaluator != "none" || sc.Stats.CandidateWords != 23 || sc.Criteria == nil {
			t.Errorf("scorecard %+v", sc)
		}
		e.must(t, 409, request{Method: "POST", Path: "/api/v1/interviews/" + ivID + "/scorecard", Key: a.Key}, nil)
	})
}

func TestTenantEvaluatorSettings(t *testing.T) {
	operator := chatfake.Start("sk-operator", chatfake.Quoting)
	defer operator.Close()
	own := chatfake.Start("sk-tenant", chatfake.Quoting)
	defer own.Close()
	e := newTestEnv(t, withEvaluator(&scorecard.OpenAI{BaseURL: operator.URL, APIKey: "sk-operator", Model: "op-model"}),
		withConfig(func(c *Config) { c.AllowPrivateTargets = true }))
	ctx := context.Background()

	a := e.tenant(t, "Acme")
	for k, v := range map[string]string{"OPENAI_API_KEY": "sk-tenant", "CANDOR_EVAL_MODEL": "tenant-model", "CANDOR_EVAL_BASE_URL": own.URL} {
		if err := e.db.SetSecret(ctx, a.ID, k, v); err != nil {
			t.Fatal(err)
		}
	}
	ivA := e.seedTranscript(t, a, "Ada")
	e.ensureCompletedEvent(t, a.ID, ivA)
	var sc scorecardJSON
	waitUntil(t, "Acme's scorecard", func() bool { sc = e.scorecard(t, a.Key, ivA); return sc.Status == "ready" || sc.Status == "failed" })
	if sc.Status != "ready" || sc.Evaluator != "openai:tenant-model" || len(own.Requests()) != 1 || len(operator.Requests()) != 0 {
		t.Errorf("Acme's own evaluator was not used: %+v, own %d, operator %d", sc, len(own.Requests()), len(operator.Requests()))
	}

	b := e.tenant(t, "Bobco")
	if err := e.db.SetSecret(ctx, b.ID, "CANDOR_EVAL_BASE_URL", own.URL); err != nil {
		t.Fatal(err)
	}
	ivB := e.seedTranscript(t, b, "Bo")
	e.ensureCompletedEvent(t, b.ID, ivB)
	waitUntil(t, "Bobco's scorecard", func() bool { sc = e.scorecard(t, b.Key, ivB); return sc.Status == "failed" || sc.Status == "ready" })
	if sc.Status != "failed" || !strings.Contains(sc.Error, "OPENAI_API_KEY") {
		t.Errorf("a tenant base URL without the tenant's key: %+v", sc)
	}
	if len(own.Requests()) != 1 {
		t.Error("the operator's key went to a tenant's server")
	}
}
