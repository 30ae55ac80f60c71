package processor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"candor/processor/contract"
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

// SpeechRoom is the room of an interviewer that hears and speaks audio
// itself (speech to speech) instead of going through the room's speech
// engine and voice. The session implements it beside Room.
type SpeechRoom interface {
	Room
	// ListenAudio calls fn with every chunk of candidate audio (16 kHz mono)
	// in stream order, with the media-clock ms of its first sample, until
	// stop is called. fn runs on the ingest path: it must not block and must
	// not call stop.
	ListenAudio(fn func(pcm []int16, atMS int64)) (stop func())
	// Relay plays interviewer speech (16 kHz mono) to the candidate, as Say's
	// speech is sent: binary PCM frames on /events and the WHIP data channel.
	Relay(pcm []int16)
	// Interrupt tells the candidate's page to stop playing interviewer speech
	// at once (barge-in): {"type":"interrupt"} on /events and the data channel.
	Interrupt()
	// Record adds a transcript entry for speaker ("interviewer" or
	// "candidate") without speaking it.
	Record(speaker, text string, startMS, endMS int64) error
	// MediaMS is the media clock now.
	MediaMS() int64
	// Transcript returns the entries this processor has recorded so far.
	Transcript() []contract.Entry
}

// Resume is where a replacement processor picks the interview up, derived
// from what the control plane reports of the transcript.
type Resume struct {
	Turns int // interviewer entries already in the transcript; 0 = a fresh start
	// Asked is how many of the plan's questions were already asked.
	Asked int
	// Closed is true when the closing was already said.
	Closed bool
	// Said is the interviewer's earlier texts, when the control plane reports them.
	Said []string
}

// resumeFrom places a replacement processor in the plan. With the
// interviewer's earlier texts it is exact: the last plan question among them
// was the last one asked, and follow-ups do not count. With only the number
// of interviewer turns it assumes no follow-ups were asked (the greeting is
// the first turn), which at worst skips a question rather than repeating the
// greeting.
func resumeFrom(plan contract.Plan, st contract.State) Resume {
	r := Resume{Said: st.InterviewerTexts, Turns: int(st.InterviewerTurns)}
	if len(st.InterviewerTexts) > 0 {
		r.Turns = max(r.Turns, len(st.InterviewerTexts))
		for _, said := range st.InterviewerTexts {
			said = strings.TrimSpace(said)
			if i := slices.Index(plan.Questions, said); i >= 0 {
				r.Asked = max(r.Asked, i+1)
			}
			if said == plan.Interviewer.Closing {
				r.Closed = true
			}
		}
		return r
	}
	if r.Turns > 0 {
		r.Asked = min(r.Turns-1, len(plan.Questions))
		r.Closed = r.Turns-1 > len(plan.Questions)
	}
	return r
}

// Utterance is one finalized candidate result, on the media clock.
type Utterance struct {
	Text           string
	StartMS, EndMS int64
}

// Scripted asks the plan's questions in order. It greets when the candidate
// joins, asks the next question once an answer is followed by Pause without
// new speech, asks one follow-up when an answer has fewer than BriefWords
// words, and closes when the questions run out. A replacement processor
// (Resume.Turns > 0) does not greet again: it asks the first question not
// yet asked, or says nothing when the interview was already closed.
type Scripted struct {
	Plan       contract.Plan
	Pause      time.Duration
	BriefWords int
	Resume     Resume
}

var _ Interviewer = (*Scripted)(nil)

func (s *Scripted) Run(ctx context.Context, room Room) error {
	select {
	case <-ctx.Done():
		return nil
	case <-room.Joined():
	}
	iv := s.Plan.Interviewer
	if s.Resume.Closed {
		return nil
	}
	if s.Resume.Turns == 0 {
		if err := room.Say(ctx, iv.Greeting); err != nil {
			return fmt.Errorf("greet: %w", err)
		}
	}
	for i, q := range s.Plan.Questions {
		if i < s.Resume.Asked {
			continue
		}
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
