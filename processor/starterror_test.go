package processor

import (
	"context"
	"strings"
	"testing"
)

func TestAProcessorThatCannotStartTellsTheControlPlaneWhy(t *testing.T) {
	control := newFakeControl(t, "iv_bad", "proc-token")
	env := interviewEnv(control, t.TempDir())
	env["CANDOR_STT"] = "openai" // without OPENAI_API_KEY
	_, err := ConfigFromEnv(env)
	if err == nil {
		t.Fatal("a config without the OpenAI key was accepted")
	}
	ReportStartError(context.Background(), env, err)
	control.mu.Lock()
	defer control.mu.Unlock()
	if len(control.events) != 1 || control.events[0].Type != "error" ||
		!strings.HasPrefix(control.events[0].Message, "processor configuration: ") || !strings.Contains(control.events[0].Message, "OPENAI_API_KEY") {
		t.Errorf("events %+v, want one error naming the missing setting", control.events)
	}
}
