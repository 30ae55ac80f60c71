package fly

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	fly "github.com/superfly/fly-go"

	"candor/fly/flyfake"
)

// These tests hold the Fly backend to the rules the strict fake enforces
// (see flyfake's package doc for where Fly documents each).

func TestFlyProvisioningFinishesWhatAnEarlierRunLeftHalfDone(t *testing.T) {
	f, fake, _ := newTestFly(t, func(c *FlyConfig) { c.MediaPorts = [2]int{40000, 40009} })
	// An earlier run created the app, then crashed (or hit a 429) before
	// assigning any address: {app}.fly.dev would never route.
	fake.SetLimits(nil)
	raw := newFakeClient(t, fake)
	raw.post("/v1/apps", `{"name":"candor-inst1-acme","org_slug":"candor-test","network":"candor-inst1-acme-net"}`)
	fake.ResetCalls()

	m, err := f.Launch(context.Background(), testSpec("iv_1"))
	if err != nil {
		t.Fatalf("Launch on a half-provisioned app: %v\n%s", err, callLog(fake.Calls()))
	}
	calls := fake.Calls()
	if n := countCalls(calls, `^POST /v1/apps/candor-inst1-acme/ip_assignments$`); n != 3 {
		t.Errorf("%d address assignments, want shared_v4, v6 and the dedicated v4:\n%s", n, callLog(calls))
	}
	if n := countCalls(calls, `^POST /v1/apps(\?|$)`); n != 0 {
		t.Errorf("the existing app was created again:\n%s", callLog(calls))
	}
	if env := fake.MachineEnv(m.App, m.ID); env["CANDOR_PUBLIC_IPS"] == "" || env["CANDOR_WEBRTC_BIND_HOST"] != "fly-global-services" || env["CANDOR_WEBRTC_UDP_PORT"] != "40000" {
		t.Errorf("media env = %v", env)
	}

	// A second control plane (a restart) checks and creates nothing.
	g, err := NewFly(f.cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	fake.ResetCalls()
	if _, err := g.Launch(context.Background(), testSpec("iv_2")); err != nil {
		t.Fatal(err)
	}
	if n := countCalls(fake.Calls(), `^POST /v1/apps/candor-inst1-acme/ip_assignments$`); n != 0 {
		t.Errorf("addresses assigned again (a dedicated IPv4 is billed):\n%s", callLog(fake.Calls()))
	}
}

// fakeClient sends raw API calls to the fake, as another party would.
type fakeClient struct {
	t   *testing.T
	srv *httptest.Server
}

func newFakeClient(t *testing.T, fake *flyfake.Server) fakeClient {
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fakeClient{t: t, srv: srv}
}

func (c fakeClient) post(path, body string) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer test-token")
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		c.t.Fatalf("POST %s: %d", path, resp.StatusCode)
	}
}

