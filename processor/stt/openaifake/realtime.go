package openaifake

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The Realtime API (GA interface) over WebSocket at /v1/realtime, both
// session types:
//   - conversations (?model=…, session.type "realtime"): audio.input and
//     audio.output formats, server VAD with create_response and
//     interrupt_response, input transcription, responses streamed as
//     response.output_audio.delta and response.output_audio_transcript.done,
//     response.cancel and conversation.item.truncate. The "model" answers
//     every user turn (and response.create) with Options.Reply, spoken as a
//     tone whose length follows the text.
//   - transcription (?intent=transcription, session.type "transcription"):
//     audio.input only; every turn the VAD (or a commit) ends is transcribed.
//
// It refuses the beta shapes (transcription_session.update, flat
// input_audio_format, modalities, the OpenAI-Beta header) the way the GA
// service does, so tests against it catch clients that speak the old dialect.

// Rate is the only PCM rate the Realtime API speaks, in and out.
const Rate = 24000

const (
	vadFrame   = Rate / 100 // 10 ms VAD frames
	vadLoudRMS = 1000       // frame RMS that counts as speech
	minCommit  = Rate / 10  // 100 ms: less is input_audio_buffer_commit_empty
	toneHz     = 220
	toneAmp    = 3000
)

// Session is one Realtime connection as the server saw it.
type Session struct {
	ID, Model       string
	Type            string         // "realtime" (a conversation) | "transcription"
	Updates         int            // session.update events accepted
	Config          map[string]any // effective session configuration
	Audio           []int16        // all input audio appended, 24 kHz
	Items           []Item         // conversation items in conversation order
	ResponseCreates int            // response.create events received
	Cancels         int            // response.cancel events received
	Truncations     []Truncation
	Expired         bool
	ClosedClean     bool
}

// Instructions returns the session's instructions.
func (s Session) Instructions() string { v, _ := s.Config["instructions"].(string); return v }

// Item is one conversation item.
type Item struct {
	ID, PreviousID string
	Role           string // user | assistant
	Transcript     string
	// User items: the turn's audio span in session audio ms.
	AudioStartMS, AudioEndMS int64
	// Assistant items: samples of speech generated and the response status.
	Samples int
	Status  string // in_progress | completed | incomplete
}

// Truncation is one accepted conversation.item.truncate.
type Truncation struct {
	ItemID       string
	ContentIndex int
	AudioEndMS   int64
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func httpError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "code": code}})
}

func (s *Server) realtime(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.opts.APIKey {
		httpError(w, http.StatusUnauthorized, "invalid_api_key", "Incorrect API key provided.")
		return
	}
	if r.Header.Get("OpenAI-Beta") != "" {
		httpError(w, http.StatusBadRequest, "beta_not_supported", "the fake serves only the GA Realtime interface: drop the OpenAI-Beta header")
		return
	}
	q := r.URL.Query()
	model, kind := q.Get("model"), "realtime"
	switch intent := q.Get("intent"); intent {
	case "transcription":
		if model != "" {
			httpError(w, http.StatusBadRequest, "invalid_request", "a transcription session takes no 'model' in the URL: name the transcription model in session.audio.input.transcription")
			return
		}
		kind = "transcription"
	case "", "realtime":
		if model == "" {
			httpError(w, http.StatusBadRequest, "missing_model", "Missing required parameter: 'model'.")
			return
		}
	default:
		httpError(w, http.StatusBadRequest, "invalid_value", "Invalid value for 'intent': "+intent+".")
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	sess := &Session{ID: fmt.Sprintf("sess_%03d", len(s.sessions)+1), Model: model, Type: kind, Config: defaultConfig(kind, model)}
	s.sessions = append(s.sessions, sess)
	s.conns[conn] = true
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	c := &sessionConn{srv: s, ws: conn, sess: sess}
	c.serve()
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
}

func defaultConfig(kind, model string) map[string]any {
	pcm := map[string]any{"type": "audio/pcm", "rate": float64(Rate)}
	if kind == "transcription" {
		return map[string]any{
			"type":   "transcription",
			"object": "realtime.session",
			"audio": map[string]any{
				"input": map[string]any{
					"format":         pcm,
					"transcription":  map[string]any{"model": "gpt-4o-transcribe"},
					"turn_detection": map[string]any{"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": float64(300), "silence_duration_ms": float64(500)},
				},
			},
		}
	}
	return map[string]any{
		"type":              "realtime",
		"object":            "realtime.session",
		"model":             model,
		"instructions":      "",
		"output_modalities": []any{"audio"},
		"audio": map[string]any{
			"input": map[string]any{
				"format":         map[string]any{"type": "audio/pcm", "rate": float64(Rate)},
				"transcription":  nil,
				"turn_detection": map[string]any{"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": float64(300), "silence_duration_ms": float64(500), "create_response": true, "interrupt_response": true},
			},
			"output": map[string]any{
				"format": map[string]any{"type": "audio/pcm", "rate": float64(Rate)},
				"voice":  "alloy",
				"speed":  1.0,
			},
		},
	}
}

// sessionConn is one session's connection. srv.mu guards the session and the
// VAD/response state below; wmu serialises writes.
type sessionConn struct {
	srv  *Server
	ws   *websocket.Conn
	sess *Session
	wmu  sync.Mutex
	wg   sync.WaitGroup // transcriptions and responses
	nEv  int

	bufStart    int64 // first input sample not yet committed
	inSpeech    bool
	speechStart int64
	lastLoud    int64
	partial     []int16
	itemID      string // the user item being spoken
	nItems      int
	lastItemID  string
	userTurns   int
	responses   int
	active      *response
	audioOut    bool // some audio was generated (voice is fixed from then on)
}

type response struct {
	id, itemID string
	cancel     chan struct{}
	cancelled  bool
}

func (c *sessionConn) send(ev map[string]any) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nEv++
	ev["event_id"] = fmt.Sprintf("event_%s_%d", c.sess.ID, c.nEv)
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.ws.WriteJSON(ev)
}

