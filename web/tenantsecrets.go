package web

import (
	"context"
	"fmt"
	"strings"

	"candor/processor/contract"
	"candor/processor/contract/egress"
)

// The tenant-secret rules (README "Tenant secrets"): only the names in
// contract.TenantSecretNames; a tenant base URL only with the tenant's own
// key, https, and never a private target unless the operator allows them.
// They are checked here at save, and by the lifecycle again at launch
// (lifecycle/tenantenv.go).

// checkTenantSecret validates a secret a tenant saves; the error is for
// the tenant's eyes and never quotes value.
func (s *Server) checkTenantSecret(ctx context.Context, name, value string) error {
	if !contract.TenantSecretAllowed(name) {
		return fmt.Errorf("%s is not a secret a tenant may set; allowed: %s", name, strings.Join(contract.TenantSecretNames, ", "))
	}
	if name == contract.EnvOpenAIBaseURL || name == contract.EnvEvalBaseURL {
		if err := egress.CheckURL(ctx, value, s.cfg.AllowPrivateTargets); err != nil {
			return fmt.Errorf("%s %v", name, err)
		}
	}
	return nil
}
