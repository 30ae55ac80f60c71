package contract

import "slices"

// TenantSecretNames are the only names a tenant may save as a secret: the
// provider settings a tenant brings for its own interviews. A tenant secret
// reaches its processors' environment, so anything else (PATH, LD_PRELOAD,
// GODEBUG, CANDOR_CONTROL_URL, CANDOR_PROCESSOR_TOKEN, CANDOR_DATA …) would
// let a tenant reconfigure the platform. Identity and platform variables are
// applied after these and can never be overridden. README documents the
// list; add to it here only.
var TenantSecretNames = []string{
	EnvOpenAIKey,
	EnvOpenAIBaseURL,
	EnvRealtimeModel,
	EnvRealtimeVoice,
	EnvEvalModel,
	EnvEvalBaseURL,
}

// The scorecard evaluator's settings a tenant may bring (control plane
// only; processors ignore them).
const (
	EnvEvalModel   = "CANDOR_EVAL_MODEL"
	EnvEvalBaseURL = "CANDOR_EVAL_BASE_URL"
)

const (
	// EnvPublicTargetsOnly, set to "true" by the control plane when an
	// interview uses a tenant's OPENAI_BASE_URL and the operator has not
	// allowed private targets, makes the processor's provider clients
	// refuse to connect to loopback, private, link-local and metadata
	// addresses (checked at connect time: DNS can change after the save).
	EnvPublicTargetsOnly = "CANDOR_PUBLIC_TARGETS_ONLY"
)

// TenantSecretAllowed reports whether a tenant may set a secret named name.
func TenantSecretAllowed(name string) bool {
	return slices.Contains(TenantSecretNames, name)
}

// TenantSecrets returns the allowed subset of secrets: what a processor
// may receive from its tenant.
func TenantSecrets(secrets map[string]string) map[string]string {
	out := make(map[string]string, len(secrets))
	for k, v := range secrets {
		if TenantSecretAllowed(k) {
			out[k] = v
		}
	}
	return out
}
