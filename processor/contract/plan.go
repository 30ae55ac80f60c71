package contract

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Plan is the interview plan the control plane writes for a processor, as
// a JSON file named by EnvPlanFile (or inline in a ClaimRequest):
//
//	{
//	  "position":    {"title": "Backend engineer", "description": "…"},
//	  "questions":   ["Tell me about …", "…"],
//	  "rubric":      [{"name": "…", "description": "…", "weight": 1}],
//	  "interviewer": {"name": "Ada", "greeting": "…", "closing": "…", "follow_up": "…", "voice": "en-us"}
//	}
//
// Every field is optional: WithDefaults gives missing interviewer texts
// friendly defaults and a plan without questions a short generic set. The
// rubric is carried for interviewers that score answers; the scripted
// interviewer ignores it.
type Plan struct {
	Position    PlanPosition    `json:"position"`
	Questions   []string        `json:"questions"`
	Rubric      []PlanRubric    `json:"rubric"`
	Interviewer PlanInterviewer `json:"interviewer"`
}

// PlanPosition describes the role being interviewed for.
type PlanPosition struct {
	Title       string `json:"title"`
	Description string `json:"description"`
}

// PlanRubric is one scoring criterion (the shape of a position's rubric).
type PlanRubric struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Weight      float64 `json:"weight"`
}

// PlanInterviewer is how the interviewer presents itself.
type PlanInterviewer struct {
	Name     string `json:"name,omitempty"`      // how it introduces itself; default "Candor"
	Greeting string `json:"greeting,omitempty"`  // said when the candidate joins
	Closing  string `json:"closing,omitempty"`   // said after the last answer
	FollowUp string `json:"follow_up,omitempty"` // said once after a very brief answer
	Voice    string `json:"voice,omitempty"`     // one of PlanVoices (or an espeak-ng voice name); "" = default
}

// DefaultQuestions are asked when a plan has none.
var DefaultQuestions = []string{
	"Could you introduce yourself and tell me about your background?",
	"Tell me about a project you are proud of and the part you played in it.",
	"What are you looking for in your next role?",
}

// ParsePlan decodes a plan and fills in its defaults.
func ParsePlan(b []byte) (Plan, error) {
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return Plan{}, fmt.Errorf("decode plan: %w", err)
	}
	return p.WithDefaults(), nil
}

// WithDefaults returns the plan with blank questions dropped and every
// omitted field given its default.
func (p Plan) WithDefaults() Plan {
	var qs []string
	for _, q := range p.Questions {
		if q = strings.TrimSpace(q); q != "" {
			qs = append(qs, q)
		}
	}
	if len(qs) == 0 {
		qs = DefaultQuestions
	}
	p.Questions = qs
	iv := &p.Interviewer
	if iv.Name == "" {
		iv.Name = "Candor"
	}
	if iv.Greeting == "" {
		role := "this role"
		if p.Position.Title != "" {
			role = "the " + p.Position.Title + " role"
		}
		iv.Greeting = fmt.Sprintf("Hello, I am %s, and I will be your interviewer for %s today. Thank you for joining.", iv.Name, role)
	}
	if iv.Closing == "" {
		iv.Closing = "Those are all my questions. Thank you for your time, we will be in touch soon."
	}
	if iv.FollowUp == "" {
		iv.FollowUp = "Could you tell me a little more about that?"
	}
	return p
}
