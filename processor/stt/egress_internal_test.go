package stt

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"candor/processor/contract/egress"
)

// With PublicTargetsOnly the OpenAI engine refuses a private base URL at
// connect time, and its key never leaves (issue 9, hole 1).
func TestOpenAIEngineDialsOnlyPublicTargets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the engine reached the private server with %q", r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	o := NewOpenAI(Config{OpenAIKey: "sk-operator", OpenAIBaseURL: srv.URL, PublicTargetsOnly: true, MaxRetries: 1})
	_, err := o.transcribe(context.Background(), make([]int16, 1600))
	if !errors.Is(err, egress.ErrPrivateTarget) {
		t.Errorf("transcribe: %v, want ErrPrivateTarget", err)
	}
	rt := NewRealtime(Config{OpenAIKey: "sk-operator", OpenAIBaseURL: srv.URL, PublicTargetsOnly: true})
	if rt.dialer.NetDialContext == nil {
		t.Error("the realtime engine's dialer has no egress check")
	}
}
