package realtime

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Benchmarks of the realtime path over loopback, for `go test -bench` and
// `candor bench realtime`. BenchFloor measures what gorilla/websocket alone
// achieves; BenchHub runs the same load through a Hub, so the difference is
// the hub's cost.

// BenchMessageBytes is the size of every benchmark frame: a typical
// transcript.entry frame (envelope included).
const BenchMessageBytes = 256

const (
	benchTopic   = "tenant:bench"
	benchWindow  = 16 // messages in flight before the publisher waits
	benchTimeout = 5 * time.Minute
	benchMaxConn = 10000
)

// FloorResult is one fan-out measurement.
type FloorResult struct {
	Clients      int
	Messages     int // published
	MessageBytes int
	Deliveries   int // received, summed over clients
	Elapsed      time.Duration
	PerSecond    float64       // deliveries per second
	P50, P99     time.Duration // send→receive latency (timestamp in the frame)
}

func (r FloorResult) String() string {
	return fmt.Sprintf("%d clients × %d msgs of %d B: %.0f deliveries/s, p50 %v, p99 %v",
		r.Clients, r.Messages, r.MessageBytes, r.PerSecond, r.P50, r.P99)
}

// BenchFloor fans msgs frames of BenchMessageBytes out to clients WebSocket
// clients on 127.0.0.1 with bare gorilla/websocket: one prepared message per
// publish and one writer goroutine per connection, nothing else. At most
// benchWindow messages are in flight, so latency is delivery, not queueing.
func BenchFloor(ctx context.Context, clients, msgs int) (FloorResult, error) {
	if err := checkBenchArgs(clients, msgs); err != nil {
		return FloorResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, benchTimeout)
	defer cancel()

	var (
		mu      sync.Mutex
		queues  []chan *websocket.PreparedMessage
		writers sync.WaitGroup
		joined  = make(chan struct{}, clients)
	)
	upgrader := NewUpgrader(nil)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		q := make(chan *websocket.PreparedMessage, benchWindow)
		mu.Lock()
		queues = append(queues, q)
		mu.Unlock()
		writers.Add(1)
		go func() {
			defer writers.Done()
			defer ws.Close()
			for pm := range q {
				if err := ws.WritePreparedMessage(pm); err != nil {
					for range q { // keep the publisher from blocking
					}
					return
				}
			}
		}()
		joined <- struct{}{}
	})
	srv, url, err := startBenchServer(handler)
	if err != nil {
		return FloorResult{}, err
	}
	defer func() {
		mu.Lock()
		for _, q := range queues {
			close(q)
		}
		mu.Unlock()
		writers.Wait()
		srv.Close()
	}()

	run, err := newFanoutRun(ctx, url, clients, msgs, false)
	if err != nil {
		return FloorResult{}, err
	}
	defer run.close()
	for range clients {
		select {
		case <-joined:
		case <-ctx.Done():
			return FloorResult{}, ctx.Err()
		}
	}
	return run.publish(ctx, func(_ int64, _, frame []byte) error {
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, frame)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, q := range queues {
			select {
			case q <- pm:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
}

// BenchHub is BenchFloor's load through a real Hub: clients subscribe to a
// tenant topic and every message is a Hub.Publish.
func BenchHub(ctx context.Context, clients, msgs int) (FloorResult, error) {
	if err := checkBenchArgs(clients, msgs); err != nil {
		return FloorResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, benchTimeout)
	defer cancel()

	hub := New(Options{SendBuffer: 4 * benchWindow}, nil)
	defer hub.Close()
	srv, url, err := startBenchServer(hubHandler(hub))
	if err != nil {
		return FloorResult{}, err
	}
	defer srv.Close()

	run, err := newFanoutRun(ctx, url, clients, msgs, true)
	if err != nil {
		return FloorResult{}, err
	}
	defer run.close()
	res, err := run.publish(ctx, func(seq int64, data, _ []byte) error {
		hub.Publish(benchTopic, TypeTranscriptEntry, seq, json.RawMessage(data))
		return nil
	})
	if err == nil && hub.Dropped() > 0 {
		err = fmt.Errorf("realtime bench: hub dropped %d clients", hub.Dropped())
	}
	return res, err
}

// BenchIdleMemory opens n idle connections to a real Hub on 127.0.0.1, each
// subscribed to its own interview topic, and returns the Go heap plus
// goroutine stacks they hold, per connection. Clients are raw sockets that
// keep no Go-side state beyond the socket, so the figure is the server's
// (plus a few hundred bytes of client socket); kernel buffers are not counted.
func BenchIdleMemory(ctx context.Context, n int) (bytesPerViewer float64, err error) {
	if n <= 0 || n > benchMaxConn {
		return 0, fmt.Errorf("realtime bench: connections must be 1..%d, got %d", benchMaxConn, n)
	}
	ctx, cancel := context.WithTimeout(ctx, benchTimeout)
	defer cancel()

	hub := New(Options{}, nil)
	defer hub.Close()
	srv, url, err := startBenchServer(hubHandler(hub))
	if err != nil {
		return 0, err
	}
	defer srv.Close()
	addr := strings.TrimPrefix(url, "ws://")

	before := liveBytes()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var d net.Dialer
	for i := range n {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return 0, fmt.Errorf("realtime bench: dial %d of %d: %w", i+1, n, err)
		}
		conns = append(conns, c)
		if err := rawSubscribe(ctx, c, fmt.Sprintf("interview:idle%d", i)); err != nil {
			return 0, fmt.Errorf("realtime bench: connection %d of %d: %w", i+1, n, err)
		}
	}
	after := liveBytes()
	return float64(after-before) / float64(n), nil
}

// liveBytes is the live heap plus goroutine stacks after a full collection.
func liveBytes() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc) + int64(ms.StackInuse)
}

