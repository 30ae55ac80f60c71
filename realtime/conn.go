package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

var errConnClosed = errors.New("realtime: connection closed")

// CloseRevoked is the close code of a connection whose credential stopped
// being valid (session ended, member removed, role changed, API key
// revoked): the client should sign in again, not reconnect (README).
const CloseRevoked = 4401

// CloseError, as the cause of the cancellation of Serve's context
// (context.WithCancelCause), is the close frame the client receives.
type CloseError struct {
	Code int
	Text string
}

func (e *CloseError) Error() string { return fmt.Sprintf("realtime: closed %d: %s", e.Code, e.Text) }

// conn is one WebSocket client: a read goroutine (the Serve caller) that
// handles client frames, and a write goroutine that drains the outbox.
type conn struct {
	hub    *Hub
	ws     *websocket.Conn
	viewer Viewer
	auth   Authorizer
	out    outbox
	subs   map[string]*subscription // guarded by hub.mu

	dead atomic.Bool
	done chan struct{} // closed by kill: the connection is gone
	stop chan struct{} // closed when the reader ends: writer flushes, says goodbye

	// Set by the reader before it closes stop.
	closeCode int
	closeText string
	badFrames int // reader only
}

// Serve runs one client connection until it ends, ctx is cancelled or the hub
// is closed. Serve owns ws and closes it before returning. a decides what the
// connection may subscribe to; v is who it is, for presence.
func (h *Hub) Serve(ctx context.Context, ws *websocket.Conn, v Viewer, a Authorizer) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		ws.Close()
		return
	}
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()
	h.connections.Inc()
	defer h.connections.Dec()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopOnClose := context.AfterFunc(h.ctx, cancel)
	defer stopOnClose()

	c := &conn{
		hub:       h,
		ws:        ws,
		viewer:    v,
		auth:      a,
		out:       newOutbox(h.opts.SendBuffer),
		subs:      make(map[string]*subscription),
		done:      make(chan struct{}),
		stop:      make(chan struct{}),
		closeCode: websocket.CloseNormalClosure,
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop(ctx)
	}()
	err := c.readLoop(ctx)
	close(c.stop)
	<-writerDone
	c.kill()

	h.mu.Lock()
	for _, s := range c.subs {
		h.unsubscribeLocked(s)
	}
	h.mu.Unlock()
	h.log.Debug("realtime: connection ended", "viewer", v.ID, "err", err)
}

// kill closes the connection at once (unblocking a stuck read or write). It
// reports whether this call was the one that closed it.
func (c *conn) kill() bool {
	if !c.dead.CompareAndSwap(false, true) {
		return false
	}
	close(c.done)
	c.ws.Close()
	return true
}

func (c *conn) isDead() bool { return c.dead.Load() }

// readLoop handles client frames until the connection fails or must close.
func (c *conn) readLoop(ctx context.Context) error {
	h := c.hub
	// Frames over MaxMessageSize are answered and skipped; the hard limit
	// bounds what a client can make us read, and gorilla closes with 1009.
	c.ws.SetReadLimit(h.hardReadLimit)
	c.extendRead()
	c.ws.SetPongHandler(func(string) error {
		c.extendRead()
		return nil
	})
	for {
		mt, r, err := c.ws.NextReader()
		if err != nil {
			return err
		}
		c.extendRead()
		body, tooLarge, err := readFrame(r, h.opts.MaxMessageSize)
		if err != nil {
			return err
		}
		if err := c.handle(ctx, mt, body, tooLarge); err != nil {
			return err
		}
	}
}

// extendRead gives the client another PongWait: any frame, pong included,
// shows it is alive.
func (c *conn) extendRead() {
	c.ws.SetReadDeadline(time.Now().Add(c.hub.opts.PongWait))
}

// readFrame reads a whole message of at most limit bytes; a longer one is
// read to its end and reported as too large.
func readFrame(r io.Reader, limit int64) (body []byte, tooLarge bool, err error) {
	body, err = io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(body)) > limit {
		_, err = io.Copy(io.Discard, r)
		return nil, true, err
	}
	return body, false, nil
}

