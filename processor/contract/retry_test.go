package contract

import (
	"net/http"
	"testing"
	"time"
)

func TestBackoffDoublesUpToItsCap(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := b.Delay(i + 1); got != w*time.Millisecond {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	j := Backoff{Min: 100 * time.Millisecond, Max: time.Second, Jitter: true}
	for range 100 {
		if d := j.Delay(3); d < 200*time.Millisecond || d > 400*time.Millisecond {
			t.Fatalf("jittered Delay(3) = %v, want within [200ms, 400ms]", d)
		}
	}
}

func TestBackoffHonoursRetryAfterInSecondsOrAsADateWithinItsCap(t *testing.T) {
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second, MaxRetryAfter: 30 * time.Second}
	tests := []struct {
		name, header string
		want         time.Duration
	}{
		{"seconds are waited as given", "3", 3 * time.Second},
		{"fractional seconds are honoured", "0.5", 500 * time.Millisecond},
		{"an HTTP date is waited until", now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second},
		{"a date in the past means now", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"a long wait is capped", "3600", 30 * time.Second},
		{"garbage falls back to the backoff", "soon", 200 * time.Millisecond},
		{"no header falls back to the backoff", "", 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("Retry-After", tt.header)
			}
			if got := b.After(2, h, now); got != tt.want {
				t.Errorf("After = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOpenAIBaseURLIsReadOneWay(t *testing.T) {
	for in, want := range map[string]string{
		"":                                "https://api.openai.com",
		"https://api.groq.com/openai/v1/": "https://api.groq.com/openai",
		"http://127.0.0.1:8000/v1":        "http://127.0.0.1:8000",
		"http://127.0.0.1:8000":           "http://127.0.0.1:8000",
	} {
		if got := OpenAIBaseURL(in); got != want {
			t.Errorf("OpenAIBaseURL(%q) = %q, want %q", in, got, want)
		}
	}
	if CheckOpenAIKey("", "") == nil {
		t.Error("no key and no base URL passed")
	}
	if CheckOpenAIKey("", "http://127.0.0.1:8000") != nil || CheckOpenAIKey("k", "") != nil {
		t.Error("a key, or a base URL of another server, was refused")
	}
}
