package openai

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"candor/processor/contract"
)

func server(t *testing.T, h func(n int64, w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(n.Add(1), w, r) }))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestPostRetriesA429AfterItsRetryAfterThenAnswers(t *testing.T) {
	srv, n := server(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" || r.URL.Path != "/v1/audio/speech" {
			t.Errorf("request %s with %q", r.URL.Path, r.Header.Get("Authorization"))
		}
		if b, _ := io.ReadAll(r.Body); string(b) != `{"a":1}` {
			t.Errorf("attempt %d sent body %q", n, b)
		}
		if n == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		io.WriteString(w, "ok")
	})
	c := &Client{Key: "k", BaseURL: srv.URL + "/v1/", Backoff: contract.Backoff{Min: time.Hour}}
	resp, err := c.PostJSON(context.Background(), "/v1/audio/speech", map[string]int{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "ok" || n.Load() != 2 {
		t.Fatalf("answer %q after %d attempts, want ok after 2 (Retry-After 0 overrides the hour-long backoff)", b, n.Load())
	}
}

func TestPostDoesNotRetryAClientError(t *testing.T) {
	srv, n := server(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":{"message":"bad model"}}`)
	})
	_, err := (&Client{BaseURL: srv.URL}).Post(context.Background(), "/v1/x", "application/json", nil)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Message != "bad model" || n.Load() != 1 {
		t.Fatalf("err %v after %d attempts, want one HTTP 400 bad model", err, n.Load())
	}
}

func TestPostGivesUpAfterItsRetriesWithTheLastError(t *testing.T) {
	srv, n := server(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	c := &Client{BaseURL: srv.URL, Retries: 2, Backoff: contract.Backoff{Min: time.Millisecond, Max: time.Millisecond}}
	_, err := c.Post(context.Background(), "/v1/x", "application/json", nil)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 503 || n.Load() != 3 {
		t.Fatalf("err %v after %d attempts, want a 503 after 3", err, n.Load())
	}
}

func TestEachAttemptHasItsOwnTimeout(t *testing.T) {
	release := make(chan struct{})
	srv, n := server(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			select { // hangs until the client gives up on the attempt
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		io.WriteString(w, "second")
	})
	defer close(release)
	c := &Client{BaseURL: srv.URL, RequestTimeout: 100 * time.Millisecond, Backoff: contract.Backoff{Min: time.Millisecond}}
	resp, err := c.Post(context.Background(), "/v1/x", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n.Load() != 2 {
		t.Fatalf("%d attempts, want the hung one abandoned and a second", n.Load())
	}
}
