package lifecycle

import (
	"context"
	"fmt"

	"candor/processor/contract"
	"candor/processor/contract/egress"
)

// errTenantConfig is a tenant's provider configuration that cannot be used.
// Its message is shown to the tenant and logged: it never quotes a value.
type errTenantConfig struct{ msg string }

func (e *errTenantConfig) Error() string { return e.msg }

// tenantProcessorEnv is what a tenant's secrets contribute to its
// processors, checked again at launch (the rules or DNS may have changed
// since the save): the allowed names only, a base URL only with the
// tenant's own key, and the processor told to dial public addresses only
// when the base URL is the tenant's. platform holds variables the caller
// applies after the secrets.
func (s *Service) tenantProcessorEnv(ctx context.Context, tenantID string) (secrets, platform map[string]string, err error) {
	all, err := s.db.Secrets(ctx, tenantID)
	if err != nil {
		return nil, nil, fmt.Errorf("tenant secrets: %w", err)
	}
	secrets = contract.TenantSecrets(all)
	platform = map[string]string{}
	if base, ok := secrets[contract.EnvOpenAIBaseURL]; ok {
		if secrets[contract.EnvOpenAIKey] == "" {
			return nil, nil, &errTenantConfig{"the organization's OPENAI_BASE_URL secret needs its own OPENAI_API_KEY secret as well: an owner sets it in Settings"}
		}
		if err := egress.CheckURL(ctx, base, s.cfg.AllowPrivateTargets); err != nil {
			return nil, nil, &errTenantConfig{fmt.Sprintf("the organization's OPENAI_BASE_URL secret %v: an owner fixes it in Settings", err)}
		}
		if !s.cfg.AllowPrivateTargets {
			platform[contract.EnvPublicTargetsOnly] = "true"
		}
	}
	return secrets, platform, nil
}
