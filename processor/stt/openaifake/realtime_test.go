package realtimefake

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

type client struct {
	t  *testing.T
	ws *websocket.Conn
}

func dial(t *testing.T, s *Server, header http.Header) *client {
	t.Helper()
	if header == nil {
		header = http.Header{}
	}
	header.Set("Authorization", "Bearer test-key")
	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(s.URL, "http", "ws", 1)+"/v1/realtime?model=gpt-realtime", header)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	c := &client{t: t, ws: ws}
	c.expect("session.created")
	return c
}

func (c *client) send(ev map[string]any) {
	c.t.Helper()
	if err := c.ws.WriteJSON(ev); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// expect reads events until one of type typ arrives and returns it.
func (c *client) expect(typ string) map[string]any {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var ev map[string]any
		if err := c.ws.ReadJSON(&ev); err != nil {
			c.t.Fatalf("waiting for %s: %v", typ, err)
		}
		if ev["type"] == typ {
			return ev
		}
	}
}

func gaUpdate(extra map[string]any) map[string]any {
	s := map[string]any{
		"type":         "realtime",
		"instructions": "Interview the candidate.",
		"audio": map[string]any{
			"input": map[string]any{
				"format":         map[string]any{"type": "audio/pcm", "rate": 24000},
				"transcription":  map[string]any{"model": "gpt-4o-transcribe"},
				"turn_detection": map[string]any{"type": "server_vad", "silence_duration_ms": 300},
			},
			"output": map[string]any{"format": map[string]any{"type": "audio/pcm", "rate": 24000}, "voice": "alloy"},
		},
	}
	for k, v := range extra {
		s[k] = v
	}
	return map[string]any{"type": "session.update", "session": s}
}

func tone(d time.Duration, hz float64) []int16 {
	pcm := make([]int16, int(d.Seconds()*Rate))
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*hz*float64(i)/Rate))
	}
	return pcm
}

func appendEvent(pcm []int16) map[string]any {
	raw := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(v))
	}
	return map[string]any{"type": "input_audio_buffer.append", "audio": base64.StdEncoding.EncodeToString(raw)}
}

func TestFakeRefusesBetaShapes(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	// The OpenAI-Beta header selects the beta interface, which the fake does not serve.
	h := http.Header{"Openai-Beta": {"realtime=v1"}, "Authorization": {"Bearer test-key"}}
	if _, resp, err := websocket.DefaultDialer.Dial(strings.Replace(s.URL, "http", "ws", 1)+"/v1/realtime?model=gpt-realtime", h); err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("beta header: err %v resp %v, want 400", err, resp)
	}
	tests := []struct {
		name string
		ev   map[string]any
		code string
	}{
		{"a beta flat input_audio_format is an unknown parameter", map[string]any{"type": "session.update", "session": map[string]any{"type": "realtime", "input_audio_format": "pcm16"}}, "unknown_parameter"},
		{"a session without type is refused", map[string]any{"type": "session.update", "session": map[string]any{"instructions": "x"}}, "missing_required_parameter"},
		{"a PCM rate other than 24 kHz is refused", gaUpdate(map[string]any{"audio": map[string]any{"input": map[string]any{"format": map[string]any{"type": "audio/pcm", "rate": 16000}}}}), "invalid_value"},
		{"response.cancel without a response is refused", map[string]any{"type": "response.cancel"}, "response_cancel_not_active"},
		{"truncating an unknown item is refused", map[string]any{"type": "conversation.item.truncate", "item_id": "nope", "content_index": 0, "audio_end_ms": 10}, "item_not_found"},
	}
	c := dial(t, s, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.send(tt.ev)
			ev := c.expect("error")
			if code := ev["error"].(map[string]any)["code"]; code != tt.code {
				t.Fatalf("error %v, want code %s", ev["error"], tt.code)
			}
		})
	}
}

func TestFakeTurnGetsTranscriptAndSpokenReply(t *testing.T) {
	s := New(Options{Reply: func(n int, ins string) string { return "Tell me more." }})
	defer s.Close()
	c := dial(t, s, nil)
	c.send(gaUpdate(nil))
	upd := c.expect("session.updated")
	if upd["session"].(map[string]any)["instructions"] != "Interview the candidate." {
		t.Fatalf("session.updated %v", upd)
	}
	c.send(appendEvent(append(tone(600*time.Millisecond, 400), make([]int16, Rate/2)...)))
	started := c.expect("input_audio_buffer.speech_started")
	committed := c.expect("input_audio_buffer.committed")
	if started["item_id"] != committed["item_id"] {
		t.Fatalf("speech %v committed as %v", started, committed)
	}
	var audio int
	for {
		c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var ev map[string]any
		if err := c.ws.ReadJSON(&ev); err != nil {
			t.Fatal(err)
		}
		switch ev["type"] {
		case "conversation.item.input_audio_transcription.completed":
			if ev["transcript"] != "tone 400" {
				t.Errorf("transcript %v, want tone 400", ev["transcript"])
			}
		case "response.output_audio.delta":
			b, _ := base64.StdEncoding.DecodeString(ev["delta"].(string))
			audio += len(b) / 2
		case "response.output_audio_transcript.done":
			if ev["transcript"] != "Tell me more." {
				t.Errorf("transcript done %v", ev)
			}
		}
		if ev["type"] == "response.done" {
			break
		}
	}
	if want := len("Tell me more.") * 40 * Rate / 1000; audio != want {
		t.Errorf("reply audio %d samples, want %d", audio, want)
	}
	ss := s.Sessions()[0]
	if len(ss.Items) != 2 || ss.Items[0].Role != "user" || ss.Items[1].Role != "assistant" || ss.Items[1].PreviousID != ss.Items[0].ID {
		t.Fatalf("items %+v", ss.Items)
	}
}

func TestFakeSpeechInterruptsTheResponseAndAcceptsATruncate(t *testing.T) {
	s := New(Options{Reply: func(int, string) string { return strings.Repeat("long answer ", 10) }, AudioPace: 20 * time.Millisecond})
	defer s.Close()
	c := dial(t, s, nil)
	c.send(gaUpdate(nil))
	c.expect("session.updated")
	c.send(map[string]any{"type": "response.create"})
	delta := c.expect("response.output_audio.delta")
	c.send(appendEvent(tone(300*time.Millisecond, 300)))
	c.expect("input_audio_buffer.speech_started")
	done := c.expect("response.done")
	if st := done["response"].(map[string]any)["status"]; st != "cancelled" {
		t.Fatalf("response.done %v, want cancelled (interrupt_response)", done)
	}
	c.send(map[string]any{"type": "conversation.item.truncate", "item_id": delta["item_id"], "content_index": 0, "audio_end_ms": 50})
	tr := c.expect("conversation.item.truncated")
	if tr["audio_end_ms"] != float64(50) {
		t.Fatalf("truncated %v", tr)
	}
	c.send(map[string]any{"type": "conversation.item.truncate", "item_id": delta["item_id"], "content_index": 0, "audio_end_ms": 999999})
	if ev := c.expect("error"); ev["error"].(map[string]any)["code"] != "invalid_value" {
		t.Fatalf("truncate past the audio: %v", ev)
	}
	ss := s.Sessions()[0]
	if len(ss.Truncations) != 1 || ss.ResponseCreates != 1 {
		t.Fatalf("session %+v", ss)
	}
	b, _ := json.Marshal(ss.Config)
	if !strings.Contains(string(b), `"silence_duration_ms":300`) {
		t.Fatalf("config %s", b)
	}
}