// handle acts on one client frame. A non-nil error ends the connection.
func (c *conn) handle(ctx context.Context, mt int, body []byte, tooLarge bool) error {
	if mt != websocket.TextMessage {
		return c.garbage(ctx, "", CodeBadFrame, "binary frames are not supported; send JSON text frames")
	}
	if tooLarge {
		return c.garbage(ctx, "", CodeTooLarge, fmt.Sprintf("frames are limited to %d bytes", c.hub.opts.MaxMessageSize))
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return c.garbage(ctx, "", CodeBadJSON, "frame is not a JSON message")
	}
	switch m.Type {
	case TypePing:
		return c.send(ctx, c.hub.pongFrame)
	case TypeSubscribe:
		return c.subscribe(ctx, m.Topic, m.SinceSeq)
	case TypeUnsubscribe:
		if !validTopic(m.Topic) {
			return c.garbage(ctx, m.Topic, CodeBadTopic, "topic must be interview:<id> or tenant:<id>")
		}
		c.unsubscribe(m.Topic)
		return nil
	default:
		return c.garbage(ctx, m.Topic, CodeUnknownType, fmt.Sprintf("unknown frame type %q; use subscribe, unsubscribe or ping", m.Type))
	}
}

// garbage answers a bad frame with an error frame. A client that keeps
// sending them (more than MaxBadFrames) is told so and disconnected (1008).
func (c *conn) garbage(ctx context.Context, topic, code, message string) error {
	c.badFrames++
	if c.badFrames > c.hub.opts.MaxBadFrames {
		c.closeCode = websocket.ClosePolicyViolation
		c.closeText = "too many bad frames"
		if err := c.send(ctx, errorFrame("", CodeTooManyErrors, "too many bad frames; closing")); err != nil {
			return err
		}
		return errors.New("realtime: too many bad frames")
	}
	return c.send(ctx, errorFrame(topic, code, message))
}

// subscribe authorizes topic, registers the subscription with live frames
// held back, sends the replay (when since is set), then releases the held
// frames that are not already covered and goes live.
func (c *conn) subscribe(ctx context.Context, topic string, since *int64) error {
	h := c.hub
	if !validTopic(topic) {
		return c.garbage(ctx, topic, CodeBadTopic, "topic must be interview:<id> or tenant:<id>")
	}
	h.mu.Lock()
	_, already := c.subs[topic]
	n := len(c.subs)
	h.mu.Unlock()
	if already {
		// Idempotent: the subscription keeps its position; nothing is resent.
		return c.send(ctx, subscribedFrame(topic))
	}
	if n >= h.opts.MaxSubscriptions {
		return c.send(ctx, errorFrame(topic, CodeTooManyTopics, fmt.Sprintf("at most %d topics per connection", h.opts.MaxSubscriptions)))
	}
	if err := c.auth.Authorize(ctx, topic); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var e *Error
		if !errors.As(err, &e) {
			h.log.Debug("realtime: subscribe refused", "topic", topic, "viewer", c.viewer.ID, "err", err)
			e = &Error{Code: CodeForbidden, Message: "not allowed to subscribe to " + topic}
		}
		return c.send(ctx, errorFrame(topic, e.Code, e.Message))
	}

	h.mu.Lock()
	s := h.subscribeLocked(c, topic)
	h.mu.Unlock()
	if err := c.send(ctx, subscribedFrame(topic)); err != nil {
		return err
	}
	var last int64
	if since != nil {
		last = *since
		items, err := c.auth.Replay(ctx, topic, *since)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			h.log.Warn("realtime: replay failed", "topic", topic, "since", *since, "viewer", c.viewer.ID, "err", err)
			h.mu.Lock()
			h.unsubscribeLocked(s)
			h.mu.Unlock()
			return c.send(ctx, errorFrame(topic, CodeReplayFailed, "could not load the items after since_seq; subscribe again"))
		}
		for _, it := range items {
			if it.Seq <= last {
				continue // only ordered items, each once
			}
			pm, err := prepare(Message{Type: it.Type, Topic: topic, Data: it.Data})
			if err != nil {
				h.log.Error("realtime: replay: bad item", "topic", topic, "seq", it.Seq, "err", err)
				continue
			}
			if err := c.send(ctx, pm); err != nil {
				return err
			}
			last = it.Seq
		}
	}
	return c.goLive(ctx, s, last)
}

// goLive sends the frames held during the replay, skipping ordered ones at or
// below last, until none are left; then, under the hub lock, the
// subscription turns live with last as its position. Frames published
// meanwhile keep joining the held ones, so none is lost or reordered.
func (c *conn) goLive(ctx context.Context, s *subscription, last int64) error {
	h := c.hub
	for {
		h.mu.Lock()
		held := s.pending
		s.pending = nil
		if len(held) == 0 {
			s.replaying = false
			s.lastSeq = last
			h.mu.Unlock()
			return nil
		}
		h.mu.Unlock()
		for _, f := range held {
			if f.seq > 0 {
				if f.seq <= last {
					continue
				}
				last = f.seq
			}
			if err := c.send(ctx, f.msg); err != nil {
				return err
			}
		}
	}
}