// rawSubscribe upgrades c by hand, subscribes to topic and reads the
// subscribed and presence frames, leaving no Go-side state behind.
func rawSubscribe(ctx context.Context, c net.Conn, topic string) error {
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	defer c.SetDeadline(time.Time{})
	req := "GET /realtime HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return err
	}
	br := bufio.NewReaderSize(c, 512)
	status, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.Contains(status, " 101 ") {
		return fmt.Errorf("upgrade refused: %s", strings.TrimSpace(status))
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			break
		}
	}
	sub, _ := json.Marshal(Message{Type: TypeSubscribe, Topic: topic})
	if len(sub) > 125 {
		return errors.New("topic too long for a raw frame")
	}
	// A masked text frame with a zero mask key: the payload goes as is.
	frame := append([]byte{0x81, 0x80 | byte(len(sub)), 0, 0, 0, 0}, sub...)
	if _, err := c.Write(frame); err != nil {
		return err
	}
	for _, want := range []string{TypeSubscribed, TypePresence} {
		payload, err := readRawFrame(br)
		if err != nil {
			return err
		}
		var m Message
		if err := json.Unmarshal(payload, &m); err != nil || m.Type != want {
			return fmt.Errorf("expected %s frame, got %q", want, payload)
		}
	}
	return nil
}

// readRawFrame reads one unmasked, unfragmented server frame.
func readRawFrame(br *bufio.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, err
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return nil, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		return nil, errors.New("frame too large")
	}
	payload := make([]byte, n)
	_, err := io.ReadFull(br, payload)
	return payload, err
}

func checkBenchArgs(clients, msgs int) error {
	if clients <= 0 || clients > benchMaxConn {
		return fmt.Errorf("realtime bench: clients must be 1..%d, got %d", benchMaxConn, clients)
	}
	if msgs <= 0 {
		return fmt.Errorf("realtime bench: messages must be positive, got %d", msgs)
	}
	return nil
}

// allowAll lets a benchmark client subscribe to anything; nothing is stored.
type allowAll struct{}

func (allowAll) Authorize(context.Context, string) error { return nil }
func (allowAll) Replay(context.Context, string, int64) ([]Sequenced, error) {
	return nil, nil
}

func hubHandler(hub *Hub) http.Handler {
	upgrader := NewUpgrader(nil)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		hub.Serve(r.Context(), ws, Viewer{ID: "bench", Name: "bench"}, allowAll{})
	})
}

// benchServer serves a handler on a loopback port.
type benchServer struct {
	srv  *http.Server
	done chan struct{}
}

// startBenchServer serves h on 127.0.0.1; it returns the ws:// URL.
func startBenchServer(h http.Handler) (*benchServer, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("realtime bench: listen: %w", err)
	}
	s := &benchServer{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln)
	}()
	return s, "ws://" + ln.Addr().String(), nil
}

// Close stops the server and waits for its accept loop. Hijacked
// (WebSocket) connections belong to their handlers.
func (s *benchServer) Close() {
	s.srv.Close()
	<-s.done
}

// fanoutRun is the client side of a fan-out benchmark.
type fanoutRun struct {
	clients, msgs int
	conns         []*websocket.Conn
	delivered     []atomic.Int32 // per message: clients that received it
	progress      chan struct{}  // a message reached every client
	latency       [][]time.Duration
	readers       sync.WaitGroup
	readErr       chan error
}