func (c *sessionConn) sendError(code, msg, eventID string) {
	e := map[string]any{"type": "invalid_request_error", "code": code, "message": msg, "param": nil}
	if eventID != "" {
		e["event_id"] = eventID
	}
	c.send(map[string]any{"type": "error", "error": e})
}

func (c *sessionConn) sessionObject() map[string]any {
	obj := map[string]any{"id": c.sess.ID}
	for k, v := range c.sess.Config {
		obj[k] = v
	}
	return obj
}

func (c *sessionConn) serve() {
	defer func() {
		c.srv.mu.Lock()
		if c.active != nil {
			c.stopResponse()
		}
		c.srv.mu.Unlock()
		c.wg.Wait()
		c.ws.Close()
	}()
	c.srv.mu.Lock()
	obj := c.sessionObject()
	c.srv.mu.Unlock()
	c.send(map[string]any{"type": "session.created", "session": obj})
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				c.srv.mu.Lock()
				c.sess.ClosedClean = true
				c.srv.mu.Unlock()
			}
			return
		}
		var ev struct {
			Type         string          `json:"type"`
			EventID      string          `json:"event_id"`
			Session      json.RawMessage `json:"session"`
			Audio        *string         `json:"audio"`
			ItemID       string          `json:"item_id"`
			ContentIndex int             `json:"content_index"`
			AudioEndMS   *int64          `json:"audio_end_ms"`
			ResponseID   string          `json:"response_id"`
			Response     json.RawMessage `json:"response"`
		}
		if err := json.Unmarshal(msg, &ev); err != nil {
			c.sendError("invalid_json", "could not parse event: "+err.Error(), "")
			continue
		}
		c.srv.mu.Lock()
		ok := true
		switch ev.Type {
		case "session.update":
			c.update(ev.Session, ev.EventID)
		case "input_audio_buffer.append":
			if ev.Audio == nil {
				c.sendError("missing_required_parameter", "Missing required parameter: 'audio'.", ev.EventID)
				break
			}
			ok = c.appendAudio(*ev.Audio, ev.EventID)
		case "input_audio_buffer.commit":
			c.commitManual(ev.EventID)
		case "input_audio_buffer.clear":
			c.bufStart, c.inSpeech, c.partial = int64(len(c.sess.Audio)), false, nil
			c.send(map[string]any{"type": "input_audio_buffer.cleared"})
		case "response.create", "response.cancel", "conversation.item.truncate":
			if c.sess.Type != "realtime" {
				c.sendError("invalid_value", fmt.Sprintf("Invalid value: '%s'. A transcription session has no responses.", ev.Type), ev.EventID)
				break
			}
			c.conversationEvent(ev.Type, ev.ResponseID, ev.ItemID, ev.ContentIndex, ev.AudioEndMS, ev.EventID)
		default:
			c.sendError("invalid_value", fmt.Sprintf("Invalid value: '%s'. The fake does not support this event type.", ev.Type), ev.EventID)
		}
		c.srv.mu.Unlock()
		if !ok {
			return
		}
	}
}

