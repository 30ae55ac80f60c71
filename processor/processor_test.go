package processor

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"candor/processor/contract"
)

const librivox = "/usr/share/pocketsphinx/test/data/librivox/"

// testProcessor is a processor Run on 127.0.0.1 against a fake control plane.
type testProcessor struct {
	url     string
	cfg     Config
	control *fakeControl
	stop    func() error
	exited  <-chan struct{} // closed when Run returned
}

func interviewEnv(control *fakeControl, dataDir string) map[string]string {
	return map[string]string{
		"SESSION_ID":             control.interviewID,
		"TENANT_ID":              "ten_1",
		"CANDIDATE_ID":           "can_1",
		"POSITION_ID":            "pos_1",
		"CANDOR_CONTROL_URL":     control.URL(),
		"CANDOR_PROCESSOR_TOKEN": control.token,
		"CANDOR_DATA":            dataDir,
		"CANDOR_STT":             "pocketsphinx",
	}
}

// startProcessor runs Run with env; it returns once the listener is up (not
// necessarily ready). The processor is stopped at cleanup.
func startProcessor(t testing.TB, control *fakeControl, env map[string]string, adjust ...func(*Config)) *testProcessor {
	t.Helper()
	cfg, err := ConfigFromEnv(env)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Timing = fastTiming()
	for _, a := range adjust {
		a(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listener = ln
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		done <- Run(ctx, cfg, discardLog())
		close(exited)
	}()
	stopped := false
	var runErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			runErr = <-done
		}
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run returned %v", err)
		}
	})
	return &testProcessor{url: "http://" + ln.Addr().String(), cfg: cfg, control: control, stop: stop, exited: exited}
}

func (p *testProcessor) do(t *testing.T, method, path, token, contentType string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, p.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func (p *testProcessor) postChunk(t *testing.T, token string, seq int64, mime string, audio []byte) (int, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"audio_chunk": base64.StdEncoding.EncodeToString(audio), "speaker": "candidate",
		"sequence_number": seq, "mime_type": mime,
	})
	code, b, _ := p.do(t, http.MethodPost, "/process-audio", token, "application/json", body)
	return code, b
}

// end posts /end and returns the entry count it reports.
func (p *testProcessor) end(t *testing.T) int64 {
	t.Helper()
	code, b, _ := p.do(t, http.MethodPost, "/end", p.control.token, "", nil)
	if code != http.StatusOK {
		t.Fatalf("/end = %d %s", code, b)
	}
	var res EndResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("/end answer %s: %v", b, err)
	}
	return res.Entries
}

// readWAVPCM returns the s16le samples of a 16 kHz mono WAV file as bytes.
func readWAVPCM(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		t.Fatalf("%s is not a WAV file", path)
	}
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), int(binary.LittleEndian.Uint32(b[off+4:]))
		if id == "data" {
			return b[off+8 : min(off+8+size, len(b))]
		}
		off += 8 + size + size%2
	}
	t.Fatalf("%s has no data chunk", path)
	return nil
}

// reference returns the reference transcription of a librivox fixture.
func reference(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(librivox + "transcription")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "("+name+")") {
			line = line[:strings.Index(line, "(")]
			line = strings.NewReplacer("<s>", "", "</s>", "").Replace(line)
			return strings.Fields(line)
		}
	}
	t.Fatalf("no reference for %s", name)
	return nil
}

// overlap is the share of ref words that occur in hyp.
func overlap(ref []string, hyp string) float64 {
	words := strings.Fields(strings.ToLower(hyp))
	hit := 0
	for _, w := range ref {
		if slices.Contains(words, w) {
			hit++
		}
	}
	return float64(hit) / float64(len(ref))
}

func silence(seconds float64) []byte { return make([]byte, int(seconds*16000)*2) }

