package processor

import (
	"context"
	"slices"
	"testing"
	"time"

	"candor/processor/contract"
)

// scriptRoom is a Room driven by the test: it records what the interviewer
// says and answers each question with the next scripted reply.
type scriptRoom struct {
	joined  chan struct{}
	heard   chan Utterance
	said    chan string
	replies map[string]string // question → what the candidate answers
}

func (r *scriptRoom) Joined() <-chan struct{} { return r.joined }
func (r *scriptRoom) Heard() <-chan Utterance { return r.heard }
func (r *scriptRoom) Say(ctx context.Context, text string) error {
	r.said <- text
	if reply, ok := r.replies[text]; ok {
		r.heard <- Utterance{Text: reply}
	}
	return nil
}

func TestScriptedInterviewer(t *testing.T) {
	plan := contract.Plan{
		Questions:   []string{"Q1?", "Q2?", "Q3?"},
		Interviewer: contract.PlanInterviewer{Greeting: "Hello.", Closing: "Bye.", FollowUp: "More?"},
	}.WithDefaults()
	tests := []struct {
		name    string
		replies map[string]string
		want    []string
	}{
		{
			name:    "full answers get no follow-up",
			replies: map[string]string{"Q1?": "one two three four five six", "Q2?": "a b c d e f g", "Q3?": "x x x x x x x x"},
			want:    []string{"Hello.", "Q1?", "Q2?", "Q3?", "Bye."},
		},
		{
			name:    "a very brief answer gets exactly one follow-up",
			replies: map[string]string{"Q1?": "yes", "More?": "no", "Q2?": "a b c d e f", "Q3?": "a b c d e f"},
			want:    []string{"Hello.", "Q1?", "More?", "Q2?", "Q3?", "Bye."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			room := &scriptRoom{joined: make(chan struct{}), heard: make(chan Utterance, 16), said: make(chan string, 16), replies: tt.replies}
			iv := &Scripted{Plan: plan, Pause: 20 * time.Millisecond, BriefWords: 6}
			done := make(chan error, 1)
			go func() { done <- iv.Run(t.Context(), room) }()
			select {
			case s := <-room.said:
				t.Fatalf("said %q before the candidate joined", s)
			case <-time.After(50 * time.Millisecond):
			}
			close(room.joined)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			close(room.said)
			var got []string
			for s := range room.said {
				got = append(got, s)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("said %q, want %q", got, tt.want)
			}
		})
	}
}

func TestScriptedInterviewerWaitsForAnAnswerAndStopsWithItsContext(t *testing.T) {
	room := &scriptRoom{joined: make(chan struct{}), heard: make(chan Utterance, 16), said: make(chan string, 16)}
	close(room.joined)
	iv := &Scripted{Plan: contract.Plan{Questions: []string{"Q1?"}}.WithDefaults(), Pause: time.Millisecond, BriefWords: 6}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- iv.Run(ctx, room) }()
	<-room.said // greeting
	if q := <-room.said; q != "Q1?" {
		t.Fatalf("asked %q", q)
	}
	select {
	case s := <-room.said:
		t.Fatalf("said %q without an answer", s)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v", err)
	}
}

func TestPlanDefaults(t *testing.T) {
	p, err := contract.ParsePlan([]byte(`{"position":{"title":"Welder"},"questions":["  ", "Why welding?"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Questions, []string{"Why welding?"}) || p.Interviewer.Greeting == "" || p.Interviewer.Closing == "" || p.Interviewer.FollowUp == "" {
		t.Fatalf("plan %+v", p)
	}
	if _, err := contract.ParsePlan([]byte(`{"questions":"not a list"}`)); err == nil {
		t.Fatal("a malformed plan was accepted")
	}
	if p, err := LoadPlan(""); err != nil || len(p.Questions) == 0 {
		t.Fatalf("default plan %+v %v", p, err)
	}
}
