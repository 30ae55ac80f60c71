package fly

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/superfly/fly-go/flaps"
	"golang.org/x/time/rate"
)

// apiTransport sits under fly-go's HTTP client and does, for every Machines
// API request:
//
//   - pacing: a token bucket per action and app (create, list) or machine
//     (get, update, start, stop, delete, wait), at Fly's documented limits
//     (https://fly.io/docs/machines/api/#rate-limits: 1 req/s per action,
//     burst 3; Get Machine 5 req/s, burst 10), so a burst of starts queues
//     here instead of collecting 429s;
//   - Retry-After: a 429 is retried after the time the API asks for (and the
//     bucket waits too), up to maxRateRetries times;
//   - fly-request-id: every failed answer is logged with it, the handle Fly
//     support asks for;
//   - a copy of the body per attempt: fly-go v0.8.0 retries 502/503 with
//     rehttp, which rewinds the one body reader for the next attempt as soon
//     as a response arrives; when the API answers before it has read the body
//     (a 503 from a proxy does), net/http is still writing that reader, so
//     the retry races it and goes out empty or truncated. Sitting under
//     rehttp, this reads the body before sending;
//   - re-aiming at FlyConfig.APIBaseURL (to), when set.
type apiTransport struct {
	base http.RoundTripper
	to   *url.URL
	log  *slog.Logger

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

// maxRateRetries bounds how often one request waits out a 429.
const maxRateRetries = 8

// apiLimit is Fly's documented limit of an action.
func apiLimit(action string) (rate.Limit, int) {
	if action == "get" {
		return 5, 10
	}
	return 1, 3
}

var (
	apiMachinesRE = regexp.MustCompile(`/apps/([^/]+)/machines$`)
	apiMachineRE  = regexp.MustCompile(`/apps/([^/]+)/machines/([^/]+)(/[a-z]+)?$`)
)

// apiAction names the rate-limited action of a request and what it counts
// against ("" when the API does not limit it).
func apiAction(method, path string) (action, scope string) {
	if m := apiMachinesRE.FindStringSubmatch(path); m != nil {
		switch method {
		case http.MethodPost:
			return "create", m[1]
		case http.MethodGet:
			return "list", m[1]
		}
		return "", ""
	}
	m := apiMachineRE.FindStringSubmatch(path)
	if m == nil {
		return "", ""
	}
	scope = m[1] + "/" + m[2]
	switch sub := m[3]; {
	case sub == "" && method == http.MethodGet:
		return "get", scope
	case sub == "" && method == http.MethodPost:
		return "update", scope
	case sub == "" && method == http.MethodDelete:
		return "delete", scope
	case sub == "/start", sub == "/stop", sub == "/wait":
		return sub[1:], scope
	}
	return "", ""
}

func (t *apiTransport) bucket(action, scope string) *rate.Limiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.buckets == nil {
		t.buckets = make(map[string]*rate.Limiter)
	}
	key := action + " " + scope
	b := t.buckets[key]
	if b == nil {
		r, burst := apiLimit(action)
		b = rate.NewLimiter(r, burst)
		t.buckets[key] = b
	}
	return b
}

func (t *apiTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.to != nil {
		req = req.Clone(req.Context())
		req.URL.Scheme, req.URL.Host = t.to.Scheme, t.to.Host
		req.URL.Path = strings.TrimRight(t.to.Path, "/") + req.URL.Path
		req.URL.RawPath = ""
		req.Host = t.to.Host
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		body = b
	}
	ctx := req.Context()
	action, scope := apiAction(req.Method, req.URL.Path)
	for attempt := 0; ; attempt++ {
		if action != "" {
			if err := t.bucket(action, scope).Wait(ctx); err != nil {
				return nil, err
			}
		}
		r := req.Clone(ctx)
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			r.ContentLength = int64(len(body))
		}
		resp, err := t.base.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode < 300 {
			return resp, nil
		}
		t.log.Debug("fly API answered an error", "method", req.Method, "path", req.URL.Path, "status", resp.StatusCode, "fly_request_id", resp.Header.Get("fly-request-id"))
		if resp.StatusCode != http.StatusTooManyRequests || attempt >= maxRateRetries {
			return resp, nil
		}
		wait := retryAfter(resp.Header.Get("Retry-After"))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		t.log.Info("fly API rate limit; waiting as asked", "action", action, "scope", scope, "retry_after", wait, "fly_request_id", resp.Header.Get("fly-request-id"))
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
}

// retryAfter reads a Retry-After header (seconds or an HTTP date); 1 s when
// absent or unreadable, at most 60 s.
func retryAfter(v string) time.Duration {
	d := time.Second
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs >= 0 {
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = time.Until(at)
	}
	return min(max(d, 100*time.Millisecond), time.Minute)
}

// requestID is the fly-request-id of a Machines API error, for logs.
func requestID(err error) string {
	var fe *flaps.FlapsError
	if errors.As(err, &fe) {
		return fe.FlyRequestId
	}
	return ""
}