// sendPCM posts pcm as /process-audio chunks of half a second.
func (p *testProcessor) sendPCM(t *testing.T, firstSeq int64, pcm []byte) int64 {
	t.Helper()
	seq := firstSeq
	for off := 0; off < len(pcm); off += 16000 {
		code, b := p.postChunk(t, p.control.token, seq, "audio/pcm;rate=16000", pcm[off:min(off+16000, len(pcm))])
		if code != http.StatusOK {
			t.Fatalf("chunk %d: %d %s", seq, code, b)
		}
		seq++
	}
	return seq
}

func checkDenseSeqs(t *testing.T, es []contract.Entry, first int64) {
	t.Helper()
	for i, e := range es {
		if e.Seq != first+int64(i) {
			t.Fatalf("entry %d has seq %d, want %d (entries %+v)", i, e.Seq, first+int64(i), es)
		}
	}
}

func candidateText(es []contract.Entry) string {
	var parts []string
	for _, e := range es {
		if e.Speaker == "candidate" {
			parts = append(parts, e.Text)
		}
	}
	return strings.Join(parts, " ")
}

func TestProcessorTranscribesARecordingPostedAsPCMChunks(t *testing.T) {
	control := newFakeControl(t, "iv_pcm", "proc-token")
	control.mediaMS = 5000 // a predecessor already heard 5 s
	p := startProcessor(t, control, interviewEnv(control, t.TempDir()))
	control.waitEvent(t, "ready")

	const name = "sense_and_sensibility_01_austen_64kb-0870"
	pcm := append(readWAVPCM(t, librivox+name+".wav"), silence(1)...)
	next := p.sendPCM(t, 0, pcm)
	// A duplicate chunk is acknowledged and ignored.
	if code, b := p.postChunk(t, control.token, next-1, "audio/pcm;rate=16000", silence(0.5)); code != http.StatusOK || !strings.Contains(string(b), `"duplicate":true`) {
		t.Fatalf("duplicate chunk: %d %s", code, b)
	}

	n := p.end(t)
	es := control.Entries()
	if int64(len(es)) != n || n == 0 {
		t.Fatalf("/end reported %d entries, bridge has %d", n, len(es))
	}
	checkDenseSeqs(t, es, 1)
	hyp := candidateText(es)
	if got := overlap(reference(t, name), hyp); got < 0.5 {
		t.Fatalf("transcript %q overlaps the reference by %.2f, want >= 0.5", hyp, got)
	}
	for _, e := range es {
		if e.Speaker == "candidate" && (e.StartMS < 5000 || e.EndMS < e.StartMS) {
			t.Errorf("candidate entry %+v is not on the resumed media clock (base 5000 ms)", e)
		}
	}
	if got := control.EventTypes(); !slices.Equal(got, []string{"ready", "ended"}) {
		t.Errorf("events = %v, want [ready ended]", got)
	}
	hb := control.Heartbeats()
	if len(hb) == 0 || *hb[len(hb)-1].MediaMS < 5000 {
		t.Errorf("heartbeats %+v do not carry the media clock", hb)
	}
	// /end is idempotent.
	if again := p.end(t); again != n {
		t.Errorf("second /end = %d, want %d", again, n)
	}
}

func TestProcessorContinuesSeqFromTheBridgeState(t *testing.T) {
	control := newFakeControl(t, "iv_seq", "proc-token")
	control.entries[1] = contract.Entry{Seq: 1, Speaker: "interviewer", Text: "from the predecessor"}
	control.entries[2] = contract.Entry{Seq: 2, Speaker: "candidate", Text: "also"}
	p := startProcessor(t, control, interviewEnv(control, t.TempDir()))
	control.waitEvent(t, "ready")
	// Opening /events counts as the candidate joining: the interviewer greets.
	ws := dialEvents(t, p, contract.CandidateToken(control.token, control.interviewID))
	defer ws.Close()
	readCaption(t, ws)
	if n := p.end(t); n < 3 {
		t.Fatalf("/end = %d entries, want the greeting after seq 2", n)
	}
	es := control.Entries()
	checkDenseSeqs(t, es, 1)
	if es[2].Speaker != "interviewer" {
		t.Fatalf("seq 3 = %+v, want the interviewer's greeting", es[2])
	}
}

