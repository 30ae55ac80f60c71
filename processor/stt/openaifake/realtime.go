package openaifake

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	rtRate     = 24000
	rtFrame    = rtRate / 100 // 10 ms VAD frames
	rtLoudRMS  = 1000         // frame RMS that counts as speech
	minCommitS = rtRate / 10  // 100 ms: less is input_audio_buffer_commit_empty
)

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// rtConn is one Realtime transcription session.
type rtConn struct {
	srv  *Server
	conn *websocket.Conn
	sess *Session
	wmu  sync.Mutex
	wg   sync.WaitGroup

	// server VAD configuration
	prefixMS, silenceMS int64
	vadOn               bool

	// VAD state, in 24 kHz samples since the session start
	bufStart    int64 // first sample not yet committed
	inSpeech    bool
	speechStart int64
	lastLoud    int64
	partial     []int16
	itemID      string
	nItems      int
	lastItemID  string
	nEvents     int
}

func (s *Server) realtime(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.opts.APIKey {
		apiError(w, http.StatusUnauthorized, "invalid_request_error", "", "Incorrect API key provided.")
		return
	}
	if r.URL.Query().Get("intent") != "transcription" {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "intent", "the fake serves only ?intent=transcription")
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	sess := &Session{ID: fmt.Sprintf("sess_%03d", len(s.sessions)+1), Config: defaultSession()}
	s.sessions = append(s.sessions, sess)
	s.conns[conn] = true
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
	}()
	c := &rtConn{srv: s, conn: conn, sess: sess, prefixMS: 300, silenceMS: 500, vadOn: true}
	defer s.wg.Done()
	c.serve()
}

func defaultSession() map[string]any {
	return map[string]any{
		"input_audio_format":        "pcm16",
		"input_audio_transcription": map[string]any{"model": "gpt-4o-transcribe"},
		"turn_detection":            map[string]any{"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500},
		"modalities":                []string{"text"},
	}
}

func (c *rtConn) send(ev map[string]any) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nEvents++
	ev["event_id"] = fmt.Sprintf("event_%s_%d", c.sess.ID, c.nEvents)
	c.conn.WriteJSON(ev)
}

func (c *rtConn) sendError(code, msg string) {
	c.send(map[string]any{"type": "error", "error": map[string]any{"type": "invalid_request_error", "code": code, "message": msg}})
}

func (c *rtConn) sessionObject() map[string]any {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	obj := map[string]any{"id": c.sess.ID, "object": "realtime.transcription_session"}
	for k, v := range c.sess.Config {
		obj[k] = v
	}
	return obj
}

func (c *rtConn) serve() {
	defer func() {
		c.wg.Wait() // pending delayed completions
		c.conn.Close()
	}()
	c.send(map[string]any{"type": "transcription_session.created", "session": c.sessionObject()})
	for {
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				c.srv.mu.Lock()
				c.sess.ClosedClean = true
				c.srv.mu.Unlock()
			}
			return
		}
		var ev struct {
			Type    string          `json:"type"`
			Audio   *string         `json:"audio"`
			Session json.RawMessage `json:"session"`
		}
		if err := json.Unmarshal(msg, &ev); err != nil {
			c.sendError("invalid_json", "could not parse event: "+err.Error())
			continue
		}
		switch ev.Type {
		case "transcription_session.update":
			c.update(ev.Session)
		case "input_audio_buffer.append":
			if ev.Audio == nil {
				c.sendError("missing_required_parameter", "missing required parameter 'audio'")
				continue
			}
			if !c.appendAudio(*ev.Audio) {
				return
			}
		case "input_audio_buffer.commit":
			c.commitManual()
		case "input_audio_buffer.clear":
			c.bufStart, c.inSpeech, c.partial = c.total(), false, nil
			c.send(map[string]any{"type": "input_audio_buffer.cleared"})
		default:
			c.sendError("invalid_value", fmt.Sprintf("unknown or unsupported event type %q", ev.Type))
		}
	}
}

func (c *rtConn) update(raw json.RawMessage) {
	var upd map[string]json.RawMessage
	if err := json.Unmarshal(raw, &upd); err != nil {
		c.sendError("invalid_value", "session must be an object")
		return
	}
	if f, ok := upd["input_audio_format"]; ok {
		var v string
		json.Unmarshal(f, &v)
		if v != "pcm16" && v != "g711_ulaw" && v != "g711_alaw" {
			c.sendError("invalid_value", "input_audio_format must be pcm16, g711_ulaw or g711_alaw")
			return
		}
		if v != "pcm16" {
			c.sendError("invalid_value", "the fake accepts only pcm16")
			return
		}
	}
	var td *struct {
		Type              string   `json:"type"`
		Threshold         *float64 `json:"threshold"`
		PrefixPaddingMS   *int64   `json:"prefix_padding_ms"`
		SilenceDurationMS *int64   `json:"silence_duration_ms"`
	}
	if f, ok := upd["turn_detection"]; ok {
		if err := json.Unmarshal(f, &td); err != nil {
			c.sendError("invalid_value", "turn_detection: "+err.Error())
			return
		}
		if td != nil && td.Type != "server_vad" && td.Type != "semantic_vad" {
			c.sendError("invalid_value", "turn_detection.type must be server_vad or semantic_vad")
			return
		}
	}
	if f, ok := upd["input_audio_transcription"]; ok {
		var tr struct {
			Model string `json:"model"`
		}
		if json.Unmarshal(f, &tr) != nil || tr.Model == "" {
			c.sendError("invalid_value", "input_audio_transcription.model is required")
			return
		}
	}
	c.vadOn = true
	if _, ok := upd["turn_detection"]; ok && td == nil {
		c.vadOn = false
	}
	if td != nil {
		if td.PrefixPaddingMS != nil {
			c.prefixMS = *td.PrefixPaddingMS
		}
		if td.SilenceDurationMS != nil {
			c.silenceMS = *td.SilenceDurationMS
		}
	}
	c.srv.mu.Lock()
	for k, v := range upd {
		var x any
		json.Unmarshal(v, &x)
		c.sess.Config[k] = x
	}
	c.sess.Updates++
	c.srv.mu.Unlock()
	c.send(map[string]any{"type": "transcription_session.updated", "session": c.sessionObject()})
}

