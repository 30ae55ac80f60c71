package web

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	fly "github.com/superfly/fly-go"

	"candor/fly/flyfake"
	"candor/store"
	"candor/web/lifecycle"

	candorfly "candor/fly"
)

// eventTypes lists the interview's event types, oldest first.
func (e *testEnv) eventsOf(t testing.TB, tn tenant, interviewID string) []string {
	t.Helper()
	evs, err := e.db.Events(context.Background(), tn.ID, interviewID)
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	return types
}

func (e *testEnv) reconcile(t testing.TB) lifecycle.ReconcileReport {
	t.Helper()
	rep, err := e.lc.Reconcile(context.Background())
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	return rep
}

func TestReconcile(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")

	t.Run("machines that match their interviews are left alone", func(t *testing.T) {
		_, _, iv := e.seed(t, a)
		e.start(t, a, iv)
		if rep := e.reconcile(t); rep != (lifecycle.ReconcileReport{}) {
			t.Errorf("report %+v, want nothing done", rep)
		}
		if d := e.machines.destroys(); len(d) != 0 {
			t.Errorf("destroyed %+v", d)
		}
		e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + iv + "/end", Key: a.Key}, nil)
	})

	t.Run("a running interview whose machine vanished is re-dispatched to a new one", func(t *testing.T) {
		_, _, iv := e.seed(t, a)
		first := e.start(t, a, iv)
		e.machines.vanish(len(e.machines.launches()))
		sub := e.dialRealtime(t, bearer(a.Key))
		sub.subscribe("interview:"+iv, nil)

		rep := e.reconcile(t)
		if rep != (lifecycle.ReconcileReport{Vanished: 1, Redispatched: 1}) {
			t.Errorf("report %+v", rep)
		}
		second := e.start(t, a, iv)
		if second.Interview.Status != store.StatusRunning || second.Interview.Machine == nil || first.Interview.Machine == nil ||
			second.Interview.Machine.ID == first.Interview.Machine.ID || second.Bridge == first.Bridge {
			t.Fatalf("after re-dispatch: status %s, machine %+v (was %+v)", second.Interview.Status, second.Interview.Machine, first.Interview.Machine)
		}
		if second.Processor != first.Processor {
			t.Errorf("the stable processor URL and client token changed across the re-dispatch: %+v, was %+v", second.Processor, first.Processor)
		}
		got := strings.Join(e.eventsOf(t, a, iv), ",")
		if want := "interview.starting,machine.launched,machine.vanished,machine.retired,machine.replaced"; got != want {
			t.Errorf("events %s, want %s", got, want)
		}
		ms, err := e.db.ListMachines(ctx, a.ID, iv)
		if err != nil || len(ms) != 2 {
			t.Fatalf("machines %+v (%v)", ms, err)
		}
		if ms[0].State != store.MachineFailed || ms[0].DestroyedAt == nil {
			t.Errorf("vanished machine recorded as %s (destroyed_at %v), want failed with a time", ms[0].State, ms[0].DestroyedAt)
		}
		if ms[1].State != store.MachineRunning {
			t.Errorf("new machine is %s", ms[1].State)
		}
		var published []string
		for !slices.Contains(published, "machine.replaced") {
			m := sub.next()
			if m.Type == EventTypeRealtime {
				var ev eventJSON
				if err := json.Unmarshal(m.Data, &ev); err != nil {
					t.Fatal(err)
				}
				published = append(published, ev.Type)
			}
		}
		if want := []string{"machine.vanished", "machine.retired", "machine.replaced"}; !slices.Equal(published, want) {
			t.Errorf("published events %v, want %v", published, want)
		}
		e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + iv + "/end", Key: a.Key}, nil)
	})

	t.Run("a machine whose interview is over is destroyed as an orphan", func(t *testing.T) {
		_, _, iv := e.seed(t, a)
		e.start(t, a, iv)
		e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + iv + "/end", Key: a.Key}, nil)
		// A machine of the ended interview the store does not know about
		// (a launch that raced the end, a crash before the row was written).
		stray, err := e.machines.Launch(ctx, candorfly.Spec{InterviewID: iv, TenantID: a.ID})
		if err != nil {
			t.Fatal(err)
		}
		// And one of no interview at all.
		unknown, err := e.machines.Launch(ctx, candorfly.Spec{InterviewID: "iv_nobody", TenantID: a.ID})
		if err != nil {
			t.Fatal(err)
		}
		before := len(e.machines.destroys())
		rep := e.reconcile(t)
		if rep != (lifecycle.ReconcileReport{OrphansDestroyed: 2}) {
			t.Errorf("report %+v", rep)
		}
		var ids []string
		for _, m := range e.machines.destroys()[before:] {
			ids = append(ids, m.ID)
		}
		slices.Sort(ids)
		if want := []string{stray.ID, unknown.ID}; !slices.Equal(ids, want) {
			t.Errorf("destroyed %v, want %v", ids, want)
		}
		if types := e.eventsOf(t, a, iv); types[len(types)-1] != "machine.orphan_destroyed" {
			t.Errorf("events %v end without machine.orphan_destroyed", types)
		}
	})

	t.Run("a recorded machine still running after its interview ended is destroyed", func(t *testing.T) {
		_, _, iv := e.seed(t, a)
		e.start(t, a, iv)
		// The end could not reach the backend: the interview completed but
		// its machine row stayed live.
		if _, err := e.db.SetInterviewStatus(ctx, a.ID, iv, store.StatusCompleted); err != nil {
			t.Fatal(err)
		}
		rep := e.reconcile(t)
		if rep != (lifecycle.ReconcileReport{OrphansDestroyed: 1}) {
			t.Errorf("report %+v", rep)
		}
		m, err := e.db.LatestMachine(ctx, a.ID, iv)
		if err != nil || m.State != store.MachineDestroyed || m.SecondsBilled <= 0 {
			t.Errorf("machine %+v (%v), want destroyed with billed seconds", m, err)
		}
	})

	t.Run("a starting interview whose machine vanished is marked failed", func(t *testing.T) {
		_, _, iv := e.seed(t, a)
		// The control plane died between launching and marking running.
		if _, err := e.db.SetInterviewStatus(ctx, a.ID, iv, store.StatusStarting, store.StatusScheduled); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.CreateMachine(ctx, store.Machine{TenantID: a.ID, InterviewID: iv, Provider: candorfly.ProviderLocal,
			ProviderID: "local-gone", State: store.MachineRunning}); err != nil {
			t.Fatal(err)
		}
		rep := e.reconcile(t)
		if rep != (lifecycle.ReconcileReport{Vanished: 1, Failed: 1}) {
			t.Errorf("report %+v", rep)
		}
		got, err := e.db.Interview(ctx, a.ID, iv)
		if err != nil || got.Status != store.StatusFailed {
			t.Errorf("status %s (%v), want failed", got.Status, err)
		}
		evs := e.eventsOf(t, a, iv)
		if got := strings.Join(evs, ","); got != "machine.vanished" {
			t.Errorf("events %s, want one machine.vanished that fails the interview", got)
		}
	})

	t.Run("a running interview fails when no replacement can be launched", func(t *testing.T) {
		_, _, iv := e.seed(t, a)
		e.start(t, a, iv)
		e.machines.vanish(len(e.machines.launches()))
		e.machines.failNextLaunch(candorfly.ErrCapacity)
		rep := e.reconcile(t)
		if rep != (lifecycle.ReconcileReport{Vanished: 1, Failed: 1}) {
			t.Errorf("report %+v", rep)
		}
		got, err := e.db.Interview(ctx, a.ID, iv)
		if err != nil || got.Status != store.StatusFailed {
			t.Errorf("status %s (%v), want failed", got.Status, err)
		}
	})
}

