package fly

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"candor/fly/flyfake"

	fly "github.com/superfly/fly-go"
)

// newTestFly aims a Fly backend at a fresh flyfake through
// FLY_FLAPS_BASE_URL, as production aims it at api.machines.dev.
func newTestFly(t testing.TB, opts ...func(*FlyConfig)) (*Fly, *flyfake.Server, string) {
	t.Helper()
	fake := flyfake.New("test-token")
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Setenv("FLY_FLAPS_BASE_URL", srv.URL)
	cfg := FlyConfig{
		Token: "test-token", Org: "candor-test", Image: "registry.fly.io/candor:v1",
		ProxyBaseURL: flyfake.ProxyURL(srv.URL), RetryBase: time.Millisecond, ReadyTimeout: 10 * time.Second,
		InstallID: "inst1", Regions: flyfake.Regions(), DefaultRegion: "iad",
	}
	for _, o := range opts {
		o(&cfg)
	}
	f, err := NewFly(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, fake, srv.URL
}

func callLog(calls []flyfake.Call) string {
	var b strings.Builder
	for _, c := range calls {
		b.WriteString(c.String() + "\n")
	}
	return b.String()
}

// countCalls counts recorded calls whose "METHOD path" matches re.
func countCalls(calls []flyfake.Call, re string) int {
	n := 0
	for _, c := range calls {
		if regexp.MustCompile(re).MatchString(c.Method + " " + c.Path) {
			n++
		}
	}
	return n
}

func TestFlyLaunchRunsTheInterviewOnAMachineInItsTenantsApp(t *testing.T) {
	f, fake, base := newTestFly(t)
	ctx := context.Background()
	spec := testSpec("iv_1")
	spec.Region = "fra"

	m, err := f.Launch(ctx, spec)
	if err != nil {
		t.Fatalf("Launch: %v\ncalls:\n%s", err, callLog(fake.Calls()))
	}
	wantM := Machine{ID: m.ID, Provider: "fly", App: "candor-inst1-acme", Region: "fra", State: "running",
		URL: base + "/_proxy/candor-inst1-acme", InterviewID: "iv_1", TenantID: "ten_1"}
	if m.Headers["fly-force-instance-id"] != m.ID || m.ID == "" {
		t.Errorf("headers = %v", m.Headers)
	}
	m2 := m
	m2.Headers = nil
	if !reflect.DeepEqual(m2, wantM) {
		t.Errorf("machine = %+v\nwant      %+v", m2, wantM)
	}

	app, ok := fake.App("candor-inst1-acme")
	if !ok || app.Network != "candor-inst1-acme-net" || app.Organization.Slug != "candor-test" {
		t.Fatalf("app = %+v, %v", app, ok)
	}
	if got := fake.Secrets("candor-inst1-acme"); len(got) != 1 || got["OPENAI_API_KEY"] != "sk-test" {
		t.Errorf("app secrets = %v", got)
	}
	ms := fake.Machines("candor-inst1-acme")
	if len(ms) != 1 {
		t.Fatalf("machines = %+v", ms)
	}
	fm := ms[0]
	c := fm.Config
	if fm.Name != "interview-iv-1-1" || fm.Region != "fra" || fm.State != "started" {
		t.Errorf("machine name/region/state = %s/%s/%s", fm.Name, fm.Region, fm.State)
	}
	if c.Image != "registry.fly.io/candor:v1" || !c.AutoDestroy || c.Restart == nil || c.Restart.Policy != fly.MachineRestartPolicyNo {
		t.Errorf("image/auto_destroy/restart = %s/%v/%+v", c.Image, c.AutoDestroy, c.Restart)
	}
	if g := c.Guest; g == nil || g.CPUKind != "shared" || g.CPUs != 1 || g.MemoryMB != 1024 {
		t.Errorf("guest = %+v", g)
	}
	if c.Metadata["candor_tenant"] != "ten_1" || c.Metadata["candor_interview"] != "iv_1" || c.Metadata["candor_attempt"] != "1" || c.Metadata["candor_install"] != "inst1" {
		t.Errorf("metadata = %v", c.Metadata)
	}
	if chk, ok := c.Checks["healthz"]; !ok || chk.Type == nil || *chk.Type != "http" || chk.HTTPPath == nil || *chk.HTTPPath != "/healthz" || chk.Port == nil || *chk.Port != 8080 {
		t.Errorf("checks = %+v, want an http check on /healthz", c.Checks)
	}
	if sc := c.StopConfig; sc == nil || sc.Signal == nil || *sc.Signal != "SIGTERM" || sc.Timeout == nil || sc.Timeout.Duration < 30*time.Second {
		t.Errorf("stop config = %+v, want SIGTERM with time to flush", sc)
	}
	wantEnv := map[string]string{
		"SESSION_ID": "iv_1", "TENANT_ID": "ten_1", "CANDIDATE_ID": "cand_1", "POSITION_ID": "pos_1",
		"CANDOR_CONTROL_URL": "http://127.0.0.1:9", "CANDOR_PROCESSOR_TOKEN": "tok-iv_1",
		"PORT": "8080", "CANDOR_PLAN_FILE": "/etc/candor/plan.json", "CANDOR_ROLE": "processor",
	}
	if len(c.Env) != len(wantEnv) {
		t.Errorf("env = %v, want exactly %v (secrets belong in app secrets)", c.Env, wantEnv)
	}
	for k, v := range wantEnv {
		if c.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, c.Env[k], v)
		}
	}
	if env := fake.MachineEnv("candor-inst1-acme", m.ID); env["OPENAI_API_KEY"] != "sk-test" || env["SESSION_ID"] != "iv_1" {
		t.Errorf("runtime env of the machine = %v", env)
	}
	if len(c.Files) != 1 || c.Files[0].GuestPath != "/etc/candor/plan.json" || c.Files[0].RawValue == nil || c.Files[0].Mode != 0o444 {
		t.Fatalf("files = %+v, want the plan readable by the image's unprivileged user", c.Files)
	}
	if plan, _ := base64.StdEncoding.DecodeString(*c.Files[0].RawValue); string(plan) != string(spec.Plan) {
		t.Errorf("plan file = %s", plan)
	}
	if len(c.Services) != 1 || c.Services[0].InternalPort != 8080 {
		t.Errorf("services = %+v", c.Services)
	}

	listed, err := f.List(ctx)
	if err != nil || len(listed) != 1 || !reflect.DeepEqual(listed[0], m) {
		t.Errorf("List = %+v, %v", listed, err)
	}

	if err := f.Destroy(ctx, m); err != nil {
		t.Fatal(err)
	}
	if ms := fake.Machines("candor-inst1-acme"); ms[0].State != "destroyed" && ms[0].State != "destroying" {
		t.Errorf("after Destroy the machine is %s", ms[0].State)
	}
	if err := f.Destroy(ctx, m); err != nil {
		t.Errorf("second Destroy = %v, want nil", err)
	}
	if listed, _ := f.List(ctx); len(listed) != 0 {
		t.Errorf("List after Destroy = %+v", listed)
	}
	t.Logf("recorded calls:\n%s", callLog(fake.Calls()))
}

