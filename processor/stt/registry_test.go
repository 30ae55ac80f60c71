package stt_test

import (
	"errors"
	"slices"
	"testing"

	"candor/processor/stt"
)

func TestEveryEngineIsRegisteredOnceWithTheDefaultFirst(t *testing.T) {
	names := stt.EngineNames()
	if len(names) == 0 || names[0] != stt.DefaultEngine {
		t.Fatalf("engines %q, want %s first", names, stt.DefaultEngine)
	}
	for _, want := range []string{"pocketsphinx", "openai", "openai-realtime"} {
		if !slices.Contains(names, want) {
			t.Errorf("engines %q lack %s", names, want)
		}
	}
	if spec, _ := stt.Lookup(""); spec.Name != stt.DefaultEngine || !spec.Prestart || spec.OpenAI {
		t.Errorf("the default engine = %+v, want an offline one the warm pool pre-starts", spec)
	}
	if spec, _ := stt.Lookup("openai"); !spec.OpenAI || spec.Prestart {
		t.Errorf("openai = %+v, want one that needs a key and waits for the claim", spec)
	}
}

func TestNewAppliesTheOneOpenAIKeyRule(t *testing.T) {
	if _, err := stt.New("openai", stt.Config{}); !errors.Is(err, stt.ErrMissingAPIKey) {
		t.Errorf("openai without key or base URL: %v, want ErrMissingAPIKey", err)
	}
	if _, err := stt.New("openai", stt.Config{OpenAIBaseURL: "http://127.0.0.1:9"}); err != nil {
		t.Errorf("openai at a local OpenAI-compatible server without a key: %v", err)
	}
	if _, err := stt.New("whisper-on-mars", stt.Config{}); !errors.Is(err, stt.ErrUnknownEngine) {
		t.Errorf("an unregistered engine: %v, want ErrUnknownEngine", err)
	}
}
