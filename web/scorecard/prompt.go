package scorecard

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"candor/store"
)

type storeEntry = store.Entry

// entryLine is an entry as the model sees it: one line, its text with line
// breaks turned into spaces. Quotes are checked against this text.
type entryLine struct {
	store.Entry
	line string
}

func toLine(e store.Entry) entryLine {
	e.Text = strings.Join(strings.Fields(e.Text), " ")
	return entryLine{Entry: e, line: fmt.Sprintf("[%d] %s: %s\n", e.Seq, e.Speaker, e.Text)}
}

// Chunk splits entries into runs whose numbered lines hold at most limit
// characters each (an entry longer than limit is a run of its own).
func Chunk(entries []store.Entry, limit int) [][]entryLine {
	var out [][]entryLine
	var cur []entryLine
	size := 0
	for _, e := range entries {
		l := toLine(e)
		if len(cur) > 0 && size+len(l.line) > limit {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, l)
		size += len(l.line)
	}
	if len(cur) > 0 || len(out) == 0 {
		out = append(out, cur)
	}
	return out
}

const systemPrompt = `You evaluate a job interview transcript against a rubric.
For each rubric criterion give a score from 1 (poor) to 5 (excellent), a short rationale, and evidence:
quotes copied exactly, character for character, from the transcript entry whose number you cite as seq.
Quote only what the candidate said; never paraphrase inside a quote; give no evidence rather than invented evidence.
Then give an overall recommendation (strong_yes, yes, no, strong_no) and a summary of two to four sentences.
Judge only what the transcript shows. Answer with JSON in the requested schema and nothing else.`

func userPrompt(in Input, entries []entryLine, part, parts int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Position: %s\n", in.Position.Title)
	if d := strings.TrimSpace(in.Position.Description); d != "" {
		fmt.Fprintf(&b, "Description: %s\n", d)
	}
	b.WriteString("\nRubric (score every criterion, using these exact names):\n")
	for _, r := range in.Position.Rubric {
		fmt.Fprintf(&b, "- %s (weight %g): %s\n", r.Name, r.Weight, r.Description)
	}
	if parts > 1 {
		fmt.Fprintf(&b, "\nThe transcript is long: this is part %d of %d. Score what this part shows.\n", part+1, parts)
	}
	b.WriteString("\nTranscript, one entry per line as [seq] speaker: text\n")
	for _, e := range entries {
		b.WriteString(e.line)
	}
	return b.String()
}

// responseFormat is the json_schema response format asking for exactly the
// scorecard's shape. Strict mode needs every property required and no
// additional properties, at every level.
func responseFormat() json.RawMessage {
	obj := func(props map[string]any) map[string]any {
		req := make([]string, 0, len(props))
		for k := range props {
			req = append(req, k)
		}
		slices.Sort(req)
		return map[string]any{"type": "object", "properties": props, "required": req, "additionalProperties": false}
	}
	evidence := obj(map[string]any{
		"seq":   map[string]any{"type": "integer"},
		"quote": map[string]any{"type": "string"},
	})
	criterion := obj(map[string]any{
		"name":      map[string]any{"type": "string"},
		"score":     map[string]any{"type": "integer", "enum": []int{1, 2, 3, 4, 5}},
		"rationale": map[string]any{"type": "string"},
		"evidence":  map[string]any{"type": "array", "items": evidence},
	})
	overall := obj(map[string]any{
		"score":          map[string]any{"type": "number"},
		"recommendation": map[string]any{"type": "string", "enum": Recommendations},
		"summary":        map[string]any{"type": "string"},
	})
	schema := obj(map[string]any{
		"criteria": map[string]any{"type": "array", "items": criterion},
		"overall":  overall,
	})
	raw, _ := json.Marshal(map[string]any{
		"type": "json_schema",
		"json_schema": map[string]any{
			"name":   "scorecard",
			"strict": true,
			"schema": schema,
		},
	})
	return raw
}