func TestFlyTwoTenantsNeverShareAnApp(t *testing.T) {
	f, fake, _ := newTestFly(t)
	ctx := context.Background()
	acme, globex := testSpec("iv_a1"), testSpec("iv_g1")
	globex.TenantID, globex.TenantSlug, globex.Secrets = "ten_2", "Globex Corp", map[string]string{"OPENAI_API_KEY": "sk-globex"}

	ma, err := f.Launch(ctx, acme)
	if err != nil {
		t.Fatal(err)
	}
	mg, err := f.Launch(ctx, globex)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.Launch(ctx, testSpec("iv_a2"))
	if err != nil {
		t.Fatal(err)
	}
	if ma.App != "candor-inst1-acme" || mg.App != "candor-inst1-globex-corp" || again.App != ma.App {
		t.Fatalf("apps = %s, %s, %s", ma.App, mg.App, again.App)
	}
	a, _ := fake.App(ma.App)
	g, _ := fake.App(mg.App)
	if a.Network == g.Network {
		t.Errorf("both tenants on network %q", a.Network)
	}
	if fake.Secrets(mg.App)["OPENAI_API_KEY"] != "sk-globex" || fake.Secrets(ma.App)["OPENAI_API_KEY"] != "sk-test" {
		t.Error("tenant secrets leaked across apps")
	}
	calls := fake.Calls()
	if n := countCalls(calls, `^POST /v1/apps\?`); n != 2 {
		t.Errorf("%d app creations, want 2\n%s", n, callLog(calls))
	}
	if n := countCalls(calls, `^POST /v1/apps/candor-inst1-acme/secrets$`); n != 1 {
		t.Errorf("unchanged secrets written %d times, want 1", n)
	}
	if ms := fake.Machines("candor-inst1-globex-corp"); len(ms) != 1 || ms[0].Config.Metadata["candor_tenant"] != "ten_2" {
		t.Errorf("globex app machines = %+v", ms)
	}
}

