// Package stt turns 16 kHz mono speech into timed transcript results.
//
// Three engines sit behind one small interface: "pocketsphinx" runs Debian's
// pocketsphinx_continuous offline (the default), "openai" posts utterances cut
// by the energy segmenter to an OpenAI-compatible /v1/audio/transcriptions,
// and "openai-realtime" streams to the Realtime API's transcription sessions.
// Every engine reports times on the stream clock: milliseconds since the
// stream's first sample plus the stream's base offset, so a replacement
// processor that resumes at media_ms keeps one timeline.
package stt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// SampleRate is the only rate engines accept: 16 kHz mono signed 16-bit.
const SampleRate = 16000

// Result is one recognised utterance. Times are on the stream clock.
type Result struct {
	Text           string
	StartMS, EndMS int64
	Confidence     float64 // 0..1; 0 when the engine does not report one
}

// Engine creates one Stream per continuous audio source.
type Engine interface {
	Name() string
	// NewStream starts recognition for one source whose first sample is at
	// baseMS on the stream clock. onResult is called from one goroutine, in
	// utterance order.
	NewStream(ctx context.Context, baseMS int64, onResult func(Result)) (Stream, error)
}

// Stream accepts audio of one source in order.
type Stream interface {
	Write(pcm []int16) error // 16 kHz mono, in order
	// Flush returns when every utterance in the audio written so far has
	// produced its Result (or turned out to be silence). The stream stays
	// usable afterwards; an utterance still running at the flush point is
	// ended there.
	Flush(ctx context.Context) error
	Close() error
}

// ErrUnknownEngine is returned by New for a name it does not know.
var ErrUnknownEngine = errors.New("unknown speech engine")

// ErrMissingAPIKey is returned by New when an OpenAI engine has no key.
var ErrMissingAPIKey = errors.New("missing OpenAI API key")

// Config holds what the engines need; zero values select defaults.
type Config struct {
	OpenAIKey     string
	OpenAIBaseURL string // default https://api.openai.com; "/v1" suffix accepted
	// PublicTargetsOnly makes the OpenAI engines connect only to public
	// addresses (egress), for a tenant's base URL.
	PublicTargetsOnly bool
	Model             string // openai: whisper-1; openai-realtime: gpt-4o-transcribe
	Language          string // ISO-639-1 hint for the OpenAI engines, e.g. "en"

	// PocketsphinxPath is the pocketsphinx_continuous binary (default from PATH).
	PocketsphinxPath string
	// PocketsphinxArgs are extra decoder arguments (e.g. "-hmm", dir).
	PocketsphinxArgs []string

	// Segmenter tunes the voice-activity segmenter of the "openai" engine.
	Segmenter SegmenterConfig

	// MaxRetries bounds retries of one request on 429/5xx/network errors (default 4).
	MaxRetries int
	// RetryBase is the first backoff (default 500ms), doubled per attempt up to 8s.
	RetryBase time.Duration
	// RequestTimeout bounds one HTTP request (default 60s).
	RequestTimeout time.Duration

	// RealtimeSessionMax is when a Realtime session is rolled over to the
	// next one (default 55 minutes; the service caps sessions at 60).
	RealtimeSessionMax time.Duration
	// RealtimeHardSwitch is how long past RealtimeSessionMax the engine waits
	// for a silent moment before switching sessions mid-speech (default 2 minutes).
	RealtimeHardSwitch time.Duration

	// OnError is told about recoverable failures (a decoder restart, an
	// utterance that failed after retries). Default: logged with Logger.
	OnError func(error)
	Logger  *slog.Logger
}

func (c Config) reportError(err error) {
	if c.OnError != nil {
		c.OnError(err)
		return
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	log.Error("speech engine", "err", err)
}

func (c Config) baseURL() string {
	b := strings.TrimRight(c.OpenAIBaseURL, "/")
	if b == "" {
		b = "https://api.openai.com"
	}
	return strings.TrimSuffix(b, "/v1")
}

// New returns the engine called name: "pocketsphinx", "openai" or "openai-realtime".
func New(name string, cfg Config) (Engine, error) {
	switch name {
	case "pocketsphinx", "":
		return NewPocketsphinx(cfg)
	case "openai":
		if cfg.OpenAIKey == "" {
			return nil, fmt.Errorf("speech engine %q: %w (set OPENAI_API_KEY)", name, ErrMissingAPIKey)
		}
		return NewOpenAI(cfg), nil
	case "openai-realtime":
		if cfg.OpenAIKey == "" {
			return nil, fmt.Errorf("speech engine %q: %w (set OPENAI_API_KEY)", name, ErrMissingAPIKey)
		}
		return NewRealtime(cfg), nil
	default:
		return nil, fmt.Errorf("%w %q: choose pocketsphinx, openai or openai-realtime", ErrUnknownEngine, name)
	}
}

func samplesToMS(n int64) int64 { return n * 1000 / SampleRate }
