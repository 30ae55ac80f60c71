package main

// Machines end to end through the real binary: run() serves the control
// plane on a loopback port with a temporary --data, processors are this
// test binary re-executed with --role=processor (TestMain in e2e_test.go),
// speech is real librivox audio through real pocketsphinx. Only the Fly
// Machines API is faked (fly/flyfake), and the fake runs each "machine" as
// a real local processor behind its edge-proxy stand-in.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	flyapi "github.com/superfly/fly-go"

	"candor/fly"
	"candor/fly/flyfake"
)

// plane is a control plane run by run() for one test.
type plane struct {
	addr, url string // where it listens; url is also its --public-url unless overridden
	dir       string
	log       *syncLog
	client    *http.Client
	keys      map[string]tenantKey // by tenant name
}

type tenantKey struct{ ID, Slug, Key string }

// syncLog collects the control plane's (and its processors') log.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 8<<20 {
		l.buf.Reset()
	}
	return l.buf.Write(p)
}

func (l *syncLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.buf.String()
	if len(s) > 8000 {
		s = "…" + s[len(s)-8000:]
	}
	return s
}

// startPlane bootstraps tenants in a fresh data dir, then runs the control
// plane with args (plus --addr and --data) and env until the test ends.
func startPlane(t *testing.T, tenants []string, args []string, env map[string]string) *plane {
	t.Helper()
	return startPlaneAt(t, "", tenants, args, env)
}

// startPlaneAt is startPlane listening on addr ("" picks a free port).
func startPlaneAt(t *testing.T, addr string, tenants []string, args []string, env map[string]string) *plane {
	t.Helper()
	dir := t.TempDir()
	base := envMap(os.Environ())
	for k := range base {
		if strings.HasPrefix(k, "CANDOR_") || strings.HasPrefix(k, "FLY_") {
			delete(base, k)
		}
	}
	base["CANDOR_LOG_LEVEL"] = "info"
	for k, v := range env {
		base[k] = v
	}
	p := &plane{dir: dir, log: &syncLog{}, client: &http.Client{Timeout: 2 * time.Minute}, keys: map[string]tenantKey{}}
	for i, name := range tenants {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"admin", "bootstrap", "--tenant", name, "--email", fmt.Sprintf("owner%d@example.com", i), "--password", "correct horse battery", "--data", dir}, base, &out, io.Discard); err != nil {
			t.Fatalf("admin bootstrap: %v", err)
		}
		var boot struct{ TenantID, TenantSlug, APIKey string }
		if err := json.Unmarshal(out.Bytes(), &struct {
			TenantID   *string `json:"tenant_id"`
			TenantSlug *string `json:"tenant_slug"`
			APIKey     *string `json:"api_key"`
		}{&boot.TenantID, &boot.TenantSlug, &boot.APIKey}); err != nil || boot.APIKey == "" {
			t.Fatalf("bootstrap printed %q: %v", out.String(), err)
		}
		p.keys[name] = tenantKey{ID: boot.TenantID, Slug: boot.TenantSlug, Key: boot.APIKey}
	}
	if addr == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		ln.Close()
	}
	p.addr = addr
	p.url = "http://" + p.addr

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--addr=" + p.addr, "--data=" + dir}, args...), base, io.Discard, p.log)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("control plane: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("the control plane did not stop within 60 s")
		}
		if t.Failed() {
			t.Logf("control plane log (tail):\n%s", p.log.tail())
		}
	})
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		res, err := http.Get(p.url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-done:
			t.Fatalf("control plane exited: %v\n%s", err, p.log.tail())
		default:
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("control plane not healthy after 30 s: %v", err)
		}
	}
}

// call sends a JSON request with a bearer token and decodes a 2xx answer.
func (p *plane) call(t *testing.T, method, url, token string, body, out any) {
	t.Helper()
	if status, b := p.try(t, method, url, token, body); status/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, url, status, b)
	} else if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, b, err)
		}
	}
}

