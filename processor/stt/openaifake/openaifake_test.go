package openaifake

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func sine(hz float64, ms, rate int) []int16 {
	out := make([]int16, ms*rate/1000)
	for i := range out {
		out[i] = int16(9000 * math.Sin(2*math.Pi*hz*float64(i)/float64(rate)))
	}
	return out
}

func wav(pcm []int16, rate int) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, pcm)
	return append(wavHeader(b.Len(), rate), b.Bytes()...)
}

type field struct{ name, filename, value string }

func multipartBody(t *testing.T, fields []field) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, f := range fields {
		if f.filename != "" {
			w, _ := mw.CreateFormFile(f.name, f.filename)
			io.WriteString(w, f.value)
		} else {
			mw.WriteField(f.name, f.value)
		}
	}
	mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

func TestDescribeToneNamesThePitchAndIgnoresSilence(t *testing.T) {
	tests := []struct {
		name string
		pcm  []int16
		rate int
		want string
	}{
		{"a 440 Hz tone at 16 kHz rounds to 450", sine(440, 500, 16000), 16000, "tone 450"},
		{"a 300 Hz tone at 24 kHz", sine(300, 500, 24000), 24000, "tone 300"},
		{"a tone padded with silence keeps its pitch", append(make([]int16, 8000), sine(900, 400, 16000)...), 16000, "tone 900"},
		{"silence is empty", make([]int16, 16000), 16000, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DescribeTone(tt.pcm, tt.rate); got != tt.want {
				t.Errorf("DescribeTone = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTranscriptionsValidatesTheDocumentedMultipartForm(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	good := string(wav(sine(500, 300, 16000), 16000))
	tests := []struct {
		name       string
		auth       string
		fields     []field
		wantStatus int
		wantBody   string
	}{
		{"a WAV file with a model is transcribed as json", "Bearer test-key",
			[]field{{"file", "a.wav", good}, {"model", "", "whisper-1"}, {"response_format", "", "json"}}, 200, `"text":"tone 500"`},
		{"response_format text answers plain text", "Bearer test-key",
			[]field{{"file", "a.wav", good}, {"model", "", "whisper-1"}, {"response_format", "", "text"}}, 200, "tone 500\n"},
		{"a wrong key is refused", "Bearer nope",
			[]field{{"file", "a.wav", good}, {"model", "", "whisper-1"}}, 401, "Incorrect API key"},
		{"a missing model is refused", "Bearer test-key",
			[]field{{"file", "a.wav", good}}, 400, "model"},
		{"a missing file is refused", "Bearer test-key",
			[]field{{"model", "", "whisper-1"}}, 400, "file"},
		{"a file field without a filename is refused", "Bearer test-key",
			[]field{{"file", "", good}, {"model", "", "whisper-1"}}, 400, "filename"},
		{"an unknown field is refused", "Bearer test-key",
			[]field{{"file", "a.wav", good}, {"model", "", "whisper-1"}, {"voice", "", "x"}}, 400, "Unrecognized request argument"},
		{"a file that is not WAV is refused", "Bearer test-key",
			[]field{{"file", "a.wav", "ID3 not a wav"}, {"model", "", "whisper-1"}}, 400, "Invalid file format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, body := multipartBody(t, tt.fields)
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/audio/transcriptions", bytes.NewReader(body))
			req.Header.Set("Content-Type", ct)
			req.Header.Set("Authorization", tt.auth)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(got), tt.wantBody) {
				t.Errorf("got %d %s, want %d containing %q", resp.StatusCode, got, tt.wantStatus, tt.wantBody)
			}
			if resp.StatusCode != 200 && !strings.Contains(string(got), `"error":{`) {
				t.Errorf("error body %s is not in the OpenAI error envelope", got)
			}
		})
	}
	if n := len(s.Transcriptions()); n != 2 {
		t.Errorf("recorded %d accepted requests, want 2", n)
	}
}

func TestScriptedFailuresCarryRetryAfter(t *testing.T) {
	s := New(Options{Fail: func(n int) (int, string) {
		if n == 0 {
			return 429, "2"
		}
		return 0, ""
	}})
	defer s.Close()
	post := func() *http.Response {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/audio/speech", strings.NewReader(`{"model":"tts-1","input":"hi","voice":"alloy","response_format":"pcm"}`))
		req.Header.Set("Authorization", "Bearer test-key")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := post(); r.StatusCode != 429 || r.Header.Get("Retry-After") != "2" {
		t.Errorf("first: %d Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if r := post(); r.StatusCode != 200 {
		t.Errorf("second: %d", r.StatusCode)
	}
}

func TestSpeechAnswersPCMAt24kHzAndRefusesBadBodies(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantBytes  int
	}{
		{"pcm is 60 ms of 24 kHz audio per character", `{"model":"gpt-4o-mini-tts","input":"hello","voice":"alloy","response_format":"pcm"}`, 200, 5 * 1440 * 2},
		{"a missing voice is refused", `{"model":"gpt-4o-mini-tts","input":"hello"}`, 400, 0},
		{"empty input is refused", `{"model":"gpt-4o-mini-tts","input":"","voice":"alloy"}`, 400, 0},
		{"an unknown field is refused", `{"model":"m","input":"x","voice":"alloy","pitch":2}`, 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/audio/speech", strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer test-key")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || (tt.wantStatus == 200 && len(got) != tt.wantBytes) {
				t.Errorf("got %d with %d bytes, want %d with %d", resp.StatusCode, len(got), tt.wantStatus, tt.wantBytes)
			}
		})
	}
}

// rtClient speaks the Realtime protocol directly.
type rtClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialRealtime(t *testing.T, s *Server) *rtClient {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer test-key"}}
	conn, _, err := websocket.DefaultDialer.Dial(strings.Replace(s.URL, "http", "ws", 1)+"/v1/realtime?intent=transcription", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rtClient{t: t, conn: conn}
	if ev := c.next(); ev["type"] != "transcription_session.created" {
		t.Fatalf("first event %v", ev)
	}
	return c
}

func (c *rtClient) send(ev map[string]any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(ev); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rtClient) next() map[string]any {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ev map[string]any
	if err := c.conn.ReadJSON(&ev); err != nil {
		c.t.Fatalf("read event: %v", err)
	}
	return ev
}

// until reads events up to and including one of type typ.
func (c *rtClient) until(typ string) (map[string]any, []map[string]any) {
	c.t.Helper()
	var seen []map[string]any
	for {
		ev := c.next()
		seen = append(seen, ev)
		if ev["type"] == typ {
			return ev, seen
		}
	}
}

func (c *rtClient) appendAudio(pcm []int16) {
	c.send(map[string]any{"type": "input_audio_buffer.append", "audio": base64Audio(pcm)})
}

func TestRealtimeRefusesWrongKeyAndIntent(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	ws := strings.Replace(s.URL, "http", "ws", 1)
	tests := []struct {
		name string
		url  string
		key  string
	}{
		{"a wrong key is refused", ws + "/v1/realtime?intent=transcription", "Bearer nope"},
		{"a conversation session is not served", ws + "/v1/realtime?model=gpt-4o-realtime-preview", "Bearer test-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, resp, err := websocket.DefaultDialer.Dial(tt.url, http.Header{"Authorization": {tt.key}})
			if err == nil || resp == nil || resp.StatusCode/100 != 4 {
				t.Errorf("dial err %v resp %v, want a 4xx refusal", err, resp)
			}
		})
	}
}

func TestRealtimeSessionRunsServerVADAndTranscribesEachTurn(t *testing.T) {
	// The second item completes before the first.
	s := New(Options{CompletionDelay: func(n int) time.Duration { return time.Duration(1-n) * 150 * time.Millisecond }})
	defer s.Close()
	c := dialRealtime(t, s)
	c.send(map[string]any{"type": "transcription_session.update", "session": map[string]any{
		"input_audio_format":        "pcm16",
		"input_audio_transcription": map[string]any{"model": "gpt-4o-transcribe"},
		"turn_detection":            map[string]any{"type": "server_vad", "prefix_padding_ms": 300, "silence_duration_ms": 500},
	}})
	if ev, _ := c.until("transcription_session.updated"); ev["session"].(map[string]any)["input_audio_format"] != "pcm16" {
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
}

func TestRealtimeCommitNeedsAudioAndSessionsExpire(t *testing.T) {
	s := New(Options{MaxSessionAudio: time.Second})
	defer s.Close()
	c := dialRealtime(t, s)
	c.appendAudio(make([]int16, 1200)) // 50 ms
	c.send(map[string]any{"type": "input_audio_buffer.commit"})
	if ev, _ := c.until("error"); ev["error"].(map[string]any)["code"] != "input_audio_buffer_commit_empty" {
		t.Errorf("error %v", ev)
	}
	c.appendAudio(sine(500, 300, 24000))
	c.send(map[string]any{"type": "input_audio_buffer.commit"})
	ev, _ := c.until("conversation.item.input_audio_transcription.completed")
	if ev["transcript"] != "tone 500" {
		t.Errorf("manual commit transcript %v", ev)
	}
	c.appendAudio(make([]int16, 24000))
	if ev, _ := c.until("error"); ev["error"].(map[string]any)["code"] != "session_expired" {
		t.Errorf("error %v", ev)
	}
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.conn.ReadMessage(); err == nil {
		t.Error("connection still open after expiry")
	}
	if ss := s.Sessions(); len(ss) != 1 || !ss[0].Expired {
		t.Errorf("sessions %+v", ss)
	}
}

func TestRealtimeRefusesAnUnsupportedAudioFormat(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	c := dialRealtime(t, s)
	c.send(map[string]any{"type": "transcription_session.update", "session": map[string]any{"input_audio_format": "opus"}})
	ev := c.next()
	if ev["type"] != "error" {
		t.Errorf("got %v, want an error", ev)
	}

}
