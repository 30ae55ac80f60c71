package store

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The rules of positions and candidates, on the domain types, so the API
// and the dashboard accept exactly the same things. Lengths count
// characters (runes), not bytes.
const (
	MaxTitleLen       = 200
	MaxDescriptionLen = 20000
	MaxQuestions      = 100
	MaxQuestionLen    = 2000
	MaxRubricItems    = 50
	MaxNameLen        = 200
	MaxRubricWeight   = 100
	MaxNotesLen       = 20000
	// An interviewer's name is spoken in its greeting: a name, not a speech.
	MaxInterviewerName = 60
)

// ValidationError is a rule a value breaks: the field (as the API names
// it, e.g. "questions[2]" or "rubric[0].weight") and what is wrong, in
// words a user can act on. It wraps ErrInvalid.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }
func (e *ValidationError) Unwrap() error { return ErrInvalid }

func invalidField(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Normalize trims the title, interviewer name, voice, questions and rubric
// names and makes nil lists empty.
func (p *Position) Normalize() {
	p.Title = strings.TrimSpace(p.Title)
	p.InterviewerName = strings.TrimSpace(p.InterviewerName)
	p.Voice = strings.TrimSpace(p.Voice)
	for i := range p.Questions {
		p.Questions[i] = strings.TrimSpace(p.Questions[i])
	}
	for i := range p.Rubric {
		p.Rubric[i].Name = strings.TrimSpace(p.Rubric[i].Name)
	}
	if p.Questions == nil {
		p.Questions = []string{}
	}
	if p.Rubric == nil {
		p.Rubric = []RubricItem{}
	}
}

// Validate reports every rule p breaks (each a *ValidationError, joined;
// errors.As finds the first), or nil. Call Normalize first. A position
// may have no questions: the interviewer then asks its default ones
// (contract.DefaultQuestions), as the API always allowed.
func (p Position) Validate() error {
	var errs []error
	switch {
	case p.Title == "":
		errs = append(errs, invalidField("title", "is required"))
	case utf8.RuneCountInString(p.Title) > MaxTitleLen:
		errs = append(errs, invalidField("title", "is longer than %d characters", MaxTitleLen))
	}
	switch {
	case utf8.RuneCountInString(p.InterviewerName) > MaxInterviewerName:
		errs = append(errs, invalidField("interviewer_name", "is longer than %d characters", MaxInterviewerName))
	case strings.ContainsFunc(p.InterviewerName, unicode.IsControl):
		errs = append(errs, invalidField("interviewer_name", "contains control characters"))
	}
	if utf8.RuneCountInString(p.Description) > MaxDescriptionLen {
		errs = append(errs, invalidField("description", "is longer than %d characters", MaxDescriptionLen))
	}
	if len(p.Questions) > MaxQuestions {
		errs = append(errs, invalidField("questions", "has more than %d questions", MaxQuestions))
	}
	for i, q := range p.Questions {
		if q == "" {
			errs = append(errs, invalidField(fmt.Sprintf("questions[%d]", i), "is empty"))
		} else if utf8.RuneCountInString(q) > MaxQuestionLen {
			errs = append(errs, invalidField(fmt.Sprintf("questions[%d]", i), "is longer than %d characters", MaxQuestionLen))
		}
	}
	if len(p.Rubric) > MaxRubricItems {
		errs = append(errs, invalidField("rubric", "has more than %d items", MaxRubricItems))
	}
	for i, r := range p.Rubric {
		field := fmt.Sprintf("rubric[%d]", i)
		switch {
		case r.Name == "":
			errs = append(errs, invalidField(field+".name", "is required"))
		case utf8.RuneCountInString(r.Name) > MaxNameLen:
			errs = append(errs, invalidField(field+".name", "is longer than %d characters", MaxNameLen))
		case utf8.RuneCountInString(r.Description) > MaxQuestionLen:
			errs = append(errs, invalidField(field+".description", "is longer than %d characters", MaxQuestionLen))
		}
		if math.IsNaN(r.Weight) || r.Weight < 0 || r.Weight > MaxRubricWeight {
			errs = append(errs, invalidField(field+".weight", "must be between 0 and %d", MaxRubricWeight))
		}
	}
	return errors.Join(errs...)
}

// Normalize trims the name and notes and lower-cases and trims the email.
func (c *Candidate) Normalize() {
	c.Name = strings.TrimSpace(c.Name)
	c.Email = strings.ToLower(strings.TrimSpace(c.Email))
	c.Notes = strings.TrimSpace(strings.ReplaceAll(c.Notes, "\r\n", "\n"))
}

// Validate reports every rule c breaks (each a *ValidationError, joined;
// errors.As finds the first), or nil. Call Normalize first.
func (c Candidate) Validate() error {
	var errs []error
	switch {
	case c.Name == "":
		errs = append(errs, invalidField("name", "is required"))
	case utf8.RuneCountInString(c.Name) > MaxNameLen:
		errs = append(errs, invalidField("name", "is longer than %d characters", MaxNameLen))
	}
	switch {
	case c.Email == "":
		errs = append(errs, invalidField("email", "is required"))
	case !ValidEmail(c.Email):
		errs = append(errs, invalidField("email", "%q is not an email address", c.Email))
	}
	if utf8.RuneCountInString(c.Notes) > MaxNotesLen {
		errs = append(errs, invalidField("notes", "is longer than %d characters", MaxNotesLen))
	}
	return errors.Join(errs...)
}

// ValidEmail is a sanity check, not RFC 5322: one @, something on both
// sides, a dot in the domain, no spaces.
func ValidEmail(e string) bool {
	local, domain, ok := strings.Cut(e, "@")
	return ok && local != "" && strings.Contains(domain, ".") && !strings.ContainsAny(e, " \t\r\n<>") &&
		!strings.Contains(domain, "@") && len(e) <= 254
}
