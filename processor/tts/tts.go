// Package tts gives the interviewer a voice: text in, 16 kHz mono s16 PCM
// out (the format the candidate page plays and the recorder mixes).
// NewEspeak works offline through espeak-ng; NewOpenAI uses an
// OpenAI-compatible /v1/audio/speech.
package tts

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"candor/processor/contract"
	"candor/processor/media"
	"candor/processor/openai"
	"candor/processor/stt"
)

// SampleRate of the PCM every Voice returns.
const SampleRate = stt.SampleRate

// Voice speaks text as 16 kHz mono signed 16-bit PCM.
type Voice interface {
	Speak(ctx context.Context, text string) ([]int16, error)
}

// ErrEmptyText is returned for text with nothing to say.
var ErrEmptyText = errors.New("nothing to speak")

// Espeak runs espeak-ng once per utterance.
type Espeak struct {
	Path  string // default: espeak-ng from PATH
	Voice string // espeak-ng -v, default "en-us"
	Speed int    // words per minute (-s), default 165
}

var _ Voice = (*Espeak)(nil)

// NewEspeak returns the offline voice.
func NewEspeak() *Espeak { return &Espeak{Voice: "en-us", Speed: 165} }

// Speak synthesises text with espeak-ng --stdout (22050 Hz WAV) and
// resamples it to 16 kHz.
func (e *Espeak) Speak(ctx context.Context, text string) ([]int16, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, ErrEmptyText
	}
	path := e.Path
	if path == "" {
		path = "espeak-ng"
	}
	args := []string{"--stdout"}
	if e.Voice != "" {
		args = append(args, "-v", e.Voice)
	}
	if e.Speed > 0 {
		args = append(args, "-s", strconv.Itoa(e.Speed))
	}
	// Text goes on stdin, never the command line: it may start with "-".
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(text)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("espeak-ng: %w (%s)", err, strings.TrimSpace(stderr.String()))
	}
	pcm, _, _, err := media.DecodeWAV(out)
	if err != nil {
		return nil, fmt.Errorf("espeak-ng output: %w", err)
	}
	return pcm, nil
}

// OpenAIConfig configures NewOpenAI; zero values select defaults.
type OpenAIConfig struct {
	APIKey  string
	BaseURL string // default https://api.openai.com; "/v1" suffix accepted
	Model   string // default gpt-4o-mini-tts
	Voice   string // default alloy
	// Instructions steer tone for models that accept them (gpt-4o-mini-tts).
	Instructions string
	MaxRetries   int           // on 429/5xx/network errors, default 3
	RetryBase    time.Duration // first backoff, default 500ms (Retry-After wins)
	Client       *http.Client  // each attempt is bounded by 60 s regardless
}

// OpenAI speaks through POST {base}/v1/audio/speech with response_format
// pcm (24 kHz mono s16le), resampled to 16 kHz.
type OpenAI struct {
	cfg    OpenAIConfig
	client *openai.Client
}

var _ Voice = (*OpenAI)(nil)

// NewOpenAI returns the online voice.
func NewOpenAI(cfg OpenAIConfig) *OpenAI {
	if cfg.Model == "" {
		cfg.Model = "gpt-4o-mini-tts"
	}
	if cfg.Voice == "" {
		cfg.Voice = "alloy"
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = 3
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	return &OpenAI{cfg: cfg, client: &openai.Client{
		Key: cfg.APIKey, BaseURL: cfg.BaseURL, HTTP: cfg.Client, Retries: cfg.MaxRetries,
		Backoff: contract.Backoff{Min: cfg.RetryBase, Max: 8 * time.Second},
	}}
}

const openAIRate = 24000

// Speak returns text spoken by the configured voice.
func (o *OpenAI) Speak(ctx context.Context, text string) ([]int16, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, ErrEmptyText
	}
	body := map[string]any{"model": o.cfg.Model, "input": text, "voice": o.cfg.Voice, "response_format": "pcm"}
	if o.cfg.Instructions != "" {
		body["instructions"] = o.cfg.Instructions
	}
	resp, err := o.client.PostJSON(ctx, "/v1/audio/speech", body)
	if err != nil {
		return nil, fmt.Errorf("openai speech: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("openai speech: read audio: %w", err)
	}
	pcm := make([]int16, len(raw)/2)
	binary.Decode(raw[:2*len(pcm)], binary.LittleEndian, pcm)
	return media.Resample(pcm, openAIRate, SampleRate), nil
}
