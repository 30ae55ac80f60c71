// Package flyfake is an in-memory fake of the Fly Machines REST API
// (https://fly.io/docs/machines/api/), just big enough for candor's Fly
// backend: apps, machines (create, get, list, update, wait, start, stop,
// delete), app secrets and IP assignments, at the paths and with the JSON
// bodies github.com/superfly/fly-go v0.8.0 (package flaps) sends. Point flaps
// at it with FLY_FLAPS_BASE_URL.
//
// It validates what it receives, records every call, and can inject status
// codes (429, 503, capacity errors...) and delays. It also stands in for the
// Fly edge proxy at /_proxy/{app}/...: a request carrying
// fly-force-instance-id reaches that machine's /healthz if it is started.
// With a Runner (SetRunner) it also stands in for the Fly host: a started
// machine's process really runs, and the proxy forwards every request
// (WebSockets included) to it.
package flyfake

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
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
)

// Call is one request the fake answered.
type Call struct {
	Method string
	Path   string // with the query, as sent
	Status int
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

	mu         sync.Mutex
	token      string
	startDelay time.Duration
	apps       map[string]*app
	calls      []Call
	faults     []*fault

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
	readyAt time.Time // when a starting machine counts as started
}

// New returns an empty fake. Token, if not "", is the only accepted bearer
// token; otherwise any Authorization header is accepted (none is still 401).
func New(token string) *Server {
	s := &Server{token: token, apps: make(map[string]*app), mux: http.NewServeMux()}
	s.routes()
	return s
}

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
}

// ServeHTTP records the call, checks auth, applies faults, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		s.mu.Lock()
		s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.RequestURI(), Status: rec.status})
		s.mu.Unlock()
	}()
	if strings.HasPrefix(r.URL.Path, "/v1/") {
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

// advance moves a starting machine to started once its start delay passed.
func (m *machine) advance() {
	if m.State == "starting" && !time.Now().Before(m.readyAt) {
		m.setState(fly.MachineStateStarted)
	}
}

func (m *machine) setState(state string) {
	m.State = state
	m.UpdatedAt = time.Now().UTC().Format(time.RFC3339)
	m.Events = append([]*fly.MachineEvent{{Type: state, Status: state, Source: "flyd", Timestamp: time.Now().UnixMilli()}}, m.Events...)
}

var regions = []string{"ams", "arn", "bom", "cdg", "dfw", "ewr", "fra", "gru", "iad", "jnb", "lax", "lhr", "nrt", "ord", "otp", "sin", "sjc", "syd", "waw", "yyz"}

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
		if g.CPUs < 1 || g.CPUs > 16 {
			return fmt.Sprintf("invalid guest: cpus must be between 1 and 16, got %d", g.CPUs)
		}
		if g.MemoryMB < 256 || g.MemoryMB%256 != 0 {
			return fmt.Sprintf("invalid guest: memory_mb must be a multiple of 256, got %d", g.MemoryMB)
		}
		if g.CPUKind != "" && g.CPUKind != "shared" && g.CPUKind != "performance" {
			return fmt.Sprintf("invalid guest: unknown cpu_kind %q", g.CPUKind)
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
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.lookupApp(w, r)
	if a == nil {
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
	region := in.Region
	if region == "" {
		region = "iad"
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
	}}
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
	if m.State == fly.MachineStateDestroyed {
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
// it stops, as on Fly.
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
	if m.State == fly.MachineStateDestroyed {
		writeError(w, http.StatusPreconditionFailed, "failed_precondition: machine is destroyed")
		return
	}
	m.setState(fly.MachineStateStopped)
	if m.Config.AutoDestroy {
		m.setState(fly.MachineStateDestroyed)
	}
	s.stopRunLocked(r.PathValue("app"), m.ID)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// stopRunLocked stops the machine's process, if a Runner runs it. Callers
// hold mu; the Runner's Stop is called without it, after Run returned.
func (s *Server) stopRunLocked(app, id string) {
	rn, ok := s.runs[id]
	if !ok {
		return
	}
	delete(s.runs, id)
	s.mu.Unlock()
	<-rn.ready
	s.runner.Stop(app, id)
	s.mu.Lock()
}

// deleteMachine destroys a machine. A running one needs force=true (the
// documented parameter; fly-go v0.8.0 sends kill=true, accepted too).
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
	case fly.MachineStateStarted, "starting", "stopping":
		if !force {
			writeError(w, http.StatusPreconditionFailed, "failed_precondition: unable to destroy machine, not currently stopped")
			return
		}
	}
	m.setState(fly.MachineStateDestroyed)
	s.stopRunLocked(r.PathValue("app"), m.ID)
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
		ip = flaps.IPAssignment{IP: "137.66.1." + strconv.Itoa(int(newID()[0]))}
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
	a.ips = append(a.ips, ip)
	if a.Status == "pending" {
		a.Status = "deployed"
	}
	writeJSON(w, http.StatusOK, ip)
}

// proxy stands in for the Fly edge: /_proxy/{app}/... with
// fly-force-instance-id reaches that machine if it is started, as
// https://<app>.fly.dev/... would; otherwise it answers like the edge does
// when it has no instance to route to. Without a Runner only /healthz
// answers (200); with one, every request goes to the machine's process.
func (s *Server) proxy(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("fly-force-instance-id")
	app := r.PathValue("app")
	s.mu.Lock()
	var state string
	var m fly.Machine
	var env map[string]string
	if a, ok := s.apps[app]; ok {
		if mm, ok := a.machines[id]; ok {
			mm.advance()
			state, m = mm.State, mm.Machine
			env = make(map[string]string, len(a.secrets)+len(mm.Config.Env))
			for k, v := range a.secrets {
				env[k] = v
			}
			for k, v := range mm.Config.Env {
				env[k] = v
			}
		}
	}
	runner := s.runner
	var rn *run
	if runner != nil && state == fly.MachineStateStarted {
		var started bool
		if rn, started = s.runs[id]; !started {
			rn = &run{app: app, ready: make(chan struct{})}
			s.runs[id] = rn
			// The process belongs to the machine, not to this request: it
			// runs until the machine is stopped or destroyed, or Close.
			ctx := s.runCtx
			s.runWG.Go(func() {
				defer close(rn.ready)
				base, err := runner.Run(ctx, app, m, env)
				if err == nil {
					rn.url, err = url.Parse(base)
				}
				rn.err = err
			})
		}
	}
	s.mu.Unlock()
	switch {
	case state == "":
		http.Error(w, "no such instance", http.StatusServiceUnavailable)
		return
	case state != fly.MachineStateStarted:
		http.Error(w, "instance is "+state, http.StatusServiceUnavailable)
		return
	case rn == nil && "/"+r.PathValue("rest") == "/healthz":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	case rn == nil:
		http.NotFound(w, r)
		return
	}
	select {
	case <-rn.ready:
	case <-r.Context().Done():
		return
	}
	if rn.err != nil {
		// The machine's process did not come up: the edge has nothing to
		// route to.
		http.Error(w, "instance failed to start: "+rn.err.Error(), http.StatusServiceUnavailable)
		return
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.Out.URL.Scheme, pr.Out.URL.Host = rn.url.Scheme, rn.url.Host
		pr.Out.URL.Path = "/" + r.PathValue("rest")
		pr.Out.URL.RawPath = ""
		pr.Out.Host = rn.url.Host
	}}
	rp.ServeHTTP(w, r)
}

func newID() string {
	b := make([]byte, 7)
	rand.Read(b)
	return hex.EncodeToString(b)
}
