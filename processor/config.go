// Package processor is the per-interview worker run by `candor --role=processor`:
// it ingests the candidate's audio (WHIP, WebSocket PCM, or the seed's
// /process-audio chunks), transcribes it on the interview's media clock, runs the
// interviewer, and delivers every entry to the control plane's bridge through a
// local spool so that nothing is lost or duplicated across outages.
//
// A processor starts in one of two modes:
//   - interview mode: SESSION_ID is set; it serves the interview at once.
//   - idle mode (local warm pool): no SESSION_ID but a CANDOR_POOL_TOKEN; it serves
//     /healthz and POST /claim, and takes the identity it is given there.
package processor

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"candor/processor/contract"
	"candor/processor/contract/egress"
	"candor/processor/media"
	"candor/processor/stt"
	"candor/processor/tts"
)

// Config is everything a processor needs. ConfigFromEnv builds it from the
// environment; tests may adjust the Timing and Listener fields afterwards.
type Config struct {
	// Identity of the interview (empty in idle mode).
	SessionID   string // SESSION_ID: the interview id
	TenantID    string // TENANT_ID
	CandidateID string // CANDIDATE_ID
	PositionID  string // POSITION_ID

	ControlURL     string // CANDOR_CONTROL_URL: base URL of the control plane (bridge API)
	ProcessorToken string // CANDOR_PROCESSOR_TOKEN: bridge credential (also opens the processor's API, for the control plane)
	ClientToken    string // CANDOR_CLIENT_TOKEN: the interview's client token (default: ProcessorToken)
	PoolToken      string // CANDOR_POOL_TOKEN: credential for POST /claim in idle mode

	Addr     string // CANDOR_ADDR, else ":"+PORT (PORT defaults to 8080)
	DataDir  string // CANDOR_DATA (default ./data): spool and recording live here
	PlanFile string // CANDOR_PLAN_FILE: the interview plan (JSON, see Plan); "" = built-in plan

	STT           string // CANDOR_STT: pocketsphinx (default) | openai | openai-realtime
	Interviewer   string // CANDOR_INTERVIEWER: scripted (default) | openai-realtime
	TTS           string // CANDOR_TTS: espeak (default, offline) | openai
	OpenAIKey     string // OPENAI_API_KEY
	OpenAIBaseURL string // OPENAI_BASE_URL
	// PublicTargetsOnly (contract.EnvPublicTargetsOnly): the base URL is a
	// tenant's, so provider connections go to public addresses only,
	// checked at connect time.
	PublicTargetsOnly bool

	// The openai-realtime interviewer: CANDOR_REALTIME_MODEL (default
	// gpt-realtime), CANDOR_REALTIME_VOICE (default alloy) and
	// CANDOR_REALTIME_SESSION_MAX, the age at which its Realtime session is
	// rolled over to a new one (a Go duration, default 55m; the service caps
	// sessions at 60 minutes).
	RealtimeModel      string
	RealtimeVoice      string
	RealtimeSessionMax time.Duration

	// WebRTC configures WHIP ingest, from CANDOR_ICE_SERVERS,
	// CANDOR_WEBRTC_UDP_PORT, CANDOR_WEBRTC_TCP_PORT and CANDOR_PUBLIC_IPS
	// (see parseWebRTC). The zero value suits a processor the browser
	// reaches directly.
	WebRTC media.WebRTCConfig

	// RecordingSegment and RecordingSegmentBytes bound one part of the
	// recording, uploaded as soon as it is complete so a crash loses at most
	// one part (CANDOR_RECORDING_SEGMENT, default 60s;
	// CANDOR_RECORDING_SEGMENT_MB, default 16).
	RecordingSegment      time.Duration
	RecordingSegmentBytes int64

	// EndAfterSilence is how long after the closing line the candidate
	// may stay silent before the interview is ended for them
	// (contract.EnvEndAfterSilence; 0 = never).
	EndAfterSilence time.Duration

	// Listener, when non-nil, is served instead of listening on Addr (tests).
	Listener net.Listener

	Timing Timing

	// env is the environment the config was built from; a claim overlays it.
	env map[string]string
}

// Timing holds the processor's clocks and limits. Defaults suit production;
// tests shorten them.
type Timing struct {
	Heartbeat       time.Duration // interval of heartbeat events (1 s)
	AnswerPause     time.Duration // silence after a candidate result that ends an answer (1.75 s)
	ReassemblyGap   time.Duration // how long /process-audio waits for a missing chunk (2 s)
	RetryMin        time.Duration // first backoff of bridge retries (250 ms)
	RetryMax        time.Duration // backoff cap (10 s)
	EndTimeout      time.Duration // bound of /end: flush, drain, upload (60 s)
	StartTimeout    time.Duration // how long to wait for the bridge's state at start (2 min)
	ShutdownTimeout time.Duration // bound of the best-effort drain when stopped without /end (10 s)
}

