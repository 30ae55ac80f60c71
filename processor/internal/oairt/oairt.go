// Package oairt is the client side of the OpenAI Realtime API's WebSocket
// transport (GA interface) shared by the openai-realtime interviewer and the
// openai-realtime speech engine: the URL, the dial, serialised writes with a
// deadline, audio appends, the server events both consume, and
// session.update acknowledgements. What each does with a session stays with it.
package oairt

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"candor/processor/contract"
)

// Rate is the only PCM rate the Realtime API speaks (audio/pcm), in and out.
const Rate = 24000

const (
	writeTimeout = 10 * time.Second
	ackTimeout   = 15 * time.Second
)

// URL is the Realtime WebSocket address under base (an OpenAI-compatible
// base URL, default https://api.openai.com, "/v1" suffix accepted) with
// query: model=… for a conversation, intent=transcription for transcription.
func URL(base string, query url.Values) (string, error) {
	u, err := url.Parse(contract.OpenAIBaseURL(base))
	if err != nil {
		return "", fmt.Errorf("OPENAI_BASE_URL: %w", err)
	}
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	case "http":
		u.Scheme = "ws"
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/v1/realtime"
	u.RawQuery = query.Encode()
	return u.String(), nil
}

// Conn is one Realtime session's connection. Writes may come from any
// goroutine; reads belong to the one goroutine that calls Read.
type Conn struct {
	ws  *websocket.Conn
	wmu sync.Mutex
	nEv int // client event ids (guarded by wmu)

	amu  sync.Mutex
	acks map[string]chan error // session.update event id → its answer
	dead error
}

// Dial opens a session at URL(base, query) with the API key.
func Dial(ctx context.Context, d *websocket.Dialer, base string, query url.Values, apiKey string) (*Conn, error) {
	u, err := URL(base, query)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	if apiKey != "" { // a local OpenAI-compatible server may take none
		h.Set("Authorization", "Bearer "+apiKey)
	}
	ws, resp, err := d.DialContext(ctx, u, h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("realtime connect: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("realtime connect: %w", err)
	}
	ws.SetReadLimit(16 << 20)
	return &Conn{ws: ws, acks: map[string]chan error{}}, nil
}

// Send writes one client event.
func (c *Conn) Send(ev any) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// AppendAudio sends 24 kHz mono samples (input_audio_buffer.append).
func (c *Conn) AppendAudio(pcm []int16) error {
	if len(pcm) == 0 {
		return nil
	}
	raw := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(v))
	}
	return c.Send(map[string]any{"type": "input_audio_buffer.append", "audio": base64.StdEncoding.EncodeToString(raw)})
}

// DecodeAudio decodes a base64 audio/pcm delta; ok is false for a malformed one.
func DecodeAudio(delta string) (pcm []int16, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(delta)
	if err != nil || len(raw)%2 != 0 {
		return nil, false
	}
	pcm = make([]int16, len(raw)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	return pcm, true
}

// Update sends session.update and waits for its session.updated (or the
// error naming its event id). The server handles events in order, so the
// answer also means every event sent before it has been handled: Update
// doubles as a barrier.
func (c *Conn) Update(ctx context.Context, session Session) error {
	ack := make(chan error, 1)
	c.wmu.Lock()
	c.nEv++
	id := fmt.Sprintf("candor_update_%06d", c.nEv)
	c.wmu.Unlock()
	c.amu.Lock()
	if c.dead != nil {
		c.amu.Unlock()
		return c.dead
	}
	c.acks[id] = ack
	c.amu.Unlock()
	if err := c.Send(map[string]any{"type": "session.update", "event_id": id, "session": session}); err != nil {
		c.amu.Lock()
		delete(c.acks, id)
		c.amu.Unlock()
		return err
	}
	t := time.NewTimer(ackTimeout)
	defer t.Stop()
	select {
	case err := <-ack:
		return err
	case <-t.C:
		return errors.New("no session.updated in time")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Read returns the next server event. When the connection ends it fails
// every pending Update with the returned error.
func (c *Conn) Read() (Event, error) {
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			err = fmt.Errorf("realtime session ended: %w", err)
			c.amu.Lock()
			c.dead = err
			for id, ack := range c.acks {
				ack <- err
				delete(c.acks, id)
			}
			c.amu.Unlock()
			return Event{}, err
		}
		var ev Event
		if json.Unmarshal(msg, &ev) != nil {
			continue
		}
		if c.answer(ev) {
			continue
		}
		return ev, nil
	}
}

// answer resolves the Update an event answers; it reports whether it did.
// session.updated does not name the update, so it answers the oldest.
func (c *Conn) answer(ev Event) bool {
	var id string
	switch {
	case ev.Type == "error" && ev.Error != nil:
		id = ev.Error.EventID
	case ev.Type == "session.updated":
		c.amu.Lock()
		for k := range c.acks {
			if id == "" || k < id {
				id = k
			}
		}
		c.amu.Unlock()
	}
	if id == "" {
		return false
	}
	c.amu.Lock()
	ack, ok := c.acks[id]
	delete(c.acks, id)
	c.amu.Unlock()
	if !ok {
		return false
	}
	if ev.Type == "error" {
		ack <- fmt.Errorf("%s: %s", ev.Error.Code, ev.Error.Message)
	} else {
		ack <- nil
	}
	return true
}

// Close says goodbye (a normal close frame) and closes the connection; a
// Read in progress returns.
func (c *Conn) Close() {
	c.wmu.Lock()
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	c.ws.Close()
}

// Abort closes the connection without a close frame.
func (c *Conn) Abort() { c.ws.Close() }

// Event holds the fields of the server events the clients consume.
type Event struct {
	Type           string `json:"type"`
	ItemID         string `json:"item_id"`
	PreviousItemID string `json:"previous_item_id"`
	ResponseID     string `json:"response_id"`
	AudioStartMS   int64  `json:"audio_start_ms"`
	AudioEndMS     int64  `json:"audio_end_ms"`
	Transcript     string `json:"transcript"`
	Delta          string `json:"delta"`
	Item           *struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Role string `json:"role"`
	} `json:"item"`
	Response *struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Output []struct {
			ID string `json:"id"`
		} `json:"output"`
	} `json:"response"`
	Error *struct {
		Type    string `json:"type"`
		Code    string `json:"code"`
		Message string `json:"message"`
		EventID string `json:"event_id"`
	} `json:"error"`
}

// IsNormalClose reports whether err is the peer's normal close.
func IsNormalClose(err error) bool {
	return websocket.IsCloseError(errors.Unwrap(err), websocket.CloseNormalClosure)
}
