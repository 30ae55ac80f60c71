package oairt

import "encoding/json"

// Session is the session object of a session.update (GA Realtime
// interface), typed so that the transcription engine and the interviewer
// build it the same way. Unset fields are left out, so an update changes
// only what it names.
type Session struct {
	Type             string        `json:"type"` // "realtime" (conversation) | "transcription"
	Instructions     string        `json:"instructions,omitempty"`
	OutputModalities []string      `json:"output_modalities,omitempty"`
	Audio            *SessionAudio `json:"audio,omitempty"`
}

// SessionAudio configures the session's audio in and out.
type SessionAudio struct {
	Input  *AudioInput  `json:"input,omitempty"`
	Output *AudioOutput `json:"output,omitempty"`
}

// AudioInput configures what the session hears. Transcription and
// TurnDetection are left unchanged when nil, and switched off (sent as
// null) when the matching No… field is set.
type AudioInput struct {
	Format          *AudioFormat
	Transcription   *Transcription
	NoTranscription bool
	TurnDetection   *TurnDetection
	NoTurnDetection bool
}

// MarshalJSON writes the set fields, and null for the ones switched off.
func (in AudioInput) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	if in.Format != nil {
		m["format"] = in.Format
	}
	switch {
	case in.Transcription != nil:
		m["transcription"] = in.Transcription
	case in.NoTranscription:
		m["transcription"] = nil
	}
	switch {
	case in.TurnDetection != nil:
		m["turn_detection"] = in.TurnDetection
	case in.NoTurnDetection:
		m["turn_detection"] = nil
	}
	return json.Marshal(m)
}

// AudioOutput configures the session's speech.
type AudioOutput struct {
	Format *AudioFormat `json:"format,omitempty"`
	Voice  string       `json:"voice,omitempty"`
}

// AudioFormat is an audio format; the API speaks audio/pcm at Rate.
type AudioFormat struct {
	Type string `json:"type"`
	Rate int    `json:"rate,omitempty"`
}

// PCM is the one format both sides use: 24 kHz mono s16le.
func PCM() *AudioFormat { return &AudioFormat{Type: "audio/pcm", Rate: Rate} }

// Transcription configures input transcription.
type Transcription struct {
	Model    string `json:"model"`
	Language string `json:"language,omitempty"`
}

// TurnDetection configures server voice activity detection.
type TurnDetection struct {
	Type              string  `json:"type"` // "server_vad"
	Threshold         float64 `json:"threshold"`
	PrefixPaddingMS   int     `json:"prefix_padding_ms"`
	SilenceDurationMS int     `json:"silence_duration_ms"`
	// CreateResponse and InterruptResponse apply to conversation sessions.
	CreateResponse    *bool `json:"create_response,omitempty"`
	InterruptResponse *bool `json:"interrupt_response,omitempty"`
}

// ServerVAD is the server VAD both sessions use, ending a turn after
// silenceMS of silence.
func ServerVAD(silenceMS int) *TurnDetection {
	return &TurnDetection{Type: "server_vad", Threshold: 0.5, PrefixPaddingMS: 300, SilenceDurationMS: silenceMS}
}
