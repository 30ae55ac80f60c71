package tts

import (
	"errors"
	"testing"

	"candor/processor/contract"
)

func TestVoicesRegisterWithWhatTheWarmPoolAndTheKeyRuleNeed(t *testing.T) {
	if names := VoiceNames(); len(names) < 2 || names[0] != DefaultVoice {
		t.Fatalf("voices %q, want %s first", names, DefaultVoice)
	}
	if spec, _ := Lookup(""); spec.Name != DefaultVoice || spec.OpenAI || !spec.Prestart {
		t.Errorf("default voice = %+v, want an offline one the warm pool pre-starts", spec)
	}
	if _, err := New("openai", VoiceConfig{}); !errors.Is(err, contract.ErrMissingOpenAIKey) {
		t.Errorf("openai voice without a key: %v, want ErrMissingOpenAIKey", err)
	}
	if _, err := New("openai", VoiceConfig{OpenAIBaseURL: "http://127.0.0.1:9"}); err != nil {
		t.Errorf("openai voice at a local server: %v", err)
	}
	if _, err := New("nope", VoiceConfig{}); err == nil {
		t.Error("an unregistered voice was built")
	}
}
