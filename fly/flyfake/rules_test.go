package flyfake_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"candor/fly/flyfake"
)

// These tests pin the Fly rules the fake enforces; each cites where Fly
// documents it.

// https://fly.io/docs/machines/api/#rate-limits and
// https://community.fly.io/t/understanding-fly-io-api-rate-hard-limits/20636:
// 1 req/s per action, burst 3; Get Machine 5 req/s, burst 10.
func TestCreatesAndGetsAreRateLimitedPerAppWithRetryAfter(t *testing.T) {
	_, srv := newServer(t)
	createApp(t, srv, "candor-acme")
	createApp(t, srv, "candor-other")
	var ids []string
	for i := range 3 {
		st, body := call(t, srv, "POST", "/v1/apps/candor-acme/machines", fmt.Sprintf(`{"name":"m%d","config":{"image":"i"}}`, i))
		mustStatus(t, st, http.StatusOK, body)
		ids = append(ids, field(body, "id").(string))
	}
	req, _ := http.NewRequest("POST", srv.URL+"/v1/apps/candor-acme/machines", strings.NewReader(`{"name":"m9","config":{"image":"i"}}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("4th create in a burst: %d, want 429", resp.StatusCode)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("429 without a usable Retry-After: %q", resp.Header.Get("Retry-After"))
	}
	if resp.Header.Get("fly-request-id") == "" {
		t.Error("answer without fly-request-id")
	}
	// Another app has its own bucket.
	st, body := call(t, srv, "POST", "/v1/apps/candor-other/machines", `{"name":"m0","config":{"image":"i"}}`)
	mustStatus(t, st, http.StatusOK, body)

	// Get Machine: burst 10, per machine.
	for i := range 10 {
		if st, body := call(t, srv, "GET", "/v1/apps/candor-acme/machines/"+ids[0], ""); st != 200 {
			t.Fatalf("get %d within the burst: %d %v", i, st, body)
		}
	}
	if st, _ := call(t, srv, "GET", "/v1/apps/candor-acme/machines/"+ids[0], ""); st != http.StatusTooManyRequests {
		t.Errorf("11th get in a burst: %d, want 429", st)
	}
	if st, body := call(t, srv, "GET", "/v1/apps/candor-acme/machines/"+ids[1], ""); st != 200 {
		t.Errorf("get of another machine: %d %v", st, body)
	}
}

// https://fly.io/docs/machines/machine-states/: destroy goes through
// "destroying"; names are unique among the app's machines that exist.
func TestDestroyIsAsynchronousAndTheNameIsHeldUntilDestroyed(t *testing.T) {
	fake, srv := newServer(t)
	fake.SetDestroyDelay(300 * time.Millisecond)
	createApp(t, srv, "candor-acme")
	st, body := call(t, srv, "POST", "/v1/apps/candor-acme/machines", `{"name":"interview-1-1","config":{"image":"i"}}`)
	mustStatus(t, st, http.StatusOK, body)
	m := "/v1/apps/candor-acme/machines/" + field(body, "id").(string)
	st, body = call(t, srv, "DELETE", m+"?force=true", "")
	mustStatus(t, st, http.StatusOK, body)
	if _, body = call(t, srv, "GET", m, ""); field(body, "state") != "destroying" {
		t.Fatalf("just after destroy: %v, want destroying", field(body, "state"))
	}
	st, body = call(t, srv, "POST", "/v1/apps/candor-acme/machines", `{"name":"interview-1-1","config":{"image":"i"}}`)
	if st != http.StatusConflict {
		t.Errorf("same name while destroying: %d %v, want 409", st, body)
	}
	st, body = call(t, srv, "POST", "/v1/apps/candor-acme/machines", `{"name":"interview-1-2","config":{"image":"i"}}`)
	mustStatus(t, st, http.StatusOK, body)
	st, body = call(t, srv, "GET", m+"/wait?state=destroyed&timeout=5", "")
	mustStatus(t, st, http.StatusOK, body)
	time.Sleep(time.Second) // the create bucket refills
	st, body = call(t, srv, "POST", "/v1/apps/candor-acme/machines", `{"name":"interview-1-1","config":{"image":"i"}}`)
	mustStatus(t, st, http.StatusOK, body)
}

func TestARegionWithoutCapacityRefusesCreates(t *testing.T) {
	fake, srv := newServer(t)
	createApp(t, srv, "candor-acme")
	fake.SetCapacity("syd", false)
	st, body := call(t, srv, "POST", "/v1/apps/candor-acme/machines", `{"region":"syd","config":{"image":"i"}}`)
	if st != http.StatusPreconditionFailed || field(body, "status") != "insufficient_capacity" {
		t.Errorf("create in a full region: %d %v", st, body)
	}
	st, body = call(t, srv, "POST", "/v1/apps/candor-acme/machines", `{"region":"sin","config":{"image":"i"}}`)
	mustStatus(t, st, http.StatusOK, body)
}

// https://fly.io/docs/reference/services/: {app}.fly.dev resolves only to an
// app's public IPs, and the proxy routes only to machines publishing a
// service.
func TestTheEdgeRoutesOnlyToAppsWithAnIPAndMachinesWithAService(t *testing.T) {
	_, srv := newServer(t)
	createApp(t, srv, "candor-acme")
	st, body := call(t, srv, "POST", "/v1/apps/candor-acme/machines", validMachine)
	mustStatus(t, st, http.StatusOK, body)
	id := field(body, "id").(string)
	call(t, srv, "GET", "/v1/apps/candor-acme/machines/"+id+"/wait?state=started", "")
	if st, body := call(t, srv, "GET", "/_proxy/candor-acme/healthz", "", "fly-force-instance-id", id); st != http.StatusBadGateway {
		t.Errorf("app without an IP: %d %v, want 502", st, body)
	}
	assignIP(t, srv, "candor-acme", "shared_v4")
	if st, body := call(t, srv, "GET", "/_proxy/candor-acme/healthz", "", "fly-force-instance-id", id); st != 200 {
		t.Errorf("app with an IP: %d %v", st, body)
	}
	st, body = call(t, srv, "POST", "/v1/apps/candor-acme/machines", `{"name":"bare","config":{"image":"i"}}`)
	mustStatus(t, st, http.StatusOK, body)
	bare := field(body, "id").(string)
	call(t, srv, "GET", "/v1/apps/candor-acme/machines/"+bare+"/wait?state=started", "")
	if st, body := call(t, srv, "GET", "/_proxy/candor-acme/healthz", "", "fly-force-instance-id", bare); st != http.StatusServiceUnavailable {
		t.Errorf("machine without a service: %d %v, want 503", st, body)
	}
}

// https://fly.io/docs/machines/machine-states/ and the auto_destroy flag of
// https://fly.io/docs/machines/api/machines-resource/: a machine whose
// process exits stops, and with auto_destroy is destroyed.
func TestAMachineWhoseProcessExitsStopsAndIsDestroyed(t *testing.T) {
	fake, srv := newServer(t)
	runner := &echoRunner{servers: map[string]*httptest.Server{}}
	fake.SetRunner(runner)
	t.Cleanup(fake.Close)
	createApp(t, srv, "candor-acme")
	st, body := call(t, srv, "POST", "/v1/apps/candor-acme/machines", validMachine)
	mustStatus(t, st, http.StatusOK, body)
	id := field(body, "id").(string)
	m := "/v1/apps/candor-acme/machines/" + id
	call(t, srv, "GET", m+"/wait?state=started", "")
	waitUntil(t, "the machine's process to run", func() bool {
		runner.mu.Lock()
		defer runner.mu.Unlock()
		return runner.servers[id] != nil
	})
	fake.ProcessExited("candor-acme", id)
	var events []string
	_, body = call(t, srv, "GET", m, "")
	for _, e := range field(body, "events").([]any) {
		events = append(events, field(e, "type").(string))
	}
	if got := strings.Join(events, " "); !strings.HasPrefix(got, "destroying stopped started") {
		t.Errorf("events after the process exited: %s", got)
	}
	if st, body := call(t, srv, "GET", m+"/wait?state=destroyed&timeout=5", ""); st != 200 {
		t.Errorf("never destroyed: %d %v", st, body)
	}
}

// https://fly.io/docs/networking/dynamic-request-routing/: fly-replay
// redelivers the original request to the app and instance it names, within
// the organization, bodies up to 1 MB.
func TestFlyReplayRedeliversTheRequestToTheNamedInstance(t *testing.T) {
	fake, srv := newServer(t)
	runner := &echoRunner{servers: map[string]*httptest.Server{}}
	fake.SetRunner(runner)
	t.Cleanup(fake.Close)
	createApp(t, srv, "candor-acme")
	assignIP(t, srv, "candor-acme", "shared_v4")
	st, body := call(t, srv, "POST", "/v1/apps/candor-acme/machines",
		`{"name":"m1","config":{"image":"candor:v1","env":{"SESSION":"iv_7"},"services":[{"protocol":"tcp","internal_port":8080,"ports":[{"port":443,"handlers":["tls","http"]}]}]}}`)
	mustStatus(t, st, http.StatusOK, body)
	id := field(body, "id").(string)
	call(t, srv, "GET", "/v1/apps/candor-acme/machines/"+id+"/wait?state=started", "")

	var mu sync.Mutex
	var seenBodies []int
	control := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seenBodies = append(seenBodies, len(b))
		mu.Unlock()
		switch r.URL.Path {
		case "/p/elsewhere":
			w.Header().Set("fly-replay", "app=candor-foreign;instance="+id)
		case "/home":
			io.WriteString(w, "control plane")
			return
		default:
			w.Header().Set("fly-replay", "app=candor-acme;instance="+id)
		}
		w.WriteHeader(http.StatusConflict)
	}))
	t.Cleanup(control.Close)
	edge, err := fake.Edge("personal", control.URL)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(edge)
	t.Cleanup(front.Close)

	get := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, front.URL+path, strings.NewReader(body))
		req.Header.Set("X-Test", "hdr")
		resp, err := front.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, b := get("GET", "/home", ""); st != 200 || b != "control plane" {
		t.Errorf("a request the control plane answers: %d %q", st, b)
	}
	before := fake.Traffic()
	payload := strings.Repeat("x", 100<<10)
	if st, b := get("POST", "/p/iv_7/process-audio?x=1", payload); st != 200 || b != "/p/iv_7/process-audio?x=1 iv_7 hdr" {
		t.Errorf("replayed request: %d %q, want the machine's answer with the original path and headers", st, b)
	}
	after := fake.Traffic()
	if got := after.Machines - before.Machines; got < int64(len(payload)) {
		t.Errorf("machine traffic grew by %d bytes, want at least the %d-byte body", got, len(payload))
	}
	if st, _ := get("POST", "/p/iv_7/big", strings.Repeat("x", flyfake.MaxReplayBody+1)); st != http.StatusBadGateway {
		t.Errorf("replay of a body over 1 MB: %d, want 502", st)
	}
	if st, _ := get("GET", "/p/elsewhere", ""); st != http.StatusBadGateway {
		t.Errorf("replay to an app outside the org: %d, want 502", st)
	}
}

// https://fly.io/docs/networking/udp-and-tcp/: UDP needs a dedicated IPv4;
// it reaches the machine on fly-global-services at the same port.
func TestUDPReachesOnlyTheMachinePublishingThePortThroughADedicatedIPv4(t *testing.T) {
	fake, srv := newServer(t)
	createApp(t, srv, "candor-acme")
	assignIP(t, srv, "candor-acme", "shared_v4")
	port := freeUDPPort(t)
	st, body := call(t, srv, "POST", "/v1/apps/candor-acme/machines", fmt.Sprintf(
		`{"name":"media","config":{"image":"i","services":[{"protocol":"udp","internal_port":%d,"ports":[{"port":%d}]}]}}`, port, port))
	mustStatus(t, st, http.StatusOK, body)
	id := field(body, "id").(string)
	call(t, srv, "GET", "/v1/apps/candor-acme/machines/"+id+"/wait?state=started", "")

	// The machine's process: a UDP echo on fly-global-services:<port>.
	gs := fake.GlobalServicesIP("candor-acme", id)
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(gs), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			pc.WriteToUDP(append([]byte("echo:"), buf[:n]...), from)
		}
	}()

	v4 := assignIP(t, srv, "candor-acme", "v4")
	if st, body := call(t, srv, "POST", "/v1/apps/candor-acme/ip_assignments", `{"type":"v4","org_slug":"personal"}`); st != http.StatusConflict {
		t.Errorf("second dedicated IPv4: %d %v, want 409", st, body)
	}
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(v4), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1500)
	var got string
	for i := 0; i < 50 && got == ""; i++ {
		c.Write([]byte("ping"))
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := c.Read(buf); err == nil {
			got = string(buf[:n])
		}
	}
	if got != "echo:ping" {
		t.Fatalf("UDP through the dedicated IPv4: %q, want the machine's echo", got)
	}
	if fake.Traffic().UDP < 2*int64(len("ping")) {
		t.Errorf("UDP traffic not counted: %+v", fake.Traffic())
	}
	// Another port of the same address reaches nothing.
	c2, _ := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(v4), Port: freeUDPPort(t)})
	defer c2.Close()
	c2.Write([]byte("ping"))
	c2.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c2.Read(buf); err == nil {
		t.Error("a port no machine publishes answered")
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
