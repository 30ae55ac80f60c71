package scorecard_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"candor/store"
	"candor/web/scorecard"
	"candor/web/scorecard/chatfake"
)

func position() store.Position {
	return store.Position{Title: "Backend engineer", Description: "Go and SQLite", Rubric: []store.RubricItem{
		{Name: "Communication", Description: "explains clearly", Weight: 1},
		{Name: "Technical depth", Description: "knows the internals", Weight: 3},
	}}
}

func entries() []store.Entry {
	return []store.Entry{
		{Seq: 1, Speaker: "interviewer", Text: "Tell me about a system you built?", StartMS: 0, EndMS: 2000},
		{Seq: 2, Speaker: "candidate", Text: "I built a payment queue in Go with SQLite as its journal.", StartMS: 2500, EndMS: 8500},
		{Seq: 3, Speaker: "interviewer", Text: "How did it fail?", StartMS: 9000, EndMS: 10000},
		{Seq: 4, Speaker: "candidate", Text: "It failed over to a replica within seconds.", StartMS: 14000, EndMS: 17000},
		{Seq: 5, Speaker: "interviewer", Text: "And what would you change?", StartMS: 17500, EndMS: 19000},
	}
}

func evaluator(t *testing.T, model chatfake.Model) (*scorecard.OpenAI, *chatfake.Server) {
	t.Helper()
	fake := chatfake.Start("sk-test", model)
	t.Cleanup(fake.Close)
	return &scorecard.OpenAI{BaseURL: fake.URL, APIKey: "sk-test", Model: "gpt-test"}, fake
}

func TestHonestModelGivesAValidatedScorecard(t *testing.T) {
	ev, fake := evaluator(t, chatfake.Quoting)
	card, err := ev.Evaluate(context.Background(), scorecard.Input{Position: position(), Entries: entries()})
	if err != nil {
		t.Fatal(err)
	}
	if len(card.Criteria) != 2 || card.Criteria[0].Name != "Communication" || card.Criteria[1].Weight != 3 {
		t.Fatalf("criteria %+v", card.Criteria)
	}
	for _, c := range card.Criteria {
		if c.NoEvidence || len(c.Evidence) == 0 {
			t.Errorf("%s has no evidence", c.Name)
		}
		for _, q := range c.Evidence {
			if !strings.Contains(entries()[q.Seq-1].Text, q.Quote) {
				t.Errorf("quote %q is not in entry %d", q.Quote, q.Seq)
			}
		}
	}
	if card.Validation.DroppedQuotes != 0 {
		t.Errorf("dropped %d quotes of an honest model", card.Validation.DroppedQuotes)
	}
	// Candor computes the overall score from the weights, not the model.
	want := float64(card.Criteria[0].Score*1+card.Criteria[1].Score*3) / 4
	if fmt.Sprintf("%.2f", card.Overall.Score) != fmt.Sprintf("%.2f", want) {
		t.Errorf("overall %.2f, want %.2f", card.Overall.Score, want)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	user := reqs[0].Messages[1].Content
	for _, want := range []string{"[2] candidate: I built a payment queue", "[1] interviewer: Tell me", "- Technical depth (weight 3)"} {
		if !strings.Contains(user, want) {
			t.Errorf("the prompt lacks %q:\n%s", want, user)
		}
	}
	if rf := reqs[0].ResponseFormat; rf == nil || rf.Type != "json_schema" || !rf.JSONSchema.Strict {
		t.Errorf("response format %+v", rf)
	}
}

func TestInventedQuotesAreDroppedAndCounted(t *testing.T) {
	ev, _ := evaluator(t, chatfake.Inventing)
	card, err := ev.Evaluate(context.Background(), scorecard.Input{Position: position(), Entries: entries()})
	if err != nil {
		t.Fatal(err)
	}
	if card.Validation.DroppedQuotes != 2 {
		t.Errorf("dropped %d quotes, want 2 (one invented per criterion)", card.Validation.DroppedQuotes)
	}
	for _, c := range card.Criteria {
		for _, q := range c.Evidence {
			if q.Quote == chatfake.InventedQuote {
				t.Errorf("%s kept the invented quote", c.Name)
			}
		}
		if len(c.Evidence) != 1 {
			t.Errorf("%s kept %d quotes, want the 1 real one", c.Name, len(c.Evidence))
		}
	}
}

func TestOnlyInventedQuotesLeaveTheCriterionMarked(t *testing.T) {
	ev, _ := evaluator(t, func(chatfake.Request) string {
		return `{"criteria":[
			{"name":"communication","score":4,"rationale":"r","evidence":[{"seq":2,"quote":"I built a payment queue in Rust"}]},
			{"name":"Technical depth","score":2,"rationale":"r","evidence":[{"seq":99,"quote":"I built"},{"seq":4,"quote":"failed over to a replica"}]}],
			"overall":{"score":1,"recommendation":"no","summary":"s"}}`
	})
	card, err := ev.Evaluate(context.Background(), scorecard.Input{Position: position(), Entries: entries()})
	if err != nil {
		t.Fatal(err)
	}
	if !card.Criteria[0].NoEvidence || len(card.Criteria[0].Evidence) != 0 {
		t.Errorf("a criterion whose only quote is invented: %+v", card.Criteria[0])
	}
	if card.Criteria[1].NoEvidence || len(card.Criteria[1].Evidence) != 1 {
		t.Errorf("a quote citing a missing entry must go, the real one stay: %+v", card.Criteria[1])
	}
	if card.Validation.DroppedQuotes != 2 {
		t.Errorf("dropped %d, want 2", card.Validation.DroppedQuotes)
	}
	if card.Overall.Score != 2.5 { // (4·1 + 2·3) / 4, not the model's 1
		t.Errorf("overall %v, want 2.5", card.Overall.Score)
	}
}

func TestUnusableAnswersFailTheEvaluation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		model chatfake.Model
	}{
		{"malformed JSON", chatfake.Malformed},
		{"a criterion outside the rubric", func(chatfake.Request) string {
			return `{"criteria":[{"name":"Communication","score":3,"rationale":"","evidence":[]},{"name":"Charisma","score":3,"rationale":"","evidence":[]}],"overall":{"score":3,"recommendation":"yes","summary":""}}`
		}},
		{"a score out of range", func(chatfake.Request) string {
			return `{"criteria":[{"name":"Communication","score":7,"rationale":"","evidence":[]},{"name":"Technical depth","score":3,"rationale":"","evidence":[]}],"overall":{"score":3,"recommendation":"yes","summary":""}}`
		}},
		{"an unknown recommendation", func(chatfake.Request) string {
			return `{"criteria":[{"name":"Communication","score":3,"rationale":"","evidence":[]},{"name":"Technical depth","score":3,"rationale":"","evidence":[]}],"overall":{"score":3,"recommendation":"maybe","summary":""}}`
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, fake := evaluator(t, tc.model)
			_, err := ev.Evaluate(context.Background(), scorecard.Input{Position: position(), Entries: entries()})
			if !errors.Is(err, scorecard.ErrAnswer) {
				t.Fatalf("err %v, want ErrAnswer", err)
			}
			if n := len(fake.Requests()); n != 2 {
				t.Errorf("asked %d times, want 2 (one retry)", n)
			}
		})
	}
	t.Run("a wrong key is an HTTP error, not retried", func(t *testing.T) {
		ev, fake := evaluator(t, chatfake.Quoting)
		ev.APIKey = "sk-wrong"
		_, err := ev.Evaluate(context.Background(), scorecard.Input{Position: position(), Entries: entries()})
		if err == nil || errors.Is(err, scorecard.ErrAnswer) || !strings.Contains(err.Error(), "401") {
			t.Errorf("err %v", err)
		}
		if len(fake.Requests()) != 0 {
			t.Error("the fake counted a refused request")
		}
	})
	t.Run("no rubric", func(t *testing.T) {
		ev, _ := evaluator(t, chatfake.Quoting)
		_, err := ev.Evaluate(context.Background(), scorecard.Input{Position: store.Position{Title: "x"}, Entries: entries()})
		if !errors.Is(err, scorecard.ErrNoRubric) {
			t.Errorf("err %v", err)
		}
	})
}

