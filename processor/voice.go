package processor

import (
	"context"
	"time"

	"candor/processor/contract"
	"candor/processor/tts"
)

// Voice synthesizes the interviewer's speech as 16 kHz mono s16 PCM
// (processor/tts implements it).
type Voice interface {
	Speak(ctx context.Context, text string) ([]int16, error)
}

var _ Voice = tts.Voice(nil)

// newVoice returns the interviewer's voice registered as CANDOR_TTS, with
// the plan's voice hint.
func newVoice(cfg Config, plan contract.Plan) (Voice, error) {
	return tts.New(cfg.TTS, tts.VoiceConfig{OpenAIKey: cfg.OpenAIKey, OpenAIBaseURL: cfg.OpenAIBaseURL, HTTP: openAIHTTPClient(cfg, 60*time.Second), Hint: plan.Interviewer.Voice})
}
