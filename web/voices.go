package web

import "slices"

// positionVoice is a voice a position may choose for its interviewer. The ids
// are what the plan's interviewer.voice carries to the processor, whose TTS
// (processor/tts) speaks them.
type positionVoice struct {
	ID, Label string
}

// positionVoices are the offline voices, most natural first; "" (the
// processor's default voice) is always allowed as well.
var positionVoices = []positionVoice{
	{"flite-slt", "Flite slt (US English, female)"},
	{"flite-rms", "Flite rms (US English, male)"},
	{"flite-awb", "Flite awb (Scottish English, male)"},
	{"espeak-en-us", "eSpeak NG (US English, robotic)"},
}

func voiceIDs() []string {
	ids := make([]string, len(positionVoices))
	for i, v := range positionVoices {
		ids[i] = v.ID
	}
	return ids
}

func validVoice(id string) bool {
	return id == "" || slices.Contains(voiceIDs(), id)
}