func TestFlyLaunchRetriesTransientAPIErrors(t *testing.T) {
	tests := []struct {
		name  string
		fault flyfake.Fault
		want  []string // consecutive calls expected in the log
	}{
		{
			name:  "a 503 on create is retried and one machine is created",
			fault: flyfake.Fault{Method: "POST", Path: `^/v1/apps/[^/]+/machines$`, Status: 503},
			want:  []string{"POST /v1/apps/candor-inst1-acme/machines → 503", "POST /v1/apps/candor-inst1-acme/machines → 200"},
		},
		{
			name:  "a 429 on create is retried and one machine is created",
			fault: flyfake.Fault{Method: "POST", Path: `^/v1/apps/[^/]+/machines$`, Status: 429, Times: 2},
			want:  []string{"POST /v1/apps/candor-inst1-acme/machines → 429", "POST /v1/apps/candor-inst1-acme/machines → 429", "POST /v1/apps/candor-inst1-acme/machines → 200"},
		},
		{
			name:  "a 429 on wait is retried",
			fault: flyfake.Fault{Method: "GET", Path: `/wait$`, Status: 429},
			want:  []string{"→ 429", "→ 200"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, fake, _ := newTestFly(t)
			fake.Inject(tt.fault)
			m, err := f.Launch(context.Background(), testSpec("iv_r"))
			if err != nil {
				t.Fatalf("Launch: %v\n%s", err, callLog(fake.Calls()))
			}
			log := callLog(fake.Calls())
			if !containsRun(fake.Calls(), tt.want) {
				t.Errorf("calls do not show %q:\n%s", tt.want, log)
			}
			if ms := fake.Machines(m.App); len(ms) != 1 {
				t.Errorf("%d machines created, want 1:\n%s", len(ms), log)
			}
			t.Logf("recorded calls:\n%s", log)
		})
	}
}

