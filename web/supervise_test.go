package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"candor/processor/contract"
	"candor/store"
)

func TestSupervisionReplacesASilentProcessor(t *testing.T) {
	e := newTestEnv(t, withConfig(func(c *Config) { c.HeartbeatTimeout = time.Hour }))
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	_, _, healthy := e.seed(t, a)
	first := e.start(t, a, iv)
	e.start(t, a, healthy)
	e.postEntries(t, iv, first.Processor.Token, entry(1, "one"), entry(2, "two"))
	e.must(t, 200, request{Method: "POST", Path: "/api/v1/bridge/interviews/" + iv + "/events", Key: first.Processor.Token,
		Body: map[string]any{"type": "heartbeat", "media_ms": 2900}}, nil)

	// Nothing is stale now: nothing happens.
	e.srv.superviseOnce(context.Background(), time.Now())
	if n := len(e.machines.launches()); n != 2 {
		t.Fatalf("%d launches before anything went silent", n)
	}

	// Both are silent for longer than the timeout; the healthy one beats
	// again just in time.
	later := time.Now().Add(2 * time.Hour)
	if err := e.db.RecordHeartbeat(context.Background(), a.ID, healthy, 10, later); err != nil {
		t.Fatal(err)
	}
	e.srv.superviseOnce(context.Background(), later)

	if n := len(e.machines.launches()); n != 3 {
		t.Fatalf("%d launches, want one replacement", n)
	}
	if d := e.machines.destroys(); len(d) != 1 || d[0].ID != "fake-1" {
		t.Errorf("destroyed %+v, want the silent fake-1", d)
	}
	second := e.start(t, a, iv) // idempotent start answers the new processor
	if second.Processor.URL == first.Processor.URL || second.Processor.Token == first.Processor.Token {
		t.Fatalf("start still answers the old processor")
	}
	if got := e.machines.launches()[2].Env["CANDOR_PROCESSOR_TOKEN"]; got != second.Processor.Token {
		t.Errorf("the replacement was launched with another token")
	}
	t.Run("the old token no longer writes", func(t *testing.T) {
		if res := e.postEntries(t, iv, first.Processor.Token, entry(3, "zombie")); res.Status != 401 {
			t.Errorf("status %d: %s", res.Status, res.Body)
		}
	})
	t.Run("the replacement resumes the sequence and media clock", func(t *testing.T) {
		var st contract.State
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/bridge/interviews/" + iv + "/state", Key: second.Processor.Token}, &st)
		if st.LastSeq != 2 || st.MediaMS != 2900 || st.Status != string(store.StatusRunning) {
			t.Errorf("state = %+v", st)
		}
		e.must(t, 200, request{Method: "POST", Path: "/api/v1/bridge/interviews/" + iv + "/entries", Key: second.Processor.Token,
			Body: map[string]any{"entries": []map[string]any{entry(3, "three")}}}, nil)
	})
	t.Run("every step is in the events", func(t *testing.T) {
		var evs struct{ Events []eventJSON }
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + iv + "/events", Key: a.Key}, &evs)
		var types []string
		for _, ev := range evs.Events {
			types = append(types, ev.Type)
		}
		if got := strings.Join(types, ","); got != "machine.launched,heartbeat.lost,machine.launched,machine.replaced" {
			t.Errorf("events %s", got)
		}
	})
	t.Run("a replacement that cannot launch fails the interview", func(t *testing.T) {
		e.machines.failNextLaunch(context.DeadlineExceeded)
		e.srv.superviseOnce(context.Background(), time.Now().Add(4*time.Hour))
		got, err := e.db.Interview(context.Background(), a.ID, iv)
		if err != nil || got.Status != store.StatusFailed {
			t.Errorf("status %s (err %v), want failed", got.Status, err)
		}
	})
}