// DefaultTiming returns the production timing.
func DefaultTiming() Timing {
	return Timing{
		Heartbeat:       time.Second,
		AnswerPause:     1750 * time.Millisecond,
		ReassemblyGap:   2 * time.Second,
		RetryMin:        250 * time.Millisecond,
		RetryMax:        10 * time.Second,
		EndTimeout:      60 * time.Second,
		StartTimeout:    2 * time.Minute,
		ShutdownTimeout: 10 * time.Second,
	}
}

// Idle reports whether the config describes an unclaimed warm-pool processor.
func (c Config) Idle() bool { return c.SessionID == "" }

// ConfigFromEnv reads the processor's settings. A bad or missing setting is an
// error that names the setting and the fix.
func ConfigFromEnv(env map[string]string) (Config, error) {
	get := func(k string) string { return strings.TrimSpace(env[k]) }
	cfg := Config{
		SessionID:         get(contract.EnvSessionID),
		TenantID:          get(contract.EnvTenantID),
		CandidateID:       get(contract.EnvCandidateID),
		PositionID:        get(contract.EnvPositionID),
		ControlURL:        strings.TrimRight(get(contract.EnvControlURL), "/"),
		ProcessorToken:    get(contract.EnvProcessorToken),
		ClientToken:       get(contract.EnvClientToken),
		PoolToken:         get(contract.EnvPoolToken),
		DataDir:           get(contract.EnvData),
		PlanFile:          get(contract.EnvPlanFile),
		STT:               get(contract.EnvSTT),
		Interviewer:       get(contract.EnvInterviewer),
		TTS:               get(contract.EnvTTS),
		OpenAIKey:         get(contract.EnvOpenAIKey),
		OpenAIBaseURL:     strings.TrimRight(get(contract.EnvOpenAIBaseURL), "/"),
		PublicTargetsOnly: get(contract.EnvPublicTargetsOnly) == "true",
		Timing:            DefaultTiming(),
		env:               copyEnv(env),
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "./data"
	}
	if cfg.Interviewer == "" {
		cfg.Interviewer = DefaultInterviewer
	}
	ivSpec, ok := LookupInterviewer(cfg.Interviewer)
	if !ok {
		return Config{}, fmt.Errorf("CANDOR_INTERVIEWER=%q is not available in this processor: set it to one of %s", cfg.Interviewer, interviewerList())
	}
	if cfg.STT == "" {
		cfg.STT = cmp.Or(ivSpec.STT, stt.DefaultEngine)
	}
	if cfg.TTS == "" {
		cfg.TTS = tts.DefaultVoice
	}
	cfg.EndAfterSilence = contract.DefaultEndAfterSilence
	if v := get(contract.EnvEndAfterSilence); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return Config{}, fmt.Errorf("%s=%q is not a duration: set it like 2m (0 turns the automatic end off)", contract.EnvEndAfterSilence, v)
		}
		cfg.EndAfterSilence = d
	}

	addr, err := listenAddr(get(contract.EnvAddr), get(contract.EnvPort))
	if err != nil {
		return Config{}, err
	}
	cfg.Addr = addr

	sttSpec, ok := stt.Lookup(cfg.STT)
	if !ok {
		return Config{}, fmt.Errorf("CANDOR_STT=%q is not an engine: set it to one of %s", cfg.STT, strings.Join(stt.EngineNames(), ", "))
	}
	voiceSpec, ok := tts.Lookup(cfg.TTS)
	if !ok {
		return Config{}, fmt.Errorf("CANDOR_TTS=%q is not a voice: set it to one of %s", cfg.TTS, strings.Join(tts.VoiceNames(), ", "))
	}
	if cfg.OpenAIBaseURL != "" {
		if err := checkURL(cfg.OpenAIBaseURL); err != nil {
			return Config{}, fmt.Errorf("OPENAI_BASE_URL %w", err)
		}
	}
	// One rule (contract.CheckOpenAIKey) for every part that needs a key.
	for _, part := range []struct {
		setting, name, offline string
		openAI                 bool
	}{
		{contract.EnvSTT, cfg.STT, stt.DefaultEngine, sttSpec.OpenAI},
		{contract.EnvInterviewer, cfg.Interviewer, DefaultInterviewer, ivSpec.OpenAI},
		{contract.EnvTTS, cfg.TTS, tts.DefaultVoice, voiceSpec.OpenAI},
	} {
		if part.openAI && contract.CheckOpenAIKey(cfg.OpenAIKey, cfg.OpenAIBaseURL) != nil {
			return Config{}, fmt.Errorf("OPENAI_API_KEY is not set but %s=%s needs it: set OPENAI_API_KEY (the tenant's secret, or OPENAI_BASE_URL for a local OpenAI-compatible server), or use %s=%s",
				part.setting, part.name, part.setting, part.offline)
		}
	}
	if slices.Contains(ivSpec.Settings, contract.EnvRealtimeSessionMax) {
		cfg.RealtimeModel = get(contract.EnvRealtimeModel)
		cfg.RealtimeVoice = get(contract.EnvRealtimeVoice)
		cfg.RealtimeSessionMax = defaultRealtimeSessionMax
		if v := get(contract.EnvRealtimeSessionMax); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 || d >= 60*time.Minute {
				return Config{}, fmt.Errorf("CANDOR_REALTIME_SESSION_MAX=%q is not a duration under the service's 60-minute cap: set it like 55m", v)
			}
			cfg.RealtimeSessionMax = d
		}
	}
	if cfg.WebRTC, err = parseWebRTC(get); err != nil {
		return Config{}, err
	}
	if cfg.RecordingSegment, cfg.RecordingSegmentBytes, err = parseRecordingSegment(get); err != nil {
		return Config{}, err
	}

	if cfg.SessionID == "" {
		if cfg.PoolToken == "" {
			return Config{}, errors.New("SESSION_ID is not set: give the processor the interview id in SESSION_ID, or a CANDOR_POOL_TOKEN to start it idle in the warm pool")
		}
		return cfg, nil
	}
	if cfg.ControlURL == "" {
		return Config{}, errors.New("CANDOR_CONTROL_URL is not set: set it to the control plane's public URL (its --public-url)")
	}
	if err := checkURL(cfg.ControlURL); err != nil {
		return Config{}, fmt.Errorf("CANDOR_CONTROL_URL %w", err)
	}
	if cfg.ProcessorToken == "" {
		return Config{}, errors.New("CANDOR_PROCESSOR_TOKEN is not set: set it to the interview's processor token issued by the control plane")
	}
	if cfg.ClientToken == "" {
		// A processor started by hand (or an older control plane): its
		// clients use the one token it has.
		cfg.ClientToken = cfg.ProcessorToken
	}
	return cfg, nil
}

