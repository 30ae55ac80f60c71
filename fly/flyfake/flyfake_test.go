package flyfake_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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

const token = "secret-token"

func newServer(t *testing.T) (*flyfake.Server, *httptest.Server) {
	t.Helper()
	fake := flyfake.New(token)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv
}

// call sends a raw request, as the public API docs describe them, and
// returns the status and the decoded JSON answer.
func call(t *testing.T, srv *httptest.Server, method, path, body string, headers ...string) (int, any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &v); err != nil {
			v = string(b)
		}
	}
	return resp.StatusCode, v
}

// field digs into decoded JSON: field(v, "config", "guest", "cpus").
func field(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func mustStatus(t *testing.T, got, want int, body any) {
	t.Helper()
	if got != want {
		t.Fatalf("status %d, want %d; body %v", got, want, body)
	}
}

func createApp(t *testing.T, srv *httptest.Server, name string) {
	t.Helper()
	st, body := call(t, srv, "POST", "/v1/apps", `{"name":"`+name+`","org_slug":"personal","network":"`+name+`-net","app_role_id":""}`)
	mustStatus(t, st, http.StatusCreated, body)
}

func assignIP(t *testing.T, srv *httptest.Server, app, typ string) string {
	t.Helper()
	st, body := call(t, srv, "POST", "/v1/apps/"+app+"/ip_assignments", `{"type":"`+typ+`","org_slug":"personal"}`)
	mustStatus(t, st, http.StatusOK, body)
	return field(body, "ip").(string)
}

// waitUntil polls cond until it holds or 10 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const validMachine = `{
  "name": "interview-1",
  "region": "fra",
  "config": {
    "image": "registry.fly.io/candor:v1",
    "env": {"SESSION_ID": "iv_1"},
    "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 1024},
    "metadata": {"candor_tenant": "ten_1", "candor_interview": "iv_1"},
    "files": [{"guest_path": "/etc/candor/plan.json", "raw_value": "e30="}],
    "services": [{"protocol": "tcp", "internal_port": 8080, "ports": [{"port": 443, "handlers": ["tls", "http"]}]}],
    "auto_destroy": true,
    "restart": {"policy": "no"}
  }
}`

func TestRequestsWithoutTheTokenAreUnauthorized(t *testing.T) {
	_, srv := newServer(t)
	for _, auth := range []string{"", "Bearer wrong", "Basic " + token} {
		st, body := call(t, srv, "GET", "/v1/apps?org_slug=personal", "", "Authorization", auth)
		if st != http.StatusUnauthorized || field(body, "error") != "unauthorized" {
			t.Errorf("Authorization %q: %d %v, want 401 unauthorized", auth, st, body)
		}
	}
}

func TestAppsAreCreatedOnceAndListedByOrg(t *testing.T) {
	_, srv := newServer(t)
	st, body := call(t, srv, "GET", "/v1/apps/candor-acme", "")
	if st != http.StatusNotFound || field(body, "error") != "app not found" {
		t.Fatalf("unknown app: %d %v", st, body)
	}
	st, body = call(t, srv, "POST", "/v1/apps?wait=true", `{"name":"candor-acme","org_slug":"personal","network":"candor-acme-net"}`)
	mustStatus(t, st, http.StatusCreated, body)
	if field(body, "name") != "candor-acme" || field(body, "network") != "candor-acme-net" || field(body, "organization", "slug") != "personal" {
		t.Errorf("created app = %v", body)
	}
	st, body = call(t, srv, "POST", "/v1/apps", `{"name":"candor-acme","org_slug":"personal"}`)
	if st != http.StatusUnprocessableEntity || !strings.Contains(field(body, "error").(string), "taken") {
		t.Errorf("duplicate app: %d %v", st, body)
	}
	st, body = call(t, srv, "POST", "/v1/apps", `{"name":"Bad Name","org_slug":"personal"}`)
	mustStatus(t, st, http.StatusBadRequest, body)
	st, body = call(t, srv, "GET", "/v1/apps/candor-acme", "")
	mustStatus(t, st, http.StatusOK, body)
	st, body = call(t, srv, "GET", "/v1/apps?org_slug=personal", "")
	mustStatus(t, st, http.StatusOK, body)
	if apps := field(body, "apps").([]any); len(apps) != 1 || field(body, "total_apps") != 1.0 {
		t.Errorf("list = %v", body)
	}
	st, body = call(t, srv, "GET", "/v1/apps?org_slug=other", "")
	if apps := field(body, "apps").([]any); st != 200 || len(apps) != 0 {
		t.Errorf("other org list = %d %v", st, body)
	}
}

func TestCreateMachineRejectsInvalidBodies(t *testing.T) {
	tests := []struct {
		name, app, body, want string
		status                int
	}{
		{"a body without config", "candor-acme", `{"name":"x"}`, "config is required", 400},
		{"a config without image", "candor-acme", `{"config":{"guest":{"cpus":1,"memory_mb":256}}}`, "config.image is required", 400},
		{"a guest with no cpus", "candor-acme", `{"config":{"image":"i","guest":{"cpus":0,"memory_mb":256}}}`, "cpus", 400},
		{"memory not a multiple of 256", "candor-acme", `{"config":{"image":"i","guest":{"cpus":1,"memory_mb":300}}}`, "memory_mb", 400},
		{"3 shared cpus, which no preset has", "candor-acme", `{"config":{"image":"i","guest":{"cpu_kind":"shared","cpus":3,"memory_mb":768}}}`, "not a size Fly offers", 400},
		{"more than 2 GB per shared cpu", "candor-acme", `{"config":{"image":"i","guest":{"cpu_kind":"shared","cpus":1,"memory_mb":4096}}}`, "between 256 and 2048", 400},
		{"less than 2 GB per performance cpu", "candor-acme", `{"config":{"image":"i","guest":{"cpu_kind":"performance","cpus":2,"memory_mb":2048}}}`, "between 4096 and 16384", 400},
		{"a name that is not a DNS label", "candor-acme", `{"name":"interview_1","config":{"image":"i"}}`, "invalid name", 400},
		{"a udp service whose public port differs", "candor-acme", `{"config":{"image":"i","services":[{"protocol":"udp","internal_port":4000,"ports":[{"port":5000}]}]}}`, "unchanged", 400},
		{"an unknown restart policy", "candor-acme", `{"config":{"image":"i","restart":{"policy":"sometimes"}}}`, "restart policy", 400},
		{"a relative file path", "candor-acme", `{"config":{"image":"i","files":[{"guest_path":"plan.json","raw_value":"e30="}]}}`, "absolute", 400},
		{"a raw_value that is not base64", "candor-acme", `{"config":{"image":"i","files":[{"guest_path":"/p","raw_value":"{}"}]}}`, "base64", 400},
		{"a misspelled field", "candor-acme", `{"config":{"image":"i","auto_destory":true}}`, "unknown field", 400},
		{"an unknown region", "candor-acme", `{"region":"xxx","config":{"image":"i"}}`, "invalid region", 400},
		{"an unknown app", "candor-nope", validMachine, "app not found", 404},
	}
	fake, srv := newServer(t)
	fake.SetLimits(nil) // a table of creates in one app; the limits have their own test
	createApp(t, srv, "candor-acme")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body := call(t, srv, "POST", "/v1/apps/"+tt.app+"/machines", tt.body)
			msg, _ := field(body, "error").(string)
			if st != tt.status || !strings.Contains(msg, tt.want) {
				t.Errorf("%d %v, want %d with %q", st, body, tt.status, tt.want)
			}
		})
	}
}

func TestAMachineIsCreatedStartedAndDestroyed(t *testing.T) {
	fake, srv := newServer(t)
	createApp(t, srv, "candor-acme")
	assignIP(t, srv, "candor-acme", "shared_v4")
	st, body := call(t, srv, "POST", "/v1/apps/candor-acme/machines", validMachine)
	mustStatus(t, st, http.StatusOK, body)
	id, _ := field(body, "id").(string)
	if !regexp.MustCompile(`^[0-9a-f]{14}$`).MatchString(id) || field(body, "name") != "interview-1" || field(body, "region") != "fra" {
		t.Fatalf("created machine = %v", body)
	}
	if field(body, "config", "guest", "memory_mb") != 1024.0 || field(body, "config", "metadata", "candor_interview") != "iv_1" || field(body, "config", "restart", "policy") != "no" {
		t.Errorf("config not echoed: %v", field(body, "config"))
	}
	m := "/v1/apps/candor-acme/machines/" + id

	st, body = call(t, srv, "GET", m+"/wait?state=started&timeout=5", "")
	mustStatus(t, st, http.StatusOK, body)
	st, body = call(t, srv, "GET", m, "")
	if st != 200 || field(body, "state") != "started" {
		t.Errorf("after wait: %d state %v", st, field(body, "state"))
	}
	st, body = call(t, srv, "POST", "/v1/apps/candor-acme/machines", validMachine)
	mustStatus(t, st, http.StatusConflict, body)

	st, body = call(t, srv, "GET", "/_proxy/candor-acme/healthz", "", "fly-force-instance-id", id)
	if st != 200 || field(body, "status") != "ok" {
		t.Errorf("healthz through proxy: %d %v", st, body)
	}
	st, _ = call(t, srv, "GET", "/_proxy/candor-acme/healthz", "", "fly-force-instance-id", "0000000000000")
	if st != http.StatusServiceUnavailable {
		t.Errorf("healthz of an unknown instance: %d, want 503", st)
	}

	st, body = call(t, srv, "DELETE", m, "")
	mustStatus(t, st, http.StatusPreconditionFailed, body)
	st, body = call(t, srv, "DELETE", m+"?force=true", "")
	mustStatus(t, st, http.StatusOK, body)
	st, body = call(t, srv, "GET", m+"/wait?state=destroyed&timeout=5", "")
	mustStatus(t, st, http.StatusOK, body)
	st, body = call(t, srv, "GET", m, "")
	if st != 200 || field(body, "state") != "destroyed" {
		t.Errorf("destroyed machine: %d %v", st, body)
	}
	st, body = call(t, srv, "DELETE", m+"?kill=true", "")
	mustStatus(t, st, http.StatusNotFound, body)

	st, body = call(t, srv, "GET", "/v1/apps/candor-acme/machines", "")
	if list, _ := body.([]any); st != 200 || len(list) != 0 {
		t.Errorf("list without destroyed: %v", body)
	}
	st, body = call(t, srv, "GET", "/v1/apps/candor-acme/machines?include_deleted=true", "")
	if list, _ := body.([]any); st != 200 || len(list) != 1 {
		t.Errorf("list with destroyed: %v", body)
	}

	var got []string
	for _, c := range fake.Calls() {
		got = append(got, c.String())
	}
	want := "DELETE /v1/apps/candor-acme/machines/" + id + "?force=true → 200"
	if !strings.Contains(strings.Join(got, "\n"), want) {
		t.Errorf("calls do not record %q:\n%s", want, strings.Join(got, "\n"))
	}
}

func TestASkipLaunchMachineStartsOnlyWhenStarted(t *testing.T) {
	_, srv := newServer(t)
	createApp(t, srv, "candor-acme")
	st, body := call(t, srv, "POST", "/v1/apps/candor-acme/machines", strings.Replace(validMachine, `"region"`, `"skip_launch": true, "region"`, 1))
	mustStatus(t, st, http.StatusOK, body)
	m := "/v1/apps/candor-acme/machines/" + field(body, "id").(string)
	if field(body, "state") != "created" {
		t.Fatalf("skip_launch machine state = %v", field(body, "state"))
	}
	st, body = call(t, srv, "GET", m+"/wait?state=started&timeout=1", "")
	if st != http.StatusRequestTimeout || !strings.HasPrefix(field(body, "error").(string), "deadline_exceeded") {
		t.Errorf("wait on an unstarted machine: %d %v", st, body)
	}
	st, body = call(t, srv, "POST", m+"/start", "")
	if st != 200 || field(body, "previous_state") != "created" {
		t.Errorf("start: %d %v", st, body)
	}
	st, body = call(t, srv, "GET", m+"/wait?state=started", "")
	mustStatus(t, st, http.StatusOK, body)
	st, body = call(t, srv, "POST", m+"/stop", `{"id":"x","signal":"SIGTERM"}`)
	mustStatus(t, st, http.StatusOK, body)
	if _, body = call(t, srv, "GET", m, ""); field(body, "state") != "destroying" {
		t.Errorf("auto_destroy machine after stop is %v, want destroying", field(body, "state"))
	}
	if st, body = call(t, srv, "GET", m+"/wait?state=destroyed&timeout=5", ""); st != 200 {
		t.Errorf("auto_destroy machine never destroyed: %d %v", st, body)
	}
}

func TestListFiltersMachinesByMetadata(t *testing.T) {
	_, srv := newServer(t)
	createApp(t, srv, "candor-acme")
	for _, iv := range []string{"iv_1", "iv_2"} {
		body := strings.ReplaceAll(strings.ReplaceAll(validMachine, "interview-1", "interview-"+strings.ReplaceAll(iv, "_", "-")), `"candor_interview": "iv_1"`, `"candor_interview": "`+iv+`"`)
		st, b := call(t, srv, "POST", "/v1/apps/candor-acme/machines", body)
		mustStatus(t, st, 200, b)
	}
	st, body := call(t, srv, "GET", "/v1/apps/candor-acme/machines?metadata.candor_interview=iv_2", "")
	list, _ := body.([]any)
	if st != 200 || len(list) != 1 || field(list[0], "config", "metadata", "candor_interview") != "iv_2" {
		t.Errorf("filtered list = %v", body)
	}
}

func TestSecretsAreSetListedAndDeleted(t *testing.T) {
	fake, srv := newServer(t)
	createApp(t, srv, "candor-acme")
	st, body := call(t, srv, "POST", "/v1/apps/candor-acme/secrets", `{"values":{"OPENAI_API_KEY":"sk-1","OTHER":"x"}}`)
	if st != 200 || field(body, "version") != 1.0 {
		t.Fatalf("update: %d %v", st, body)
	}
	st, body = call(t, srv, "GET", "/v1/apps/candor-acme/secrets", "")
	secrets := field(body, "secrets").([]any)
	if st != 200 || len(secrets) != 2 || field(secrets[0], "value") != nil || field(secrets[0], "digest") == "" {
		t.Errorf("list hides values: %v", body)
	}
	_, body = call(t, srv, "GET", "/v1/apps/candor-acme/secrets?show_secrets=true", "")
	if field(field(body, "secrets").([]any)[0], "value") != "sk-1" {
		t.Errorf("show_secrets: %v", body)
	}
	st, body = call(t, srv, "POST", "/v1/apps/candor-acme/secrets", `{"values":{"OTHER":null}}`)
	if st != 200 || field(body, "version") != 2.0 || len(fake.Secrets("candor-acme")) != 1 {
		t.Errorf("delete by null: %d %v", st, body)
	}
	st, body = call(t, srv, "POST", "/v1/apps/candor-acme/secrets", `{"values":{"bad-name":"x"}}`)
	mustStatus(t, st, http.StatusBadRequest, body)
	st, body = call(t, srv, "POST", "/v1/apps/candor-acme/machines", strings.Replace(validMachine, `"region"`, `"min_secrets_version": 9, "region"`, 1))
	mustStatus(t, st, http.StatusBadRequest, body)
}

func TestInjectedFaultsAnswerInsteadOfTheAPIAndAreRecorded(t *testing.T) {
	fake, srv := newServer(t)
	fake.Inject(flyfake.Fault{Method: "GET", Path: `^/v1/apps$`, Status: 429, Times: 2})
	fake.Inject(flyfake.Fault{Method: "GET", Path: `^/v1/apps/slow$`, Delay: 50 * time.Millisecond})
	for i, want := range []int{429, 429, 200} {
		if st, body := call(t, srv, "GET", "/v1/apps?org_slug=personal", ""); st != want {
			t.Errorf("call %d: %d %v, want %d", i, st, body, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/apps/slow", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if _, err := srv.Client().Do(req); err == nil {
		t.Error("delayed call answered before the client's deadline")
	}
	var got []string
	for _, c := range fake.Calls() {
		got = append(got, c.String())
	}
	want := []string{
		"GET /v1/apps?org_slug=personal → 429",
		"GET /v1/apps?org_slug=personal → 429",
		"GET /v1/apps?org_slug=personal → 200",
	}
	if strings.Join(got[:3], "\n") != strings.Join(want, "\n") {
		t.Errorf("calls =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// echoRunner runs each machine as an httptest server that answers with the
// machine's env, standing in for the Fly host.
type echoRunner struct {
	mu      sync.Mutex
	servers map[string]*httptest.Server
	stopped []string
}

func (r *echoRunner) Run(ctx context.Context, app string, m fly.Machine, env map[string]string) (string, error) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintf(w, "%s %s %s", req.URL.RequestURI(), env["SESSION"], req.Header.Get("X-Test"))
	}))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.servers[m.ID] = srv
	return srv.URL, nil
}

func (r *echoRunner) Stop(app, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if srv, ok := r.servers[id]; ok {
		srv.Close()
		delete(r.servers, id)
	}
	r.stopped = append(r.stopped, id)
}

func TestARunnerRunsStartedMachinesBehindTheProxy(t *testing.T) {
	fake, srv := newServer(t)
	runner := &echoRunner{servers: map[string]*httptest.Server{}}
	fake.SetRunner(runner)
	t.Cleanup(fake.Close)
	createApp(t, srv, "candor-acme")
	assignIP(t, srv, "candor-acme", "v6")
	st, body := call(t, srv, "POST", "/v1/apps/candor-acme/machines",
		`{"name":"m1","config":{"image":"candor:v1","env":{"SESSION":"iv_7"},"services":[{"protocol":"tcp","internal_port":8080,"ports":[{"port":80,"handlers":["http"]}]}]}}`)
	mustStatus(t, st, http.StatusOK, body)
	id, _ := field(body, "id").(string)

	st, body = call(t, srv, "GET", "/_proxy/candor-acme/p/x?y=1", "", "fly-force-instance-id", id, "X-Test", "hdr")
	if st != 200 || body != "/p/x?y=1 iv_7 hdr" {
		t.Errorf("through the proxy: %d %v, want the machine's own answer", st, body)
	}
	st, body = call(t, srv, "DELETE", "/v1/apps/candor-acme/machines/"+id+"?force=true", "")
	mustStatus(t, st, http.StatusOK, body)
	var stopped []string
	waitUntil(t, "the destroyed machine's process to stop", func() bool {
		runner.mu.Lock()
		defer runner.mu.Unlock()
		stopped = slices.Clone(runner.stopped)
		return len(stopped) > 0
	})
	if !slices.Equal(stopped, []string{id}) {
		t.Errorf("stopped %v, want the destroyed machine", stopped)
	}
	st, _ = call(t, srv, "GET", "/_proxy/candor-acme/healthz", "", "fly-force-instance-id", id)
	if st != http.StatusServiceUnavailable {
		t.Errorf("destroyed machine through the proxy: %d, want 503", st)
	}
}
