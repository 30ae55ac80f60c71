package oairt

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// ackServer is a Realtime endpoint that answers every session.update with
// session.updated and otherwise stays silent until the client closes.
func ackServer(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if strings.Contains(string(msg), `"session.update"`) {
				ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"session.updated"}`))
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type testLeg struct {
	Leg
	name    string
	items   []string // in conversation order
	ready   int      // how many of items are complete
	emitted int
	retired bool
}

func TestChainReleasesALaterSessionOnlyAfterTheOlderOneIsRetired(t *testing.T) {
	base := ackServer(t)
	var mu sync.Mutex
	var out []string
	drained := make(chan struct{})
	released := make(chan struct{}) // the retirement has released
	var chain *Chain[*testLeg]
	chain = NewChain(Hooks[*testLeg]{
		Handle:  func(*testLeg, Event) {},
		Ended:   func(*testLeg, error) {},
		Drain:   func(ctx context.Context, s *testLeg) { <-drained },
		Retired: func(s *testLeg) { mu.Lock(); s.retired = true; mu.Unlock() },
		Release: func() { release(chain, &mu, &out); close(released) },
	})
	open := func(name string) *testLeg {
		t.Helper()
		conn, err := Dial(t.Context(), websocket.DefaultDialer, base, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		s := &testLeg{Leg: NewLeg(conn), name: name}
		if err := chain.Open(t.Context(), s, Session{Type: "transcription"}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := open("first")
	chain.Start(first)
	second := open("second")
	mu.Lock()
	first.items = []string{"a1", "a2"}
	first.ready = 1
	second.items, second.ready = []string{"b1"}, 1
	mu.Unlock()
	chain.SwitchTo(context.Background(), second)
	if chain.Current() != second {
		t.Fatal("the successor is not current after the switch")
	}

	release(chain, &mu, &out)
	if got := strings.Join(out, " "); got != "a1" {
		t.Fatalf("released %q while the first session still owes a2, want only a1", got)
	}
	mu.Lock()
	first.ready = 2
	mu.Unlock()
	release(chain, &mu, &out)
	if got := strings.Join(out, " "); got != "a1 a2" {
		t.Fatalf("released %q before the first session was retired, want a1 a2", got)
	}
	close(drained) // the retirement finishes and releases
	<-released
	if got := strings.Join(out, " "); got != "a1 a2 b1" {
		t.Fatalf("released %q, want a1 a2 b1 (each once, in session order)", got)
	}
	if !chain.Alone(second) {
		t.Fatal("the retired session is still listed")
	}
	second.Conn.Close()
	chain.Wait()
}

func release(chain *Chain[*testLeg], mu *sync.Mutex, out *[]string) {
	var got []string
	chain.Release(func(s *testLeg) bool {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, s.items[s.emitted:s.ready]...)
		s.emitted = s.ready
		return s.retired && s.ready == len(s.items)
	}, func() {
		mu.Lock()
		*out = append(*out, got...)
		mu.Unlock()
	})
}