func dialEvents(t *testing.T, p *testProcessor, token string) *websocket.Conn {
	t.Helper()
	u := strings.Replace(p.url, "http://", "ws://", 1) + "/events?token=" + token
	ws, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial /events: %v (%v)", err, resp)
	}
	return ws
}

// readCaption returns the next caption, skipping state and audio frames.
func readCaption(t *testing.T, ws *websocket.Conn) Caption {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		typ, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read /events: %v", err)
		}
		if typ != websocket.TextMessage {
			continue
		}
		var c Caption
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("frame %s: %v", b, err)
		}
		if c.Type == "caption" {
			return c
		}
	}
}

func TestScriptedInterviewerAsksThePlanQuestionsInOrder(t *testing.T) {
	control := newFakeControl(t, "iv_plan", "proc-token")
	dir := t.TempDir()
	plan := `{"position":{"title":"Librarian"},"questions":["What is your favourite novel?","Who is your favourite author?"],
	  "interviewer":{"greeting":"Welcome.","closing":"Goodbye.","follow_up":"Please say more."}}`
	planFile := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(planFile, []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	env := interviewEnv(control, dir)
	env["CANDOR_PLAN_FILE"] = planFile
	// The pause must outlast the gaps between one answer's utterances.
	p := startProcessor(t, control, env, func(c *Config) { c.Timing.AnswerPause = 2 * time.Second })
	control.waitEvent(t, "ready")

	ws := dialEvents(t, p, contract.CandidateToken(control.token, control.interviewID))
	defer ws.Close()
	// want reads captions up to the interviewer's next one, which must say text.
	want := func(text string) {
		t.Helper()
		for {
			c := readCaption(t, ws)
			if c.Speaker == "candidate" {
				t.Logf("candidate: %q", c.Text)
				continue
			}
			if c.Speaker != "interviewer" || c.Text != text {
				t.Fatalf("caption %+v, want the interviewer saying %q", c, text)
			}
			return
		}
	}
	answer := func(seq int64, name string) int64 {
		t.Helper()
		return p.sendPCM(t, seq, append(readWAVPCM(t, librivox+name+".wav"), silence(1)...))
	}
	want("Welcome.")
	// The greeting's speech follows its caption as binary s16le PCM.
	ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	typ, speech, err := ws.ReadMessage()
	if err != nil || typ != websocket.BinaryMessage || len(speech) == 0 || len(speech)%2 != 0 {
		t.Fatalf("after the greeting: frame type %d, %d bytes, err %v; want interviewer PCM", typ, len(speech), err)
	}
	want("What is your favourite novel?")
	seq := answer(0, "sense_and_sensibility_01_austen_64kb-0870") // 21 words: no follow-up
	want("Who is your favourite author?")
	answer(seq, "sense_and_sensibility_01_austen_64kb-0920")
	want("Goodbye.")

	p.end(t)
	var interviewer []string
	for _, e := range control.Entries() {
		if e.Speaker == "interviewer" {
			interviewer = append(interviewer, e.Text)
			if e.EndMS <= e.StartMS {
				t.Errorf("interviewer entry %+v does not span its speech on the media clock", e)
			}
		}
	}
	wantTexts := []string{"Welcome.", "What is your favourite novel?", "Who is your favourite author?", "Goodbye."}
	if !slices.Equal(interviewer, wantTexts) {
		t.Fatalf("interviewer entries %q, want %q", interviewer, wantTexts)
	}
	checkDenseSeqs(t, control.Entries(), 1)
}

func TestRequestsNeedTheRightToken(t *testing.T) {
	control := newFakeControl(t, "iv_auth", "proc-token")
	p := startProcessor(t, control, interviewEnv(control, t.TempDir()))
	control.waitEvent(t, "ready")
	candidate := contract.CandidateToken(control.token, control.interviewID)
	chunk, _ := json.Marshal(map[string]any{"audio_chunk": "", "speaker": "candidate", "sequence_number": 0, "mime_type": "audio/pcm;rate=16000"})

	tests := []struct {
		name, method, path, token string
		body                      []byte
		want                      int
	}{
		{"health needs no token", http.MethodGet, "/healthz", "", nil, 200},
		{"audio without a token is unauthorized", http.MethodPost, "/process-audio", "", chunk, 401},
		{"audio with a wrong token is unauthorized", http.MethodPost, "/process-audio", "nope", chunk, 401},
		{"audio with another interview's candidate token is unauthorized", http.MethodPost, "/process-audio", contract.CandidateToken(control.token, "iv_other"), chunk, 401},
		{"audio with the candidate token is accepted", http.MethodPost, "/process-audio", candidate, chunk, 200},
		{"audio with the processor token is accepted", http.MethodPost, "/process-audio", control.token, chunk, 200},
		{"end with the candidate token is forbidden", http.MethodPost, "/end", candidate, nil, 403},
		{"end with a wrong token is unauthorized", http.MethodPost, "/end", "nope", nil, 401},
		{"claim on a live processor is unauthorized", http.MethodPost, "/claim", control.token, []byte(`{}`), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, b, _ := p.do(t, tt.method, tt.path, tt.token, "application/json", tt.body)
			if code != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, code, b, tt.want)
			}
		})
	}

	t.Run("a CORS preflight is answered without a token", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, p.url+"/process-audio", nil)
		req.Header.Set("Origin", "http://control.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") == "" ||
			!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Fatalf("preflight %d %v", resp.StatusCode, h)
		}
	})
	t.Run("events refuse a websocket without a token", func(t *testing.T) {
		u := strings.Replace(p.url, "http://", "ws://", 1) + "/events"
		_, resp, err := websocket.DefaultDialer.Dial(u, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("dial without token: %v %v", err, resp)
		}
	})
	t.Run("end with the processor token is accepted", func(t *testing.T) {
		p.end(t)
	})
}

