package processor

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Interviewer conducts an interview: it listens to what the candidate says and
// decides what to say next. Run blocks until the interviewer has nothing more
// to say or ctx is cancelled (the interview ended).
type Interviewer interface {
	Run(ctx context.Context, room Room) error
}

// Room is what an interviewer sees of the interview.
type Room interface {
	// Joined is closed once the candidate is connected (the page opened
	// /events, or audio arrived).
	Joined() <-chan struct{}
	// Heard delivers the candidate's finalized utterances in order.
	Heard() <-chan Utterance
	// Say speaks text as the interviewer: a transcript entry, a caption, and
	// synthesized speech to the candidate.
	Say(ctx context.Context, text string) error
}

// Utterance is one finalized candidate result, on the media clock.
type Utterance struct {
	Text           string
	StartMS, EndMS int64
}

// Scripted asks the plan's questions in order. It greets when the candidate
// joins, asks the next question once an answer is followed by Pause without
// new speech, asks one follow-up when an answer has fewer than BriefWords
// words, and closes when the questions run out.
type Scripted struct {
	Plan       Plan
	Pause      time.Duration
	BriefWords int
}

var _ Interviewer = (*Scripted)(nil)

func (s *Scripted) Run(ctx context.Context, room Room) error {
	select {
	case <-ctx.Done():
		return nil
	case <-room.Joined():
	}
	iv := s.Plan.Interviewer
	if err := room.Say(ctx, iv.Greeting); err != nil {
		return fmt.Errorf("greet: %w", err)
	}
	for i, q := range s.Plan.Questions {
		if err := room.Say(ctx, q); err != nil {
			return fmt.Errorf("ask question %d: %w", i+1, err)
		}
		words, ok := s.awaitAnswer(ctx, room)
		if !ok {
			return nil
		}
		if words < s.BriefWords {
			if err := room.Say(ctx, iv.FollowUp); err != nil {
				return fmt.Errorf("follow up question %d: %w", i+1, err)
			}
			if _, ok := s.awaitAnswer(ctx, room); !ok {
				return nil
			}
		}
	}
	if err := room.Say(ctx, iv.Closing); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// awaitAnswer waits for at least one utterance followed by Pause of quiet and
// returns the answer's word count; ok is false when ctx ended first.
func (s *Scripted) awaitAnswer(ctx context.Context, room Room) (words int, ok bool) {
	var quiet <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return words, false
		case u := <-room.Heard():
			words += len(strings.Fields(u.Text))
			quiet = time.After(s.Pause)
		case <-quiet:
			return words, true
		}
	}
}