// conversationEvent handles the events only a conversation has. srv.mu is held.
func (c *sessionConn) conversationEvent(typ, responseID, itemID string, contentIndex int, audioEndMS *int64, eventID string) {
	switch typ {
	case "response.create":
		c.sess.ResponseCreates++
		if c.active != nil {
			c.sendError("conversation_already_has_active_response", "Conversation already has an active response in progress: "+c.active.id+". Wait until the response is finished before creating a new one.", eventID)
			return
		}
		c.startResponse()
	case "response.cancel":
		c.sess.Cancels++
		if c.active == nil || (responseID != "" && responseID != c.active.id) {
			c.sendError("response_cancel_not_active", "Cancellation failed: no active response found", eventID)
			return
		}
		c.stopResponse()
	case "conversation.item.truncate":
		c.truncate(itemID, contentIndex, audioEndMS, eventID)
	}
}

// sessionFields are the GA session fields of each session type; anything
// else is refused as the service refuses unknown parameters (this is what
// catches beta clients).
var sessionFields = map[string][]string{
	"realtime":      {"type", "model", "instructions", "output_modalities", "audio", "tools", "tool_choice", "max_output_tokens", "tracing", "truncation", "prompt", "include"},
	"transcription": {"type", "audio", "include"},
}

func (c *sessionConn) update(raw json.RawMessage, eventID string) {
	var upd map[string]any
	if err := json.Unmarshal(raw, &upd); err != nil || upd == nil {
		c.sendError("invalid_value", "Invalid type for 'session': expected an object.", eventID)
		return
	}
	kind := c.sess.Type
	for k := range upd {
		if !slices.Contains(sessionFields[kind], k) {
			c.sendError("unknown_parameter", fmt.Sprintf("Unknown parameter: 'session.%s'.", k), eventID)
			return
		}
	}
	if upd["type"] != kind {
		c.sendError("invalid_value", fmt.Sprintf("session.type must be '%s' in a %s session.", kind, kind), eventID)
		return
	}
	if m, ok := upd["output_modalities"]; ok {
		if l, _ := m.([]any); len(l) != 1 || l[0] != "audio" {
			c.sendError("invalid_value", "the fake generates audio only: output_modalities must be [\"audio\"]", eventID)
			return
		}
	}
	cfgAudio := c.sess.Config["audio"].(map[string]any)
	if a, ok := upd["audio"]; ok {
		audio, _ := a.(map[string]any)
		if audio == nil {
			c.sendError("invalid_value", "Invalid type for 'session.audio': expected an object.", eventID)
			return
		}
		for dir := range audio {
			if dir != "input" && (dir != "output" || kind != "realtime") {
				c.sendError("unknown_parameter", fmt.Sprintf("Unknown parameter: 'session.audio.%s'.", dir), eventID)
				return
			}
		}
		for _, dir := range []string{"input", "output"} {
			d, ok := audio[dir]
			if !ok {
				continue
			}
			part, _ := d.(map[string]any)
			if part == nil {
				c.sendError("invalid_value", "Invalid type for 'session.audio."+dir+"': expected an object.", eventID)
				return
			}
			if f, ok := part["format"]; ok {
				fm, _ := f.(map[string]any)
				if fm == nil || fm["type"] != "audio/pcm" {
					c.sendError("invalid_value", "session.audio."+dir+".format.type: the fake accepts only audio/pcm", eventID)
					return
				}
				if r, ok := fm["rate"]; ok && r != float64(Rate) {
					c.sendError("invalid_value", "session.audio."+dir+".format.rate: only 24000 is supported", eventID)
					return
				}
			}
			if dir == "input" {
				if td, ok := part["turn_detection"]; ok && td != nil {
					m, _ := td.(map[string]any)
					if m == nil || (m["type"] != "server_vad" && m["type"] != "semantic_vad") {
						c.sendError("invalid_value", "session.audio.input.turn_detection.type must be server_vad or semantic_vad", eventID)
						return
					}
					_, cr := m["create_response"]
					_, ir := m["interrupt_response"]
					if kind == "transcription" && (cr || ir) {
						c.sendError("unknown_parameter", "a transcription session has no responses: drop create_response and interrupt_response", eventID)
						return
					}
				}
				if tr, ok := part["transcription"]; ok && tr != nil {
					m, _ := tr.(map[string]any)
					if model, _ := m["model"].(string); model == "" {
						c.sendError("missing_required_parameter", "Missing required parameter: 'session.audio.input.transcription.model'.", eventID)
						return
					}
				}
			}
			if dir == "output" {
				if v, ok := part["voice"]; ok && c.audioOut && v != cfgAudio["output"].(map[string]any)["voice"] {
					c.sendError("cannot_update_voice", "Cannot update a conversation's voice if assistant audio is present.", eventID)
					return
				}
			}
		}
	}
	for k, v := range upd {
		if k == "audio" {
			for dir, d := range v.(map[string]any) {
				cur, _ := cfgAudio[dir].(map[string]any)
				if cur == nil {
					cur = map[string]any{}
					cfgAudio[dir] = cur
				}
				for kk, vv := range d.(map[string]any) {
					cur[kk] = vv
				}
			}
			continue
		}
		c.sess.Config[k] = v
	}
	c.sess.Updates++
	c.send(map[string]any{"type": "session.updated", "session": c.sessionObject()})
}