// containsRun reports whether consecutive calls end with the wanted
// suffixes, in order.
func containsRun(calls []flyfake.Call, want []string) bool {
	for i := 0; i+len(want) <= len(calls); i++ {
		ok := true
		for j, w := range want {
			if !strings.HasSuffix(calls[i+j].String(), w) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func TestFlyFailedLaunchDestroysItsMachine(t *testing.T) {
	tests := []struct {
		name   string
		faults []flyfake.Fault
		ready  time.Duration
	}{
		{
			name:   "wait answers an error",
			faults: []flyfake.Fault{{Method: "GET", Path: `/wait$`, Status: 400, Body: `{"error":"invalid_argument: machine failed to start"}`}},
		},
		{
			name:   "healthz through the proxy never answers 200",
			faults: []flyfake.Fault{{Path: `^/_proxy/`, Status: 502, Times: 1 << 20}},
			ready:  300 * time.Millisecond,
		},
		{
			name:   "create answers 500 after it created the machine",
			faults: []flyfake.Fault{{Method: "POST", Path: `^/v1/apps/[^/]+/machines$`, Status: 500, AfterHandling: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, fake, _ := newTestFly(t)
			if tt.ready > 0 {
				f.cfg.ReadyTimeout = tt.ready
			}
			for _, fl := range tt.faults {
				fake.Inject(fl)
			}
			_, err := f.Launch(context.Background(), testSpec("iv_f"))
			if err == nil {
				t.Fatal("Launch succeeded")
			}
			calls := fake.Calls()
			ms := fake.Machines("candor-inst1-acme")
			if len(ms) != 1 || (ms[0].State != "destroyed" && ms[0].State != "destroying") {
				t.Errorf("machines after failed launch = %+v\n%s", ms, callLog(calls))
			}
			if countCalls(calls, `^DELETE /v1/apps/candor-inst1-acme/machines/\w+\?kill=true$`) != 1 {
				t.Errorf("no destroy call:\n%s", callLog(calls))
			}
			t.Logf("Launch error: %v", err)
		})
	}
}

func TestFlyLaunchReportsNoCapacityClearly(t *testing.T) {
	f, fake, _ := newTestFly(t, func(c *FlyConfig) { c.Regions = []string{"iad"} })
	fake.Inject(flyfake.Fault{Method: "POST", Path: `/machines$`, Status: 412,
		Body: `{"error":"insufficient resources to create new machine with existing volume","status":"insufficient_capacity"}`})
	_, err := f.Launch(context.Background(), testSpec("iv_c"))
	if !errors.Is(err, ErrCapacity) || !strings.Contains(err.Error(), "region iad") {
		t.Fatalf("Launch error = %v, want ErrCapacity naming the region", err)
	}
	if n := countCalls(fake.Calls(), `^POST /v1/apps/candor-inst1-acme/machines$`); n != 1 {
		t.Errorf("capacity error retried: %d creates", n)
	}
}

func TestNewFlyNamesTheMissingSetting(t *testing.T) {
	tests := []struct {
		name string
		cfg  FlyConfig
		want string
	}{
		{"no token", FlyConfig{Org: "o", Image: "i"}, "FLY_API_TOKEN"},
		{"no org", FlyConfig{Token: "t", Image: "i"}, "FLY_ORG"},
		{"no image", FlyConfig{Token: "t", Org: "o"}, "FLY_PROCESSOR_IMAGE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewFly(tt.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to name %s", err, tt.want)
			}
		})
	}
}

func TestFlyAppNameIsASafeSlug(t *testing.T) {
	f := &Fly{cfg: FlyConfig{AppPrefix: "candor", InstallID: "inst1"}}
	for in, want := range map[string]string{
		"acme":                  "candor-inst1-acme",
		"Globex Corp":           "candor-inst1-globex-corp",
		"--weird__name!!":       "candor-inst1-weird-name",
		strings.Repeat("a", 80): "candor-inst1-" + strings.Repeat("a", 50),
	} {
		if got := f.AppName(in); got != want {
			t.Errorf("AppName(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkFlyAPICalls reports Machines API calls per interview start and
// end against the fake: the first start of a tenant (app creation,
// addresses, secrets) and a steady-state start.
func BenchmarkFlyAPICalls(b *testing.B) {
	f, fake, _ := newTestFly(b)
	f.log = slog.New(slog.DiscardHandler)
	ctx := context.Background()
	first, err := f.Launch(ctx, testSpec("iv_first"))
	if err != nil {
		b.Fatal(err)
	}
	firstStart := countCalls(fake.Calls(), `^(GET|POST|DELETE) /v1/`)
	if err := f.Destroy(ctx, first); err != nil {
		b.Fatal(err)
	}
	var starts, ends int
	for i := 0; b.Loop(); i++ {
		fake.ResetCalls()
		m, err := f.Launch(ctx, testSpec("iv_b"+strconv.Itoa(i)))
		if err != nil {
			b.Fatal(err)
		}
		starts += countCalls(fake.Calls(), `^(GET|POST|DELETE) /v1/`)
		fake.ResetCalls()
		if err := f.Destroy(ctx, m); err != nil {
			b.Fatal(err)
		}
		ends += countCalls(fake.Calls(), `^(GET|POST|DELETE) /v1/`)
	}
	b.ReportMetric(float64(firstStart), "calls/first-start")
	b.ReportMetric(float64(starts)/float64(b.N), "calls/start")
	b.ReportMetric(float64(ends)/float64(b.N), "calls/end")
}

func TestFlyLaunchClaimsAWarmMachineAndRefillsThePool(t *testing.T) {
	f, fake, _ := newTestFly(t, func(c *FlyConfig) { c.WarmPerRegion = map[string]int{"iad": 1} })
	ctx := context.Background()
	warmIDs := func() []string {
		var ids []string
		for _, m := range fake.Machines("candor-inst1-acme") {
			if m.Config.Metadata["candor_pool"] == "1" && m.State == "created" {
				ids = append(ids, m.ID)
			}
		}
		return ids
	}

	first, err := f.Launch(ctx, testSpec("iv_1"))
	if err != nil {
		t.Fatal(err)
	}
	var warm []string
	waitFor(t, "a warm machine", func() bool { warm = warmIDs(); return len(warm) == 1 })
	waitFor(t, "the pool to adopt it", func() bool {
		f.pool.mu.Lock()
		defer f.pool.mu.Unlock()
		return len(f.pool.idle[poolKey{"candor-inst1-acme", "iad"}]) == 1
	})

	fake.ResetCalls()
	m, err := f.Launch(ctx, testSpec("iv_2"))
	if err != nil {
		t.Fatal(err)
	}
	calls := fake.Calls()
	t.Logf("calls of a warm launch:\n%s", callLog(calls))
	if m.ID != warm[0] {
		t.Fatalf("launched %s, want warm machine %s", m.ID, warm[0])
	}
	if countCalls(calls, `^POST /v1/apps/candor-inst1-acme/machines/`+m.ID+`$`) != 1 {
		t.Errorf("no update of the warm machine:\n%s", callLog(calls))
	}
	var got fly.Machine
	for _, fm := range fake.Machines("candor-inst1-acme") {
		if fm.ID == m.ID {
			got = fm
		}
	}
	if got.State != "started" || got.Name != "interview-iv-2-1" || got.Config.Metadata["candor_interview"] != "iv_2" ||
		got.Config.Env["SESSION_ID"] != "iv_2" || len(got.Config.Files) != 1 {
		t.Errorf("claimed machine = %s %s %v %v", got.State, got.Name, got.Config.Metadata, got.Config.Env)
	}
	waitFor(t, "the pool to be refilled", func() bool { ids := warmIDs(); return len(ids) == 1 && ids[0] != m.ID })
	if n := len(fake.Machines("candor-inst1-acme")); n != 3 {
		t.Errorf("%d machines, want 3: two interviews and the refill (the launch itself created none)", n)
	}

	listed, err := f.List(ctx)
	if err != nil || len(listed) != 2 {
		t.Errorf("List = %+v, %v; want the two interview machines only", listed, err)
	}
	for _, lm := range []Machine{first, m} {
		if err := f.Destroy(ctx, lm); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFlyWarmPoolAdoptsTheWarmMachinesOfAPreviousRun(t *testing.T) {
	warmCfg := func(c *FlyConfig) { c.WarmPerRegion = map[string]int{"iad": 1} }
	f, fake, _ := newTestFly(t, warmCfg)
	if _, err := f.Launch(context.Background(), testSpec("iv_1")); err != nil {
		t.Fatal(err)
	}
	var warmID string
	waitFor(t, "a warm machine", func() bool {
		for _, m := range fake.Machines("candor-inst1-acme") {
			if m.Config.Metadata["candor_pool"] == "1" {
				warmID = m.ID
			}
		}
		return warmID != ""
	})
	f.Close()

	// A restarted control plane, same org and fake.
	f2, err := NewFly(f.cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	m, err := f2.Launch(context.Background(), testSpec("iv_2"))
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != warmID {
		t.Errorf("launched %s, want the previous run's warm machine %s", m.ID, warmID)
	}
	waitFor(t, "the pool to be refilled", func() bool { return len(fake.Machines("candor-inst1-acme")) == 3 })
	if n := len(fake.Machines("candor-inst1-acme")); n != 3 {
		t.Errorf("%d machines, want 3 (two interviews, one warm): a warm machine was created needlessly", n)
	}
}
