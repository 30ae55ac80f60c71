package processor

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"candor/processor/contract"
)

// Hole 4 of issue 9: anyone with an invite link could exhaust a
// processor's memory. The candidate token is what an invite link gives,
// so every probe here uses it.

func TestIngestCapsAnswer413Or429AndTheStreamGoesOn(t *testing.T) {
	control := newFakeControl(t, "iv_caps", "proc-token")
	p := startProcessor(t, control, interviewEnv(control, t.TempDir()), func(c *Config) {
		c.Timing.ReassemblyGap = time.Hour // the gap stays open while the test fills it
	})
	control.waitEvent(t, "ready")
	cand := contract.CandidateToken(control.token, control.interviewID)
	const pcm = "audio/pcm;rate=16000"

	t.Run("a body over 1 MiB, base64 included, is a 413", func(t *testing.T) {
		// 800 KB of audio is 1.07 MB of base64.
		code, b := p.postChunk(t, cand, 0, pcm, make([]byte, 800<<10))
		var e apiError
		if code != http.StatusRequestEntityTooLarge || json.Unmarshal(b, &e) != nil || e.Error.Code != "too_large" {
			t.Fatalf("got %d %s, want 413 too_large", code, b)
		}
	})
	if code, b := p.postChunk(t, cand, 0, pcm, silence(0.1)); code != 200 {
		t.Fatalf("first chunk: %d %s", code, b)
	}
	t.Run("out-of-order audio past 16 MiB is a 429 and the stream goes on", func(t *testing.T) {
		chunk := make([]byte, 700<<10)
		refused := int64(0)
		for seq := int64(2); seq < 40; seq++ {
			code, b := p.postChunk(t, cand, seq, pcm, chunk)
			switch code {
			case 200:
				if refused != 0 {
					t.Fatalf("seq %d accepted after seq %d was refused", seq, refused)
				}
			case http.StatusTooManyRequests:
				if !strings.Contains(string(b), "too_much_out_of_order") {
					t.Fatalf("seq %d: %s", seq, b)
				}
				if refused == 0 {
					refused = seq
				}
			default:
				t.Fatalf("seq %d: %d %s", seq, code, b)
			}
		}
		if refused == 0 || (refused-2)*(700<<10) > maxHeldAudio {
			t.Fatalf("first refusal at seq %d: more than %d bytes were held", refused, maxHeldAudio)
		}
		// The missing chunk fills the gap: everything held is delivered,
		// and the refused chunks are taken when sent again.
		if code, b := p.postChunk(t, cand, 1, pcm, silence(0.1)); code != 200 {
			t.Fatalf("the missing chunk: %d %s", code, b)
		}
		if code, b := p.postChunk(t, cand, refused, pcm, silence(0.1)); code != 200 {
			t.Fatalf("seq %d again after the gap closed: %d %s", refused, code, b)
		}
	})
	t.Run("at most a few audio connections at once", func(t *testing.T) {
		u := strings.Replace(p.url, "http://", "ws://", 1) + "/ws/audio?token=" + cand
		var conns []*websocket.Conn
		for range maxMediaSessions {
			c, _, err := websocket.DefaultDialer.Dial(u, nil)
			if err != nil {
				t.Fatalf("audio connection %d: %v", len(conns)+1, err)
			}
			conns = append(conns, c)
		}
		// A connection counts once the processor has registered it:
		// wait until the next one is refused.
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, res, err := websocket.DefaultDialer.Dial(u, nil)
			if err != nil && res != nil && res.StatusCode == http.StatusTooManyRequests {
				break
			}
			if c != nil {
				c.Close()
			}
			if time.Now().After(deadline) {
				t.Fatalf("connection %d was not refused", maxMediaSessions+1)
			}
			time.Sleep(10 * time.Millisecond)
		}
		for _, c := range conns {
			c.Close()
		}
		deadline = time.Now().Add(10 * time.Second)
		for {
			c, _, err := websocket.DefaultDialer.Dial(u, nil)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no audio connection once the others closed: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("at most a few /events sockets at once", func(t *testing.T) {
		u := strings.Replace(p.url, "http://", "ws://", 1) + "/events?token=" + cand
		var conns []*websocket.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range maxEventClients {
			c, _, err := websocket.DefaultDialer.Dial(u, nil)
			if err != nil {
				t.Fatalf("events connection %d: %v", len(conns)+1, err)
			}
			conns = append(conns, c)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := c.ReadMessage(); err != nil { // the state message: it is registered
				t.Fatal(err)
			}
		}
		_, res, err := websocket.DefaultDialer.Dial(u, nil)
		if err == nil || res == nil || res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("events connection %d: %v %v, want 429", maxEventClients+1, err, res)
		}
	})
	t.Run("cookies are no credential", func(t *testing.T) {
		req, _ := http.NewRequest("POST", p.url+"/process-audio", bytes.NewReader([]byte(`{"audio_chunk":"","sequence_number":99}`)))
		req.Header.Set("Cookie", "candor_session="+control.token+"; token="+cand)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("a request with cookies only: %d, want 401", res.StatusCode)
		}
	})
	if code, b := p.postChunk(t, cand, 60, pcm, []byte(base64.StdEncoding.EncodeToString(nil))); code != 200 {
		t.Fatalf("the stream after the caps: %d %s", code, b)
	}
	p.end(t)
}
