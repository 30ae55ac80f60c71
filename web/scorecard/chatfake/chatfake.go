// Package chatfake is a stand-in for OpenAI's Chat Completions endpoint
// (POST /v1/chat/completions, https://platform.openai.com/docs/api-reference/chat/create)
// for tests and demonstrations of the evaluator. It enforces the parts of
// the published protocol Candor relies on — bearer auth, a model, a
// non-empty message list with known roles, and a strict json_schema
// response format ("Structured Outputs": every object lists all its
// properties as required and sets additionalProperties false, the name
// matches ^[a-zA-Z0-9_-]{1,64}$) — answering violations with the
// documented error object and status. What the "model" says is a Model
// function; the package has three: Quoting (honest), Inventing (makes up
// quotes) and Malformed (not JSON).
package chatfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Request is the part of a chat completion request the fake reads.
type Request struct {
	Model          string          `json:"model"`
	Messages       []Message       `json:"messages"`
	ResponseFormat *ResponseFormat `json:"response_format"`
}

type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type ResponseFormat struct {
	Type       string `json:"type"`
	JSONSchema *struct {
		Name   string          `json:"name"`
		Strict bool            `json:"strict"`
		Schema json.RawMessage `json:"schema"`
	} `json:"json_schema"`
}

// Model returns the assistant's content for a (valid) request.
type Model func(Request) string

// Server is a running fake.
type Server struct {
	URL    string // base URL; the endpoint is URL + "/v1/chat/completions"
	APIKey string

	srv   *httptest.Server
	model Model

	mu       sync.Mutex
	requests []Request
}

// Start serves model on a loopback port; it accepts only key.
func Start(key string, model Model) *Server {
	s := &Server{APIKey: key, model: model}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Requests returns the valid requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// SetModel replaces the model for later requests.
func (s *Server) SetModel(m Model) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.model = m
}

// apiError answers the documented error object.
func apiError(w http.ResponseWriter, status int, typ, param, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var p, c any
	if param != "" {
		p = param
	}
	if code != "" {
		c = code
	}
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": p, "code": c}})
}

var schemaName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/chat/completions" {
		apiError(w, http.StatusNotFound, "invalid_request_error", "", "unknown_url", "Unknown request URL: "+r.Method+" "+r.URL.Path)
		return
	}
	if r.Method != http.MethodPost {
		apiError(w, http.StatusMethodNotAllowed, "invalid_request_error", "", "", "use POST")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.APIKey {
		apiError(w, http.StatusUnauthorized, "invalid_request_error", "", "invalid_api_key", "Incorrect API key provided.")
		return
	}
	var req Request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "", "", "We could not parse the JSON body of your request.")
		return
	}
	if msg, param := check(req); msg != "" {
		apiError(w, http.StatusBadRequest, "invalid_request_error", param, "", msg)
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	model := s.model
	s.mu.Unlock()
	content := model(req)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"id":      fmt.Sprintf("chatcmpl-fake%d", time.Now().UnixNano()),
		"object":  "chat.completion",
		"created": time.Now().Unix(),
		"model":   req.Model,
		"choices": []any{map[string]any{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": content, "refusal": nil},
			"logprobs":      nil,
			"finish_reason": "stop",
		}},
		"usage": map[string]any{"prompt_tokens": len(req.Messages), "completion_tokens": len(content) / 4, "total_tokens": len(req.Messages) + len(content)/4},
	})
}

// check returns what is wrong with req, as the API would say it.
func check(req Request) (msg, param string) {
	if req.Model == "" {
		return "you must provide a model parameter", "model"
	}
	if len(req.Messages) == 0 {
		return "[] is too short - 'messages'", "messages"
	}
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant":
		default:
			return fmt.Sprintf("Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', 'developer'.", m.Role), fmt.Sprintf("messages[%d].role", i)
		}
	}
	rf := req.ResponseFormat
	if rf == nil {
		return "", ""
	}
	switch rf.Type {
	case "text", "json_object":
		return "", ""
	case "json_schema":
	default:
		return fmt.Sprintf("Invalid value: '%s'.", rf.Type), "response_format.type"
	}
	if rf.JSONSchema == nil {
		return "Missing required parameter: 'response_format.json_schema'.", "response_format.json_schema"
	}
	if !schemaName.MatchString(rf.JSONSchema.Name) {
		return "Invalid 'response_format.json_schema.name': string does not match pattern.", "response_format.json_schema.name"
	}
	if rf.JSONSchema.Strict {
		var schema any
		if err := json.Unmarshal(rf.JSONSchema.Schema, &schema); err != nil {
			return "Invalid schema: not JSON.", "response_format.json_schema.schema"
		}
		if where := strictViolation(schema, "schema"); where != "" {
			return "Invalid schema for response_format 'scorecard': In context=(" + where + "), 'additionalProperties' is required to be supplied and to be false, and 'required' must include every property.", "response_format"
		}
	}
	return "", ""
}

