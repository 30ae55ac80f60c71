package openaifake

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

// dial opens a conversation session.
func dial(t *testing.T, s *Server, header http.Header) *client {
	t.Helper()
	return dialQuery(t, s, header, "model=gpt-realtime")
}

// dialTranscription opens a transcription session.
func dialTranscription(t *testing.T, s *Server) *client {
	t.Helper()
	return dialQuery(t, s, nil, "intent=transcription")
}

func dialQuery(t *testing.T, s *Server, header http.Header, query string) *client {
	t.Helper()
	if header == nil {
		header = http.Header{}
	}
	header.Set("Authorization", "Bearer test-key")
	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(s.URL, "http", "ws", 1)+"/v1/realtime?"+query, header)
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

func (c *client) next() map[string]any {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ev map[string]any
	if err := c.ws.ReadJSON(&ev); err != nil {
		c.t.Fatalf("read event: %v", err)
	}
	return ev
}

func (c *client) appendAudio(pcm []int16) { c.send(appendEvent(pcm)) }

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

func TestRealtimeRefusesBetaShapesAndTheOtherSessionTypesFields(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	// The OpenAI-Beta header selects the beta interface, which the fake does not serve.
	h := http.Header{"Openai-Beta": {"realtime=v1"}, "Authorization": {"Bearer test-key"}}
	if _, resp, err := websocket.DefaultDialer.Dial(strings.Replace(s.URL, "http", "ws", 1)+"/v1/realtime?model=gpt-realtime", h); err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("beta header: err %v resp %v, want 400", err, resp)
	}
	tests := []struct {
		transcription bool // in a transcription session, else a conversation
		name          string
		ev            map[string]any
		code          string
	}{
		{false, "a beta flat input_audio_format is an unknown parameter", map[string]any{"type": "session.update", "session": map[string]any{"type": "realtime", "input_audio_format": "pcm16"}}, "unknown_parameter"},
		{false, "a session without type is refused", map[string]any{"type": "session.update", "session": map[string]any{"instructions": "x"}}, "invalid_value"},
		{false, "a transcription session type is refused in a conversation", map[string]any{"type": "session.update", "session": map[string]any{"type": "transcription"}}, "invalid_value"},
		{false, "a PCM rate other than 24 kHz is refused", gaUpdate(map[string]any{"audio": map[string]any{"input": map[string]any{"format": map[string]any{"type": "audio/pcm", "rate": 16000}}}}), "invalid_value"},
		{false, "response.cancel without a response is refused", map[string]any{"type": "response.cancel"}, "response_cancel_not_active"},
		{false, "truncating an unknown item is refused", map[string]any{"type": "conversation.item.truncate", "item_id": "nope", "content_index": 0, "audio_end_ms": 10}, "item_not_found"},
		{true, "the beta transcription_session.update is an unknown event", map[string]any{"type": "transcription_session.update", "session": map[string]any{"input_audio_format": "pcm16"}}, "invalid_value"},
		{true, "a beta flat input_audio_format is an unknown parameter", map[string]any{"type": "session.update", "session": map[string]any{"type": "transcription", "input_audio_format": "pcm16"}}, "unknown_parameter"},
		{true, "a conversation session type is refused", map[string]any{"type": "session.update", "session": map[string]any{"type": "realtime"}}, "invalid_value"},
		{true, "instructions are a conversation's", map[string]any{"type": "session.update", "session": map[string]any{"type": "transcription", "instructions": "x"}}, "unknown_parameter"},
		{true, "audio output is a conversation's", map[string]any{"type": "session.update", "session": map[string]any{"type": "transcription", "audio": map[string]any{"output": map[string]any{"voice": "alloy"}}}}, "unknown_parameter"},
		{true, "an unsupported audio format is refused", map[string]any{"type": "session.update", "session": map[string]any{"type": "transcription", "audio": map[string]any{"input": map[string]any{"format": map[string]any{"type": "audio/opus"}}}}}, "invalid_value"},
		{true, "responses are a conversation's", map[string]any{"type": "response.create"}, "invalid_value"},
	}
	conversation, transcription := dial(t, s, nil), dialTranscription(t, s)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := conversation
			if tt.transcription {
				c = transcription
			}
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

// transcriptionUpdate is the GA session.update of a transcription session.
func transcriptionUpdate() map[string]any {
	return map[string]any{"type": "session.update", "session": map[string]any{
		"type": "transcription",
		"audio": map[string]any{"input": map[string]any{
			"format":         map[string]any{"type": "audio/pcm", "rate": 24000},
			"transcription":  map[string]any{"model": "gpt-4o-transcribe", "language": "en"},
			"turn_detection": map[string]any{"type": "server_vad", "prefix_padding_ms": 300, "silence_duration_ms": 500},
		}},
	}}
}