func (c *conn) unsubscribe(topic string) {
	h := c.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := c.subs[topic]; s != nil {
		h.unsubscribeLocked(s)
	}
}

// send queues a reply or replay frame, waiting for room (these come from the
// connection's own reader, so waiting stalls nobody else).
func (c *conn) send(ctx context.Context, pm []byte) error {
	return c.out.put(ctx, c.done, pm)
}

func subscribedFrame(topic string) []byte {
	return mustPrepare(Message{Type: TypeSubscribed, Topic: topic})
}

// writeLoop is the only writer of data frames on ws.
func (c *conn) writeLoop(ctx context.Context) {
	defer c.kill()
	opts := c.hub.opts
	ping := time.NewTicker(opts.PingInterval)
	defer ping.Stop()
	var spare [][]byte
	for {
		select {
		case <-c.out.wake:
			if ctx.Err() != nil {
				// Ended (a revoked credential): what is queued is no
				// longer this client's to receive.
				c.closeFor(ctx)
				return
			}
			if !c.flush(&spare) {
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(opts.WriteTimeout)); err != nil {
				return
			}
		case <-c.stop:
			if ctx.Err() != nil {
				// The reader ended because the context did (a revoked
				// credential): its close code, not a normal one.
				c.closeFor(ctx)
				return
			}
			if c.flush(&spare) {
				c.goodbye(c.closeCode, c.closeText)
			}
			return
		case <-ctx.Done():
			c.closeFor(ctx)
			return
		case <-c.done:
			return
		}
	}
}

// flush writes every queued frame; false when the connection failed.
func (c *conn) flush(spare *[][]byte) bool {
	frames := c.out.take(*spare)
	ok := true
	for _, pm := range frames {
		c.ws.SetWriteDeadline(time.Now().Add(c.hub.opts.WriteTimeout))
		if err := c.ws.WriteMessage(websocket.TextMessage, pm); err != nil {
			ok = false
			break
		}
	}
	clear(frames)
	*spare = frames[:0]
	return ok
}

// closeFor says goodbye to a client whose context ended: with the
// CloseError of its cause, else as a server going away.
func (c *conn) closeFor(ctx context.Context) {
	var ce *CloseError
	if errors.As(context.Cause(ctx), &ce) {
		c.goodbye(ce.Code, ce.Text)
		return
	}
	c.goodbye(websocket.CloseGoingAway, "server closing the connection")
}

func (c *conn) goodbye(code int, text string) {
	wait := min(c.hub.opts.WriteTimeout, shutdownWriteGrace)
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(wait))
}

// outbox is a connection's bounded frame queue. Publish offers to it and
// never waits; the connection's own reader puts and waits while the queue is
// half full, so replies and replays leave the other half to live frames.
type outbox struct {
	mu     sync.Mutex
	frames [][]byte
	limit  int
	wake   chan struct{} // frames are waiting for the writer
	room   chan struct{} // the writer took frames
}

func newOutbox(limit int) outbox {
	return outbox{limit: limit, wake: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

// offer queues pm unless the queue is full.
func (o *outbox) offer(pm []byte) bool {
	o.mu.Lock()
	if len(o.frames) >= o.limit {
		o.mu.Unlock()
		return false
	}
	o.frames = append(o.frames, pm)
	o.mu.Unlock()
	signal(o.wake)
	return true
}

// put queues pm once the queue is less than half full.
func (o *outbox) put(ctx context.Context, done <-chan struct{}, pm []byte) error {
	reserve := max(1, o.limit/2)
	for {
		o.mu.Lock()
		if len(o.frames) < reserve {
			o.frames = append(o.frames, pm)
			o.mu.Unlock()
			signal(o.wake)
			return nil
		}
		o.mu.Unlock()
		select {
		case <-o.room:
		case <-done:
			return errConnClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// take empties the queue, giving it buf's storage.
func (o *outbox) take(buf [][]byte) [][]byte {
	o.mu.Lock()
	frames := o.frames
	o.frames = buf[:0]
	o.mu.Unlock()
	signal(o.room)
	return frames
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
