// Package flyfake is an in-memory fake of the Fly Machines REST API
// (https://fly.io/docs/machines/api/), just big enough for candor's Fly
// backend: apps, machines (create, get, list, update, wait, start, stop,
// delete), app secrets and IP assignments, at the paths and with the JSON
// bodies github.com/superfly/fly-go v0.8.0 (package flaps) sends. Point flaps
// at it with FLY_FLAPS_BASE_URL.
//
// It enforces the rules Fly documents, so a client that passes here does
// not merely agree with fly-go:
//   - rate limits per action (https://fly.io/docs/machines/api/#rate-limits,
//     and the Fly team's statement at
//     https://community.fly.io/t/understanding-fly-io-api-rate-hard-limits/20636):
//     1 request/s per action, burst 3, except Get Machine at 5/s, burst 10;
//     create and list count per app, the others per machine; past the limit
//     429 with Retry-After;
//   - machine names are unique among the app's machines that are not
//     destroyed, and destroy is asynchronous: a machine is "destroying" for
//     a while (SetDestroyDelay) and keeps its name until it is "destroyed"
//     (https://fly.io/docs/machines/machine-states/);
//   - guests follow Fly's sizing rules: shared CPUs 1, 2, 4, 6, 8 with
//     256–2048 MB each, performance CPUs 1–16 (even above 1) with
//     2048–8192 MB each, memory in 256 MB steps
//     (https://fly.io/docs/machines/guides-examples/machine-sizing/);
//   - regions come from a fixed list, and capacity can be withdrawn from a
//     region (SetCapacity): creates there answer insufficient_capacity;
//   - a machine whose process exits (ProcessExited, or its Runner failing)
//     goes stopped and, with auto_destroy, destroying → destroyed.
//
// It records every call and can inject status codes and delays (Inject).
// It also stands in for the Fly edge (edge.go): HTTP to an app that has a
// public IP reaches a started machine publishing an http service
// (/_proxy/{app}/... with fly-force-instance-id, or an Edge handler in front
// of an app outside the fake, e.g. a control plane), fly-replay answers are
// replayed to the named app and instance, and UDP reaches a machine only
// through the app's dedicated IPv4 on a port that machine publishes. With a
// Runner (SetRunner) started machines' processes really run.
package flyfake

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	fly "github.com/superfly/fly-go"
	"github.com/superfly/fly-go/flaps"
	"golang.org/x/time/rate"
)

// Call is one request the fake answered.
type Call struct {
	Method string
	Path   string // with the query, as sent
	Status int
	Body   string // the request body (JSON), at most 8 KB
}

func (c Call) String() string { return fmt.Sprintf("%s %s → %d", c.Method, c.Path, c.Status) }

// Fault makes the fake misbehave for matching requests.
type Fault struct {
	Method string        // "" matches any method
	Path   string        // regular expression matched against the path without query
	Status int           // answer this status instead of handling the request; 0 = handle normally (after Delay)
	Body   string        // answer body; default {"error":"injected <status>"}
	Times  int           // how many requests it applies to; <= 0 means 1
	Delay  time.Duration // wait before answering
	// AfterHandling handles the request normally, then answers Status
	// instead of the real answer: the change happened but the client cannot
	// know it (a 500 after a create, a connection lost mid-answer).
	AfterHandling bool
}

// Server is the fake. The zero value is not usable; call New.
type Server struct {
	mux *http.ServeMux

	mu           sync.Mutex
	token        string
	startDelay   time.Duration
	destroyDelay time.Duration
	apps         map[string]*app
	calls        []Call
	faults       []*fault
	limits       map[string]Limit         // by action; nil: unlimited
	buckets      map[string]*rate.Limiter // by action + app or machine
	noCapacity   map[string]bool          // regions without room

	edge edgeState

	runner    Runner
	runs      map[string]*run // by machine id, while a Runner runs it
	runCtx    context.Context // ends at Close; bounds Runner.Run
	runCancel context.CancelFunc
	runWG     sync.WaitGroup
}

// Runner runs the process of a started machine, standing in for the Fly
// host. Run returns the base URL the process serves on once it is ready;
// Stop ends it (and must tolerate an id whose Run failed).
type Runner interface {
	Run(ctx context.Context, app string, m fly.Machine, env map[string]string) (baseURL string, err error)
	Stop(app, id string)
}

// run is one machine's process under a Runner; ready is closed when Run
// returned.
type run struct {
	app   string
	ready chan struct{}
	url   *url.URL
	err   error
}

// SetRunner makes started machines run for real through r. Call it before
// the first machine starts.
func (s *Server) SetRunner(r Runner) {
	s.mu.Lock()
	s.runner = r
	s.runs = make(map[string]*run)
	s.runCtx, s.runCancel = context.WithCancel(context.Background())
	s.mu.Unlock()
}