func (c *rtConn) total() int64 {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	return int64(len(c.sess.Audio))
}

func ms(samples int64) int64 { return samples * 1000 / rtRate }

// appendAudio adds audio and runs the VAD; false means the session expired.
func (c *rtConn) appendAudio(b64 string) bool {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw)%2 != 0 {
		c.sendError("invalid_value", "audio must be base64-encoded pcm16")
		return true
	}
	pcm := make([]int16, len(raw)/2)
	binary.Decode(raw, binary.LittleEndian, pcm)
	c.srv.mu.Lock()
	c.sess.Audio = append(c.sess.Audio, pcm...)
	n := int64(len(c.sess.Audio))
	c.srv.mu.Unlock()
	if max := c.srv.opts.MaxSessionAudio; max > 0 && time.Duration(n)*time.Second/rtRate > max {
		c.srv.mu.Lock()
		c.sess.Expired = true
		c.srv.mu.Unlock()
		c.sendError("session_expired", "Your session hit the maximum duration of 60 minutes.")
		return false
	}
	if !c.vadOn {
		return true
	}
	c.partial = append(c.partial, pcm...)
	pos := n - int64(len(c.partial)) // session sample of partial[0]
	for len(c.partial) >= rtFrame {
		f := c.partial[:rtFrame]
		var sum float64
		for _, v := range f {
			sum += float64(v) * float64(v)
		}
		loud := math.Sqrt(sum/rtFrame) >= rtLoudRMS
		end := pos + rtFrame
		switch {
		case loud && !c.inSpeech:
			c.inSpeech = true
			c.speechStart = max(pos-c.prefixMS*rtRate/1000, c.bufStart)
			c.lastLoud = end
			c.itemID = c.newItemID()
			c.send(map[string]any{"type": "input_audio_buffer.speech_started", "audio_start_ms": ms(c.speechStart), "item_id": c.itemID})
		case loud:
			c.lastLoud = end
		case c.inSpeech && end-c.lastLoud >= c.silenceMS*rtRate/1000:
			c.inSpeech = false
			c.send(map[string]any{"type": "input_audio_buffer.speech_stopped", "audio_end_ms": ms(c.lastLoud), "item_id": c.itemID})
			c.commit(c.itemID, c.speechStart, c.lastLoud, end)
		}
		c.partial = c.partial[rtFrame:]
		pos = end
	}
	return true
}

func (c *rtConn) newItemID() string {
	c.nItems++
	return fmt.Sprintf("item_%s_%03d", c.sess.ID, c.nItems)
}

// commitManual handles input_audio_buffer.commit.
func (c *rtConn) commitManual() {
	end := c.total()
	if end-c.bufStart < minCommitS {
		c.sendError("input_audio_buffer_commit_empty", fmt.Sprintf("Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has %dms of audio.", ms(end-c.bufStart)))
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

// commit creates the item for audio [start, end), moves the buffer start to
// next and schedules the transcription.
func (c *rtConn) commit(id string, start, end, next int64) {
	prev := any(nil)
	if c.lastItemID != "" {
		prev = c.lastItemID
	}
	c.send(map[string]any{"type": "input_audio_buffer.committed", "item_id": id, "previous_item_id": prev})
	c.send(map[string]any{"type": "conversation.item.created", "previous_item_id": prev, "item": map[string]any{
		"id": id, "object": "realtime.item", "type": "message", "status": "completed", "role": "user",
		"content": []any{map[string]any{"type": "input_audio", "transcript": nil}},
	}})
	c.srv.mu.Lock()
	audio := append([]int16(nil), c.sess.Audio[start:end]...)
	idx := len(c.sess.Items)
	c.sess.Items = append(c.sess.Items, Item{ID: id, PreviousID: c.lastItemID, StartMS: ms(start), EndMS: ms(end)})
	c.srv.mu.Unlock()
	c.lastItemID = id
	c.bufStart = next
	var delay time.Duration
	if c.srv.opts.CompletionDelay != nil {
		delay = c.srv.opts.CompletionDelay(idx)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		time.Sleep(delay)
		text := c.srv.opts.Transcribe(audio, rtRate)
		c.srv.mu.Lock()
		c.sess.Items[idx].Transcript = text
		c.srv.mu.Unlock()
		c.send(map[string]any{"type": "conversation.item.input_audio_transcription.completed", "item_id": id, "content_index": 0, "transcript": text})
	}()
}