// withClaim returns the config of an idle processor after POST /claim: the
// claim's env overlays the spawn env; the listener and timing carry over.
func (c Config) withClaim(env map[string]string) (Config, error) {
	merged := copyEnv(c.env)
	for k, v := range env {
		merged[k] = v
	}
	// The processor keeps listening where it was spawned.
	merged[contract.EnvAddr] = c.Addr
	delete(merged, contract.EnvPort)
	next, err := ConfigFromEnv(merged)
	if err != nil {
		return Config{}, err
	}
	if next.Idle() {
		return Config{}, errors.New("SESSION_ID is not set in the claim's env: the claim must name the interview")
	}
	next.Listener = c.Listener
	next.Timing = c.Timing
	next.WebRTC = c.WebRTC
	return next, nil
}

// Defaults of the recording's part size.
const (
	DefaultRecordingSegment   = 60 * time.Second
	DefaultRecordingSegmentMB = 16
)

func parseRecordingSegment(get func(string) string) (time.Duration, int64, error) {
	d, mb := DefaultRecordingSegment, int64(DefaultRecordingSegmentMB)
	if v := get(contract.EnvRecordingSegment); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d < 100*time.Millisecond {
			return 0, 0, fmt.Errorf("%s=%q is not a duration of at least 100ms: set it like 60s", contract.EnvRecordingSegment, v)
		}
	}
	if v := get(contract.EnvRecordingSegmentMB); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > 4000 {
			return 0, 0, fmt.Errorf("%s=%q is not a number of megabytes from 1 to 4000: set it like 16", contract.EnvRecordingSegmentMB, v)
		}
		mb = n
	}
	return d, mb << 20, nil
}

func listenAddr(addr, port string) (string, error) {
	if addr != "" {
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			return "", fmt.Errorf("CANDOR_ADDR=%q is not host:port: set it like 127.0.0.1:8081", addr)
		}
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return "", fmt.Errorf("CANDOR_ADDR=%q needs a fixed port between 1 and 65535 (the launcher must know where to reach the processor)", addr)
		}
		return addr, nil
	}
	if port == "" {
		port = "8080"
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return "", fmt.Errorf("PORT=%q is not a port: set it to a number between 1 and 65535", port)
	}
	return ":" + port, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL is not quoted: it may carry credentials.
		return errors.New(" is not an absolute http(s) URL: set it like https://candor.example.com")
	}
	return nil
}

func copyEnv(env map[string]string) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = v
	}
	return out
}

// openAIHTTPClient is an HTTP client for the configured OpenAI-compatible
// server: limited to public addresses when the base URL is a tenant's.
func openAIHTTPClient(cfg Config, timeout time.Duration) *http.Client {
	c := &http.Client{Timeout: timeout}
	if cfg.PublicTargetsOnly {
		c.Transport = egress.Transport()
	}
	return c
}