// Close stops every process a Runner runs and waits for them. Stop the
// httptest server serving the fake first.
func (s *Server) Close() {
	s.mu.Lock()
	if s.runCancel != nil {
		s.runCancel()
	}
	runs := s.runs
	s.runs = make(map[string]*run)
	s.mu.Unlock()
	s.runWG.Wait()
	for id, rn := range runs {
		if rn.err == nil {
			s.runner.Stop(rn.app, id)
		}
	}
	s.edge.close()
}

type fault struct {
	Fault
	re *regexp.Regexp
}

type app struct {
	flaps.App
	machines       map[string]*machine
	order          []string // machine ids in creation order
	secrets        map[string]string
	secretsVersion uint64
	ips            []flaps.IPAssignment
}

type machine struct {
	fly.Machine
	app       string
	readyAt   time.Time // when a starting machine counts as started
	destroyAt time.Time // when a destroying machine counts as destroyed
	// globalIP is the address "fly-global-services" resolves to on this
	// machine: where the edge delivers its UDP.
	globalIP string
	srv      *Server
}

// New returns an empty fake with Fly's documented rate limits
// (DefaultLimits) and a destroy that takes 200 ms. Token, if not "", is the
// only accepted bearer token; otherwise any Authorization header is accepted
// (none is still 401).
func New(token string) *Server {
	s := &Server{
		token: token, apps: make(map[string]*app), mux: http.NewServeMux(),
		destroyDelay: 200 * time.Millisecond,
		limits:       DefaultLimits(), buckets: make(map[string]*rate.Limiter),
		noCapacity: make(map[string]bool),
	}
	s.edge.init()
	s.routes()
	return s
}

// SetDestroyDelay sets how long a destroyed machine stays "destroying"
// (holding its name) before it is "destroyed".
func (s *Server) SetDestroyDelay(d time.Duration) {
	s.mu.Lock()
	s.destroyDelay = d
	s.mu.Unlock()
}

// SetCapacity makes creates in region fail with insufficient_capacity
// (ok=false) or succeed again (ok=true).
func (s *Server) SetCapacity(region string, ok bool) {
	s.mu.Lock()
	s.noCapacity[region] = !ok
	s.mu.Unlock()
}

// Regions is the list of regions the fake accepts.
func Regions() []string { return slices.Clone(regions) }

// SetStartDelay sets how long a launched or started machine takes to reach
// "started".
func (s *Server) SetStartDelay(d time.Duration) {
	s.mu.Lock()
	s.startDelay = d
	s.mu.Unlock()
}

// Inject adds a fault. Faults are tried in the order added.
func (s *Server) Inject(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, &fault{Fault: f, re: regexp.MustCompile(f.Path)})
	s.mu.Unlock()
}

// Calls returns every call answered so far, in the order answered.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// ResetCalls forgets the recorded calls.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	s.calls = nil
	s.mu.Unlock()
}

// App returns an app as the API would describe it.
func (s *Server) App(name string) (flaps.App, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[name]
	if !ok {
		return flaps.App{}, false
	}
	return a.App, true
}

// AppNames lists every app's name, sorted.
func (s *Server) AppNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(func(yield func(string) bool) {
		for name := range s.apps {
			if !yield(name) {
				return
			}
		}
	})
}

// Machines returns the app's machines, destroyed ones included, oldest first.
func (s *Server) Machines(appName string) []fly.Machine {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[appName]
	if !ok {
		return nil
	}
	var out []fly.Machine
	for _, id := range a.order {
		m := a.machines[id]
		m.advance()
		out = append(out, m.Machine)
	}
	return out
}

// MachineEnv is the environment the machine's process would see: its
// config env over the app's secrets.
func (s *Server) MachineEnv(appName, id string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[appName]
	if !ok || a.machines[id] == nil {
		return nil
	}
	env := make(map[string]string)
	for k, v := range a.secrets {
		env[k] = v
	}
	for k, v := range a.machines[id].Config.Env {
		env[k] = v
	}
	return env
}

// Secrets returns the app's secret values.
func (s *Server) Secrets(appName string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[appName]
	if !ok {
		return nil
	}
	out := make(map[string]string, len(a.secrets))
	for k, v := range a.secrets {
		out[k] = v
	}
	return out
}

