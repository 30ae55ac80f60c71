// Package realtime is Candor's live channel to dashboards (DESIGN §6): a hub of
// topics ("interview:<id>", "tenant:<id>") served over WebSockets, replacing
// Supabase Realtime.
//
// The hub never lets one subscriber hold up the others: every connection has a
// bounded queue, Publish only ever offers a frame to it, and a connection whose
// queue is full is dropped (closed and counted). A client that reconnects
// subscribes with since_seq and gets the stored items after it, then live
// ones, with no gap and no duplicate.
package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// Message is one JSON text frame, in either direction.
type Message struct {
	Type     string          `json:"type"`
	Topic    string          `json:"topic,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	Error    *Error          `json:"error,omitempty"`
	SinceSeq *int64          `json:"since_seq,omitempty"`
}

// Error is the body of an error frame. It is also an error, so an Authorizer
// may return one to choose the code and message the client sees.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Frame types (DESIGN §6).
const (
	TypeSubscribe       = "subscribe"
	TypeUnsubscribe     = "unsubscribe"
	TypePing            = "ping"
	TypePong            = "pong"
	TypeSubscribed      = "subscribed"
	TypeTranscriptEntry = "transcript.entry"
	TypeInterviewStatus = "interview.status"
	TypePresence        = "presence"
	TypeError           = "error"
)

// Error codes sent in error frames. An Authorizer returning an error that is
// not an *Error yields CodeForbidden.
const (
	CodeForbidden     = "forbidden"
	CodeBadFrame      = "bad_frame"       // binary frame
	CodeBadJSON       = "bad_json"        // not a JSON object
	CodeUnknownType   = "unknown_type"    // type is not subscribe/unsubscribe/ping
	CodeBadTopic      = "bad_topic"       // not interview:<id> or tenant:<id>
	CodeTooLarge      = "too_large"       // frame over Options.MaxMessageSize
	CodeTooManyTopics = "too_many_topics" // over Options.MaxSubscriptions
	CodeReplayFailed  = "replay_failed"   // since_seq replay failed; not subscribed
	CodeTooManyErrors = "too_many_errors" // over Options.MaxBadFrames; connection closed
)

const (
	topicInterview     = "interview:"
	topicTenant        = "tenant:"
	maxTopicIDLen      = 128
	hardLimitFactor    = 16
	minHardReadLimit   = 64 << 10
	shutdownWriteGrace = time.Second
)

// Viewer is who is watching; interview topics broadcast the set as presence.
type Viewer struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Authorizer decides, per connection, what it may see. The web layer
// implements it for the session or API key that opened the connection.
type Authorizer interface {
	// Authorize returns nil if the connection may subscribe to topic. A non-nil
	// error becomes an error frame and no subscription is made.
	Authorize(ctx context.Context, topic string) error
	// Replay returns the stored items of topic with seq > since, ordered by seq.
	Replay(ctx context.Context, topic string, since int64) ([]Sequenced, error)
}

// Sequenced is a stored, ordered item (a transcript entry) sent on resume.
type Sequenced struct {
	Seq  int64
	Type string
	Data json.RawMessage
}

// Options tune the hub. Zero values take the defaults noted.
type Options struct {
	SendBuffer   int           // frames queued per connection before it is dropped; default 128
	WriteTimeout time.Duration // per frame write; default 10s
	PongWait     time.Duration // silence allowed from a client; default 60s
	PingInterval time.Duration // must be < PongWait; default PongWait*9/10
	Registerer   prometheus.Registerer

	// Additions to the team contract.
	MaxMessageSize   int64 // client frame size answered with too_large; default 4096. 16× this (≥64 KiB) closes the connection (1009).
	MaxBadFrames     int   // garbage frames tolerated per connection before it is closed (1008); default 16
	MaxSubscriptions int   // topics per connection; default 64
	ReplayBuffer     int   // live frames held per subscription while its since_seq replay runs; default 1024, overflow drops the connection
}

func (o Options) withDefaults() Options {
	if o.SendBuffer <= 0 {
		o.SendBuffer = 128
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.PongWait <= 0 {
		o.PongWait = 60 * time.Second
	}
	if o.PingInterval <= 0 || o.PingInterval >= o.PongWait {
		o.PingInterval = o.PongWait * 9 / 10
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = 4096
	}
	if o.MaxBadFrames <= 0 {
		o.MaxBadFrames = 16
	}
	if o.MaxSubscriptions <= 0 {
		o.MaxSubscriptions = 64
	}
	if o.ReplayBuffer <= 0 {
		o.ReplayBuffer = 1024
	}
	return o
}

// Hub routes published items to the connections subscribed to their topic.
type Hub struct {
	opts Options
	log  *slog.Logger

	ctx    context.Context // cancelled by Close; every connection ends with it
	cancel context.CancelFunc
	wg     sync.WaitGroup // one per Serve call

	mu     sync.Mutex
	closed bool
	topics map[string]map[*subscription]struct{}

	dropped       atomic.Uint64
	droppedTotal  prometheus.Counter
	published     prometheus.Counter
	connections   prometheus.Gauge
	pongFrame     []byte
	hardReadLimit int64
}

// New returns a hub. Its metrics (candor_realtime_dropped_total,
// candor_realtime_published_total, candor_realtime_connections) are
// registered with opts.Registerer when it is non-nil.
func New(opts Options, log *slog.Logger) *Hub {
	opts = opts.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		opts:   opts,
		log:    log,
		ctx:    ctx,
		cancel: cancel,
		topics: make(map[string]map[*subscription]struct{}),
		droppedTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "candor_realtime_dropped_total",
			Help: "Realtime connections dropped because their send buffer was full.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "candor_realtime_published_total",
			Help: "Items published to realtime topics that had subscribers.",
		}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "candor_realtime_connections",
			Help: "Open realtime WebSocket connections.",
		}),
		hardReadLimit: max(opts.MaxMessageSize*hardLimitFactor, minHardReadLimit),
	}
	h.pongFrame = mustPrepare(Message{Type: TypePong})
	if opts.Registerer != nil {
		h.droppedTotal = register(opts.Registerer, h.droppedTotal, log)
		h.published = register(opts.Registerer, h.published, log)
		h.connections = register(opts.Registerer, h.connections, log)
	}
	return h
}

// register registers c, or adopts the collector already registered under its
// name (a second hub in the same process shares the series).
func register[C prometheus.Collector](r prometheus.Registerer, c C, log *slog.Logger) C {
	err := r.Register(c)
	var are prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
	case errors.As(err, &are):
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	default:
		log.Warn("realtime: metric not registered", "err", err)
	}
	return c
}

// NewUpgrader returns an upgrader that keeps idle connections small: it
// reuses net/http's read buffer and pools write buffers, so an idle
// connection holds no write buffer. Its use is optional; checkOrigin may be
// nil for gorilla's same-origin check.
func NewUpgrader(checkOrigin func(r *http.Request) bool) *websocket.Upgrader {
	return &websocket.Upgrader{
		ReadBufferSize:  0, // net/http's reader, which the handler goroutine holds anyway
		WriteBufferSize: 4096,
		WriteBufferPool: writeBufferPool,
		CheckOrigin:     checkOrigin,
	}
}

var writeBufferPool = &sync.Pool{}

// Publish sends an item to every subscriber of topic. Call it only after the
// item is committed, so a since_seq replay can always find it. seq > 0 marks
// an ordered item (transcript entries): per subscription those are delivered
// once and in increasing seq order, so publish a topic's entries in seq order;
// an entry published after a higher seq reached a subscriber is not sent to
// it again. data is marshalled once; Publish never blocks on a subscriber.
func (h *Hub) Publish(topic, typ string, seq int64, data any) {
	h.mu.Lock()
	n := len(h.topics[topic])
	h.mu.Unlock()
	if n == 0 {
		return
	}
	raw, err := json.Marshal(data)
	if err != nil {
		h.log.Error("realtime: publish: marshal data", "topic", topic, "type", typ, "err", err)
		return
	}
	pm, err := prepare(Message{Type: typ, Topic: topic, Data: raw})
	if err != nil {
		h.log.Error("realtime: publish: prepare frame", "topic", topic, "type", typ, "err", err)
		return
	}
	h.published.Inc()
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.topics[topic] {
		h.deliverLocked(s, frame{seq: seq, msg: pm})
	}
}

// deliverLocked hands f to s: into its replay holding area while a replay
// runs, else onto its connection's queue, dropping the connection if full.
func (h *Hub) deliverLocked(s *subscription, f frame) {
	c := s.conn
	if c.isDead() {
		return
	}
	if s.replaying {
		if len(s.pending) >= h.opts.ReplayBuffer {
			h.drop(c)
			return
		}
		s.pending = append(s.pending, f)
		return
	}
	if f.seq > 0 {
		if f.seq <= s.lastSeq {
			return
		}
		s.lastSeq = f.seq
	}
	if !c.out.offer(f.msg) {
		h.drop(c)
	}
}

// drop closes a connection that cannot keep up. Safe to call with h.mu held.
func (h *Hub) drop(c *conn) {
	if c.kill() {
		h.dropped.Add(1)
		h.droppedTotal.Inc()
		h.log.Info("realtime: dropped slow subscriber", "viewer", c.viewer.ID, "buffer", h.opts.SendBuffer)
	}
}

// Dropped is how many connections this hub dropped for being too slow.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }

// Close ends every connection (with a going-away close frame) and waits until
// every Serve call and goroutine of the hub has returned. Serve calls made
// after Close return at once.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
}

// subscription is one connection's interest in one topic. Its fields are
// guarded by Hub.mu, except while replaying, when lastSeq belongs to the
// connection's read goroutine.
type subscription struct {
	conn      *conn
	topic     string
	replaying bool    // live frames go to pending until the replay is flushed
	pending   []frame // live frames that arrived during the replay
	lastSeq   int64   // highest ordered seq handed to the connection
}

type frame struct {
	seq int64
	msg []byte
}

// subscribeLocked registers c on topic in replay mode (live frames held) and
// tells the topic's viewers who is watching now.
func (h *Hub) subscribeLocked(c *conn, topic string) *subscription {
	s := &subscription{conn: c, topic: topic, replaying: true}
	subs := h.topics[topic]
	if subs == nil {
		subs = make(map[*subscription]struct{})
		h.topics[topic] = subs
	}
	subs[s] = struct{}{}
	c.subs[topic] = s
	h.presenceLocked(topic)
	return s
}

func (h *Hub) unsubscribeLocked(s *subscription) {
	subs := h.topics[s.topic]
	delete(subs, s)
	if len(subs) == 0 {
		delete(h.topics, s.topic)
	}
	if s.conn.subs[s.topic] == s {
		delete(s.conn.subs, s.topic)
	}
	h.presenceLocked(s.topic)
}

// presenceLocked broadcasts the viewers of an interview topic to its
// subscribers; a viewer with several connections is listed once.
func (h *Hub) presenceLocked(topic string) {
	subs := h.topics[topic]
	if !strings.HasPrefix(topic, topicInterview) || len(subs) == 0 {
		return
	}
	seen := make(map[string]bool, len(subs))
	viewers := make([]Viewer, 0, len(subs))
	for s := range subs {
		if s.conn.isDead() {
			continue
		}
		v := s.conn.viewer
		if v.ID != "" && seen[v.ID] {
			continue
		}
		seen[v.ID] = true
		viewers = append(viewers, v)
	}
	sort.Slice(viewers, func(i, j int) bool {
		if viewers[i].Name != viewers[j].Name {
			return viewers[i].Name < viewers[j].Name
		}
		return viewers[i].ID < viewers[j].ID
	})
	raw, err := json.Marshal(struct {
		Viewers []Viewer `json:"viewers"`
	}{viewers})
	if err != nil {
		h.log.Error("realtime: presence: marshal", "topic", topic, "err", err)
		return
	}
	pm := mustPrepare(Message{Type: TypePresence, Topic: topic, Data: raw})
	for s := range subs {
		h.deliverLocked(s, frame{msg: pm})
	}
}

// validTopic reports whether topic is interview:<id> or tenant:<id> with a
// plain id.
func validTopic(topic string) bool {
	id, ok := strings.CutPrefix(topic, topicInterview)
	if !ok {
		id, ok = strings.CutPrefix(topic, topicTenant)
	}
	if !ok || id == "" || len(id) > maxTopicIDLen {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// prepare encodes m as the payload of a text frame. The payload is shared by
// every connection it is sent to and never modified.
func prepare(m Message) ([]byte, error) {
	return json.Marshal(m)
}

// mustPrepare is for frames built only from values that always marshal.
func mustPrepare(m Message) []byte {
	pm, err := prepare(m)
	if err != nil {
		panic("realtime: " + err.Error())
	}
	return pm
}

func errorFrame(topic, code, message string) []byte {
	return mustPrepare(Message{Type: TypeError, Topic: topic, Error: &Error{Code: code, Message: message}})
}
