// Package scorecard turns a finished interview's transcript into a
// scorecard against its position's rubric: talk statistics computed here
// (no model), and criteria scores with evidence from an evaluator model,
// validated before anyone sees them. It knows no HTTP server and no SQL.
package scorecard

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"candor/store"
)

// Recommendations, strongest first.
const (
	StrongYes = "strong_yes"
	Yes       = "yes"
	No        = "no"
	StrongNo  = "strong_no"
)

// Recommendations lists the valid recommendations.
var Recommendations = []string{StrongYes, Yes, No, StrongNo}

// ValidRecommendation reports whether r is one of Recommendations.
func ValidRecommendation(r string) bool {
	for _, ok := range Recommendations {
		if r == ok {
			return true
		}
	}
	return false
}

// Score bounds of every criterion.
const (
	MinScore = 1
	MaxScore = 5
)

// Evidence is a quote from one transcript entry.
type Evidence struct {
	Seq   int64  `json:"seq"`
	Quote string `json:"quote"`
}

// Criterion is one rubric criterion as scored.
type Criterion struct {
	Name      string     `json:"name"`
	Weight    float64    `json:"weight"`
	Score     int        `json:"score"`
	Rationale string     `json:"rationale"`
	Evidence  []Evidence `json:"evidence"`
	// NoEvidence marks a criterion whose score no (valid) quote supports.
	NoEvidence bool `json:"no_evidence,omitempty"`
}

type Overall struct {
	Score          float64 `json:"score"`
	Recommendation string  `json:"recommendation"`
	Summary        string  `json:"summary"`
}

// Validation counts what the evaluator's answer contained that Candor
// refused.
type Validation struct {
	// DroppedQuotes are evidence quotes that were not a verbatim
	// substring of the entry they cited (or cited no entry).
	DroppedQuotes int `json:"dropped_quotes"`
	// Chunks is how many parts the transcript was evaluated in.
	Chunks int `json:"chunks"`
}

// Card is what an evaluator produced, after validation.
type Card struct {
	Criteria   []Criterion `json:"criteria"`
	Overall    Overall     `json:"overall"`
	Validation Validation  `json:"validation"`
}

// Input is what an evaluator needs of one interview.
type Input struct {
	Position store.Position
	Entries  []store.Entry
}

// ErrNoRubric means the position has no criteria to score against.
var ErrNoRubric = errors.New("the position has no rubric")

// WeightedScore is Σ weight·score / Σ weight, rounded to two decimals; with
// every weight zero it is the plain mean.
func WeightedScore(cs []Criterion) float64 {
	var sum, weights float64
	for _, c := range cs {
		sum += c.Weight * float64(c.Score)
		weights += c.Weight
	}
	if weights == 0 {
		sum, weights = 0, 0
		for _, c := range cs {
			sum += float64(c.Score)
			weights++
		}
	}
	if weights == 0 {
		return 0
	}
	return math.Round(sum/weights*100) / 100
}

// RecommendationFor maps an overall score to a recommendation, for when no
// single model answer gave one (a chunked evaluation).
func RecommendationFor(score float64) string {
	switch {
	case score >= 4.25:
		return StrongYes
	case score >= 3.25:
		return Yes
	case score >= 2:
		return No
	}
	return StrongNo
}

// modelAnswer is exactly the shape the model is asked for.
type modelAnswer struct {
	Criteria []struct {
		Name      string     `json:"name"`
		Score     int        `json:"score"`
		Rationale string     `json:"rationale"`
		Evidence  []Evidence `json:"evidence"`
	} `json:"criteria"`
	Overall struct {
		Score          float64 `json:"score"`
		Recommendation string  `json:"recommendation"`
		Summary        string  `json:"summary"`
	} `json:"overall"`
}