// ProxyURL is the pattern for candor's FlyConfig.ProxyBaseURL that routes
// through this fake's edge proxy stand-in; base is the fake's URL.
func ProxyURL(base string) string { return strings.TrimRight(base, "/") + "/_proxy/{app}" }

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("POST /v1/apps", s.createApp)
	m.HandleFunc("GET /v1/apps", s.listApps)
	m.HandleFunc("GET /v1/apps/{app}", s.getApp)
	m.HandleFunc("DELETE /v1/apps/{app}", s.deleteApp)
	m.HandleFunc("GET /v1/apps/{app}/machines", s.listMachines)
	m.HandleFunc("POST /v1/apps/{app}/machines", s.createMachine)
	m.HandleFunc("GET /v1/apps/{app}/machines/{id}", s.getMachine)
	m.HandleFunc("POST /v1/apps/{app}/machines/{id}", s.updateMachine)
	m.HandleFunc("DELETE /v1/apps/{app}/machines/{id}", s.deleteMachine)
	m.HandleFunc("GET /v1/apps/{app}/machines/{id}/wait", s.waitMachine)
	m.HandleFunc("POST /v1/apps/{app}/machines/{id}/start", s.startMachine)
	m.HandleFunc("POST /v1/apps/{app}/machines/{id}/stop", s.stopMachine)
	m.HandleFunc("GET /v1/apps/{app}/secrets", s.listSecrets)
	m.HandleFunc("POST /v1/apps/{app}/secrets", s.updateSecrets)
	m.HandleFunc("POST /v1/apps/{app}/secrets/{name}", s.setSecret)
	m.HandleFunc("DELETE /v1/apps/{app}/secrets/{name}", s.deleteSecret)
	m.HandleFunc("GET /v1/apps/{app}/ip_assignments", s.listIPs)
	m.HandleFunc("POST /v1/apps/{app}/ip_assignments", s.assignIP)
	m.HandleFunc("/_proxy/{app}/{rest...}", s.proxy)
	m.HandleFunc("/_proxy/{app}", s.proxy)
}

// ServeHTTP records the call, checks auth, applies faults, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	var body []byte
	if strings.HasPrefix(r.URL.Path, "/v1/") && r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeError(rec, http.StatusBadRequest, "reading body: "+err.Error())
			return
		}
		body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	defer func() {
		s.mu.Lock()
		s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.RequestURI(), Status: rec.status, Body: string(body[:min(len(body), 8<<10)])})
		s.mu.Unlock()
	}()
	if strings.HasPrefix(r.URL.Path, "/v1/") {
		// Every answer names its request, as Fly's do; clients log it.
		rec.Header().Set("fly-request-id", "01"+strings.ToUpper(newID()+newID()))
		auth := r.Header.Get("Authorization")
		scheme, tok, _ := strings.Cut(auth, " ")
		if (scheme != "Bearer" && scheme != "FlyV1") || tok == "" || (s.token != "" && tok != s.token) {
			writeError(rec, http.StatusUnauthorized, "unauthorized")
			return
		}
	}
	if f := s.matchFault(r); f != nil {
		if f.Delay > 0 {
			select {
			case <-time.After(f.Delay):
			case <-r.Context().Done():
				rec.status = 499 // client went away, as nginx logs it
				return
			}
		}
		if f.AfterHandling {
			s.mux.ServeHTTP(httptest.NewRecorder(), r)
		}
		if f.Status != 0 {
			body := f.Body
			if body == "" {
				body = fmt.Sprintf(`{"error":"injected %d"}`, f.Status)
			}
			rec.Header().Set("Content-Type", "application/json")
			rec.WriteHeader(f.Status)
			io.WriteString(rec, body)
			return
		}
	}
	if s.limited(rec, r) {
		return
	}
	s.mux.ServeHTTP(rec, r)
}

func (s *Server) matchFault(r *http.Request) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if (f.Method == "" || f.Method == r.Method) && f.re.MatchString(r.URL.Path) {
			f.Times--
			if f.Times <= 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
			ff := f.Fault
			return &ff
		}
	}
	return nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

// Unwrap lets http.ResponseController reach Hijack and Flush (the proxy
// forwards WebSockets).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError answers the API's error shape: {"error":"..."} (plus "status"
// for machine placement errors).
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// decode reads a JSON body strictly: unknown fields are a 400, so the fake
// catches a client sending a misspelled field.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid request body: "+err.Error())
		return false
	}
	return true
}

var appNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)