func TestMalformedInputsAreRefusedAndTheProcessorKeepsServing(t *testing.T) {
	control := newFakeControl(t, "iv_bad", "proc-token")
	p := startProcessor(t, control, interviewEnv(control, t.TempDir()))
	control.waitEvent(t, "ready")
	tok := control.token
	body := func(chunk, mime string, seq any) []byte {
		b, _ := json.Marshal(map[string]any{"audio_chunk": chunk, "speaker": "candidate", "sequence_number": seq, "mime_type": mime})
		return b
	}
	huge := bytes.Repeat([]byte("A"), 17<<20)

	tests := []struct {
		name, path, contentType string
		body                    []byte
		want                    int
		code                    string
	}{
		{"a body that is not JSON", "/process-audio", "application/json", []byte("{not json"), 400, "invalid_json"},
		{"audio that is not base64", "/process-audio", "application/json", body("%%%not-base64", "audio/pcm;rate=16000", 0), 400, "invalid_audio"},
		{"a chunk without a sequence number", "/process-audio", "application/json", []byte(`{"audio_chunk":""}`), 400, "invalid_sequence_number"},
		{"a body past the size limit", "/process-audio", "application/json", append(append([]byte(`{"audio_chunk":"`), huge...), '"', '}'), 413, "too_large"},
		{"an unknown mime type", "/process-audio", "application/json", body("AAAA", "video/x-flv", 0), 400, "unsupported_media_type"},
		{"a garbage SDP offer", "/whip", "application/sdp", []byte("this is not sdp"), 400, "invalid_sdp"},
		{"an SDP offer that cannot be answered", "/whip", "application/sdp", []byte("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"), 400, "invalid_sdp"},
		{"a WHIP offer with the wrong content type", "/whip", "text/plain", []byte("v=0"), 415, "unsupported_media_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, b, _ := p.do(t, http.MethodPost, tt.path, tok, tt.contentType, tt.body)
			var e apiError
			if code != tt.want || json.Unmarshal(b, &e) != nil || e.Error.Code != tt.code {
				t.Fatalf("%s = %d %s, want %d with code %s", tt.path, code, b, tt.want, tt.code)
			}
		})
	}
	t.Run("a mime type change within a stream", func(t *testing.T) {
		if code, b := p.postChunk(t, tok, 0, "audio/pcm;rate=16000", silence(0.1)); code != 200 {
			t.Fatalf("first chunk %d %s", code, b)
		}
		if code, b := p.postChunk(t, tok, 1, "audio/wav", silence(0.1)); code != 400 || !strings.Contains(string(b), "mime_type_changed") {
			t.Fatalf("changed mime %d %s", code, b)
		}
	})
	t.Run("an unknown endpoint", func(t *testing.T) {
		if code, _, _ := p.do(t, http.MethodGet, "/nope", tok, "", nil); code != 404 {
			t.Fatalf("got %d", code)
		}
	})
	if code, b, _ := p.do(t, http.MethodGet, "/healthz", "", "", nil); code != 200 || !strings.Contains(string(b), `"ok"`) {
		t.Fatalf("healthz after bad input: %d %s", code, b)
	}
	if code, b := p.postChunk(t, tok, 2, "audio/pcm;rate=16000", silence(0.1)); code != 200 {
		t.Fatalf("good chunk after bad input: %d %s", code, b)
	}
	p.end(t)
}

