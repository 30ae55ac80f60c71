package processor

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"candor/processor/contract"
)

// Caption is the JSON text frame /events clients (and the WHIP data channel)
// receive for every finalized entry.
type Caption struct {
	Type    string `json:"type"` // "caption"
	Speaker string `json:"speaker"`
	Text    string `json:"text"`
	Seq     int64  `json:"seq"`
	Final   bool   `json:"final"`
}

// StateMessage tells /events clients where the interview stands.
type StateMessage struct {
	Type  string `json:"type"`  // "state"
	State string `json:"state"` // "live" | "ended"
}

type frame struct {
	binary bool
	data   []byte
}

// eventHub fans captions, state and interviewer speech out to the candidate
// page's /events WebSockets. A client that cannot keep up is dropped rather
// than allowed to stall the interview.
type eventHub struct {
	mu      sync.Mutex
	clients map[*eventClient]struct{}
	closed  bool
	state   string
	wg      sync.WaitGroup // one per connection (its reader and writer)
}

type eventClient struct {
	conn *websocket.Conn
	send chan frame
	once sync.Once
}

const (
	eventSendBuffer   = 512
	eventWriteTimeout = 10 * time.Second
)

func newEventHub() *eventHub {
	return &eventHub{clients: make(map[*eventClient]struct{}), state: "live"}
}

// count is the number of connected clients.
func (h *eventHub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Serve runs one client until it disconnects or the hub closes.
func (h *eventHub) Serve(conn *websocket.Conn) {
	c := &eventClient{conn: conn, send: make(chan frame, eventSendBuffer)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		conn.Close()
		return
	}
	h.clients[c] = struct{}{}
	state, _ := json.Marshal(StateMessage{Type: "state", State: h.state})
	c.send <- frame{data: state}
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		h.writeLoop(c)
	}()
	conn.SetReadLimit(64 << 10)
	for {
		// Client frames carry nothing the processor needs; reading detects the close.
		if _, _, err := conn.ReadMessage(); err != nil {
			break
		}
	}
	h.drop(c)
	<-writerDone
}

func (h *eventHub) writeLoop(c *eventClient) {
	for f := range c.send {
		typ := websocket.TextMessage
		if f.binary {
			typ = websocket.BinaryMessage
		}
		c.conn.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
		if err := c.conn.WriteMessage(typ, f.data); err != nil {
			h.drop(c)
			return
		}
	}
}

// drop unregisters c and closes its connection (which ends its reader) and
// its send channel (which ends its writer). Safe to call more than once.
func (h *eventHub) drop(c *eventClient) {
	c.once.Do(func() {
		h.mu.Lock()
		delete(h.clients, c)
		close(c.send)
		h.mu.Unlock()
		c.conn.Close()
	})
}

func (h *eventHub) broadcast(f frame) {
	h.mu.Lock()
	var slow []*eventClient
	for c := range h.clients {
		select {
		case c.send <- f:
		default:
			slow = append(slow, c)
		}
	}
	h.mu.Unlock()
	for _, c := range slow {
		h.drop(c)
	}
}

// Caption sends an entry as a caption.
func (h *eventHub) Caption(e contract.Entry) {
	b, _ := json.Marshal(Caption{Type: "caption", Speaker: e.Speaker, Text: e.Text, Seq: e.Seq, Final: true})
	h.broadcast(frame{data: b})
}

// State records and sends the interview state.
func (h *eventHub) State(state string) {
	h.mu.Lock()
	h.state = state
	h.mu.Unlock()
	b, _ := json.Marshal(StateMessage{Type: "state", State: state})
	h.broadcast(frame{data: b})
}

// interruptJSON tells the candidate page to stop playing interviewer speech
// now and drop what it has queued (barge-in).
var interruptJSON = []byte(`{"type":"interrupt"}`)

// Interrupt sends the interrupt message.
func (h *eventHub) Interrupt() { h.broadcast(frame{data: interruptJSON}) }

// Speech sends interviewer speech as binary s16le PCM frames.
func (h *eventHub) Speech(pcm []int16) {
	for _, chunk := range pcmFrames(pcm, speechFrameSamples) {
		h.broadcast(frame{binary: true, data: chunk})
	}
}

// Close disconnects every client and waits for their goroutines.
func (h *eventHub) Close() {
	h.mu.Lock()
	h.closed = true
	clients := make([]*eventClient, 0, len(h.clients))
	for c := range h.clients {
		clients = append(clients, c)
	}
	h.mu.Unlock()
	for _, c := range clients {
		h.drop(c)
	}
	h.wg.Wait()
}

// speechFrameSamples is half a second of 16 kHz audio: small enough for a data
// channel message, large enough to keep frame counts low.
const speechFrameSamples = 8000

// pcmFrames encodes pcm as s16le byte frames of at most n samples.
func pcmFrames(pcm []int16, n int) [][]byte {
	var out [][]byte
	for len(pcm) > 0 {
		k := min(n, len(pcm))
		b := make([]byte, 2*k)
		for i, s := range pcm[:k] {
			b[2*i] = byte(s)
			b[2*i+1] = byte(uint16(s) >> 8)
		}
		out = append(out, b)
		pcm = pcm[k:]
	}
	return out
}
