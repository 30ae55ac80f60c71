package processor

import (
	"fmt"
	"os"

	"candor/processor/contract"
)

// LoadPlan reads the interview plan file (contract.Plan, named by
// CANDOR_PLAN_FILE); path "" gives the default plan.
func LoadPlan(path string) (contract.Plan, error) {
	if path == "" {
		return contract.Plan{}.WithDefaults(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return contract.Plan{}, fmt.Errorf("read plan CANDOR_PLAN_FILE=%s: %w", path, err)
	}
	return contract.ParsePlan(b)
}