func TestFlyReplacementNeverCollidesWithAPredecessorBeingDestroyed(t *testing.T) {
	f, fake, _ := newTestFly(t)
	fake.SetDestroyDelay(time.Hour)
	ctx := context.Background()
	first, err := f.Launch(ctx, testSpec("iv_1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Destroy(ctx, first); err != nil {
		t.Fatal(err)
	}
	spec := testSpec("iv_1")
	spec.Attempt = 2
	second, err := f.Launch(ctx, spec)
	if err != nil {
		t.Fatalf("replacement while the predecessor is destroying: %v\n%s", err, callLog(fake.Calls()))
	}
	// A caller that does not count attempts still gets a machine: the
	// held name is skipped.
	third, err := f.Launch(ctx, testSpec("iv_1"))
	if err != nil {
		t.Fatalf("relaunch with a held name: %v", err)
	}
	names := map[string]string{}
	for _, m := range fake.Machines("candor-inst1-acme") {
		names[m.ID] = m.Name + " " + m.State + " " + m.Config.Metadata["candor_attempt"]
	}
	want := map[string]string{
		first.ID:  "interview-iv-1-1 destroying 1",
		second.ID: "interview-iv-1-2 started 2",
		third.ID:  "interview-iv-1-3 started 3",
	}
	for id, w := range want {
		if names[id] != w {
			t.Errorf("machine %s: %q, want %q", id, names[id], w)
		}
	}
}

func TestFlyMachineNamesAreDNSLabels(t *testing.T) {
	for _, tt := range []struct {
		id      string
		attempt int
		want    string
	}{
		{"iv_1", 0, "interview-iv-1-1"},
		{"iv_ABC", 12, "interview-iv-abc-12"},
		{strings.Repeat("x", 80), 3, "interview-" + strings.Repeat("x", 51) + "-3"},
	} {
		if got := MachineName(tt.id, tt.attempt); got != tt.want || len(got) > 63 {
			t.Errorf("MachineName(%q, %d) = %q, want %q", tt.id, tt.attempt, got, tt.want)
		}
	}
}

func TestFlyTwoInstallsInOneOrgNeverTouchEachOthersMachines(t *testing.T) {
	f, fake, _ := newTestFly(t)
	g, err := NewFly(func() FlyConfig { c := f.cfg; c.InstallID = "inst2"; return c }(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	ctx := context.Background()
	mf, err := f.Launch(ctx, testSpec("iv_1"))
	if err != nil {
		t.Fatal(err)
	}
	mg, err := g.Launch(ctx, testSpec("iv_1"))
	if err != nil {
		t.Fatal(err)
	}
	if mf.App == mg.App {
		t.Fatalf("both installs use app %s: they would share secrets", mf.App)
	}
	for _, c := range []struct {
		b    *Fly
		want string
	}{{f, mf.ID}, {g, mg.ID}} {
		listed, err := c.b.List(ctx)
		if err != nil || len(listed) != 1 || listed[0].ID != c.want {
			t.Errorf("install %s lists %+v, %v; want only its own machine", c.b.cfg.InstallID, listed, err)
		}
	}
	if n := len(fake.Machines(mf.App)) + len(fake.Machines(mg.App)); n != 2 {
		t.Errorf("%d machines in the two apps, want 2", n)
	}
}

func TestFlyBurstOfTenStartsInOneTenantAllRunUnderTheRateLimits(t *testing.T) {
	f, fake, _ := newTestFly(t, func(c *FlyConfig) { c.ReadyTimeout = time.Minute })
	ctx := context.Background()
	var wg sync.WaitGroup
	ms := make([]Machine, 10)
	errs := make([]error, 10)
	for i := range 10 {
		wg.Go(func() { ms[i], errs[i] = f.Launch(ctx, testSpec(fmt.Sprintf("iv_%d", i))) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
	}
	var created []string
	for _, m := range fake.Machines("candor-inst1-acme") {
		created = append(created, m.Name)
	}
	slices.Sort(created)
	if len(created) != 10 || len(slices.Compact(slices.Clone(created))) != 10 {
		t.Errorf("machines %v, want 10 distinct", created)
	}
	listed, err := f.List(ctx)
	if err != nil || len(listed) != 10 {
		t.Errorf("List = %d machines, %v", len(listed), err)
	}
	t.Logf("429s answered during the burst: %d of %d calls", count429(fake.Calls()), len(fake.Calls()))
	for _, m := range ms {
		if err := f.Destroy(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if listed, _ := f.List(ctx); len(listed) != 0 {
		t.Errorf("after destroying all, List = %+v", listed)
	}
}

func count429(calls []flyfake.Call) int {
	n := 0
	for _, c := range calls {
		if c.Status == http.StatusTooManyRequests {
			n++
		}
	}
	return n
}

func TestFlyHonoursRetryAfterWhenTheAPIIsStricterThanExpected(t *testing.T) {
	f, fake, _ := newTestFly(t)
	limits := flyfake.DefaultLimits()
	limits[flyfake.ActionCreate] = flyfake.Limit{Rate: 1, Burst: 1}
	fake.SetLimits(limits)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { _, errs[i] = f.Launch(ctx, testSpec(fmt.Sprintf("iv_%d", i))) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	calls := fake.Calls()
	if !containsRun(calls, []string{"POST /v1/apps/candor-inst1-acme/machines → 429"}) {
		t.Errorf("the fake never answered 429; the test does not test:\n%s", callLog(calls))
	}
	if n := countCalls(calls, `^POST /v1/apps/candor-inst1-acme/machines$`); n != 3 {
		t.Errorf("%d creates, want 2 and one retry after Retry-After:\n%s", n, callLog(calls))
	}
}

func TestFlyPlacementFallsBackToTheNextConfiguredRegion(t *testing.T) {
	f, fake, _ := newTestFly(t, func(c *FlyConfig) { c.Regions = []string{"syd", "sin", "iad"} })
	fake.SetCapacity("syd", false)
	spec := testSpec("iv_1")
	spec.Region = "syd"
	m, err := f.Launch(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if m.Region != "sin" || len(m.Notes) != 1 || !strings.Contains(m.Notes[0], "no machine capacity in syd") {
		t.Errorf("placed in %s with notes %q, want sin after syd had no capacity", m.Region, m.Notes)
	}
	spec.Region = "ams"
	if _, err := f.Launch(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "CANDOR_REGIONS") {
		t.Errorf("region outside the list: %v, want an error naming CANDOR_REGIONS", err)
	}
}

func TestFlyOperatorProviderSettingsReachTheMachineUnderTheTenantsOwn(t *testing.T) {
	f, fake, _ := newTestFly(t, func(c *FlyConfig) {
		c.OperatorSecrets = map[string]string{"OPENAI_API_KEY": "sk-operator", "OPENAI_BASE_URL": "https://llm.example"}
	})
	m, err := f.Launch(context.Background(), testSpec("iv_1"))
	if err != nil {
		t.Fatal(err)
	}
	env := fake.MachineEnv(m.App, m.ID)
	if env["OPENAI_API_KEY"] != "sk-test" || env["OPENAI_BASE_URL"] != "https://llm.example" {
		t.Errorf("machine env: key %q base %q; want the tenant's key and the operator's base URL", env["OPENAI_API_KEY"], env["OPENAI_BASE_URL"])
	}
	if _, inConfig := fake.Machines(m.App)[0].Config.Env["OPENAI_API_KEY"]; inConfig {
		t.Error("a provider key is in the machine config, where anyone with read access sees it; it belongs in app secrets")
	}
}

// exitingRunner's processes never get healthy and exit after a moment, as
// a processor with a configuration error does.
type exitingRunner struct{ fake *flyfake.Server }

func (r exitingRunner) Run(ctx context.Context, app string, m fly.Machine, env map[string]string) (string, error) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "starting", http.StatusServiceUnavailable)
	}))
	go func() {
		time.Sleep(300 * time.Millisecond)
		srv.Close()
		r.fake.ProcessExited(app, m.ID)
	}()
	return srv.URL, nil
}

func (exitingRunner) Stop(app, id string) {}

func TestFlyMachineThatExitsBeforeItIsHealthyFailsTheLaunchAtOnce(t *testing.T) {
	f, fake, _ := newTestFly(t, func(c *FlyConfig) { c.ReadyTimeout = 3 * time.Minute })
	fake.SetRunner(exitingRunner{fake: fake})
	t.Cleanup(fake.Close)
	_, err := f.Launch(context.Background(), testSpec("iv_1"))
	if !errors.Is(err, ErrProcessorExited) {
		t.Fatalf("Launch = %v, want ErrProcessorExited (not a timeout)", err)
	}
}

func TestFlyDirectUDPGivesEachLiveMachineItsOwnPort(t *testing.T) {
	f, fake, _ := newTestFly(t, func(c *FlyConfig) { c.MediaPorts = [2]int{41000, 41002}; c.MediaTCP = true })
	ctx := context.Background()
	var ms []Machine
	for i := range 3 {
		m, err := f.Launch(ctx, testSpec(fmt.Sprintf("iv_%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	ports := map[string]bool{}
	for _, m := range fake.Machines("candor-inst1-acme") {
		var udp, tcp []int
		for _, svc := range m.Config.Services {
			switch {
			case svc.Protocol == "udp":
				udp = append(udp, svc.InternalPort)
			case svc.InternalPort != 8080:
				tcp = append(tcp, svc.InternalPort)
			}
		}
		if len(udp) != 1 || !slices.Equal(udp, tcp) || m.Config.Env["CANDOR_WEBRTC_UDP_PORT"] != fmt.Sprint(udp[0]) {
			t.Errorf("machine %s services udp %v tcp %v env %v", m.Name, udp, tcp, m.Config.Env)
			continue
		}
		ports[fmt.Sprint(udp[0])] = true
	}
	if len(ports) != 3 {
		t.Errorf("ports %v, want 3 distinct", ports)
	}
	if _, err := f.Launch(ctx, testSpec("iv_9")); err == nil || !strings.Contains(err.Error(), "CANDOR_FLY_MEDIA_PORTS") {
		t.Errorf("launch with every port taken: %v", err)
	}
	if err := f.Destroy(ctx, ms[1]); err != nil {
		t.Fatal(err)
	}
	m, err := f.Launch(ctx, testSpec("iv_10"))
	if err != nil {
		t.Fatalf("launch after a port was freed: %v", err)
	}
	if got := fake.MachineEnv(m.App, m.ID)["CANDOR_WEBRTC_UDP_PORT"]; got != "41001" {
		t.Errorf("reused port %s, want the freed 41001", got)
	}
}

// TestFlyOneInterviewsAPICalls pins every Machines API call of one start
// and end (on a fresh tenant, direct UDP on) and logs them with their
// payloads (go test -v -run TestFlyOneInterviewsAPICalls ./fly).
func TestFlyOneInterviewsAPICalls(t *testing.T) {
	f, fake, _ := newTestFly(t, func(c *FlyConfig) {
		c.MediaPorts = [2]int{40000, 40999}
		c.OperatorSecrets = map[string]string{"OPENAI_BASE_URL": "https://llm.example"}
	})
	ctx := context.Background()
	spec := testSpec("iv_1")
	spec.Region = "iad"
	m, err := f.Launch(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Destroy(ctx, m); err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, c := range fake.Calls() {
		if strings.HasPrefix(c.Path, "/_proxy/") {
			t.Logf("%2d. %s %s → %d (the edge: {app}.fly.dev with fly-force-instance-id)", i+1, c.Method, c.Path, c.Status)
			got = append(got, c.Method+" edge")
			continue
		}
		t.Logf("%2d. %s %s → %d %s", i+1, c.Method, c.Path, c.Status, c.Body)
		got = append(got, c.Method+" "+regexpID.ReplaceAllString(strings.SplitN(c.Path, "?", 2)[0], "{id}"))
	}
	want := []string{
		"GET /v1/apps/candor-inst1-acme",
		"POST /v1/apps",
		"GET /v1/apps/candor-inst1-acme/ip_assignments",
		"POST /v1/apps/candor-inst1-acme/ip_assignments",
		"POST /v1/apps/candor-inst1-acme/ip_assignments",
		"POST /v1/apps/candor-inst1-acme/ip_assignments",
		"GET /v1/apps/candor-inst1-acme/secrets",
		"POST /v1/apps/candor-inst1-acme/secrets",
		"GET /v1/apps/candor-inst1-acme/machines",
		"POST /v1/apps/candor-inst1-acme/machines",
		"GET /v1/apps/candor-inst1-acme/machines/{id}/wait",
		"GET /v1/apps/candor-inst1-acme/machines/{id}",
		"GET edge",
		"DELETE /v1/apps/candor-inst1-acme/machines/{id}",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

var regexpID = regexp.MustCompile(`[0-9a-f]{14}`)