func (p *plane) try(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	if strings.HasPrefix(url, "/") {
		url = p.url + url
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := p.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

type apiMachine struct {
	ID, Provider, Region, State, URL string
	SecondsBilled                    float64 `json:"seconds_billed"`
}

type apiInterview struct {
	ID, Status, Region string
	Machine            *apiMachine
}

type apiStart struct {
	Interview apiInterview
	Processor struct{ URL, Token string }
}

type apiEntry struct {
	Seq     int64
	Speaker string
	Text    string
	StartMS int64 `json:"start_ms"`
	EndMS   int64 `json:"end_ms"`
}

// schedule creates a position, a candidate and an interview of tenant.
func (p *plane) schedule(t *testing.T, tenant string) string {
	t.Helper()
	key := p.keys[tenant].Key
	var pos, cand, iv struct{ ID string }
	p.call(t, "POST", "/api/v1/positions", key, map[string]any{"title": "Backend engineer", "questions": []string{"Tell me about your last project."}}, &pos)
	p.call(t, "POST", "/api/v1/candidates", key, map[string]any{"name": "Elinor Dashwood", "email": "elinor-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@example.com"}, &cand)
	p.call(t, "POST", "/api/v1/interviews", key, map[string]any{"position_id": pos.ID, "candidate_id": cand.ID}, &iv)
	return iv.ID
}

func (p *plane) interview(t *testing.T, tenant, id string) apiInterview {
	t.Helper()
	var iv apiInterview
	p.call(t, "GET", "/api/v1/interviews/"+id, p.keys[tenant].Key, nil, &iv)
	return iv
}

func (p *plane) transcript(t *testing.T, tenant, id string) []apiEntry {
	t.Helper()
	var tr struct{ Entries []apiEntry }
	p.call(t, "GET", "/api/v1/interviews/"+id+"/transcript", p.keys[tenant].Key, nil, &tr)
	return tr.Entries
}

func (p *plane) events(t *testing.T, tenant, id string) []string {
	t.Helper()
	var evs struct{ Events []struct{ Type string } }
	p.call(t, "GET", "/api/v1/interviews/"+id+"/events", p.keys[tenant].Key, nil, &evs)
	var types []string
	for _, e := range evs.Events {
		types = append(types, e.Type)
	}
	return types
}

// sendAudio posts pcm to the processor's /process-audio in 250 ms chunks
// numbered from seq, as one continuous audio/pcm stream.
func (p *plane) sendAudio(t *testing.T, processorURL, token string, pcm []byte, seq int64) {
	t.Helper()
	const chunk = 16000 * 2 / 4
	for off := 0; off < len(pcm); off += chunk {
		end := min(off+chunk, len(pcm))
		status, b := p.try(t, "POST", processorURL+"/process-audio", token, map[string]any{
			"audio_chunk": base64.StdEncoding.EncodeToString(pcm[off:end]), "speaker": "candidate",
			"sequence_number": seq, "mime_type": "audio/pcm;rate=16000",
		})
		if status != http.StatusOK {
			t.Fatalf("process-audio chunk %d: %d %s", seq, status, b)
		}
		seq++
	}
}

// speechPCM is the named librivox clips as s16le 16 kHz mono, each
// followed by 1.2 s of silence so the recognizer ends the utterance.
func speechPCM(t *testing.T, clips ...string) []byte {
	t.Helper()
	var out []byte
	for _, c := range clips {
		b, err := os.ReadFile(filepath.Join("/usr/share/pocketsphinx/test/data/librivox", "sense_and_sensibility_01_austen_64kb-"+c+".wav"))
		if err != nil {
			t.Fatal(err)
		}
		data, err := wavData(b)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		out = append(out, data...)
		out = append(out, make([]byte, 16000*2*12/10)...)
	}
	return out
}

// wavData returns the samples of a 16 kHz mono s16le RIFF/WAVE file.
func wavData(b []byte) ([]byte, error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, errors.New("not a RIFF/WAVE file")
	}
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), int(binary.LittleEndian.Uint32(b[off+4:off+8]))
		body := b[off+8 : min(off+8+size, len(b))]
		switch id {
		case "fmt ":
			if binary.LittleEndian.Uint16(body[2:4]) != 1 || binary.LittleEndian.Uint32(body[4:8]) != 16000 || binary.LittleEndian.Uint16(body[14:16]) != 16 {
				return nil, errors.New("not 16 kHz mono s16le")
			}
		case "data":
			return body, nil
		}
		off += 8 + size + size%2
	}
	return nil, errors.New("no data chunk")
}

// processorPID reads the pid file the local backend keeps for machine id.
func processorPID(t *testing.T, dataDir, id string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "processors", id+".pid"))
	if err != nil {
		t.Fatalf("pid file of %s: %v", id, err)
	}
	var rec struct{ PID int }
	if err := json.Unmarshal(b, &rec); err != nil || rec.PID <= 1 {
		t.Fatalf("pid file of %s: %q (%v)", id, b, err)
	}
	return rec.PID
}

