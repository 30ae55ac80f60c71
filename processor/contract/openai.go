package contract

import (
	"errors"
	"strings"
)

// DefaultOpenAIBaseURL is where OpenAI clients go when EnvOpenAIBaseURL is
// unset.
const DefaultOpenAIBaseURL = "https://api.openai.com"

// OpenAIBaseURL is the one reading of EnvOpenAIBaseURL (any
// OpenAI-compatible server): the API root without a trailing "/" or "/v1",
// so that clients append "/v1/…"; "" gives DefaultOpenAIBaseURL.
func OpenAIBaseURL(v string) string {
	b := strings.TrimSuffix(strings.TrimRight(strings.TrimSpace(v), "/"), "/v1")
	if b == "" {
		return DefaultOpenAIBaseURL
	}
	return b
}

// ErrMissingOpenAIKey is CheckOpenAIKey's answer when a key is needed.
var ErrMissingOpenAIKey = errors.New("OPENAI_API_KEY is not set")

// CheckOpenAIKey is the one rule for "needs an OpenAI key", for every part
// that talks to an OpenAI-compatible API (speech engines, interviewers,
// voices, evaluators): it needs EnvOpenAIKey, unless EnvOpenAIBaseURL names
// another server, which may take none (a local whisper.cpp, speaches or
// LocalAI). It returns ErrMissingOpenAIKey or nil.
func CheckOpenAIKey(key, baseURL string) error {
	if strings.TrimSpace(key) == "" && strings.TrimSpace(baseURL) == "" {
		return ErrMissingOpenAIKey
	}
	return nil
}
