// Package openai is the processor's one client layer for OpenAI-compatible
// HTTP APIs (transcriptions, speech): the base-URL rule and the key rule of
// package contract, one retry policy (contract.Backoff, honouring
// Retry-After within a cap), a timeout per request attempt, and one error
// type. The Realtime WebSocket transport is internal/oairt.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"candor/processor/contract"
)

// Client sends requests to one OpenAI-compatible server. Zero fields take
// the defaults named on them.
type Client struct {
	Key     string
	BaseURL string // EnvOpenAIBaseURL, read by contract.OpenAIBaseURL
	HTTP    *http.Client

	// Retries bounds the retries of one request after its first attempt
	// (default 4), on network errors, 429 and 5xx.
	Retries int
	// Backoff spaces retries (default 500 ms doubling to 8 s; Retry-After
	// capped at 2 minutes).
	Backoff contract.Backoff
	// RequestTimeout bounds each attempt (default 60 s); the caller's ctx
	// bounds them all.
	RequestTimeout time.Duration
}

// APIError is an answer that is not 2xx, after any retries.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message) }

// URL is the address of path (e.g. "/v1/audio/speech") on the server.
func (c *Client) URL(path string) string { return contract.OpenAIBaseURL(c.BaseURL) + path }

// Post sends body to path, retrying as the policy says, and returns the
// 2xx response open (its body is bounded by the attempt's timeout until
// closed); any other answer is an *APIError.
func (c *Client) Post(ctx context.Context, path, contentType string, body []byte) (*http.Response, error) {
	retries := c.Retries
	if retries <= 0 {
		retries = 4
	}
	policy := c.Backoff
	if policy.Min <= 0 {
		policy.Min = 500 * time.Millisecond
	}
	if policy.Max <= 0 {
		policy.Max = 8 * time.Second
	}
	timeout := c.RequestTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	client := c.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	var last error
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, timeout)
		req, err := http.NewRequestWithContext(actx, http.MethodPost, c.URL(path), bytes.NewReader(body))
		if err != nil {
			cancel()
			return nil, err
		}
		if c.Key != "" {
			req.Header.Set("Authorization", "Bearer "+c.Key)
		}
		req.Header.Set("Content-Type", contentType)
		resp, err := client.Do(req)
		var header http.Header
		switch {
		case err != nil:
			cancel()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			last = err
		case resp.StatusCode/100 == 2:
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
			return resp, nil
		default:
			header = resp.Header
			last = &APIError{Status: resp.StatusCode, Message: errorMessage(resp)}
			cancel()
			if !contract.Retryable(resp.StatusCode) {
				return nil, last
			}
		}
		if attempt >= retries {
			return nil, fmt.Errorf("after %d attempts: %w", attempt+1, last)
		}
		if err := contract.Sleep(ctx, policy.After(attempt+1, header, time.Now())); err != nil {
			return nil, err
		}
	}
}

// PostJSON posts v as JSON; see Post.
func (c *Client) PostJSON(ctx context.Context, path string, v any) (*http.Response, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return c.Post(ctx, path, "application/json", body)
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// errorMessage is the message of an OpenAI error body
// ({"error":{"message":…}}), else the body's text; it closes the body.
func errorMessage(resp *http.Response) string {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return strings.TrimSpace(string(raw))
}