func TestIdleProcessorIsClaimedWithThePoolToken(t *testing.T) {
	control := newFakeControl(t, "iv_claim", "proc-token")
	dir := t.TempDir()
	p := startProcessor(t, control, map[string]string{"CANDOR_POOL_TOKEN": "pool-token", "CANDOR_DATA": dir})

	code, b, _ := p.do(t, http.MethodGet, "/healthz", "", "", nil)
	if code != 200 || !strings.Contains(string(b), `"idle"`) {
		t.Fatalf("idle healthz: %d %s", code, b)
	}
	if code, _, _ := p.do(t, http.MethodPost, "/process-audio", "pool-token", "application/json", []byte(`{}`)); code != http.StatusServiceUnavailable {
		t.Fatalf("audio before the claim = %d, want 503", code)
	}
	env := interviewEnv(control, dir)
	delete(env, "CANDOR_DATA")
	claim, _ := json.Marshal(map[string]any{"env": env, "plan": json.RawMessage(`{"questions":["Only question?"],"interviewer":{"greeting":"Hi."}}`)})
	if code, _, _ := p.do(t, http.MethodPost, "/claim", "wrong", "application/json", claim); code != 401 {
		t.Fatalf("claim with a wrong token = %d, want 401", code)
	}
	bad, _ := json.Marshal(map[string]any{"env": map[string]string{"SESSION_ID": "iv_claim"}})
	if code, b, _ := p.do(t, http.MethodPost, "/claim", "pool-token", "application/json", bad); code != 400 || !strings.Contains(string(b), "CANDOR_CONTROL_URL") {
		t.Fatalf("claim without control URL = %d %s, want 400 naming CANDOR_CONTROL_URL", code, b)
	}
	if code, b, _ := p.do(t, http.MethodPost, "/claim", "pool-token", "application/json", claim); code != 200 {
		t.Fatalf("claim = %d %s", code, b)
	}
	control.waitEvent(t, "ready")
	if code, _, _ := p.do(t, http.MethodPost, "/claim", "pool-token", "application/json", claim); code != http.StatusConflict {
		t.Fatalf("second claim = %d, want 409", code)
	}
	ws := dialEvents(t, p, contract.CandidateToken(control.token, control.interviewID))
	defer ws.Close()
	if c := readCaption(t, ws); c.Text != "Hi." {
		t.Fatalf("first caption %+v, want the claimed plan's greeting", c)
	}
	if c := readCaption(t, ws); c.Text != "Only question?" {
		t.Fatalf("second caption %+v, want the claimed plan's question", c)
	}
	p.end(t)
	if got := control.EventTypes(); !slices.Equal(got, []string{"ready", "ended"}) {
		t.Fatalf("events %v", got)
	}
}

