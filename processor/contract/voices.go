package contract

import "strings"

// PlanVoice is a voice a position may choose for its interviewer
// (PlanInterviewer.Voice): an offline synthesizer and its voice, named
// "<engine>-<voice>".
type PlanVoice struct {
	ID, Label string
}

// PlanVoices are the offline voices, the default (most natural) first. The
// order comes from pocketsphinx's word error rate on each voice's rendering
// of a question plan (processor/tts TestVoiceIntelligibility): flite slt
// 12.5 %, rms 13.5 %, awb 14.4 %, espeak-ng 72.1 %.
var PlanVoices = []PlanVoice{
	{"flite-slt", "Flite slt (US English, female)"},
	{"flite-rms", "Flite rms (US English, male)"},
	{"flite-awb", "Flite awb (Scottish English, male)"},
	{"espeak-en-us", "eSpeak NG (US English, robotic)"},
}

// ValidPlanVoice reports whether id is "" (the default) or one of PlanVoices.
func ValidPlanVoice(id string) bool {
	if id == "" {
		return true
	}
	for _, v := range PlanVoices {
		if v.ID == id {
			return true
		}
	}
	return false
}

// SplitPlanVoice splits a plan voice into its engine ("flite", "espeak")
// and the engine's own voice name; a bare name (an espeak-ng voice, as
// plans carried before) is espeak's.
func SplitPlanVoice(id string) (engine, voice string) {
	if e, v, ok := strings.Cut(id, "-"); ok && (e == "flite" || e == "espeak") {
		return e, v
	}
	if id == "" {
		return "", ""
	}
	return "espeak", id
}

// EngineVoices are the voice names PlanVoices offers for engine ("flite"),
// in PlanVoices' order: the synthesizer's list of voices it accepts, kept
// where the plan's list is.
func EngineVoices(engine string) []string {
	var out []string
	for _, v := range PlanVoices {
		if e, name := SplitPlanVoice(v.ID); e == engine {
			out = append(out, name)
		}
	}
	return out
}
