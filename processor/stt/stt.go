// Package stt turns 16 kHz mono speech into timed transcript results.
//
// Engines sit behind one small interface and register themselves (Register)
// from their own file: "pocketsphinx" runs Debian's pocketsphinx_continuous
// offline (the default), "openai" posts utterances cut by the energy
// segmenter to an OpenAI-compatible /v1/audio/transcriptions, and
// "openai-realtime" streams to the Realtime API's transcription sessions.
// Adding an engine is one file here (with its init calling Register) and its
// test; configuration, the warm pool and eval-stt read the registry.
// Every engine reports times on the stream clock: milliseconds since the
// stream's first sample plus the stream's base offset, so a replacement
// processor that resumes at media_ms keeps one timeline.
package stt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"candor/processor/contract"
	"candor/processor/contract/egress"
	"candor/processor/internal/registry"
	"candor/processor/openai"
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

// openAIClient is the client of the "openai" engine: up to MaxRetries
// retries (default 4) from RetryBase (default 500 ms) doubling to 8 s,
// RequestTimeout per attempt (default 60 s).
func (c Config) openAIClient() *openai.Client {
	hc := &http.Client{}
	if c.PublicTargetsOnly {
		hc.Transport = egress.Transport()
	}
	return &openai.Client{
		Key: c.OpenAIKey, BaseURL: c.OpenAIBaseURL, HTTP: hc,
		Retries: c.MaxRetries, Backoff: contract.Backoff{Min: c.RetryBase, Max: 8 * time.Second},
		RequestTimeout: c.RequestTimeout,
	}
}

// EngineSpec is a speech engine as it registers itself (see Register):
// everything the processor's and the control plane's configuration, the
// warm pool and eval-stt need to know about it.
type EngineSpec struct {
	Name string
	// OpenAI says the engine talks to an OpenAI-compatible API, so it runs
	// only where contract.CheckOpenAIKey passes.
	OpenAI bool
	// Prestart says an idle warm-pool processor may start a stream before
	// its claim: the engine needs nothing that comes with the claim (such
	// as the tenant's key).
	Prestart bool
	// Settings are the environment settings the engine reads.
	Settings []string
	New      func(Config) (Engine, error)
}

// DefaultEngine is the engine of a processor that names none.
const DefaultEngine = "pocketsphinx"

var engines = registry.New[EngineSpec]("speech engine", DefaultEngine)

// Register adds an engine; each engine's file registers itself from init.
func Register(spec EngineSpec) {
	if spec.New == nil {
		panic("stt: engine " + spec.Name + " registered without New")
	}
	engines.Register(spec.Name, spec)
}

// Lookup returns the engine registered as name ("" is DefaultEngine).
func Lookup(name string) (EngineSpec, bool) { return engines.Lookup(name) }

// EngineNames lists the registered engines, the default first.
func EngineNames() []string { return engines.Names() }

// New returns the engine called name ("" is DefaultEngine).
func New(name string, cfg Config) (Engine, error) {
	spec, ok := Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w %q: choose %s", ErrUnknownEngine, name, strings.Join(EngineNames(), ", "))
	}
	if spec.OpenAI && contract.CheckOpenAIKey(cfg.OpenAIKey, cfg.OpenAIBaseURL) != nil {
		return nil, fmt.Errorf("speech engine %q: %w (set OPENAI_API_KEY, or OPENAI_BASE_URL for a local OpenAI-compatible server)", spec.Name, ErrMissingAPIKey)
	}
	return spec.New(cfg)
}

func samplesToMS(n int64) int64 { return n * 1000 / SampleRate }