func TestStartRegion(t *testing.T) {
	tests := []struct {
		name, interview, near, want string
	}{
		{"the interview's own region wins over the candidate's", "ams", "lhr", "ams"},
		{"without one, the candidate's edge region is used", "", "lhr", "lhr"},
		{"without either, the configured default is used", "", "", "fra"},
		{"a header that is not a region name is ignored", "", "../../etc", "fra"},
	}
	// Scheduling checks a region against the lifecycle's list, which
	// places the machine.
	e := newTestEnv(t, withLifecycle(func(c *lifecycle.Config) { c.DefaultRegion, c.Regions = "fra", []string{"fra", "ams", "lhr"} }))
	a := e.tenant(t, "Acme")
	p, c, _ := e.seed(t, a)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var iv idJSON
			body := map[string]any{"position_id": p, "candidate_id": c}
			if tt.interview != "" {
				body["region"] = tt.interview
			}
			e.must(t, 201, request{Method: "POST", Path: "/api/v1/interviews", Key: a.Key, Body: body}, &iv)
			_, acc, err := e.lc.Start(context.Background(), a.ID, iv.ID, tt.near)
			if err != nil {
				t.Fatal(err)
			}
			m, err := e.db.CurrentMachine(context.Background(), a.ID, iv.ID)
			if err != nil || m.ID != acc.MachineID {
				t.Fatalf("current machine %+v, %v; started %s", m, err, acc.MachineID)
			}
			launches := e.machines.launches()
			if got := launches[len(launches)-1].Region; got != tt.want {
				t.Errorf("launched in %q, want %q", got, tt.want)
			}
			if m.Region != tt.want {
				t.Errorf("machine recorded in %q, want %q", m.Region, tt.want)
			}
		})
	}
}

