package processor

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"candor/processor/contract/egress"
)

// A tenant's base URL is checked again when the processor connects: with
// CANDOR_PUBLIC_TARGETS_ONLY its provider clients never reach a private
// address, even one the name resolved to after the save (issue 9, hole 1).
func TestATenantBaseURLIsDialedOnlyWhenPublic(t *testing.T) {
	reached := make(chan string, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached <- r.Header.Get("Authorization")
		w.WriteHeader(500)
	}))
	defer srv.Close()
	cfg, err := ConfigFromEnv(map[string]string{
		"SESSION_ID": "iv_1", "CANDOR_CONTROL_URL": "http://127.0.0.1:8080", "CANDOR_PROCESSOR_TOKEN": "t",
		"OPENAI_API_KEY": "sk-operator", "OPENAI_BASE_URL": srv.URL, "CANDOR_PUBLIC_TARGETS_ONLY": "true",
		"CANDOR_STT": "openai", "CANDOR_TTS": "openai",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.PublicTargetsOnly {
		t.Fatal("CANDOR_PUBLIC_TARGETS_ONLY=true did not set PublicTargetsOnly")
	}
	_, err = openAIHTTPClient(cfg, 5*time.Second).Get(srv.URL + "/v1/models")
	if !errors.Is(err, egress.ErrPrivateTarget) {
		t.Errorf("the TTS client reached a private target: err %v", err)
	}
	select {
	case auth := <-reached:
		t.Errorf("a request reached the private server (Authorization %q)", auth)
	default:
	}
}