func (c *sessionConn) input() map[string]any {
	return c.sess.Config["audio"].(map[string]any)["input"].(map[string]any)
}

func (c *sessionConn) turnDetection() map[string]any {
	td, _ := c.input()["turn_detection"].(map[string]any)
	return td
}

func num(m map[string]any, k string, def int64) int64 {
	if v, ok := m[k].(float64); ok {
		return int64(v)
	}
	return def
}

func flag(m map[string]any, k string) bool {
	v, ok := m[k].(bool)
	return !ok || v // create_response and interrupt_response default to true
}

func ms(samples int64) int64 { return samples * 1000 / Rate }

// appendAudio adds audio and runs server VAD; false ends the connection.
func (c *sessionConn) appendAudio(b64, eventID string) bool {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw)%2 != 0 {
		c.sendError("invalid_value", "Invalid 'audio'. Expected base64-encoded audio/pcm.", eventID)
		return true
	}
	pcm := make([]int16, len(raw)/2)
	binary.Decode(raw, binary.LittleEndian, pcm)
	c.sess.Audio = append(c.sess.Audio, pcm...)
	n := int64(len(c.sess.Audio))
	if limit := c.srv.opts.MaxSessionAudio; limit > 0 && time.Duration(n)*time.Second/Rate > limit {
		c.sess.Expired = true
		c.sendError("session_expired", "Your session hit the maximum duration of 60 minutes.", "")
		return false
	}
	td := c.turnDetection()
	if td == nil {
		return true
	}
	prefix, silence := num(td, "prefix_padding_ms", 300), num(td, "silence_duration_ms", 500)
	c.partial = append(c.partial, pcm...)
	pos := n - int64(len(c.partial))
	for len(c.partial) >= vadFrame {
		var sum float64
		for _, v := range c.partial[:vadFrame] {
			sum += float64(v) * float64(v)
		}
		loud := math.Sqrt(sum/vadFrame) >= vadLoudRMS
		end := pos + vadFrame
		switch {
		case loud && !c.inSpeech:
			c.inSpeech = true
			c.speechStart = max(pos-prefix*Rate/1000, c.bufStart)
			c.lastLoud = end
			c.itemID = c.newItemID()
			c.send(map[string]any{"type": "input_audio_buffer.speech_started", "audio_start_ms": ms(c.speechStart), "item_id": c.itemID})
			if c.active != nil && c.sess.Type == "realtime" && flag(td, "interrupt_response") {
				c.stopResponse()
			}
		case loud:
			c.lastLoud = end
		case c.inSpeech && end-c.lastLoud >= silence*Rate/1000:
			c.inSpeech = false
			c.send(map[string]any{"type": "input_audio_buffer.speech_stopped", "audio_end_ms": ms(c.lastLoud), "item_id": c.itemID})
			c.commit(c.itemID, c.speechStart, c.lastLoud, end)
			if c.sess.Type == "realtime" && flag(td, "create_response") && c.active == nil {
				c.startResponse()
			}
		}
		c.partial = c.partial[vadFrame:]
		pos = end
	}
	return true
}