func TestLongInterviewsAreChunked(t *testing.T) {
	var es []store.Entry
	for i := 1; i <= 60; i++ {
		sp := "candidate"
		if i%2 == 1 {
			sp = "interviewer"
		}
		es = append(es, store.Entry{Seq: int64(i), Speaker: sp, Text: fmt.Sprintf("Utterance number %d says something about queues and replicas.", i),
			StartMS: int64(i) * 5000, EndMS: int64(i)*5000 + 4000})
	}
	ev, fake := evaluator(t, chatfake.Quoting)
	ev.ChunkChars = 1000
	card, err := ev.Evaluate(context.Background(), scorecard.Input{Position: position(), Entries: es})
	if err != nil {
		t.Fatal(err)
	}
	reqs := fake.Requests()
	if len(reqs) < 3 || card.Validation.Chunks != len(reqs) {
		t.Fatalf("%d requests, %d chunks: want several, equal", len(reqs), card.Validation.Chunks)
	}
	seen := map[string]bool{}
	for i, r := range reqs {
		user := r.Messages[1].Content
		if len(user) > 1000+600 { // the chunk plus the rubric header
			t.Errorf("request %d is %d characters", i, len(user))
		}
		if !strings.Contains(user, fmt.Sprintf("part %d of %d", i+1, len(reqs))) {
			t.Errorf("request %d does not say which part it is", i)
		}
		for _, l := range strings.Split(user, "\n") {
			if strings.HasPrefix(l, "[") {
				if seen[l] {
					t.Errorf("entry %q sent twice", l)
				}
				seen[l] = true
			}
		}
	}
	if len(seen) != 60 {
		t.Errorf("%d entries sent, want 60", len(seen))
	}
	if len(card.Criteria[0].Evidence) != len(reqs) {
		t.Errorf("evidence from %d parts, want %d", len(card.Criteria[0].Evidence), len(reqs))
	}
	if !scorecard.ValidRecommendation(card.Overall.Recommendation) {
		t.Errorf("recommendation %q", card.Overall.Recommendation)
	}
}

func TestStats(t *testing.T) {
	st := scorecard.ComputeStats(entries())
	if st.QuestionsAsked != 3 || st.QuestionsAnswered != 2 {
		t.Errorf("asked %d answered %d, want 3 and 2", st.QuestionsAsked, st.QuestionsAnswered)
	}
	if st.CandidateTalkMS != 9000 || st.InterviewerTalkMS != 4500 {
		t.Errorf("talk %d/%d ms", st.CandidateTalkMS, st.InterviewerTalkMS)
	}
	if st.LongestPauseMS != 4000 { // 10 000 → 14 000
		t.Errorf("longest pause %d", st.LongestPauseMS)
	}
	if st.CandidateWords != 20 || st.WordsPerMinute != 133.3 {
		t.Errorf("%d words, %.1f wpm", st.CandidateWords, st.WordsPerMinute)
	}
	if len(st.Answers) != 3 || st.Answers[0].Words != 12 || st.Answers[1].Words != 8 || st.Answers[2].Words != 0 {
		t.Errorf("answers %+v", st.Answers)
	}
	if empty := scorecard.ComputeStats(nil); empty.Answers == nil || empty.WordsPerMinute != 0 {
		t.Errorf("empty stats %+v", empty)
	}
}
