package stt_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"candor/processor/stt"
	"candor/processor/stt/openaifake"
)

// toneTrack is speech stand-in for the fakes: 600 ms tones of distinct
// pitch separated by 1.2 s of silence, and the texts the fake will give.
func toneTrack(hzs ...int) ([]int16, []string) {
	pcm := silence(500)
	var want []string
	for _, hz := range hzs {
		pcm = append(pcm, tone(float64(hz), 600, 0.3)...)
		pcm = append(pcm, silence(1200)...)
		want = append(want, fmt.Sprintf("tone %d", hz))
	}
	return pcm, want
}

func texts(rs []stt.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Text)
	}
	return out
}

func TestNewRejectsUnknownEnginesAndMissingKeys(t *testing.T) {
	tests := []struct {
		name   string
		engine string
		cfg    stt.Config
		want   error
	}{
		{"an unknown name is refused", "vosk", stt.Config{}, stt.ErrUnknownEngine},
		{"openai needs an API key", "openai", stt.Config{}, stt.ErrMissingAPIKey},
		{"openai-realtime needs an API key", "openai-realtime", stt.Config{}, stt.ErrMissingAPIKey},
		{"pocketsphinx needs no key", "pocketsphinx", stt.Config{}, nil},
		{"openai with a key is fine", "openai", stt.Config{OpenAIKey: "k"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng, err := stt.New(tt.engine, tt.cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New(%q) error = %v, want %v", tt.engine, err, tt.want)
			}
			if err == nil && eng.Name() != tt.engine {
				t.Errorf("Name() = %q", eng.Name())
			}
			if err != nil && !strings.Contains(err.Error(), tt.engine) {
				t.Errorf("error %q does not name the engine", err)
			}
		})
	}
}

func TestOpenAITranscribesEachUtteranceInOrder(t *testing.T) {
	fake := openaifake.New(openaifake.Options{})
	defer fake.Close()
	eng, err := stt.New("openai", stt.Config{OpenAIKey: "test-key", OpenAIBaseURL: fake.URL + "/v1", Language: "en"})
	if err != nil {
		t.Fatal(err)
	}
	pcm, want := toneTrack(300, 500, 700, 900)
	var c collector
	st, err := eng.NewStream(context.Background(), 2000, c.add)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	feed(t, st, pcm)
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := c.results()
	if strings.Join(texts(got), ",") != strings.Join(want, ",") {
		t.Fatalf("texts %v, want %v", texts(got), want)
	}
	for i, r := range got {
		onset := int64(2000 + 500 + i*1800)
		if r.StartMS < onset-20 || r.StartMS > onset+50 || r.EndMS < onset+550 || r.EndMS > onset+650 {
			t.Errorf("result %d at %d-%d ms, tone at %d-%d ms", i, r.StartMS, r.EndMS, onset, onset+600)
		}
	}
	reqs := fake.Transcriptions()
	if len(reqs) != 4 {
		t.Fatalf("%d requests", len(reqs))
	}
	for _, r := range reqs {
		if r.Model != "whisper-1" || r.ResponseFormat != "json" || r.Language != "en" || r.Rate != stt.SampleRate || !strings.HasSuffix(r.Filename, ".wav") {
			t.Errorf("request %+v", r)
		}
	}
}

func TestOpenAIRetriesRateLimitsAndServerErrorsHonouringRetryAfter(t *testing.T) {
	var mu sync.Mutex
	fake := openaifake.New(openaifake.Options{Fail: func(n int) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		switch n {
		case 0:
			return http.StatusTooManyRequests, "1"
		case 1:
			return http.StatusServiceUnavailable, ""
		}
		return 0, ""
	}})
	defer fake.Close()
	eng := stt.NewOpenAI(stt.Config{OpenAIKey: "test-key", OpenAIBaseURL: fake.URL, RetryBase: 10 * time.Millisecond})
	pcm, want := toneTrack(400)
	var c collector
	st, _ := eng.NewStream(context.Background(), 0, c.add)
	defer st.Close()
	began := time.Now()
	feed(t, st, pcm)
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := texts(c.results()); len(got) != 1 || got[0] != want[0] {
		t.Fatalf("texts %v, want %v", got, want)
	}
	// Retry-After: 1 is a floor on the wait, whatever the machine's speed.
	if waited := time.Since(began); waited < time.Second {
		t.Errorf("finished after %v, before the 1 s Retry-After", waited)
	}
}

func TestOpenAIReportsARejectedUtteranceAndCarriesOn(t *testing.T) {
	fake := openaifake.New(openaifake.Options{Fail: func(n int) (int, string) {
		if n == 0 {
			return http.StatusBadRequest, ""
		}
		return 0, ""
	}})
	defer fake.Close()
	var reported []error
	eng := stt.NewOpenAI(stt.Config{OpenAIKey: "test-key", OpenAIBaseURL: fake.URL, OnError: func(err error) { reported = append(reported, err) }})
	pcm, want := toneTrack(300, 600)
	var c collector
	st, _ := eng.NewStream(context.Background(), 0, c.add)
	defer st.Close()
	feed(t, st, pcm)
	err := st.Flush(context.Background())
	var apiErr *stt.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		t.Fatalf("Flush error = %v, want the 400", err)
	}
	if len(reported) != 1 {
		t.Errorf("reported %v", reported)
	}
	if got := texts(c.results()); len(got) != 1 || got[0] != want[1] {
		t.Errorf("texts %v, want only %q", got, want[1])
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Errorf("second flush: %v", err)
	}
}

func TestOpenAIFlushEndsAnUtteranceInProgress(t *testing.T) {
	fake := openaifake.New(openaifake.Options{})
	defer fake.Close()
	eng := stt.NewOpenAI(stt.Config{OpenAIKey: "test-key", OpenAIBaseURL: fake.URL})
	var c collector
	st, _ := eng.NewStream(context.Background(), 0, c.add)
	defer st.Close()
	feed(t, st, concat(silence(500), tone(800, 1000, 0.3)))
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := texts(c.results()); len(got) != 1 || got[0] != "tone 800" {
		t.Errorf("texts %v", got)
	}
}
