package web

import (
	"candor/processor/contract"
)

func voiceIDs() []string {
	ids := make([]string, len(contract.PlanVoices))
	for i, v := range contract.PlanVoices {
		ids[i] = v.ID
	}
	return ids
}

func validVoice(id string) bool { return contract.ValidPlanVoice(id) }