func (c *sessionConn) newItemID() string {
	c.nItems++
	return fmt.Sprintf("item_%s_%03d", c.sess.ID, c.nItems)
}

func (c *sessionConn) commitManual(eventID string) {
	end := int64(len(c.sess.Audio))
	if end-c.bufStart < minCommit {
		c.sendError("input_audio_buffer_commit_empty", fmt.Sprintf("Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has %dms of audio.", ms(end-c.bufStart)), eventID)
		return
	}
	id, start := c.itemID, c.bufStart
	if c.inSpeech {
		start = c.speechStart
	} else {
		id = c.newItemID()
	}
	c.inSpeech = false
	c.partial = nil
	c.commit(id, start, end, end)
}

// commit adds the user item for audio [start, end) and schedules its
// transcription when the session asks for one. srv.mu is held.
func (c *sessionConn) commit(id string, start, end, next int64) {
	var prev any
	if c.lastItemID != "" {
		prev = c.lastItemID
	}
	c.send(map[string]any{"type": "input_audio_buffer.committed", "item_id": id, "previous_item_id": prev})
	item := map[string]any{"id": id, "object": "realtime.item", "type": "message", "status": "completed", "role": "user",
		"content": []any{map[string]any{"type": "input_audio", "transcript": nil}}}
	c.send(map[string]any{"type": "conversation.item.added", "previous_item_id": prev, "item": item})
	c.send(map[string]any{"type": "conversation.item.done", "previous_item_id": prev, "item": item})
	audio := slices.Clone(c.sess.Audio[start:end])
	idx := len(c.sess.Items)
	c.sess.Items = append(c.sess.Items, Item{ID: id, PreviousID: c.lastItemID, Role: "user", AudioStartMS: ms(start), AudioEndMS: ms(end), Status: "completed"})
	c.lastItemID = id
	c.bufStart = next
	turn := c.userTurns
	c.userTurns++
	if tr, _ := c.input()["transcription"].(map[string]any); tr == nil {
		return
	}
	var delay time.Duration
	if c.srv.opts.TranscriptionDelay != nil {
		delay = c.srv.opts.TranscriptionDelay(turn)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		time.Sleep(delay)
		text := c.srv.opts.Transcribe(audio, Rate)
		c.srv.mu.Lock()
		c.sess.Items[idx].Transcript = text
		c.srv.mu.Unlock()
		c.send(map[string]any{"type": "conversation.item.input_audio_transcription.completed", "item_id": id, "content_index": 0, "transcript": text})
	}()
}

// startResponse begins streaming the model's next answer. srv.mu is held.
func (c *sessionConn) startResponse() {
	n := c.responses
	c.responses++
	text := c.srv.opts.Reply(n, c.sess.Instructions())
	r := &response{id: fmt.Sprintf("resp_%s_%03d", c.sess.ID, n+1), itemID: c.newItemID(), cancel: make(chan struct{})}
	c.active = r
	c.audioOut = true
	idx := len(c.sess.Items)
	c.sess.Items = append(c.sess.Items, Item{ID: r.itemID, PreviousID: c.lastItemID, Role: "assistant", Status: "in_progress"})
	prev := c.lastItemID
	c.lastItemID = r.itemID
	samples := int(int64(len(text)) * int64(c.srv.opts.SpeechPerChar) * Rate / int64(time.Second))
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.stream(r, idx, prev, text, samples)
	}()
}

// stopResponse cancels the active response. srv.mu is held.
func (c *sessionConn) stopResponse() {
	if c.active == nil {
		return
	}
	c.active.cancelled = true
	close(c.active.cancel)
	c.active = nil
}

