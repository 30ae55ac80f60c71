package scorecard

import (
	"math"
	"sort"
	"strings"
	"unicode"

	"candor/store"
)

// Stats describe the conversation itself; they need no model and are on
// every scorecard. Times are on the interview's media clock.
type Stats struct {
	CandidateTalkMS    int64    `json:"candidate_talk_ms"`
	InterviewerTalkMS  int64    `json:"interviewer_talk_ms"`
	QuestionsAsked     int      `json:"questions_asked"`
	QuestionsAnswered  int      `json:"questions_answered"`
	WordsPerMinute     float64  `json:"words_per_minute"`
	CandidateWords     int      `json:"candidate_words"`
	LongestPauseMS     int64    `json:"longest_pause_ms"`
	Answers            []Answer `json:"answers"`
	CandidateEntries   int      `json:"candidate_entries"`
	InterviewerEntries int      `json:"interviewer_entries"`
}

// Answer is the candidate's reply to one interviewer question: every
// candidate entry after it until the interviewer speaks again.
type Answer struct {
	QuestionSeq int64  `json:"question_seq"`
	Question    string `json:"question"`
	Words       int    `json:"words"`
	DurationMS  int64  `json:"duration_ms"`
}

// ComputeStats derives Stats from entries in seq order. A question is an
// interviewer entry with a question mark in it; it is answered when the
// candidate says anything before the interviewer's next question.
func ComputeStats(entries []store.Entry) Stats {
	st := Stats{Answers: []Answer{}}
	current := -1 // index in st.Answers of the open question
	for _, e := range entries {
		dur := max(e.EndMS-e.StartMS, 0)
		switch e.Speaker {
		case store.SpeakerCandidate:
			st.CandidateEntries++
			st.CandidateTalkMS += dur
			w := countWords(e.Text)
			st.CandidateWords += w
			if current >= 0 {
				a := &st.Answers[current]
				if a.Words == 0 && w > 0 {
					st.QuestionsAnswered++
				}
				a.Words += w
				a.DurationMS += dur
			}
		case store.SpeakerInterviewer:
			st.InterviewerEntries++
			st.InterviewerTalkMS += dur
			if strings.ContainsAny(e.Text, "?？") {
				st.QuestionsAsked++
				st.Answers = append(st.Answers, Answer{QuestionSeq: e.Seq, Question: e.Text})
				current = len(st.Answers) - 1
			}
		}
	}
	if st.CandidateTalkMS > 0 {
		st.WordsPerMinute = math.Round(float64(st.CandidateWords)/(float64(st.CandidateTalkMS)/60000)*10) / 10
	}
	// Pauses are silences between consecutive utterances of anyone, in
	// time order (the two speakers' entries interleave by seq, not time).
	spans := make([][2]int64, 0, len(entries))
	for _, e := range entries {
		spans = append(spans, [2]int64{e.StartMS, e.EndMS})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i][0] < spans[j][0] })
	var reach int64
	for i, sp := range spans {
		if i > 0 && sp[0]-reach > st.LongestPauseMS {
			st.LongestPauseMS = sp[0] - reach
		}
		reach = max(reach, sp[1])
	}
	return st
}

func countWords(s string) int {
	return len(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) }))
}