// strictViolation walks a JSON schema and names the first object that
// breaks Structured Outputs' strict rules, "" if none does.
func strictViolation(node any, at string) string {
	m, ok := node.(map[string]any)
	if !ok {
		return ""
	}
	if m["type"] == "object" {
		if ap, ok := m["additionalProperties"].(bool); !ok || ap {
			return at
		}
		props, _ := m["properties"].(map[string]any)
		req, _ := m["required"].([]any)
		have := map[string]bool{}
		for _, r := range req {
			if s, ok := r.(string); ok {
				have[s] = true
			}
		}
		for k, v := range props {
			if !have[k] {
				return at + "." + k
			}
			if w := strictViolation(v, at+"."+k); w != "" {
				return w
			}
		}
	}
	if items, ok := m["items"]; ok {
		return strictViolation(items, at+"[]")
	}
	return ""
}

// The prompt lines the models read: "[seq] speaker: text" entries and
// "- name (weight w): description" rubric criteria.
var (
	entryLine  = regexp.MustCompile(`(?m)^\[(\d+)\] (candidate|interviewer): (.*)$`)
	rubricLine = regexp.MustCompile(`(?m)^- (.+?) \(weight [^)]*\):`)
)

type promptEntry struct {
	seq        int64
	speaker    string
	text       string
	candidates bool
}

type prompt struct {
	criteria []string
	entries  []promptEntry
}

func readPrompt(req Request) prompt {
	var p prompt
	for _, m := range req.Messages {
		if m.Role != "user" {
			continue
		}
		for _, r := range rubricLine.FindAllStringSubmatch(m.Content, -1) {
			p.criteria = append(p.criteria, r[1])
		}
		for _, e := range entryLine.FindAllStringSubmatch(m.Content, -1) {
			seq, _ := strconv.ParseInt(e[1], 10, 64)
			p.entries = append(p.entries, promptEntry{seq, e[2], e[3], e[2] == "candidate"})
		}
	}
	return p
}

type evidence struct {
	Seq   int64  `json:"seq"`
	Quote string `json:"quote"`
}

func answer(p prompt, quote func(i int) []evidence) string {
	type criterion struct {
		Name      string     `json:"name"`
		Score     int        `json:"score"`
		Rationale string     `json:"rationale"`
		Evidence  []evidence `json:"evidence"`
	}
	var cs []criterion
	words := 0
	for _, e := range p.entries {
		if e.candidates {
			words += len(strings.Fields(e.text))
		}
	}
	// A longer answer scores higher: a deterministic, visible rule.
	score := min(5, 1+words/40)
	for i, name := range p.criteria {
		cs = append(cs, criterion{Name: name, Score: max(1, score-i%2), Rationale: fmt.Sprintf("The candidate spoke %d words relevant to %s.", words, strings.ToLower(name)), Evidence: quote(i)})
	}
	rec := "no"
	if score >= 4 {
		rec = "yes"
	}
	raw, _ := json.Marshal(map[string]any{
		"criteria": cs,
		"overall": map[string]any{"score": float64(score), "recommendation": rec,
			"summary": fmt.Sprintf("The candidate answered in %d words. The evaluation is the fake model's.", words)},
	})
	return string(raw)
}

// Quoting is an honest model: each criterion cites the first few words of
// a candidate entry, verbatim.
func Quoting(req Request) string {
	p := readPrompt(req)
	var cand []evidence
	for _, e := range p.entries {
		if !e.candidates {
			continue
		}
		ws := strings.Fields(e.text)
		if len(ws) == 0 {
			continue
		}
		n := min(len(ws), 8)
		// The quote is a substring of the text as written: cut at the
		// n-th word's end rather than re-joining fields.
		end := 0
		rest := e.text
		for k := 0; k < n; k++ {
			idx := strings.Index(rest, ws[k])
			end += idx + len(ws[k])
			rest = rest[idx+len(ws[k]):]
		}
		start := strings.Index(e.text, ws[0])
		cand = append(cand, evidence{Seq: e.seq, Quote: e.text[start:end]})
	}
	return answer(p, func(i int) []evidence {
		if len(cand) == 0 {
			return []evidence{}
		}
		return []evidence{cand[i%len(cand)]}
	})
}

// InventedQuote is what Inventing puts in the candidate's mouth.
const InventedQuote = "I single-handedly scaled the system to a billion users"

// Inventing is a model that makes up evidence: one real quote and one the
// candidate never said, per criterion.
func Inventing(req Request) string {
	p := readPrompt(req)
	real := Quoting(req)
	var honest struct {
		Criteria []struct {
			Evidence []evidence `json:"evidence"`
		} `json:"criteria"`
	}
	json.Unmarshal([]byte(real), &honest)
	var seq int64 = 1
	if len(p.entries) > 0 {
		seq = p.entries[0].seq
	}
	return answer(p, func(i int) []evidence {
		ev := []evidence{{Seq: seq, Quote: InventedQuote}}
		if i < len(honest.Criteria) {
			ev = append(honest.Criteria[i].Evidence, ev...)
		}
		return ev
	})
}

// Malformed is a model whose answer is not JSON.
func Malformed(Request) string {
	return `{"criteria": [{"name": "Communication", "score": 4, "rationale": "Clear`
}