func (c *sessionConn) stream(r *response, idx int, prev, text string, total int) {
	item := func(status string) map[string]any {
		return map[string]any{"id": r.itemID, "object": "realtime.item", "type": "message", "status": status, "role": "assistant",
			"content": []any{map[string]any{"type": "output_audio", "transcript": ""}}}
	}
	base := map[string]any{"response_id": r.id, "item_id": r.itemID, "output_index": 0, "content_index": 0}
	with := func(typ string, kv ...any) map[string]any {
		ev := map[string]any{"type": typ}
		for k, v := range base {
			ev[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			ev[kv[i].(string)] = kv[i+1]
		}
		return ev
	}
	c.send(map[string]any{"type": "response.created", "response": map[string]any{"id": r.id, "object": "realtime.response", "status": "in_progress", "output": []any{}}})
	c.send(map[string]any{"type": "response.output_item.added", "response_id": r.id, "output_index": 0, "item": item("in_progress")})
	c.send(map[string]any{"type": "conversation.item.added", "previous_item_id": prev, "item": item("in_progress")})
	c.send(with("response.content_part.added", "part", map[string]any{"type": "audio", "transcript": ""}))
	c.send(with("response.output_audio_transcript.delta", "delta", text))

	sent := 0
	cancelled := false
	for sent < total && !cancelled {
		n := min(Rate/10, total-sent)
		pcm := make([]int16, n)
		for i := range pcm {
			pcm[i] = int16(toneAmp * math.Sin(2*math.Pi*toneHz*float64(sent+i)/Rate))
		}
		raw := make([]byte, 2*n)
		for i, v := range pcm {
			binary.LittleEndian.PutUint16(raw[2*i:], uint16(v))
		}
		select {
		case <-r.cancel:
			cancelled = true
			continue
		default:
		}
		c.send(with("response.output_audio.delta", "delta", base64.StdEncoding.EncodeToString(raw)))
		sent += n
		c.srv.mu.Lock()
		c.sess.Items[idx].Samples = sent
		c.srv.mu.Unlock()
		if c.srv.opts.AudioPace > 0 {
			select {
			case <-r.cancel:
				cancelled = true
			case <-time.After(c.srv.opts.AudioPace):
			}
		}
	}
	select {
	case <-r.cancel:
		cancelled = true
	default:
	}
	transcript := text
	status, itemStatus := "completed", "completed"
	if cancelled {
		// The service reports the text generated so far; the fake cuts the
		// text where the audio stopped.
		words := strings.Fields(text)
		keep := 0
		if total > 0 {
			keep = len(words) * sent / total
		}
		transcript = strings.Join(words[:keep], " ")
		status, itemStatus = "cancelled", "incomplete"
	}
	c.srv.mu.Lock()
	c.sess.Items[idx].Transcript = transcript
	c.sess.Items[idx].Status = itemStatus
	if c.active == r {
		c.active = nil
	}
	c.srv.mu.Unlock()
	c.send(with("response.output_audio.done"))
	c.send(with("response.output_audio_transcript.done", "transcript", transcript))
	c.send(with("response.content_part.done", "part", map[string]any{"type": "audio", "transcript": transcript}))
	c.send(map[string]any{"type": "response.output_item.done", "response_id": r.id, "output_index": 0, "item": item(itemStatus)})
	c.send(map[string]any{"type": "conversation.item.done", "previous_item_id": prev, "item": item(itemStatus)})
	done := map[string]any{"id": r.id, "object": "realtime.response", "status": status, "output": []any{item(itemStatus)}}
	if cancelled {
		done["status_details"] = map[string]any{"type": "cancelled", "reason": "turn_detected"}
	}
	c.send(map[string]any{"type": "response.done", "response": done})
}

func (c *sessionConn) truncate(itemID string, contentIndex int, audioEndMS *int64, eventID string) {
	i := slices.IndexFunc(c.sess.Items, func(it Item) bool { return it.ID == itemID })
	switch {
	case i < 0:
		c.sendError("item_not_found", fmt.Sprintf("Item with item_id '%s' not found.", itemID), eventID)
		return
	case c.sess.Items[i].Role != "assistant":
		c.sendError("invalid_value", "Only assistant messages can be truncated.", eventID)
		return
	case contentIndex != 0:
		c.sendError("invalid_value", "content_index must be 0.", eventID)
		return
	case audioEndMS == nil || *audioEndMS < 0:
		c.sendError("missing_required_parameter", "Missing required parameter: 'audio_end_ms'.", eventID)
		return
	case *audioEndMS > ms(int64(c.sess.Items[i].Samples)):
		c.sendError("invalid_value", fmt.Sprintf("audio_end_ms %d is longer than the item's audio (%d ms).", *audioEndMS, ms(int64(c.sess.Items[i].Samples))), eventID)
		return
	}
	c.sess.Truncations = append(c.sess.Truncations, Truncation{ItemID: itemID, ContentIndex: contentIndex, AudioEndMS: *audioEndMS})
	c.sess.Items[i].Transcript = "" // the service drops text the user did not hear
	c.send(map[string]any{"type": "conversation.item.truncated", "item_id": itemID, "content_index": contentIndex, "audio_end_ms": *audioEndMS})
}
