package scorecard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"candor/processor/contract"
)

// Evaluator names.
const (
	EvaluatorNone   = "none"
	EvaluatorOpenAI = "openai"
)

// OpenAI scores transcripts with any server that speaks OpenAI's Chat
// Completions protocol (POST {BaseURL}/v1/chat/completions) and supports
// a json_schema response format: OpenAI itself, or local servers.
type OpenAI struct {
	BaseURL string // e.g. https://api.openai.com (a trailing /v1 is accepted)
	APIKey  string
	Model   string
	Client  *http.Client
	// ChunkChars bounds the transcript text of one request, so a long
	// interview fits the model's context; default 48 000 characters
	// (about 12 000 tokens).
	ChunkChars int
	// Attempts is how many times one chunk is asked before the evaluation
	// fails (a malformed or invalid answer is asked again); default 2.
	Attempts int
}

// Name is the evaluator's name as shown on scorecards.
func (o *OpenAI) Name() string { return EvaluatorOpenAI + ":" + o.Model }

// ErrAnswer means the model's answer was unusable (malformed JSON, a
// refusal, a truncated answer, criteria that are not the rubric's).
var ErrAnswer = errors.New("evaluator answer unusable")

// Evaluate scores in's transcript against its position's rubric.
func (o *OpenAI) Evaluate(ctx context.Context, in Input) (Card, error) {
	if len(in.Position.Rubric) == 0 {
		return Card{}, ErrNoRubric
	}
	chunks := Chunk(in.Entries, o.chunkChars())
	cards := make([]Card, 0, len(chunks))
	sizes := make([]int, 0, len(chunks))
	for i, ch := range chunks {
		card, err := o.evaluateChunk(ctx, in, ch, i, len(chunks))
		if err != nil {
			if len(chunks) > 1 {
				err = fmt.Errorf("part %d of %d: %w", i+1, len(chunks), err)
			}
			return Card{}, err
		}
		cards = append(cards, card)
		sizes = append(sizes, max(len(ch), 1))
	}
	out := merge(cards, sizes)
	out.Validation.Chunks = len(chunks)
	return out, nil
}

func (o *OpenAI) chunkChars() int {
	if o.ChunkChars > 0 {
		return o.ChunkChars
	}
	return 48_000
}

func (o *OpenAI) evaluateChunk(ctx context.Context, in Input, entries []entryLine, part, parts int) (Card, error) {
	attempts := o.Attempts
	if attempts <= 0 {
		attempts = 2
	}
	req := chatRequest{
		Model: o.Model,
		Messages: []chatMessage{
			{Role: "system", Content: systemPrompt},
			{Role: "user", Content: userPrompt(in, entries, part, parts)},
		},
		ResponseFormat: responseFormat(),
		Temperature:    0,
	}
	shown := make([]storeEntry, len(entries))
	for i, e := range entries {
		shown[i] = e.Entry
	}
	var lastErr error
	for range attempts {
		content, err := o.complete(ctx, req)
		if err != nil {
			if errors.Is(err, ErrAnswer) {
				lastErr = err
				continue
			}
			return Card{}, err
		}
		var a modelAnswer
		dec := json.NewDecoder(strings.NewReader(content))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			lastErr = fmt.Errorf("%w: not the scorecard JSON: %v", ErrAnswer, err)
			continue
		}
		card, err := validate(a, in.Position.Rubric, shown)
		if err != nil {
			lastErr = fmt.Errorf("%w: %v", ErrAnswer, err)
			continue
		}
		return card, nil
	}
	return Card{}, lastErr
}

// complete makes one Chat Completions call and returns the assistant's
// content. Errors of the answer itself wrap ErrAnswer; transport and HTTP
// errors do not (they are not worth asking again at once).
func (o *OpenAI) complete(ctx context.Context, r chatRequest) (string, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, contract.OpenAIBaseURL(o.BaseURL)+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("evaluator: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if o.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+o.APIKey)
	}
	client := o.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Minute}
	}
	res, err := client.Do(hreq)
	if err != nil {
		return "", fmt.Errorf("evaluator: chat completions: %w", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return "", fmt.Errorf("evaluator: read answer: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error struct {
				Message string `json:"message"`
				Type    string `json:"type"`
			} `json:"error"`
		}
		json.Unmarshal(raw, &e)
		return "", fmt.Errorf("evaluator: chat completions answered %d %s: %s", res.StatusCode, e.Error.Type, e.Error.Message)
	}
	var cr chatResponse
	if err := json.Unmarshal(raw, &cr); err != nil {
		return "", fmt.Errorf("%w: the server's answer is not a chat completion: %v", ErrAnswer, err)
	}
	if len(cr.Choices) == 0 {
		return "", fmt.Errorf("%w: no choices", ErrAnswer)
	}
	ch := cr.Choices[0]
	switch {
	case ch.Message.Refusal != nil && *ch.Message.Refusal != "":
		return "", fmt.Errorf("%w: the model refused: %s", ErrAnswer, *ch.Message.Refusal)
	case ch.FinishReason == "length":
		return "", fmt.Errorf("%w: the answer was cut off at the token limit", ErrAnswer)
	case ch.Message.Content == nil:
		return "", fmt.Errorf("%w: empty content", ErrAnswer)
	}
	return *ch.Message.Content, nil
}

// The wire types of Chat Completions (https://platform.openai.com/docs/api-reference/chat/create),
// only the fields Candor uses.
type chatRequest struct {
	Model          string          `json:"model"`
	Messages       []chatMessage   `json:"messages"`
	ResponseFormat json.RawMessage `json:"response_format"`
	Temperature    float64         `json:"temperature"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatResponse struct {
	Choices []struct {
		Message struct {
			Role    string  `json:"role"`
			Content *string `json:"content"`
			Refusal *string `json:"refusal"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
}