// benchPayload is the data of a benchmark frame.
type benchPayload struct {
	Seq    int    `json:"seq"`
	SentNS int64  `json:"sent_ns"`
	Text   string `json:"text"`
}

func newFanoutRun(ctx context.Context, url string, clients, msgs int, subscribe bool) (*fanoutRun, error) {
	r := &fanoutRun{
		clients:   clients,
		msgs:      msgs,
		delivered: make([]atomic.Int32, msgs),
		progress:  make(chan struct{}, 1),
		latency:   make([][]time.Duration, clients),
		readErr:   make(chan error, clients),
	}
	for i := range clients {
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, url+"/realtime", nil)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("realtime bench: dial client %d: %w", i+1, err)
		}
		r.conns = append(r.conns, ws)
		if subscribe {
			if err := ws.WriteJSON(Message{Type: TypeSubscribe, Topic: benchTopic}); err != nil {
				r.close()
				return nil, err
			}
			var m Message
			if err := ws.ReadJSON(&m); err != nil || m.Type != TypeSubscribed {
				r.close()
				return nil, fmt.Errorf("realtime bench: subscribe client %d: %v %v", i+1, m.Type, err)
			}
		}
	}
	for i, ws := range r.conns {
		r.latency[i] = make([]time.Duration, 0, msgs)
		r.readers.Add(1)
		go func() {
			defer r.readers.Done()
			if err := r.read(ws, i); err != nil {
				r.readErr <- err
				signal(r.progress)
			}
		}()
	}
	return r, nil
}

func (r *fanoutRun) read(ws *websocket.Conn, client int) error {
	var m struct {
		Data benchPayload `json:"data"`
	}
	for range r.msgs {
		ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("realtime bench: client %d: %w", client+1, err)
		}
		got := time.Now().UnixNano()
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("realtime bench: client %d: %w", client+1, err)
		}
		r.latency[client] = append(r.latency[client], time.Duration(got-m.Data.SentNS))
		if m.Data.Seq < 1 || m.Data.Seq > r.msgs {
			return fmt.Errorf("realtime bench: client %d: seq %d out of range", client+1, m.Data.Seq)
		}
		if int(r.delivered[m.Data.Seq-1].Add(1)) == r.clients {
			signal(r.progress)
		}
	}
	return nil
}

// publish sends msgs frames through send, keeping at most benchWindow in
// flight, and waits until every client has read every frame.
// send gets the frame's data and the whole frame it makes.
func (r *fanoutRun) publish(ctx context.Context, send func(seq int64, data, frame []byte) error) (FloorResult, error) {
	res := FloorResult{Clients: r.clients, Messages: r.msgs, MessageBytes: BenchMessageBytes}
	pad := strings.Repeat("x", BenchMessageBytes)
	frameFor := func(seq int) (data, frame []byte, err error) {
		p := benchPayload{Seq: seq, SentNS: time.Now().UnixNano()}
		for {
			data, _ = json.Marshal(p)
			frame, err = json.Marshal(Message{Type: TypeTranscriptEntry, Topic: benchTopic, Data: data})
			if err != nil || len(frame) >= BenchMessageBytes {
				return data, frame, err
			}
			b := frame
			p.Text = pad[:min(len(pad), len(p.Text)+BenchMessageBytes-len(b))]
		}
	}
	waitFor := func(seq int) error {
		for int(r.delivered[seq-1].Load()) < r.clients {
			select {
			case <-r.progress:
			case err := <-r.readErr:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	start := time.Now()
	for seq := 1; seq <= r.msgs; seq++ {
		if seq > benchWindow {
			if err := waitFor(seq - benchWindow); err != nil {
				return res, err
			}
		}
		data, frame, err := frameFor(seq)
		if err != nil {
			return res, err
		}
		if err := send(int64(seq), data, frame); err != nil {
			return res, err
		}
	}
	for seq := max(1, r.msgs-benchWindow+1); seq <= r.msgs; seq++ {
		if err := waitFor(seq); err != nil {
			return res, err
		}
	}
	res.Elapsed = time.Since(start)
	r.readers.Wait()

	var all []time.Duration
	for _, l := range r.latency {
		all = append(all, l...)
	}
	slices.Sort(all)
	res.Deliveries = len(all)
	if res.Elapsed > 0 {
		res.PerSecond = float64(res.Deliveries) / res.Elapsed.Seconds()
	}
	if len(all) > 0 {
		res.P50 = all[len(all)*50/100]
		res.P99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return res, nil
}

func (r *fanoutRun) close() {
	for _, ws := range r.conns {
		ws.Close()
	}
	r.readers.Wait()
}
