package web

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"candor/processor/contract"
	"candor/store"
	"candor/web/lifecycle"
)

// A processor replaced because it was unreachable may still be alive, with
// a spool of what it heard: it is retired, not destroyed, and may deliver
// the entries that start before the hand-over, exactly once, under fresh
// seqs that never collide with its replacement's; nothing else it says
// moves the interview; once it says drained its credential dies and its
// machine is destroyed.
func TestARetiredProcessorDeliversWhatItHeardBeforeTheHandover(t *testing.T) {
	e := newTestEnv(t, withLifecycle(func(c *lifecycle.Config) {
		c.HeartbeatTimeout = time.Hour
		c.ReplaceAfter = time.Hour
	}))
	ctx := context.Background()
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	first := e.start(t, a, iv)
	e.postEntries(t, iv, first.Bridge, entry(1, "one"), entry(2, "two"))
	beat := time.Now()
	if err := e.db.RecordHeartbeat(ctx, a.ID, iv, 2900, beat); err != nil {
		t.Fatal(err)
	}
	// Unreachable from here too, for longer than the grace.
	e.machines.unreachable(1)
	at := beat.Add(2 * time.Hour)
	e.lc.SuperviseOnce(ctx, at)
	e.lc.SuperviseOnce(ctx, at.Add(61*time.Minute))
	if n := len(e.machines.launches()); n != 2 {
		t.Fatalf("%d launches, want a replacement", n)
	}
	if d := e.machines.destroys(); len(d) != 0 {
		t.Fatalf("the unreachable machine was destroyed (%+v): its spool would die with it", d)
	}
	var retired struct {
		Draining        bool  `json:"draining"`
		HandoverMediaMS int64 `json:"handover_media_ms"`
	}
	evs, _ := e.db.Events(ctx, a.ID, iv)
	for _, ev := range evs {
		if ev.Type == "machine.retired" {
			json.Unmarshal(ev.Data, &retired)
		}
	}
	// The old processor may have heard up to 3h01m live since its last
	// beat at 2.9 s.
	wantHandover := int64(2900) + at.Add(61*time.Minute).Sub(beat).Milliseconds()
	if !retired.Draining || retired.HandoverMediaMS != wantHandover {
		t.Fatalf("machine.retired = %+v, want draining from %d", retired, wantHandover)
	}
	h := retired.HandoverMediaMS
	second := e.start(t, a, iv)

	var st contract.State
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/bridge/interviews/" + iv + "/state", Key: second.Bridge}, &st)
	if st.MediaMS != h || st.LastSeq != 2 || st.Epoch != 2 || st.Retired {
		t.Fatalf("replacement's state = %+v, want media %d, last seq 2, epoch 2", st, h)
	}
	// Both number on from 2: the replacement's 3 and the old one's 3
	// are different entries.
	fresh := entry(3, "new after the hand-over")
	fresh["start_ms"], fresh["end_ms"] = h+100, h+900
	e.must(t, 200, request{Method: "POST", Path: "/api/v1/bridge/interviews/" + iv + "/entries", Key: second.Bridge,
		Body: map[string]any{"entries": []map[string]any{fresh}}}, nil)

	before := entry(3, "old before the hand-over")
	before["start_ms"], before["end_ms"] = h-800, h-100
	after := entry(4, "old after the hand-over")
	after["start_ms"], after["end_ms"] = h, h+500
	for i, want := range []contract.EntriesAnswer{
		{Received: 2, Inserted: 1, Retired: true, PastHandover: 1},
		{Received: 2, Inserted: 0, Retired: true, PastHandover: 1}, // a retry stores nothing twice
	} {
		var got contract.EntriesAnswer
		res := e.postEntries(t, iv, first.Bridge, before, after)
		if res.Status != 200 {
			t.Fatalf("retired delivery %d: %d %s", i, res.Status, res.Body)
		}
		res.decode(t, &got)
		if got != want {
			t.Errorf("retired delivery %d answered %+v, want %+v", i, got, want)
		}
	}
	t.Run("nothing else a retired processor says is acted on", func(t *testing.T) {
		for _, ev := range []map[string]any{
			{"type": "ready", "media_ms": 1},
			{"type": "heartbeat", "media_ms": h * 10},
			{"type": "ended", "media_ms": h * 10},
			{"type": "finished", "media_ms": h * 10},
		} {
			var ans contract.EventAnswer
			e.must(t, 200, request{Method: "POST", Path: "/api/v1/bridge/interviews/" + iv + "/events", Key: first.Bridge, Body: ev}, &ans)
			if !ans.OK || !ans.Retired {
				t.Errorf("%v answered %+v, want retired", ev["type"], ans)
			}
		}
		got := e.interview(t, a.ID, iv)
		if got.Status != store.StatusRunning || got.MediaMS != h {
			t.Errorf("interview %s at %d ms, want running at %d", got.Status, got.MediaMS, h)
		}
		types := e.eventTypes(t, a.ID, iv)
		if slices.Contains(types, "processor.ended") || slices.Contains(types, "processor.finished") {
			t.Errorf("a retired processor's events were recorded: %v", types)
		}
		var old contract.State
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/bridge/interviews/" + iv + "/state", Key: first.Bridge}, &old)
		if !old.Retired || old.Epoch != 1 {
			t.Errorf("retired processor's state = %+v", old)
		}
	})
	t.Run("a retired credential opens no other interview", func(t *testing.T) {
		_, _, other := e.seed(t, a)
		e.start(t, a, other)
		if res := e.postEntries(t, other, first.Bridge, before); res.Status != 401 {
			t.Errorf("the retired token posted to another interview: %d %s", res.Status, res.Body)
		}
	})
	t.Run("a retired processor uploads only a recording that starts before the hand-over", func(t *testing.T) {
		up := func(startMS int64) int {
			return e.do(t, request{Method: "PUT", Path: "/api/v1/bridge/interviews/" + iv + "/recording", Key: first.Bridge,
				Body: oggBytes(1024), ContentType: "audio/ogg",
				Header: map[string]string{"Candor-Recording-Segment": "old", "Candor-Recording-Start-Ms": fmt.Sprint(startMS)}}).Status
		}
		if st := up(h); st != 409 {
			t.Errorf("a retired upload starting at the hand-over answered %d, want 409", st)
		}
		if st := up(0); st >= 300 {
			t.Errorf("a retired upload of what it heard answered %d", st)
		}
	})
	t.Run("reconciliation keeps a draining machine", func(t *testing.T) {
		if _, err := e.lc.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if d := e.machines.destroys(); len(d) != 0 {
			t.Fatalf("destroyed %+v while it drains", d)
		}
	})
	es, err := e.db.Entries(ctx, a.ID, iv, 0)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for i, en := range es {
		if en.Seq != int64(i+1) {
			t.Errorf("entry %d has seq %d, want 1..n", i, en.Seq)
		}
		texts = append(texts, en.Text)
	}
	if want := []string{"one", "two", "new after the hand-over", "old before the hand-over"}; !slices.Equal(texts, want) {
		t.Errorf("transcript %q, want %q", texts, want)
	}

	t.Run("the recruiter reads the transcript in the order it was spoken", func(t *testing.T) {
		sess := e.login(t, a, store.RoleViewer)
		page := string(e.must(t, 200, request{Method: "GET", Path: "/interviews/" + iv, Session: &sess}, nil).Body)
		before, after := strings.Index(page, "old before the hand-over"), strings.Index(page, "new after the hand-over")
		if before < 0 || after < 0 || before > after {
			t.Errorf("the late entry spoken before the hand-over is at %d of the page, the replacement's at %d", before, after)
		}
	})
	if res := e.do(t, request{Method: "POST", Path: "/api/v1/bridge/interviews/" + iv + "/events", Key: second.Bridge,
		Body: map[string]any{"type": "drained"}}); res.Status != 409 {
		t.Errorf("the current processor's drained answered %d, want 409", res.Status)
	}
	e.must(t, 200, request{Method: "POST", Path: "/api/v1/bridge/interviews/" + iv + "/events", Key: first.Bridge,
		Body: map[string]any{"type": "drained", "data": map[string]any{"entries": 4}}}, nil)
	if res := e.postEntries(t, iv, first.Bridge, before); res.Status != 401 {
		t.Errorf("a drained processor's token answered %d, want 401", res.Status)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(e.machines.destroys()) == 0 || !slices.Contains(e.eventTypes(t, a.ID, iv), "machine.drained") {
		if time.Now().After(deadline) {
			t.Fatalf("drained machine not destroyed: destroys %+v, events %v", e.machines.destroys(), e.eventTypes(t, a.ID, iv))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := e.machines.destroys(); len(d) != 1 || d[0].ID != "fake-1" {
		t.Errorf("destroyed %+v, want the drained fake-1 only", d)
	}
	if cur, err := e.db.CurrentMachine(ctx, a.ID, iv); err != nil || cur.ProviderID != "fake-2" {
		t.Errorf("current machine %+v, %v", cur, err)
	}
}

// A retired processor that never comes back (or never says drained) has
// until --drain-timeout: then its credential dies and reconciliation
// destroys its machine.
func TestADrainEndsAtTheDrainTimeout(t *testing.T) {
	e := newTestEnv(t, withLifecycle(func(c *lifecycle.Config) {
		c.HeartbeatTimeout = time.Hour
		c.ReplaceAfter = time.Hour
		c.DrainTimeout = 50 * time.Millisecond
	}))
	ctx := context.Background()
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	first := e.start(t, a, iv)
	e.machines.unreachable(1)
	at := time.Now().Add(2 * time.Hour)
	e.lc.SuperviseOnce(ctx, at)
	e.lc.SuperviseOnce(ctx, at.Add(61*time.Minute))
	if n := len(e.machines.launches()); n != 2 || len(e.machines.destroys()) != 0 {
		t.Fatalf("%d launches, destroyed %+v: want a replacement and the old machine draining", n, e.machines.destroys())
	}
	time.Sleep(100 * time.Millisecond) // past the drain's deadline, which is wall-clock time
	if res := e.postEntries(t, iv, first.Bridge, entry(3, "too late")); res.Status != 401 {
		t.Errorf("a retired token past its drain answered %d, want 401", res.Status)
	}
	if _, err := e.lc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if d := e.machines.destroys(); len(d) != 1 || d[0].ID != "fake-1" {
		t.Errorf("destroyed %+v, want the drained-out fake-1", d)
	}
	if types := e.eventTypes(t, a.ID, iv); !slices.Contains(types, "machine.drain_ended") {
		t.Errorf("events %v lack machine.drain_ended", types)
	}
}