// TestReconcileOnFly runs reconciliation against the Fly backend aimed at
// flyfake: orphans are destroyed through the Machines API, a machine
// deleted behind the control plane's back is replaced in the same app and
// region.
func TestReconcileOnFly(t *testing.T) {
	ctx := context.Background()
	backend, fake := newFlyOnFake(t, func(c *candorfly.FlyConfig) { c.Regions = flyfake.Regions() })
	e := newTestEnv(t, withMachines(backend), withLifecycle(func(c *lifecycle.Config) { c.DefaultRegion, c.Regions = "iad", flyfake.Regions() }))
	a := e.tenant(t, "Acme")
	app := backend.AppName(a.Slug)

	_, _, iv := e.seed(t, a)
	if _, _, err := e.lc.Start(ctx, a.ID, iv, "ams"); err != nil {
		t.Fatal(err)
	}
	first, err := e.db.CurrentMachine(ctx, a.ID, iv)
	if err != nil || first.Region != "ams" || first.App != app {
		t.Fatalf("machine %+v (%v), want one in %s/ams", first, err, app)
	}
	orphan, err := backend.Launch(ctx, candorfly.Spec{InterviewID: "iv_gone", TenantID: a.ID, TenantSlug: a.Slug, Region: "iad"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a machine of no known interview is destroyed", func(t *testing.T) {
		if rep := e.reconcile(t); rep != (lifecycle.ReconcileReport{OrphansDestroyed: 1}) {
			t.Errorf("report %+v", rep)
		}
		// Fly destroys asynchronously: destroying, then destroyed.
		if st := flyState(fake, app, orphan.ID); st != fly.MachineStateDestroyed && st != fly.MachineStateDestroying {
			t.Errorf("orphan is %s", st)
		}
		if st := flyState(fake, app, first.ProviderID); st != fly.MachineStateStarted {
			t.Errorf("the interview's own machine is %s", st)
		}
	})

	t.Run("a machine deleted behind our back is replaced in its region", func(t *testing.T) {
		if err := backend.Destroy(ctx, candorfly.Machine{ID: first.ProviderID, App: app}); err != nil {
			t.Fatal(err)
		}
		if rep := e.reconcile(t); rep != (lifecycle.ReconcileReport{Vanished: 1, Redispatched: 1}) {
			t.Errorf("report %+v", rep)
		}
		cur, err := e.db.CurrentMachine(ctx, a.ID, iv)
		if err != nil || cur.ID == first.ID || cur.Region != "ams" {
			t.Fatalf("current machine %+v (%v), want a new one in ams", cur, err)
		}
		if st := flyState(fake, app, cur.ProviderID); st != fly.MachineStateStarted {
			t.Errorf("replacement is %s", st)
		}
		if got := strings.Join(e.eventsOf(t, a, iv), ","); got != "interview.starting,machine.launched,machine.vanished,machine.retired,machine.replaced" {
			t.Errorf("events %s", got)
		}
	})
}

func flyState(fake *flyfake.Server, app, id string) string {
	for _, m := range fake.Machines(app) {
		if m.ID == id {
			return m.State
		}
	}
	return ""
}

// Without CANDOR_REGIONS the Fly backend runs machines only in the default
// region; a candidate's edge region elsewhere (Fly-Region, or a forged
// header) must not reach it, or the launch fails. The lifecycle's one list
// (Service.Regions) is what both scheduling and placement use.
func TestWithoutConfiguredRegionsACandidatesEdgeRegionDoesNotBreakTheLaunch(t *testing.T) {
	ctx := context.Background()
	// As serve.go builds both from an empty CANDOR_REGIONS.
	backend, _ := newFlyOnFake(t, func(c *candorfly.FlyConfig) { c.DefaultRegion = "iad" })
	e := newTestEnv(t, withMachines(backend), withLifecycle(func(c *lifecycle.Config) { c.DefaultRegion = "iad" }))
	if got := e.lc.Regions(); !slices.Equal(got, []string{"iad"}) {
		t.Errorf("regions %v, want the default region alone", got)
	}
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	if _, _, err := e.lc.Start(ctx, a.ID, iv, "ams"); err != nil {
		t.Fatalf("start with the candidate's edge in ams: %v", err)
	}
	m, err := e.db.CurrentMachine(ctx, a.ID, iv)
	if err != nil || m.Region != "iad" {
		t.Errorf("machine %+v (%v), want one in the default region iad", m, err)
	}
}

// newFlyOnFake is the Fly backend aimed at a flyfake Machines API of its
// own, configured by adjust.
func newFlyOnFake(t *testing.T, adjust func(*candorfly.FlyConfig)) (*candorfly.Fly, *flyfake.Server) {
	t.Helper()
	fake := flyfake.New("test-token")
	api := httptest.NewServer(fake)
	t.Cleanup(api.Close)
	t.Setenv("FLY_FLAPS_BASE_URL", api.URL)
	cfg := candorfly.FlyConfig{
		Token: "test-token", Org: "candor-test", Image: "registry.fly.io/candor:v1",
		ProxyBaseURL: flyfake.ProxyURL(api.URL), RetryBase: time.Millisecond, ReadyTimeout: 10 * time.Second,
		InstallID: "test1",
	}
	adjust(&cfg)
	backend, err := candorfly.NewFly(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	return backend, fake
}
