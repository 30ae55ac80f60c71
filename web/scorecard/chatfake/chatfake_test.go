package chatfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// These tests hold the fake to the published protocol
// (https://platform.openai.com/docs/api-reference/chat/create and the
// Structured Outputs guide, https://platform.openai.com/docs/guides/structured-outputs):
// what it refuses, the error object it refuses with, and the shape of a
// chat.completion.

func post(t *testing.T, s *Server, key string, body any) (int, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", s.URL+"/v1/chat/completions", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("answer is not JSON: %s", b)
	}
	return res.StatusCode, out
}

func strictFormat(schema map[string]any) map[string]any {
	return map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "scorecard", "strict": true, "schema": schema}}
}

var goodSchema = map[string]any{
	"type": "object", "additionalProperties": false, "required": []string{"a"},
	"properties": map[string]any{"a": map[string]any{"type": "array", "items": map[string]any{
		"type": "object", "additionalProperties": false, "required": []string{"b"},
		"properties": map[string]any{"b": map[string]any{"type": "string"}},
	}}},
}

func TestFakeRefusesWhatTheAPIRefuses(t *testing.T) {
	s := Start("sk-good", func(Request) string { return "{}" })
	defer s.Close()
	msgs := []map[string]string{{"role": "user", "content": "hi"}}
	loose := map[string]any{"type": "object", "properties": map[string]any{"a": map[string]any{"type": "string"}}, "required": []string{"a"}}
	nestedLoose := map[string]any{
		"type": "object", "additionalProperties": false, "required": []string{"a"},
		"properties": map[string]any{"a": map[string]any{"type": "array", "items": map[string]any{
			"type": "object", "additionalProperties": false, "required": []string{},
			"properties": map[string]any{"b": map[string]any{"type": "string"}},
		}}},
	}
	for _, tc := range []struct {
		name, key string
		body      map[string]any
		status    int
		param     string
	}{
		{"no key", "", map[string]any{"model": "m", "messages": msgs}, 401, ""},
		{"wrong key", "sk-bad", map[string]any{"model": "m", "messages": msgs}, 401, ""},
		{"no model", "sk-good", map[string]any{"messages": msgs}, 400, "model"},
		{"no messages", "sk-good", map[string]any{"model": "m", "messages": []any{}}, 400, "messages"},
		{"an unknown role", "sk-good", map[string]any{"model": "m", "messages": []map[string]string{{"role": "robot", "content": "x"}}}, 400, "messages[0].role"},
		{"strict schema without additionalProperties:false", "sk-good", map[string]any{"model": "m", "messages": msgs, "response_format": strictFormat(loose)}, 400, "response_format"},
		{"strict schema with a property not required, nested", "sk-good", map[string]any{"model": "m", "messages": msgs, "response_format": strictFormat(nestedLoose)}, 400, "response_format"},
		{"a schema name with spaces", "sk-good", map[string]any{"model": "m", "messages": msgs, "response_format": map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "score card", "strict": true, "schema": goodSchema}}}, 400, "response_format.json_schema.name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := post(t, s, tc.key, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, out)
			}
			e, _ := out["error"].(map[string]any)
			if e == nil || e["message"] == "" || e["type"] != "invalid_request_error" {
				t.Fatalf("not the documented error object: %v", out)
			}
			if tc.param != "" && e["param"] != tc.param {
				t.Errorf("param %v, want %s", e["param"], tc.param)
			}
		})
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d refused requests reached the model", n)
	}
}

func TestFakeAnswersAChatCompletion(t *testing.T) {
	s := Start("sk-good", Quoting)
	defer s.Close()
	prompt := "Rubric:\n- Communication (weight 1): clear\n\nTranscript\n[1] interviewer: Why?\n[2] candidate:   Because  queues   never sleep.\n"
	status, out := post(t, s, "sk-good", map[string]any{"model": "gpt-x", "messages": []map[string]string{
		{"role": "system", "content": "be fair"}, {"role": "user", "content": prompt}},
		"response_format": strictFormat(goodSchema)})
	if status != 200 || out["object"] != "chat.completion" || out["model"] != "gpt-x" || !strings.HasPrefix(out["id"].(string), "chatcmpl-") {
		t.Fatalf("%d %v", status, out)
	}
	choice := out["choices"].([]any)[0].(map[string]any)
	msg := choice["message"].(map[string]any)
	if choice["finish_reason"] != "stop" || msg["role"] != "assistant" {
		t.Fatalf("choice %v", choice)
	}
	var card struct {
		Criteria []struct {
			Name     string
			Evidence []evidence
		}
	}
	if err := json.Unmarshal([]byte(msg["content"].(string)), &card); err != nil {
		t.Fatal(err)
	}
	if len(card.Criteria) != 1 || card.Criteria[0].Name != "Communication" {
		t.Fatalf("criteria %+v", card.Criteria)
	}
	q := card.Criteria[0].Evidence[0]
	if q.Seq != 2 || !strings.Contains("  Because  queues   never sleep.", q.Quote) || !strings.HasPrefix(q.Quote, "Because") {
		t.Errorf("the honest model's quote %+v is not verbatim", q)
	}
}
