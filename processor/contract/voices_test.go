package contract

import (
	"slices"
	"testing"
)

// tts.FliteVoices is EngineVoices("flite"): a voice added to PlanVoices is
// one flite accepts, and the default plan voice is flite's default.
func TestEngineVoicesAreThePlanVoicesOfThatEngineInOrder(t *testing.T) {
	if got := EngineVoices("flite"); !slices.Equal(got, []string{"slt", "rms", "awb"}) {
		t.Errorf("flite voices %v", got)
	}
	if got := EngineVoices("espeak"); !slices.Equal(got, []string{"en-us"}) {
		t.Errorf("espeak voices %v", got)
	}
	if e, v := SplitPlanVoice(PlanVoices[0].ID); e != "flite" || v != EngineVoices("flite")[0] {
		t.Errorf("the default plan voice %q is not flite's first voice", PlanVoices[0].ID)
	}
	if got := EngineVoices("festival"); got != nil {
		t.Errorf("an engine without plan voices has %v", got)
	}
}