func TestRealtimeRefusesWrongKeyBetaHeaderAndAmbiguousSessions(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	ws := strings.Replace(s.URL, "http", "ws", 1)
	tests := []struct {
		name   string
		url    string
		header http.Header
	}{
		{"a wrong key is refused", ws + "/v1/realtime?intent=transcription", http.Header{"Authorization": {"Bearer nope"}}},
		{"the beta header is refused", ws + "/v1/realtime?intent=transcription", http.Header{"Authorization": {"Bearer test-key"}, "Openai-Beta": {"realtime=v1"}}},
		{"a transcription session with a model in the URL is refused", ws + "/v1/realtime?intent=transcription&model=gpt-realtime", http.Header{"Authorization": {"Bearer test-key"}}},
		{"a conversation without a model is refused", ws + "/v1/realtime", http.Header{"Authorization": {"Bearer test-key"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, resp, err := websocket.DefaultDialer.Dial(tt.url, tt.header)
			if err == nil || resp == nil || resp.StatusCode/100 != 4 {
				t.Errorf("dial err %v resp %v, want a 4xx refusal", err, resp)
			}
		})
	}
}

func TestTranscriptionSessionRunsServerVADAndTranscribesEachTurn(t *testing.T) {
	// The second item completes before the first.
	s := New(Options{TranscriptionDelay: func(n int) time.Duration { return time.Duration(1-n) * 150 * time.Millisecond }})
	defer s.Close()
	c := dialTranscription(t, s)
	c.send(transcriptionUpdate())
	ev := c.expect("session.updated")
	if sess := ev["session"].(map[string]any); sess["type"] != "transcription" || sess["object"] != "realtime.session" {
		t.Errorf("updated %v", ev)
	}
	// 1 s silence, 400 Hz for 600 ms, 1 s silence, 800 Hz for 600 ms, 1 s silence.
	const r = 24000
	for _, part := range [][]int16{make([]int16, r), sine(400, 600, r), make([]int16, r), sine(800, 600, r), make([]int16, r)} {
		c.appendAudio(part)
	}
	var started, stopped, committed []map[string]any
	transcripts := map[string]string{}
	var completionOrder []string
	for len(transcripts) < 2 {
		ev := c.next()
		switch ev["type"] {
		case "input_audio_buffer.speech_started":
			started = append(started, ev)
		case "input_audio_buffer.speech_stopped":
			stopped = append(stopped, ev)
		case "input_audio_buffer.committed":
			committed = append(committed, ev)
		case "response.created":
			t.Fatalf("a transcription session answered: %v", ev)
		case "conversation.item.input_audio_transcription.completed":
			transcripts[ev["item_id"].(string)] = ev["transcript"].(string)
			completionOrder = append(completionOrder, ev["item_id"].(string))
		}
	}
	if len(started) != 2 || len(stopped) != 2 || len(committed) != 2 {
		t.Fatalf("started %d stopped %d committed %d", len(started), len(stopped), len(committed))
	}
	// audio_start_ms includes the 300 ms prefix padding; audio_end_ms is the end of speech.
	if started[0]["audio_start_ms"].(float64) != 700 || stopped[0]["audio_end_ms"].(float64) != 1600 {
		t.Errorf("first turn %v-%v ms, want 700-1600", started[0]["audio_start_ms"], stopped[0]["audio_end_ms"])
	}
	if started[1]["audio_start_ms"].(float64) != 2300 || stopped[1]["audio_end_ms"].(float64) != 3200 {
		t.Errorf("second turn %v-%v ms, want 2300-3200", started[1]["audio_start_ms"], stopped[1]["audio_end_ms"])
	}
	first, second := committed[0]["item_id"].(string), committed[1]["item_id"].(string)
	if committed[0]["previous_item_id"] != nil || committed[1]["previous_item_id"] != first {
		t.Errorf("chain: %v then %v", committed[0], committed[1])
	}
	if transcripts[first] != "tone 400" || transcripts[second] != "tone 800" {
		t.Errorf("transcripts %v", transcripts)
	}
	if completionOrder[0] != second {
		t.Errorf("completions arrived in order %v; the delay should have reversed them", completionOrder)
	}
	if ss := s.Sessions(); len(ss) != 1 || ss[0].Type != "transcription" || ss[0].Updates != 1 || len(ss[0].Items) != 2 {
		t.Errorf("sessions %+v", ss)
	}
}

func TestTranscriptionCommitNeedsAudioAndSessionsExpire(t *testing.T) {
	s := New(Options{MaxSessionAudio: time.Second})
	defer s.Close()
	c := dialTranscription(t, s)
	c.appendAudio(make([]int16, 1200)) // 50 ms
	c.send(map[string]any{"type": "input_audio_buffer.commit"})
	if ev := c.expect("error"); ev["error"].(map[string]any)["code"] != "input_audio_buffer_commit_empty" {
		t.Errorf("error %v", ev)
	}
	c.appendAudio(sine(500, 300, 24000))
	c.send(map[string]any{"type": "input_audio_buffer.commit"})
	if ev := c.expect("conversation.item.input_audio_transcription.completed"); ev["transcript"] != "tone 500" {
		t.Errorf("manual commit transcript %v", ev)
	}
	c.appendAudio(make([]int16, 24000))
	if ev := c.expect("error"); ev["error"].(map[string]any)["code"] != "session_expired" {
		t.Errorf("error %v", ev)
	}
	c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ws.ReadMessage(); err == nil {
		t.Error("connection still open after expiry")
	}
	if ss := s.Sessions(); len(ss) != 1 || !ss[0].Expired {
		t.Errorf("sessions %+v", ss)
	}
}