// validate checks a model's answer against the rubric and the entries it
// was shown: every rubric criterion once, scores in range, a known
// recommendation; quotes that are not verbatim substrings of the entry
// they cite are dropped and counted. The overall score is computed from
// the rubric's weights, whatever the model said.
func validate(a modelAnswer, rubric []store.RubricItem, entries []store.Entry) (Card, error) {
	bySeq := make(map[int64]string, len(entries))
	for _, e := range entries {
		bySeq[e.Seq] = e.Text
	}
	got := map[string]int{}
	for i, c := range a.Criteria {
		key := strings.ToLower(strings.TrimSpace(c.Name))
		if _, dup := got[key]; dup {
			return Card{}, fmt.Errorf("criterion %q appears twice", c.Name)
		}
		got[key] = i
	}
	var card Card
	for _, r := range rubric {
		i, ok := got[strings.ToLower(strings.TrimSpace(r.Name))]
		if !ok {
			return Card{}, fmt.Errorf("criterion %q of the rubric is missing", r.Name)
		}
		delete(got, strings.ToLower(strings.TrimSpace(r.Name)))
		m := a.Criteria[i]
		if m.Score < MinScore || m.Score > MaxScore {
			return Card{}, fmt.Errorf("criterion %q: score %d is outside %d–%d", r.Name, m.Score, MinScore, MaxScore)
		}
		c := Criterion{Name: r.Name, Weight: r.Weight, Score: m.Score, Rationale: strings.TrimSpace(m.Rationale), Evidence: []Evidence{}}
		for _, ev := range m.Evidence {
			text, ok := bySeq[ev.Seq]
			if !ok || strings.TrimSpace(ev.Quote) == "" || !strings.Contains(text, ev.Quote) {
				card.Validation.DroppedQuotes++
				continue
			}
			c.Evidence = append(c.Evidence, ev)
		}
		c.NoEvidence = len(c.Evidence) == 0
		card.Criteria = append(card.Criteria, c)
	}
	for name := range got {
		return Card{}, fmt.Errorf("criterion %q is not in the rubric", a.Criteria[got[name]].Name)
	}
	if !ValidRecommendation(a.Overall.Recommendation) {
		return Card{}, fmt.Errorf("recommendation %q is not one of %s", a.Overall.Recommendation, strings.Join(Recommendations, ", "))
	}
	card.Overall = Overall{
		Score:          WeightedScore(card.Criteria),
		Recommendation: a.Overall.Recommendation,
		Summary:        strings.TrimSpace(a.Overall.Summary),
	}
	return card, nil
}

// merge combines the cards of a chunked evaluation: each criterion's score
// is the mean of its chunk scores weighted by how many entries each chunk
// held, evidence is the union, rationales and summaries are joined.
func merge(cards []Card, sizes []int) Card {
	if len(cards) == 1 {
		return cards[0]
	}
	out := Card{Validation: Validation{Chunks: len(cards)}}
	var summaries []string
	for i := range cards[0].Criteria {
		c := cards[0].Criteria[i]
		c.Evidence = []Evidence{}
		var sum, n float64
		var rationales []string
		for k, card := range cards {
			cc := card.Criteria[i]
			sum += float64(cc.Score) * float64(sizes[k])
			n += float64(sizes[k])
			c.Evidence = append(c.Evidence, cc.Evidence...)
			if cc.Rationale != "" {
				rationales = append(rationales, fmt.Sprintf("Part %d: %s", k+1, cc.Rationale))
			}
		}
		c.Score = int(math.Round(sum / n))
		c.Rationale = strings.Join(rationales, " ")
		c.NoEvidence = len(c.Evidence) == 0
		out.Criteria = append(out.Criteria, c)
	}
	for k, card := range cards {
		out.Validation.DroppedQuotes += card.Validation.DroppedQuotes
		if card.Overall.Summary != "" {
			summaries = append(summaries, fmt.Sprintf("Part %d: %s", k+1, card.Overall.Summary))
		}
	}
	out.Overall.Score = WeightedScore(out.Criteria)
	out.Overall.Recommendation = RecommendationFor(out.Overall.Score)
	out.Overall.Summary = strings.Join(summaries, " ")
	return out
}
