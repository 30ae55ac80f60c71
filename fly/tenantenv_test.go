package fly

import "testing"

// A tenant secret never overrides a platform variable or the interview's
// identity, whatever the store holds (issue 9, hole 1).
func TestProcessorEnvKeepsOnlyAllowedTenantSecrets(t *testing.T) {
	env := processorEnv(Spec{
		InterviewID: "int_1", TenantID: "ten_1",
		Env: map[string]string{"CANDOR_CONTROL_URL": "https://control", "CANDOR_PROCESSOR_TOKEN": "tok", "CANDOR_REALTIME_MODEL": "operator-model"},
		Secrets: map[string]string{
			"OPENAI_API_KEY": "sk-tenant", "CANDOR_REALTIME_MODEL": "tenant-model",
			"CANDOR_CONTROL_URL": "https://attacker", "CANDOR_PROCESSOR_TOKEN": "x", "LD_PRELOAD": "/tmp/evil.so",
			"PATH": "/evil", "SESSION_ID": "int_other", "GODEBUG": "x",
		},
	})
	want := map[string]string{
		"CANDOR_CONTROL_URL": "https://control", "CANDOR_PROCESSOR_TOKEN": "tok",
		"OPENAI_API_KEY": "sk-tenant", "CANDOR_REALTIME_MODEL": "tenant-model", "SESSION_ID": "int_1", "TENANT_ID": "ten_1",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"LD_PRELOAD", "PATH", "GODEBUG"} {
		if _, ok := env[k]; ok {
			t.Errorf("tenant secret %s reached the processor env", k)
		}
	}
}