// checkSequence fails unless the entries' seqs are exactly 1..n and the
// candidate's entries move forward on the media clock.
func checkSequence(t *testing.T, entries []apiEntry) {
	t.Helper()
	for i, e := range entries {
		if e.Seq != int64(i+1) {
			t.Fatalf("entry %d has seq %d: seqs are not 1..n without gap or duplicate: %+v", i, e.Seq, entries)
		}
	}
	var last int64 = -1
	for _, e := range entries {
		if e.Speaker != "candidate" {
			continue
		}
		if e.StartMS <= last || e.EndMS < e.StartMS {
			t.Errorf("candidate entry %d (%d–%d ms) does not move forward from %d ms", e.Seq, e.StartMS, e.EndMS, last)
		}
		last = e.StartMS
	}
}

func candidateText(entries []apiEntry) string {
	var words []string
	for _, e := range entries {
		if e.Speaker == "candidate" {
			words = append(words, e.Text)
		}
	}
	return strings.Join(words, " ")
}

func TestMachinesLocalStartAndEndThroughTheAPI(t *testing.T) {
	p := startPlane(t, []string{"Acme"}, []string{"--warm-pool=0"}, nil)
	key := p.keys["Acme"].Key
	id := p.schedule(t, "Acme")

	var st apiStart
	p.call(t, "POST", "/api/v1/interviews/"+id+"/start", key, nil, &st)
	if st.Interview.Status != "running" || st.Processor.URL == "" || st.Processor.Token == "" {
		t.Fatalf("start answered %+v", st)
	}
	if want := p.url + "/p/" + id; st.Processor.URL != want {
		t.Errorf("processor url %q, want the interview's stable route %q", st.Processor.URL, want)
	}
	m := p.interview(t, "Acme", id).Machine
	if m == nil || m.Provider != "local" || m.State != "running" {
		t.Fatalf("machine %+v", m)
	}
	if len(processorChildren()) != 1 {
		t.Errorf("processes running: %v, want the interview's processor", processorChildren())
	}

	p.sendAudio(t, st.Processor.URL, st.Processor.Token, speechPCM(t, "0880", "0890"), 0)
	var ended apiInterview
	p.call(t, "POST", "/api/v1/interviews/"+id+"/end", key, nil, &ended)
	if ended.Status != "completed" {
		t.Fatalf("end answered status %s", ended.Status)
	}

	t.Run("the transcript is complete when end answers", func(t *testing.T) {
		entries := p.transcript(t, "Acme", id)
		checkSequence(t, entries)
		text := candidateText(entries)
		for _, w := range []string{"young", "selfish"} {
			if !strings.Contains(text, w) {
				t.Errorf("candidate transcript %q lacks %q", text, w)
			}
		}
	})
	t.Run("the machine is destroyed with its time billed", func(t *testing.T) {
		m := p.interview(t, "Acme", id).Machine
		if m == nil || m.State != "destroyed" || m.SecondsBilled <= 0 {
			t.Errorf("machine %+v, want destroyed with seconds billed", m)
		}
		if got := p.events(t, "Acme", id); !slices.Contains(got, "interview.ended") || slices.Contains(got, "error") {
			t.Errorf("events %v", got)
		}
	})
	t.Run("no processor process is left", func(t *testing.T) {
		waitUntil(t, 20*time.Second, "processors to exit", func() bool { return len(processorChildren()) == 0 })
		if pids, _ := filepath.Glob(filepath.Join(p.dir, "processors", "*.pid")); len(pids) > 0 {
			t.Errorf("pid files left: %v", pids)
		}
	})
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// localRunner stands in for the Fly host under flyfake: each started
// machine runs as a real local processor (this test binary) with the env
// its machine config and app secrets give it, and its plan file. The one
// thing it changes is CANDOR_CONTROL_URL: the control plane's public URL
// names a host only this runner's "network" resolves (as Fly's would), so
// it is pointed at the loopback address the control plane listens on.
type localRunner struct {
	local     *fly.Local
	publicURL string
	listenURL string

	mu       sync.Mutex
	machines map[string]fly.Machine // by Fly machine id
	envs     map[string]map[string]string
	// globalIP, when set, is what "fly-global-services" resolves to on a
	// machine (flyfake.GlobalServicesIP): the processor's UDP media port
	// binds there, as on Fly.
	globalIP func(app, id string) string
}

func (r *localRunner) Run(ctx context.Context, app string, m flyapi.Machine, env map[string]string) (string, error) {
	env = cloneEnv(env)
	if env["CANDOR_CONTROL_URL"] == r.publicURL {
		env["CANDOR_CONTROL_URL"] = r.listenURL
	}
	if r.globalIP != nil && env["CANDOR_WEBRTC_BIND_HOST"] == "fly-global-services" {
		env["CANDOR_WEBRTC_BIND_HOST"] = r.globalIP(app, m.ID)
	}
	var plan []byte
	for _, f := range m.Config.Files {
		if f.GuestPath == env["CANDOR_PLAN_FILE"] && f.RawValue != nil {
			b, err := base64.StdEncoding.DecodeString(*f.RawValue)
			if err != nil {
				return "", err
			}
			plan = b
		}
	}
	delete(env, "CANDOR_PLAN_FILE") // the local backend writes the plan where the child can read it
	lm, err := r.local.Launch(ctx, fly.Spec{
		InterviewID: env["SESSION_ID"], TenantID: env["TENANT_ID"], CandidateID: env["CANDIDATE_ID"], PositionID: env["POSITION_ID"],
		Env: env, Plan: plan,
	})
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	r.machines[m.ID] = lm
	r.envs[m.ID] = env
	r.mu.Unlock()
	return lm.URL, nil
}

func (r *localRunner) Stop(app, id string) {
	r.mu.Lock()
	lm, ok := r.machines[id]
	delete(r.machines, id)
	r.mu.Unlock()
	if ok {
		_ = r.local.Destroy(context.Background(), lm)
	}
}

func cloneEnv(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestMachinesFlyBackendThroughTheControlPlane(t *testing.T) {
	fake := flyfake.New("fly-test-token")
	api := httptest.NewServer(fake)
	t.Cleanup(func() {
		api.Close()
		fake.Close()
	})
	local, err := fly.NewLocal(fly.LocalConfig{Args: []string{"--role=processor"}, DataDir: t.TempDir(),
		BaseEnv: map[string]string{"CANDOR_LOG_LEVEL": "info"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })

	// The control plane's public URL must be reachable from Fly machines,
	// so the fly provisioner refuses loopback URLs: it gets a name that
	// this test's client and the runner map to the listen address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	publicURL := "http://candor.test:" + port
	runner := &localRunner{local: local, publicURL: publicURL, listenURL: "http://127.0.0.1:" + port,
		machines: map[string]fly.Machine{}, envs: map[string]map[string]string{}}
	fake.SetRunner(runner)
	// The first machine create answers 503 (fly-go retries it); a later
	// wait answers 503 once too (candor retries it).
	fake.Inject(flyfake.Fault{Method: "POST", Path: `^/v1/apps/[^/]+/machines$`, Status: http.StatusServiceUnavailable})
	fake.Inject(flyfake.Fault{Method: "GET", Path: `/wait$`, Status: http.StatusServiceUnavailable})

	p := startPlaneAt(t, "127.0.0.1:"+port, []string{"Acme", "Globex"}, []string{
		"--provisioner=fly", "--public-url=" + publicURL, "--fly-proxy-url=" + flyfake.ProxyURL(api.URL),
		"--default-region=ams", "--warm-pool=0", "--fly-memory-mb=1024", "--fly-cpus=1",
	}, map[string]string{
		"FLY_API_TOKEN": "fly-test-token", "FLY_ORG": "candor-test", "FLY_PROCESSOR_IMAGE": "registry.fly.io/candor:test",
		"FLY_FLAPS_BASE_URL": api.URL,
	})
	// Requests to the public name reach the control plane on loopback.
	p.client.Transport = &http.Transport{Proxy: nil, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == "candor.test:"+port {
			addr = "127.0.0.1:" + port
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}

	type started struct {
		id, app string
		st      apiStart
	}
	var runs []started
	for _, tenant := range []string{"Acme", "Globex"} {
		id := p.schedule(t, tenant)
		var st apiStart
		p.call(t, "POST", "/api/v1/interviews/"+id+"/start", p.keys[tenant].Key, nil, &st)
		if want := publicURL + "/p/" + id; st.Processor.URL != want {
			t.Errorf("processor url %q, want the control-plane route %q", st.Processor.URL, want)
		}
		// The app is <prefix>-<install id>-<tenant slug>.
		app := ""
		for _, name := range fake.AppNames() {
			if strings.HasPrefix(name, "candor-") && strings.HasSuffix(name, "-"+p.keys[tenant].Slug) {
				app = name
			}
		}
		runs = append(runs, started{id: id, app: app, st: st})
	}

	t.Run("each tenant has its own app and network", func(t *testing.T) {
		if runs[0].app == runs[1].app {
			t.Fatalf("both tenants in app %s", runs[0].app)
		}
		for _, r := range runs {
			a, ok := fake.App(r.app)
			if !ok || a.Network != r.app+"-net" || a.Organization.Slug != "candor-test" {
				t.Errorf("app %s = %+v (exists %v), want its own network %s-net in org candor-test", r.app, a, ok, r.app)
			}
			if ms := fake.Machines(r.app); len(ms) != 1 || ms[0].Config.Metadata["candor_interview"] != r.id {
				t.Errorf("app %s holds %d machines, want only its tenant's interview", r.app, len(ms))
			}
		}
	})

	t.Run("the machine is configured as the design says", func(t *testing.T) {
		r := runs[0]
		ms := fake.Machines(r.app)
		if len(ms) != 1 {
			t.Fatalf("%d machines", len(ms))
		}
		m := ms[0]
		c := m.Config
		tenant := p.keys["Acme"]
		if m.Name != fly.MachineName(r.id, 1) || m.Region != "ams" {
			t.Errorf("name %q region %q", m.Name, m.Region)
		}
		for k, want := range map[string]string{
			"SESSION_ID": r.id, "TENANT_ID": tenant.ID, "CANDOR_CONTROL_URL": publicURL,
			"CANDOR_PLAN_FILE": "/etc/candor/plan.json", "CANDOR_ROLE": "processor", "PORT": "8080",
		} {
			if c.Env[k] != want {
				t.Errorf("env %s = %q, want %q", k, c.Env[k], want)
			}
		}
		for _, k := range []string{"CANDIDATE_ID", "POSITION_ID", "CANDOR_PROCESSOR_TOKEN"} {
			if c.Env[k] == "" {
				t.Errorf("env %s is empty", k)
			}
		}
		if len(c.Files) != 1 || c.Files[0].GuestPath != "/etc/candor/plan.json" || c.Files[0].RawValue == nil {
			t.Errorf("files %+v, want the plan", c.Files)
		} else if plan, _ := base64.StdEncoding.DecodeString(*c.Files[0].RawValue); !bytes.Contains(plan, []byte("Tell me about your last project.")) {
			t.Errorf("plan file %s lacks the position's question", plan)
		}
		if g := c.Guest; g == nil || g.CPUs != 1 || g.MemoryMB != 1024 || g.CPUKind != "shared" {
			t.Errorf("guest %+v", g)
		}
		if !c.AutoDestroy || c.Restart == nil || c.Restart.Policy != flyapi.MachineRestartPolicyNo {
			t.Errorf("auto_destroy %v restart %+v", c.AutoDestroy, c.Restart)
		}
		if c.Metadata["candor_tenant"] != tenant.ID || c.Metadata["candor_interview"] != r.id {
			t.Errorf("metadata %v", c.Metadata)
		}
	})

	t.Run("injected 503s were retried", func(t *testing.T) {
		var log []string
		for _, c := range fake.Calls() {
			log = append(log, c.String())
		}
		joined := strings.Join(log, "\n")
		for _, want := range []string{"/machines → 503", "/machines → 200", "timeout=60 → 503"} {
			if !strings.Contains(joined, want) {
				t.Errorf("call log lacks %q:\n%s", want, joined)
			}
		}
	})

	t.Run("audio through the control-plane route reaches the machine, and end flushes and destroys it", func(t *testing.T) {
		r := runs[0]
		p.sendAudio(t, r.st.Processor.URL, r.st.Processor.Token, speechPCM(t, "0880"), 0)
		var ended apiInterview
		p.call(t, "POST", "/api/v1/interviews/"+r.id+"/end", p.keys["Acme"].Key, nil, &ended)
		if ended.Status != "completed" {
			t.Fatalf("status %s", ended.Status)
		}
		entries := p.transcript(t, "Acme", r.id)
		checkSequence(t, entries)
		if text := candidateText(entries); !strings.Contains(text, "young") {
			t.Errorf("candidate transcript %q", text)
		}
		if ms := fake.Machines(r.app); ms[0].State != flyapi.MachineStateDestroyed && ms[0].State != flyapi.MachineStateDestroying {
			t.Errorf("machine is %s after end", ms[0].State)
		}
		if evs := p.events(t, "Acme", r.id); slices.Contains(evs, "error") {
			t.Errorf("events %v", evs)
		}
	})

	t.Run("the second tenant's interview ends in its own app", func(t *testing.T) {
		r := runs[1]
		p.call(t, "POST", "/api/v1/interviews/"+r.id+"/end", p.keys["Globex"].Key, nil, nil)
		if ms := fake.Machines(r.app); ms[0].State != flyapi.MachineStateDestroyed && ms[0].State != flyapi.MachineStateDestroying {
			t.Errorf("machine is %s after end", ms[0].State)
		}
	})
	waitUntil(t, 20*time.Second, "processors to exit", func() bool { return len(processorChildren()) == 0 })
}
