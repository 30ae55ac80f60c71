package tts

import (
	"fmt"
	"net/http"
	"strings"

	"candor/processor/contract"
	"candor/processor/internal/registry"
)

// VoiceSpec is a voice as it registers itself (see Register): what the
// processor's configuration and its warm pool need to know about it.
type VoiceSpec struct {
	Name string
	// OpenAI says the voice talks to an OpenAI-compatible API, so it runs
	// only where contract.CheckOpenAIKey passes.
	OpenAI bool
	// Prestart says an idle warm-pool processor speaks once before its
	// claim, to load a local synthesizer and its data into memory.
	Prestart bool
	// Settings are the environment settings the voice reads.
	Settings []string
	New      func(VoiceConfig) (Voice, error)
}

// VoiceConfig is what a voice is built from.
type VoiceConfig struct {
	OpenAIKey, OpenAIBaseURL string
	HTTP                     *http.Client // for voices behind the network; nil is a default client
	// Hint is the plan's voice (contract.PlanInterviewer.Voice); "" is the
	// voice's default.
	Hint string
}

// DefaultVoice is the voice of a processor that names none: flite, the most
// intelligible offline voice (see FliteVoices).
const DefaultVoice = "flite"

var voices = registry.New[VoiceSpec]("voice", DefaultVoice)

// Register adds a voice; each registers itself from init.
func Register(spec VoiceSpec) {
	if spec.New == nil {
		panic("tts: voice " + spec.Name + " registered without New")
	}
	voices.Register(spec.Name, spec)
}

// Lookup returns the voice registered as name ("" is DefaultVoice).
func Lookup(name string) (VoiceSpec, bool) { return voices.Lookup(name) }

// VoiceNames lists the registered voices, the default first.
func VoiceNames() []string { return voices.Names() }

// New returns the voice called name ("" is DefaultVoice).
func New(name string, cfg VoiceConfig) (Voice, error) {
	spec, ok := Lookup(name)
	if !ok {
		return nil, fmt.Errorf("unknown voice %q: choose %s", name, strings.Join(VoiceNames(), ", "))
	}
	if spec.OpenAI && contract.CheckOpenAIKey(cfg.OpenAIKey, cfg.OpenAIBaseURL) != nil {
		return nil, fmt.Errorf("voice %q: %w (set OPENAI_API_KEY, or OPENAI_BASE_URL for a local OpenAI-compatible server)", spec.Name, contract.ErrMissingOpenAIKey)
	}
	return spec.New(cfg)
}

func init() {
	Register(VoiceSpec{
		Name: "espeak", Prestart: true,
		New: func(cfg VoiceConfig) (Voice, error) {
			return offlineVoice(cfg.Hint, "espeak")
		},
	})
	Register(VoiceSpec{
		Name: "openai", OpenAI: true,
		Settings: []string{contract.EnvOpenAIKey, contract.EnvOpenAIBaseURL},
		New: func(cfg VoiceConfig) (Voice, error) {
			return NewOpenAI(OpenAIConfig{APIKey: cfg.OpenAIKey, BaseURL: cfg.OpenAIBaseURL, Client: cfg.HTTP}), nil
		},
	})
}