func (s *Server) createApp(w http.ResponseWriter, r *http.Request) {
	var in flaps.CreateAppRequest
	if !decode(w, r, &in) {
		return
	}
	switch {
	case !appNameRE.MatchString(in.Name):
		writeError(w, http.StatusBadRequest, "Validation failed: Name may only contain lowercase letters, numbers and dashes")
		return
	case in.Org == "":
		writeError(w, http.StatusBadRequest, "org_slug is required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.apps[in.Name]; ok {
		writeError(w, http.StatusUnprocessableEntity, "Validation failed: Name has already been taken")
		return
	}
	network := in.Network
	if network == "" {
		network = "default"
	}
	a := &app{
		App: flaps.App{
			ID: newID(), Name: in.Name, Network: network, Status: "pending",
			Organization: flaps.AppOrganizationInfo{Name: in.Org, Slug: in.Org},
		},
		machines: make(map[string]*machine),
		secrets:  make(map[string]string),
	}
	s.apps[in.Name] = a
	writeJSON(w, http.StatusCreated, a.App)
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request) {
	org := r.URL.Query().Get("org_slug")
	if org == "" {
		writeError(w, http.StatusBadRequest, "org_slug is required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	apps := []flaps.App{}
	for _, a := range s.apps {
		if a.Organization.Slug == org {
			a.MachineCount = int64(a.activeMachines())
			apps = append(apps, a.App)
		}
	}
	slices.SortFunc(apps, func(x, y flaps.App) int { return strings.Compare(x.Name, y.Name) })
	writeJSON(w, http.StatusOK, map[string]any{"total_apps": len(apps), "apps": apps})
}

// lookupApp answers 404 itself when the app does not exist. Callers hold mu.
func (s *Server) lookupApp(w http.ResponseWriter, r *http.Request) *app {
	a, ok := s.apps[r.PathValue("app")]
	if !ok {
		writeError(w, http.StatusNotFound, "app not found")
		return nil
	}
	return a
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.lookupApp(w, r); a != nil {
		a.MachineCount = int64(a.activeMachines())
		writeJSON(w, http.StatusOK, a.App)
	}
}

func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.lookupApp(w, r); a != nil {
		delete(s.apps, a.Name)
		w.WriteHeader(http.StatusAccepted)
	}
}

func (a *app) activeMachines() int {
	n := 0
	for _, m := range a.machines {
		m.advance()
		if m.State != fly.MachineStateDestroyed {
			n++
		}
	}
	return n
}

// advance moves a starting machine to started once its start delay passed
// (starting its process, with a Runner), and a destroying one to destroyed
// once its destroy delay passed. Callers hold s.mu.
func (m *machine) advance() {
	now := time.Now()
	if m.State == "starting" && !now.Before(m.readyAt) {
		m.setState(fly.MachineStateStarted)
		m.srv.startRunLocked(m)
		if a := m.srv.apps[m.app]; a != nil {
			m.srv.listenUDPLocked(a, m)
		}
	}
	if m.State == fly.MachineStateDestroying && !now.Before(m.destroyAt) {
		m.setState(fly.MachineStateDestroyed)
	}
}

// destroyLocked starts the asynchronous destroy of m: its process ends now,
// its name is held until the destroy delay passed. Callers hold s.mu.
func (s *Server) destroyLocked(m *machine) {
	m.setState(fly.MachineStateDestroying)
	m.destroyAt = time.Now().Add(s.destroyDelay)
	s.stopRunLocked(m.app, m.ID)
}

// exitedLocked is what the host does when m's process exits: the machine
// stops, and with auto_destroy it is destroyed. Callers hold s.mu.
func (s *Server) exitedLocked(m *machine) {
	switch m.State {
	case fly.MachineStateStarted, "starting", "stopping":
	default:
		return
	}
	m.setState(fly.MachineStateStopped)
	if m.Config.AutoDestroy {
		s.destroyLocked(m)
		return
	}
	s.stopRunLocked(m.app, m.ID)
}

// ProcessExited tells the fake that the process of machine id ended on its
// own (a Runner calls it, or a test standing in for a crash).
func (s *Server) ProcessExited(appName, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.apps[appName]; ok {
		if m, ok := a.machines[id]; ok {
			m.advance()
			s.exitedLocked(m)
		}
	}
}

func (m *machine) setState(state string) {
	m.State = state
	m.UpdatedAt = time.Now().UTC().Format(time.RFC3339)
	m.Events = append([]*fly.MachineEvent{{Type: state, Status: state, Source: "flyd", Timestamp: time.Now().UnixMilli()}}, m.Events...)
}

var regions = []string{"ams", "arn", "bom", "cdg", "dfw", "ewr", "fra", "gru", "iad", "jnb", "lax", "lhr", "nrt", "ord", "otp", "sin", "sjc", "syd", "waw", "yyz"}

// validateGuest applies Fly's sizing rules
// (https://fly.io/docs/machines/guides-examples/machine-sizing/): the CPU
// counts of the presets (fly-go's MachinePresets), memory in 256 MB steps
// between 256 MB and 2 GB per shared CPU, 2 GB and 8 GB per performance CPU.
func validateGuest(g *fly.MachineGuest) string {
	kind := g.CPUKind
	if kind == "" {
		kind = "shared"
	}
	var cpus []int
	var minPer, maxPer int
	switch kind {
	case "shared":
		cpus, minPer, maxPer = []int{1, 2, 4, 6, 8}, fly.MIN_MEMORY_MB_PER_SHARED_CPU, fly.MAX_MEMORY_MB_PER_SHARED_CPU
	case "performance":
		cpus, minPer, maxPer = []int{1, 2, 4, 6, 8, 10, 12, 14, 16}, fly.MIN_MEMORY_MB_PER_CPU, fly.MAX_MEMORY_MB_PER_CPU
	default:
		return fmt.Sprintf("invalid guest: unknown cpu_kind %q", g.CPUKind)
	}
	if !slices.Contains(cpus, g.CPUs) {
		return fmt.Sprintf("invalid guest: %d %s cpus is not a size Fly offers (cpus must be one of %v)", g.CPUs, kind, cpus)
	}
	if g.MemoryMB%256 != 0 || g.MemoryMB < minPer*g.CPUs || g.MemoryMB > maxPer*g.CPUs {
		return fmt.Sprintf("invalid guest: memory_mb %d must be a multiple of 256 between %d and %d for %d %s cpus", g.MemoryMB, minPer*g.CPUs, maxPer*g.CPUs, g.CPUs, kind)
	}
	return ""
}

// machineNameRE is what Fly accepts as a machine name: it becomes a DNS
// label (<name>.vm.<app>.internal), so lowercase letters, digits and
// dashes, at most 63 characters.
var machineNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// validateConfig applies the checks the real API makes that matter to
// candor; the message names the field, as the API's do.
func validateConfig(c *fly.MachineConfig) string {
	if c == nil {
		return "config is required"
	}
	if c.Image == "" {
		return "config.image is required"
	}
	if g := c.Guest; g != nil {
		if msg := validateGuest(g); msg != "" {
			return msg
		}
	}
	if c.Restart != nil {
		switch c.Restart.Policy {
		case "", fly.MachineRestartPolicyNo, fly.MachineRestartPolicyAlways, fly.MachineRestartPolicyOnFailure, fly.MachineRestartPolicySpotPrice:
		default:
			return fmt.Sprintf("invalid restart policy %q", c.Restart.Policy)
		}
	}
	for k := range c.Env {
		if !envNameRE.MatchString(k) {
			return fmt.Sprintf("invalid env name %q", k)
		}
	}
	for k := range c.Metadata {
		if k == "" {
			return "metadata keys must not be empty"
		}
	}
	for _, f := range c.Files {
		if f == nil || !path.IsAbs(f.GuestPath) {
			return "files: guest_path must be an absolute path"
		}
		n := 0
		for _, set := range []bool{f.RawValue != nil, f.SecretName != nil, f.ImageConfig != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return "files: exactly one of raw_value, secret_name, image_config is required"
		}
		if f.RawValue != nil {
			if _, err := base64.StdEncoding.DecodeString(*f.RawValue); err != nil {
				return "files: raw_value must be base64: " + err.Error()
			}
		}
	}
	for _, svc := range c.Services {
		if svc.InternalPort < 1 || svc.InternalPort > 65535 {
			return "services: invalid internal_port"
		}
		switch svc.Protocol {
		case "tcp":
		case "udp":
			// Fly rewrites a UDP packet's address, never its port
			// (https://fly.io/docs/networking/udp-and-tcp/).
			for _, p := range svc.Ports {
				if p.Port == nil || *p.Port != svc.InternalPort {
					return "services: a udp service must publish its internal_port unchanged"
				}
			}
		default:
			return fmt.Sprintf("services: unknown protocol %q", svc.Protocol)
		}
	}
	return ""
}

func (s *Server) createMachine(w http.ResponseWriter, r *http.Request) {
	var in fly.LaunchMachineInput
	if !decode(w, r, &in) {
		return
	}
	if msg := validateConfig(in.Config); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	if in.Region != "" && !slices.Contains(regions, in.Region) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid region %q", in.Region))
		return
	}
	if in.Name != "" && !machineNameRE.MatchString(in.Name) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid name %q: lowercase letters, digits and dashes, at most 63", in.Name))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.lookupApp(w, r)
	if a == nil {
		return
	}
	region := in.Region
	if region == "" {
		region = "iad"
	}
	if s.noCapacity[region] {
		writeJSON(w, http.StatusPreconditionFailed, map[string]string{
			"error":  fmt.Sprintf("insufficient resources to create new machine with existing volume in region %s", region),
			"status": "insufficient_capacity",
		})
		return
	}
	if in.Name != "" {
		for _, m := range a.machines {
			m.advance()
			if m.Name == in.Name && m.State != fly.MachineStateDestroyed {
				writeError(w, http.StatusConflict, fmt.Sprintf("already_exists: a machine named %q exists (%s)", in.Name, m.ID))
				return
			}
		}
	}
	if in.MinSecretsVersion != nil && *in.MinSecretsVersion > a.secretsVersion {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("min_secrets_version %d is newer than the app's secrets (%d)", *in.MinSecretsVersion, a.secretsVersion))
		return
	}
	now := time.Now().UTC().Format(time.RFC3339)
	id := newID()
	name := in.Name
	if name == "" {
		name = "machine-" + id[:6]
	}
	m := &machine{Machine: fly.Machine{
		ID: id, Name: name, Region: region, InstanceID: strings.ToUpper(newID() + newID()), Version: newID(),
		PrivateIP: "fdaa:0:1:a7b:" + id[:4] + ":" + id[4:8] + ":" + id[8:12] + ":2", CreatedAt: now, UpdatedAt: now,
		Config: in.Config, HostStatus: fly.HostStatusOk,
		ImageRef: imageRef(in.Config.Image),
	}, app: a.Name, srv: s, globalIP: loopbackIP()}
	m.setState(fly.MachineStateCreated)
	if !in.SkipLaunch {
		m.setState("starting")
		m.readyAt = time.Now().Add(s.startDelay)
	}
	a.machines[id] = m
	a.order = append(a.order, id)
	writeJSON(w, http.StatusOK, m.Machine)
}