func TestPCMOverWebSocketIsTranscribed(t *testing.T) {
	control := newFakeControl(t, "iv_ws", "proc-token")
	p := startProcessor(t, control, interviewEnv(control, t.TempDir()))
	control.waitEvent(t, "ready")
	u := strings.Replace(p.url, "http://", "ws://", 1) + "/ws/audio?token=" + contract.CandidateToken(control.token, control.interviewID)
	ws, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	const name = "sense_and_sensibility_01_austen_64kb-0890"
	pcm := append(readWAVPCM(t, librivox+name+".wav"), silence(1)...)
	// Odd frame sizes: samples split across frames must be rejoined.
	for off := 0; off < len(pcm); off += 3001 {
		if err := ws.WriteMessage(websocket.BinaryMessage, pcm[off:min(off+3001, len(pcm))]); err != nil {
			t.Fatal(err)
		}
	}
	ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`))
	// Wait until the processor has taken every byte (the media clock reaches the end).
	wantMS := int64(len(pcm)/2) * 1000 / 16000
	control.waitFor(t, "media clock to reach the end of the audio", func() bool {
		for _, ev := range control.events {
			if ev.Type == "heartbeat" && *ev.MediaMS >= wantMS {
				return true
			}
		}
		return false
	})
	ws.Close()
	p.end(t)
	hyp := candidateText(control.Entries())
	t.Logf("transcript: %q", hyp)
	if got := overlap(reference(t, name), hyp); got < 0.5 {
		t.Fatalf("transcript %q overlaps the reference by %.2f", hyp, got)
	}
}

func TestConfigFromEnvNamesTheBadSetting(t *testing.T) {
	good := map[string]string{"SESSION_ID": "iv_1", "CANDOR_CONTROL_URL": "http://127.0.0.1:8080", "CANDOR_PROCESSOR_TOKEN": "t"}
	with := func(k, v string) map[string]string {
		env := copyEnv(good)
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
		return env
	}
	tests := []struct {
		name string
		env  map[string]string
		want string // substring of the error; "" = valid
	}{
		{"a complete interview env is valid", good, ""},
		{"no session and no pool token is refused", with("SESSION_ID", ""), "SESSION_ID"},
		{"an idle pool processor needs only its pool token", map[string]string{"CANDOR_POOL_TOKEN": "p"}, ""},
		{"a missing control URL is named", with("CANDOR_CONTROL_URL", ""), "CANDOR_CONTROL_URL"},
		{"a control URL that is not http is named", with("CANDOR_CONTROL_URL", "ftp://x"), "CANDOR_CONTROL_URL"},
		{"a missing processor token is named", with("CANDOR_PROCESSOR_TOKEN", ""), "CANDOR_PROCESSOR_TOKEN"},
		{"a port that is not a number is named", with("PORT", "http"), "PORT"},
		{"an address without a fixed port is named", with("CANDOR_ADDR", "127.0.0.1:0"), "CANDOR_ADDR"},
		{"an unknown speech engine is named", with("CANDOR_STT", "whisperx"), "CANDOR_STT"},
		{"an OpenAI engine without a key is named", with("CANDOR_STT", "openai"), "OPENAI_API_KEY"},
		{"an unknown interviewer is named", with("CANDOR_INTERVIEWER", "robot"), "CANDOR_INTERVIEWER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ConfigFromEnv(tt.env)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %s (cfg %+v)", err, tt.want, cfg)
			}
		})
	}
	cfg, _ := ConfigFromEnv(good)
	if cfg.Addr != ":8080" || cfg.STT != "pocketsphinx" || cfg.Interviewer != "scripted" || cfg.DataDir != "./data" {
		t.Errorf("defaults: %+v", cfg)
	}
	cfg, _ = ConfigFromEnv(with("CANDOR_ADDR", "127.0.0.1:9123"))
	if cfg.Addr != "127.0.0.1:9123" {
		t.Errorf("CANDOR_ADDR not honoured: %q", cfg.Addr)
	}
}

func TestProcessorLosesAndDuplicatesNothingAcrossAControlPlaneOutage(t *testing.T) {
	control := newFakeControl(t, "iv_outage", "proc-token")
	p := startProcessor(t, control, interviewEnv(control, t.TempDir()))
	control.waitEvent(t, "ready")
	// From now on the control plane is down, then restarts twice having
	// stored a batch but lost the ack.
	control.mu.Lock()
	control.down, control.loseAcks = 30, 2
	control.mu.Unlock()

	ws := dialEvents(t, p, contract.CandidateToken(control.token, control.interviewID))
	defer ws.Close()
	next := p.sendPCM(t, 0, append(readWAVPCM(t, librivox+"sense_and_sensibility_01_austen_64kb-0880.wav"), silence(1)...))
	p.sendPCM(t, next, append(readWAVPCM(t, librivox+"sense_and_sensibility_01_austen_64kb-0930.wav"), silence(1)...))
	n := p.end(t)

	es := control.Entries()
	if int64(len(es)) != n {
		t.Fatalf("bridge has %d entries, /end reported %d", len(es), n)
	}
	checkDenseSeqs(t, es, 1)
	control.mu.Lock()
	defer control.mu.Unlock()
	for seq, k := range control.inserts {
		if k != 1 {
			t.Errorf("seq %d inserted %d times", seq, k)
		}
	}
	if control.down != 0 || control.loseAcks != 0 {
		t.Errorf("outage not exercised: down=%d loseAcks=%d left", control.down, control.loseAcks)
	}
}

func TestAReplacementProcessorSendsTheSpoolFirstAndContinuesSeq(t *testing.T) {
	control := newFakeControl(t, "iv_replace", "proc-token")
	dir := t.TempDir()
	first := startProcessor(t, control, interviewEnv(control, dir), func(c *Config) { c.Timing.ShutdownTimeout = 200 * time.Millisecond })
	control.waitEvent(t, "ready")
	control.mu.Lock()
	control.down = 1 << 30 // the control plane is unreachable for entries
	control.mu.Unlock()
	ws := dialEvents(t, first, contract.CandidateToken(control.token, control.interviewID))
	readCaption(t, ws) // greeting
	readCaption(t, ws) // first question
	ws.Close()
	if err := first.stop(); err != nil {
		t.Fatalf("first processor: %v", err)
	}
	if got := len(control.Entries()); got != 0 {
		t.Fatalf("bridge stored %d entries while down", got)
	}

	control.mu.Lock()
	control.down = 0
	control.mediaMS = 1234
	control.mu.Unlock()
	second := startProcessor(t, control, interviewEnv(control, dir))
	control.waitFor(t, "the spooled entries", func() bool { return len(control.entries) >= 2 })
	// The spool may be delivered before the session serves (/events
	// answers 503 + Retry-After until then): wait for its ready.
	control.waitFor(t, "the second processor's ready", func() bool {
		n := 0
		for _, ev := range control.events {
			if ev.Type == contract.EventReady {
				n++
			}
		}
		return n >= 2
	})
	ws = dialEvents(t, second, contract.CandidateToken(control.token, control.interviewID))
	defer ws.Close()
	if c := readCaption(t, ws); c.Seq != 3 {
		t.Fatalf("the replacement's first caption has seq %d, want 3 (after the 2 spooled)", c.Seq)
	}
	second.end(t)
	es := control.Entries()
	checkDenseSeqs(t, es, 1)
	if es[2].StartMS < 1234 {
		t.Errorf("replacement entry %+v is not on the continued media clock", es[2])
	}
}

func TestAClaimedWarmProcessorKeepsTheResumedSeqAndMediaClock(t *testing.T) {
	control := newFakeControl(t, "iv_warm", "proc-token")
	control.entries[1] = contract.Entry{Seq: 1, Speaker: "interviewer", Text: "from the predecessor"}
	control.mediaMS = 7000
	dir := t.TempDir()
	p := startProcessor(t, control, map[string]string{"CANDOR_POOL_TOKEN": "pool-token", "CANDOR_DATA": dir, "CANDOR_STT": "pocketsphinx"})
	waitWarm(t, p)
	env := interviewEnv(control, dir)
	claim, _ := json.Marshal(map[string]any{"env": env, "plan": nil})
	if code, b, _ := p.do(t, http.MethodPost, "/claim", "pool-token", "application/json", claim); code != 200 {
		t.Fatalf("claim = %d %s", code, b)
	}
	if _, err := os.Stat(filepath.Join(dir, warmSpoolName)); !os.IsNotExist(err) {
		t.Errorf("the warm spool was not taken over by the interview (%v)", err)
	}

	const name = "sense_and_sensibility_01_austen_64kb-0870"
	p.sendPCM(t, 0, append(readWAVPCM(t, librivox+name+".wav"), silence(1)...))
	n := p.end(t)
	es := control.Entries()
	checkDenseSeqs(t, es, 1)
	if n != int64(len(es)) || n < 2 {
		t.Fatalf("/end = %d, bridge has %d entries", n, len(es))
	}
	heard := false
	for _, e := range es[1:] {
		if e.Speaker == "candidate" {
			heard = true
			if e.StartMS < 7000 || e.EndMS < e.StartMS {
				t.Errorf("candidate entry %+v is not on the resumed media clock (base 7000 ms)", e)
			}
		}
	}
	if !heard {
		t.Fatalf("no candidate entry in %+v", es)
	}
}

// A processor the control plane says was replaced (after a partition that
// outlasted the grace) finalizes what it heard, delivers its spool,
// uploads its recording, says drained and exits by itself, without
// claiming the interview ended.
func TestARetiredProcessorDrainsItsSpoolAndExits(t *testing.T) {
	control := newFakeControl(t, "iv_retired", "proc-token")
	p := startProcessor(t, control, interviewEnv(control, t.TempDir()))
	control.waitEvent(t, "ready")
	control.mu.Lock()
	control.down = 1 << 30 // the bridge is cut: entries spool
	control.mu.Unlock()
	p.sendPCM(t, 0, readWAVPCM(t, librivox+"sense_and_sensibility_01_austen_64kb-0880.wav"))
	control.waitFor(t, "delivery attempts during the cut", func() bool { return control.posts > 2 })
	if n := len(control.Entries()); n != 0 {
		t.Fatalf("%d entries arrived through the cut", n)
	}
	// The partition heals, and the control plane has replaced it.
	control.mu.Lock()
	control.down, control.retired = 0, true
	control.mu.Unlock()
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("the retired processor did not exit; events %v", control.EventTypes())
	}
	types := control.EventTypes()
	if len(types) == 0 || types[len(types)-1] != contract.EventDrained || slices.Contains(types, contract.EventEnded) {
		t.Errorf("events %v: want drained last and no ended", types)
	}
	es := control.Entries()
	if !slices.ContainsFunc(es, func(e contract.Entry) bool { return e.Speaker == contract.SpeakerCandidate }) {
		t.Errorf("the spooled candidate speech was not delivered: %+v", es)
	}
	control.mu.Lock()
	defer control.mu.Unlock()
	for seq, k := range control.inserts {
		if k != 1 {
			t.Errorf("seq %d inserted %d times", seq, k)
		}
	}
	if len(control.recordings) == 0 {
		t.Errorf("the retired processor uploaded no recording")
	}
}
