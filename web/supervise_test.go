package web

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"candor/processor/contract"
	"candor/store"
	"candor/web/lifecycle"
)

func TestSupervisionInvestigatesBeforeItReplaces(t *testing.T) {
	e := newTestEnv(t, withLifecycle(func(c *lifecycle.Config) {
		c.HeartbeatTimeout = time.Hour
		c.ReplaceAfter = time.Hour
	}))
	ctx := context.Background()
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	_, _, healthy := e.seed(t, a)
	first := e.start(t, a, iv)
	e.start(t, a, healthy)
	e.postEntries(t, iv, first.Bridge, entry(1, "one"), entry(2, "two"))
	e.must(t, 200, request{Method: "POST", Path: "/api/v1/bridge/interviews/" + iv + "/events", Key: first.Bridge,
		Body: map[string]any{"type": "heartbeat", "media_ms": 2900}}, nil)

	// Nothing is stale now: nothing happens.
	e.lc.SuperviseOnce(ctx, time.Now())
	if n := len(e.machines.launches()); n != 2 {
		t.Fatalf("%d launches before anything went silent", n)
	}

	// Both are silent for longer than the timeout; the healthy one beats
	// again just in time.
	later := time.Now().Add(2 * time.Hour)
	if err := e.db.RecordHeartbeat(ctx, a.ID, healthy, 10, later); err != nil {
		t.Fatal(err)
	}
	t.Run("a silent processor that answers its health probe is kept", func(t *testing.T) {
		e.lc.SuperviseOnce(ctx, later)
		e.lc.SuperviseOnce(ctx, later.Add(time.Minute))
		if n := len(e.machines.launches()); n != 2 {
			t.Fatalf("%d launches: a processor cut off only from the bridge was replaced", n)
		}
		if d := e.machines.destroys(); len(d) != 0 {
			t.Fatalf("destroyed %+v", d)
		}
		got := strings.Join(e.eventTypes(t, a.ID, iv), ",")
		if want := "interview.starting,machine.launched,heartbeat.lost,bridge.partitioned"; got != want {
			t.Errorf("events %s, want %s", got, want)
		}
	})
	t.Run("its heartbeat coming back is recorded as the bridge restored", func(t *testing.T) {
		if err := e.db.RecordHeartbeat(ctx, a.ID, iv, 3100, later.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		e.lc.SuperviseOnce(ctx, later.Add(time.Minute))
		types := e.eventTypes(t, a.ID, iv)
		if types[len(types)-1] != "bridge.restored" {
			t.Errorf("events %v, want bridge.restored last", types)
		}
	})

	// Silent again, and now its machine is gone.
	gone := later.Add(3 * time.Hour)
	if err := e.db.RecordHeartbeat(ctx, a.ID, healthy, 10, gone); err != nil {
		t.Fatal(err)
	}
	e.machines.vanish(1)
	e.lc.SuperviseOnce(ctx, gone)
	if n := len(e.machines.launches()); n != 3 {
		t.Fatalf("%d launches, want one replacement of the machine that is gone", n)
	}
	second := e.start(t, a, iv) // idempotent start answers the new processor
	if second.Bridge == first.Bridge || second.Bridge == "" {
		t.Fatalf("the replacement got the old machine's bridge token")
	}
	if second.Processor != first.Processor {
		t.Errorf("start answers %+v after the replacement, %+v before: the client's URL and token must not change", second.Processor, first.Processor)
	}
	if got := e.machines.launches()[2].Env["CANDOR_CLIENT_TOKEN"]; got != first.Processor.Token {
		t.Errorf("the replacement was launched with another client token")
	}
	t.Run("the old token no longer writes", func(t *testing.T) {
		if res := e.postEntries(t, iv, first.Bridge, entry(3, "zombie")); res.Status != 401 {
			t.Errorf("status %d: %s", res.Status, res.Body)
		}
	})
	t.Run("the replacement resumes the sequence and media clock", func(t *testing.T) {
		var st contract.State
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/bridge/interviews/" + iv + "/state", Key: second.Bridge}, &st)
		if st.LastSeq != 2 || st.MediaMS != 3100 || st.Status != string(store.StatusRunning) {
			t.Errorf("state = %+v", st)
		}
		e.must(t, 200, request{Method: "POST", Path: "/api/v1/bridge/interviews/" + iv + "/entries", Key: second.Bridge,
			Body: map[string]any{"entries": []map[string]any{entry(3, "three")}}}, nil)
	})
	t.Run("every step is in the events", func(t *testing.T) {
		types := e.eventTypes(t, a.ID, iv)
		want := []string{"interview.starting", "machine.launched", "heartbeat.lost", "bridge.partitioned", "bridge.restored",
			"heartbeat.lost", "machine.retired", "machine.replaced"}
		if !slices.Equal(types, want) {
			t.Errorf("events %v, want %v", types, want)
		}
	})
	t.Run("an unreachable processor is replaced only after the grace", func(t *testing.T) {
		at := time.Now().Add(10 * time.Hour)
		if err := e.db.RecordHeartbeat(ctx, a.ID, healthy, 10, at.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		e.machines.unreachable(3)
		e.lc.SuperviseOnce(ctx, at)
		e.lc.SuperviseOnce(ctx, at.Add(59*time.Minute))
		if n := len(e.machines.launches()); n != 3 {
			t.Fatalf("%d launches within the grace", n)
		}
		e.lc.SuperviseOnce(ctx, at.Add(61*time.Minute))
		if n := len(e.machines.launches()); n != 4 {
			t.Fatalf("%d launches after the grace, want a replacement", n)
		}
	})
	t.Run("a replacement that cannot launch fails the interview", func(t *testing.T) {
		e.machines.vanish(4)
		e.machines.failNextLaunch(context.DeadlineExceeded)
		e.lc.SuperviseOnce(ctx, time.Now().Add(20*time.Hour))
		got, err := e.db.Interview(ctx, a.ID, iv)
		if err != nil || got.Status != store.StatusFailed {
			t.Errorf("status %s (err %v), want failed", got.Status, err)
		}
	})
	if got, err := e.db.Interview(ctx, a.ID, healthy); err != nil || got.Status != store.StatusRunning {
		t.Errorf("the healthy interview is %s (%v)", got.Status, err)
	}
}
