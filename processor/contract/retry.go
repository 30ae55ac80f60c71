package contract

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Backoff is the one retry policy of Candor's HTTP clients (the bridge
// client, the OpenAI client layer, the Fly Machines client): a capped
// exponential delay, optionally jittered, that yields to a server's
// Retry-After within a cap. The bridge itself answers 503 + Retry-After
// during a hand-over (DESIGN §5), which is why the policy is part of the
// contract. The zero value retries after 250 ms, doubling up to 10 s.
type Backoff struct {
	Min time.Duration // first delay (default 250 ms)
	Max time.Duration // cap of the exponential delay (default 10 s)
	// MaxRetryAfter caps a server-requested wait (default 2 min): beyond
	// it a request is better reported as failed than held back for long.
	MaxRetryAfter time.Duration
	// Jitter spreads each delay over [d/2, d], so clients that failed
	// together do not retry together.
	Jitter bool
}

// Delay is the wait before retry number attempt (1 is the first retry).
func (b Backoff) Delay(attempt int) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 250 * time.Millisecond
	}
	if hi <= 0 {
		hi = 10 * time.Second
	}
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	if b.Jitter {
		d = d/2 + rand.N(d/2+1)
	}
	return d
}

// After is the wait before retry number attempt of a request answered by
// h: the server's Retry-After (delay seconds or an HTTP date) capped at
// MaxRetryAfter when it gives one, else Delay(attempt).
func (b Backoff) After(attempt int, h http.Header, now time.Time) time.Duration {
	if h != nil {
		if d, ok := RetryAfter(h.Get("Retry-After"), now); ok {
			limit := b.MaxRetryAfter
			if limit <= 0 {
				limit = 2 * time.Minute
			}
			return min(d, limit)
		}
	}
	return b.Delay(attempt)
}

// RetryAfter parses a Retry-After header value (RFC 9110 §10.2.3): a
// number of seconds or an HTTP date, relative to now. ok is false when v
// is empty or neither.
func RetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// Retryable reports whether an HTTP status is worth retrying: 429 and the
// 5xx answers (a server error or a hand-over in progress).
func Retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// Sleep waits d or until ctx is done, which it returns.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
