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
	"strings"
	"time"
)

// BenchIdleMemory measures what an idle viewer costs the hub, for
// `go test -bench` and `candor bench realtime`. (The fan-out floor that
// command compares Candor with lives beside it, in the main package, so the
// floor runs exactly the load the real path runs.)

const (
	benchTimeout = 5 * time.Minute
	benchMaxConn = 10000
)

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
