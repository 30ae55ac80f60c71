package store

import (
	"errors"
	"strings"
	"testing"
)

func TestPositionValidate(t *testing.T) {
	ok := func() Position {
		return Position{Title: "Engineer", Questions: []string{"Why?"}, Rubric: []RubricItem{{Name: "clarity", Weight: 1}}}
	}
	tests := []struct {
		name  string
		edit  func(*Position)
		field string // "" when valid
	}{
		{"a titled position with a question is valid", func(*Position) {}, ""},
		{"a title is required", func(p *Position) { p.Title = "  " }, "title"},
		{"a title counts characters, not bytes", func(p *Position) { p.Title = strings.Repeat("é", MaxTitleLen) }, ""},
		{"a title past the limit is refused", func(p *Position) { p.Title = strings.Repeat("a", MaxTitleLen+1) }, "title"},
		{"a position without questions is valid (default questions)", func(p *Position) { p.Questions = nil }, ""},
		{"a blank question is refused", func(p *Position) { p.Questions = []string{"Why?", " "} }, "questions[1]"},
		{"a weight above the cap is refused", func(p *Position) { p.Rubric[0].Weight = MaxRubricWeight + 1 }, "rubric[0].weight"},
		{"a weight at the cap is fine", func(p *Position) { p.Rubric[0].Weight = MaxRubricWeight }, ""},
		{"a criterion needs a name", func(p *Position) { p.Rubric[0].Name = "" }, "rubric[0].name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok()
			tt.edit(&p)
			p.Normalize()
			err := p.Validate()
			var ve *ValidationError
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("valid position refused: %v", err)
			case tt.field != "" && (!errors.As(err, &ve) || ve.Field != tt.field || !errors.Is(err, ErrInvalid)):
				t.Errorf("err = %v, want a ValidationError on %s", err, tt.field)
			}
		})
	}
}

func TestCandidateValidateCountsCharacters(t *testing.T) {
	c := Candidate{Name: strings.Repeat("ü", MaxNameLen), Email: " Ada@Example.com "}
	c.Normalize()
	if err := c.Validate(); err != nil || c.Email != "ada@example.com" {
		t.Errorf("%d-character name: %v (email %q)", MaxNameLen, err, c.Email)
	}
	c.Name += "ü"
	var ve *ValidationError
	if err := c.Validate(); !errors.As(err, &ve) || ve.Field != "name" {
		t.Errorf("name past the limit: %v", err)
	}
}
