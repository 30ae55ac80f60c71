package oairt

import (
	"encoding/json"
	"testing"
)

func TestSessionUpdatesNameOnlyWhatTheyChange(t *testing.T) {
	tests := []struct {
		name string
		s    Session
		want string
	}{
		{"a barrier names only the type", Session{Type: "realtime"}, `{"type":"realtime"}`},
		{"switching turn detection off sends null and leaves transcription alone",
			Session{Type: "realtime", Audio: &SessionAudio{Input: &AudioInput{NoTurnDetection: true}}},
			`{"type":"realtime","audio":{"input":{"turn_detection":null}}}`},
		{"a transcription session carries format, model and VAD",
			Session{Type: "transcription", Audio: &SessionAudio{Input: &AudioInput{Format: PCM(), Transcription: &Transcription{Model: "m", Language: "en"}, TurnDetection: ServerVAD(500)}}},
			`{"type":"transcription","audio":{"input":{"format":{"type":"audio/pcm","rate":24000},"transcription":{"model":"m","language":"en"},"turn_detection":{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,"silence_duration_ms":500}}}}`},
		{"transcription switched off is null",
			Session{Type: "realtime", Audio: &SessionAudio{Input: &AudioInput{NoTranscription: true}}},
			`{"type":"realtime","audio":{"input":{"transcription":null}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.s)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
		})
	}
}