func imageRef(image string) fly.MachineImageRef {
	reg, rest, ok := strings.Cut(image, "/")
	if !ok || !strings.ContainsAny(reg, ".:") {
		reg, rest = "docker.io", image
	}
	repo, tag, ok := strings.Cut(rest, ":")
	if !ok {
		tag = "latest"
	}
	return fly.MachineImageRef{Registry: reg, Repository: repo, Tag: tag}
}

// lookupMachine answers 404 itself. Callers hold mu.
func (s *Server) lookupMachine(w http.ResponseWriter, r *http.Request) (*app, *machine) {
	a := s.lookupApp(w, r)
	if a == nil {
		return nil, nil
	}
	m, ok := a.machines[r.PathValue("id")]
	if !ok {
		writeError(w, http.StatusNotFound, "machine not found")
		return nil, nil
	}
	m.advance()
	return a, m
}

func (s *Server) getMachine(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, m := s.lookupMachine(w, r); m != nil {
		writeJSON(w, http.StatusOK, m.Machine)
	}
}

// listMachines answers the app's machines, destroyed ones only with
// include_deleted=true; metadata.<key>=<value> parameters filter.
func (s *Server) listMachines(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.lookupApp(w, r)
	if a == nil {
		return
	}
	out := []fly.Machine{}
	for _, id := range a.order {
		m := a.machines[id]
		m.advance()
		if m.State == fly.MachineStateDestroyed && q.Get("include_deleted") != "true" {
			continue
		}
		if reg := q.Get("region"); reg != "" && m.Region != reg {
			continue
		}
		match := true
		for k, vs := range q {
			if key, ok := strings.CutPrefix(k, "metadata."); ok && m.Config.Metadata[key] != vs[0] {
				match = false
			}
		}
		if match {
			out = append(out, m.Machine)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) updateMachine(w http.ResponseWriter, r *http.Request) {
	var in fly.LaunchMachineInput
	if !decode(w, r, &in) {
		return
	}
	if msg := validateConfig(in.Config); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, m := s.lookupMachine(w, r)
	if m == nil {
		return
	}
	if m.State == fly.MachineStateDestroyed || m.State == fly.MachineStateDestroying {
		writeError(w, http.StatusPreconditionFailed, "failed_precondition: machine is destroyed")
		return
	}
	if in.MinSecretsVersion != nil && *in.MinSecretsVersion > a.secretsVersion {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("min_secrets_version %d is newer than the app's secrets (%d)", *in.MinSecretsVersion, a.secretsVersion))
		return
	}
	m.Config = in.Config
	if in.Name != "" {
		m.Name = in.Name
	}
	m.Version = newID()
	m.ImageRef = imageRef(in.Config.Image)
	// An update (re)starts the machine with its new config unless
	// skip_launch says to leave it stopped.
	if !in.SkipLaunch {
		switch m.State {
		case fly.MachineStateStarted, fly.MachineStateStopped, fly.MachineStateCreated, fly.MachineStateSuspended:
			m.setState("starting")
			m.readyAt = time.Now().Add(s.startDelay)
		}
	}
	writeJSON(w, http.StatusOK, m.Machine)
}

func (s *Server) startMachine(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m := s.lookupMachine(w, r)
	if m == nil {
		return
	}
	prev := m.State
	switch prev {
	case fly.MachineStateStopped, fly.MachineStateCreated, fly.MachineStateSuspended:
		m.setState("starting")
		m.readyAt = time.Now().Add(s.startDelay)
	case fly.MachineStateDestroyed, fly.MachineStateDestroying:
		writeError(w, http.StatusPreconditionFailed, "failed_precondition: machine is destroyed")
		return
	}
	writeJSON(w, http.StatusOK, fly.MachineStartResponse{Status: "ok", PreviousState: prev})
}

// stopMachine stops at once. A machine with auto_destroy is destroyed when
// it stops, as on Fly (asynchronously: destroying, then destroyed).
func (s *Server) stopMachine(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		var in fly.StopMachineInput
		if !decode(w, r, &in) {
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m := s.lookupMachine(w, r)
	if m == nil {
		return
	}
	if m.State == fly.MachineStateDestroyed || m.State == fly.MachineStateDestroying {
		writeError(w, http.StatusPreconditionFailed, "failed_precondition: machine is destroyed")
		return
	}
	s.exitedLocked(m)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// startRunLocked runs m's process through the Runner, if there is one: the
// process belongs to the machine and runs until it is stopped or destroyed,
// or Close. A process that fails to come up is an exit. Callers hold s.mu.
func (s *Server) startRunLocked(m *machine) {
	if s.runner == nil {
		return
	}
	if _, ok := s.runs[m.ID]; ok {
		return
	}
	a := s.apps[m.app]
	env := make(map[string]string, len(a.secrets)+len(m.Config.Env))
	for k, v := range a.secrets {
		env[k] = v
	}
	for k, v := range m.Config.Env {
		env[k] = v
	}
	rn := &run{app: m.app, ready: make(chan struct{})}
	s.runs[m.ID] = rn
	ctx, runner, fm := s.runCtx, s.runner, m.Machine
	s.runWG.Go(func() {
		base, err := runner.Run(ctx, rn.app, fm, env)
		if err == nil {
			rn.url, err = url.Parse(base)
		}
		rn.err = err
		close(rn.ready)
		if err != nil {
			s.ProcessExited(rn.app, fm.ID)
		}
	})
}

// stopRunLocked ends the machine's process, if a Runner runs it, without
// waiting for it. Callers hold s.mu.
func (s *Server) stopRunLocked(app, id string) {
	rn, ok := s.runs[id]
	if !ok {
		return
	}
	delete(s.runs, id)
	runner := s.runner
	s.runWG.Go(func() {
		<-rn.ready
		if rn.err == nil {
			runner.Stop(app, id)
		}
	})
}

// deleteMachine destroys a machine, asynchronously: it answers at once and
// the machine is "destroying" (name still taken) until the destroy delay
// passed. A running one needs force=true (the documented parameter; fly-go
// v0.8.0 sends kill=true, accepted too).
func (s *Server) deleteMachine(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	force := q.Get("force") == "true" || q.Get("kill") == "true"
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m := s.lookupMachine(w, r)
	if m == nil {
		return
	}
	switch m.State {
	case fly.MachineStateDestroyed:
		writeError(w, http.StatusNotFound, "machine not found")
		return
	case fly.MachineStateDestroying:
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
		return
	case fly.MachineStateStarted, "starting", "stopping":
		if !force {
			writeError(w, http.StatusPreconditionFailed, "failed_precondition: unable to destroy machine, not currently stopped")
			return
		}
	}
	s.destroyLocked(m)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// waitMachine blocks until the machine is in one of the state parameters
// (default started) or timeout seconds (default 60) pass: 408.
func (s *Server) waitMachine(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	states := q["state"]
	if len(states) == 0 {
		states = []string{fly.MachineStateStarted}
	}
	timeout := 60 * time.Second
	if t := q.Get("timeout"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > 60 {
			writeError(w, http.StatusBadRequest, "timeout must be between 1 and 60 seconds")
			return
		}
		timeout = time.Duration(n) * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		_, m := s.lookupMachine(w, r)
		if m == nil {
			s.mu.Unlock()
			return
		}
		state := m.State
		s.mu.Unlock()
		if slices.Contains(states, state) {
			writeJSON(w, http.StatusOK, map[string]any{"ok": true, "state": state})
			return
		}
		select {
		case <-ctx.Done():
			writeError(w, http.StatusRequestTimeout, fmt.Sprintf("deadline_exceeded: machine is %s, not %s", state, strings.Join(states, "|")))
			return
		case <-tick.C:
		}
	}
}

var secretNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func digest(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:8])
}

func (a *app) secretList(show bool) []fly.AppSecret {
	out := []fly.AppSecret{}
	for _, name := range slices.Sorted(mapKeys(a.secrets)) {
		sec := fly.AppSecret{Name: name, Digest: digest(a.secrets[name])}
		if show {
			v := a.secrets[name]
			sec.Value = &v
		}
		out = append(out, sec)
	}
	return out
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.lookupApp(w, r); a != nil {
		writeJSON(w, http.StatusOK, fly.ListAppSecretsResp{Secrets: a.secretList(r.URL.Query().Get("show_secrets") == "true")})
	}
}

// updateSecrets sets every non-null value and deletes every null one, as one
// new secrets version.
func (s *Server) updateSecrets(w http.ResponseWriter, r *http.Request) {
	var in fly.UpdateAppSecretsRequest
	if !decode(w, r, &in) {
		return
	}
	for name := range in.Values {
		if !secretNameRE.MatchString(name) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid secret name %q", name))
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.lookupApp(w, r)
	if a == nil {
		return
	}
	for name, v := range in.Values {
		if v == nil {
			delete(a.secrets, name)
		} else {
			a.secrets[name] = *v
		}
	}
	a.secretsVersion++
	writeJSON(w, http.StatusOK, fly.UpdateAppSecretsResp{Secrets: a.secretList(false), Version: a.secretsVersion})
}

func (s *Server) setSecret(w http.ResponseWriter, r *http.Request) {
	var in fly.SetAppSecretRequest
	if !decode(w, r, &in) {
		return
	}
	name := r.PathValue("name")
	if !secretNameRE.MatchString(name) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid secret name %q", name))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.lookupApp(w, r)
	if a == nil {
		return
	}
	a.secrets[name] = in.Value
	a.secretsVersion++
	writeJSON(w, http.StatusCreated, fly.SetAppSecretResp{AppSecret: fly.AppSecret{Name: name, Digest: digest(in.Value)}, Version: a.secretsVersion})
}

func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.lookupApp(w, r)
	if a == nil {
		return
	}
	name := r.PathValue("name")
	if _, ok := a.secrets[name]; !ok {
		writeError(w, http.StatusNotFound, "secret not found")
		return
	}
	delete(a.secrets, name)
	a.secretsVersion++
	writeJSON(w, http.StatusOK, fly.DeleteAppSecretResp{Version: a.secretsVersion})
}

func (s *Server) listIPs(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.lookupApp(w, r); a != nil {
		writeJSON(w, http.StatusOK, flaps.ListIPAssignmentsResponse{IPs: slices.Clone(a.ips)})
	}
}

func (s *Server) assignIP(w http.ResponseWriter, r *http.Request) {
	var in flaps.AssignIPRequest
	if !decode(w, r, &in) {
		return
	}
	var ip flaps.IPAssignment
	switch in.Type {
	case "shared_v4":
		ip = flaps.IPAssignment{IP: "66.241.124.1", Shared: true}
	case "v6":
		ip = flaps.IPAssignment{IP: "2a09:8280:1::" + newID()[:4]}
	case "v4":
		// A dedicated IPv4 is a loopback address of its own here, so the
		// edge can listen for the app's UDP on it.
		ip = flaps.IPAssignment{IP: loopbackIP()}
	case "private_v6":
		ip = flaps.IPAssignment{IP: "fdaa:0:1:a7b::" + newID()[:4]}
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid ip type %q", in.Type))
		return
	}
	ip.Region, ip.ServiceName, ip.CreatedAt = in.Region, in.ServiceName, time.Now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.lookupApp(w, r)
	if a == nil {
		return
	}
	if in.Type == "v4" {
		for _, have := range a.ips {
			if !have.Shared && net.ParseIP(have.IP).To4() != nil && (in.Region == "" || have.Region == in.Region) {
				// One dedicated IPv4 per app is what candor asks for;
				// a second is billed again. The fake refuses it so a
				// client that does not check first is caught.
				writeError(w, http.StatusConflict, "app already has a dedicated IPv4 ("+have.IP+"); each one is billed")
				return
			}
		}
	}
	a.ips = append(a.ips, ip)
	if a.Status == "pending" {
		a.Status = "deployed"
	}
	for _, m := range a.machines {
		if m.State == fly.MachineStateStarted {
			s.listenUDPLocked(a, m)
		}
	}
	writeJSON(w, http.StatusOK, ip)
}

func newID() string {
	b := make([]byte, 7)
	rand.Read(b)
	return hex.EncodeToString(b)
}
