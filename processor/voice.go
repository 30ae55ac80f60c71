package processor

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	"candor/processor/tts"

	"candor/processor/contract"
)

// Voice synthesizes the interviewer's speech as 16 kHz mono s16 PCM
// (processor/tts implements it).
type Voice interface {
	Speak(ctx context.Context, text string) ([]int16, error)
}

var _ Voice = tts.Voice(nil)

// newVoice returns the interviewer's voice: OpenAI speech when CANDOR_TTS=openai,
// otherwise espeak-ng with the plan's voice hint.
func newVoice(cfg Config, plan contract.Plan) (Voice, error) {
	if cfg.TTS == "openai" {
		return tts.NewOpenAI(tts.OpenAIConfig{APIKey: cfg.OpenAIKey, BaseURL: cfg.OpenAIBaseURL, Client: openAIHTTPClient(cfg, 60*time.Second)}), nil
	}
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		return nil, fmt.Errorf("espeak-ng: %w (install Debian's espeak-ng)", err)
	}
	v := tts.NewEspeak()
	if plan.Interviewer.Voice != "" {
		v.Voice = plan.Interviewer.Voice
	}
	return v, nil
}
