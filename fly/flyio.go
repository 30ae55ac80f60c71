package fly

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	fly "github.com/superfly/fly-go"
	"github.com/superfly/fly-go/flaps"
	"github.com/superfly/fly-go/tokens"

	"candor/processor/contract"
)

// FlyConfig configures the Fly Machines backend. The API base URL is
// APIBaseURL, else FLY_FLAPS_BASE_URL in the process environment (read by
// fly-go), else https://api.machines.dev.
type FlyConfig struct {
	// APIBaseURL overrides the Machines API address (e.g. a fake in tests,
	// given as FLY_FLAPS_BASE_URL in run()'s environment). fly-go only
	// reads the process environment, so requests are re-aimed here.
	APIBaseURL    string
	Token         string // FLY_API_TOKEN
	Org           string // FLY_ORG: org slug the tenant apps live in
	AppPrefix     string // tenant app = <prefix>-<tenant slug>; default "candor"
	Image         string // FLY_PROCESSOR_IMAGE
	DefaultRegion string // when Spec.Region is ""; default "iad"
	CPUs          int    // default 1
	MemoryMB      int    // default 1024
	CPUKind       string // "shared" (default) | "performance"
	// Network names a tenant app's private network, so tenants never share
	// one; "{app}" is replaced by the app name. Default "{app}-net".
	Network string
	// ProxyBaseURL is how the control plane reaches a machine; "{app}" is
	// replaced. Default "https://{app}.fly.dev". Requests carry
	// fly-force-instance-id so the edge routes to that one machine.
	ProxyBaseURL string
	InternalPort int           // the processor's PORT; default 8080
	ReadyTimeout time.Duration // create → /healthz 200; default 3 min
	RetryBase    time.Duration // first backoff after a 429/5xx; default 250 ms
	MaxAttempts  int           // per API call; default 5
	HTTPClient   *http.Client  // for /healthz through the proxy; default: 10 s timeout
	// WarmPerRegion keeps that many stopped (never started) machines per
	// region in every tenant app that has launched there, so a launch only
	// updates and starts one instead of creating it. Nil disables.
	WarmPerRegion map[string]int
}

// Fly runs each interview on a Fly Machine in its tenant's app.
type Fly struct {
	cfg  FlyConfig
	log  *slog.Logger
	api  *flaps.Client
	http *http.Client

	mu      sync.Mutex
	apps    map[string]bool          // apps known to exist
	secrets map[string]secretsSynced // last secrets written per app

	pool warmPool
}

type secretsSynced struct {
	digest  string
	version uint64
}

var _ Machines = (*Fly)(nil)

// Metadata keys on every interview machine.
const (
	metaTenant    = "candor_tenant"
	metaInterview = "candor_interview"
)

// planGuestPath is where the interview plan lands on the machine.
const planGuestPath = "/etc/candor/plan.json"

// NewFly checks the configuration and builds the API client. It makes no API
// call: apps are created on first use.
func NewFly(cfg FlyConfig, log *slog.Logger) (*Fly, error) {
	switch {
	case cfg.Token == "":
		return nil, errors.New("fly: FLY_API_TOKEN is not set; create one with `fly tokens create org` and set it, or use --provisioner=local")
	case cfg.Org == "":
		return nil, errors.New("fly: FLY_ORG is not set; set it to your Fly organization slug")
	case cfg.Image == "":
		return nil, errors.New("fly: FLY_PROCESSOR_IMAGE is not set; set it to the candor image the processor machines run")
	}
	if cfg.AppPrefix == "" {
		cfg.AppPrefix = "candor"
	}
	if cfg.DefaultRegion == "" {
		cfg.DefaultRegion = "iad"
	}
	if cfg.CPUs <= 0 {
		cfg.CPUs = 1
	}
	if cfg.MemoryMB <= 0 {
		cfg.MemoryMB = 1024
	}
	if cfg.CPUKind == "" {
		cfg.CPUKind = "shared"
	}
	if cfg.Network == "" {
		cfg.Network = "{app}-net"
	}
	if cfg.ProxyBaseURL == "" {
		cfg.ProxyBaseURL = "https://{app}.fly.dev"
	}
	if cfg.InternalPort <= 0 {
		cfg.InternalPort = 8080
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 3 * time.Minute
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 250 * time.Millisecond
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var apiBase *url.URL
	if cfg.APIBaseURL != "" {
		u, err := url.Parse(cfg.APIBaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("fly: FLY_FLAPS_BASE_URL %q is not an absolute http(s) URL", cfg.APIBaseURL)
		}
		apiBase = u
	}
	api, err := flaps.NewWithOptions(context.Background(), flaps.NewClientOpts{
		UserAgent: "candor",
		Tokens:    tokens.Parse(cfg.Token),
		Transport: bodyPerAttempt{base: http.DefaultTransport.(*http.Transport).Clone(), to: apiBase},
	})
	if err != nil {
		return nil, fmt.Errorf("fly: machines API client: %w", err)
	}
	f := &Fly{cfg: cfg, log: log, api: api, http: cfg.HTTPClient, apps: make(map[string]bool), secrets: make(map[string]secretsSynced)}
	f.pool.init()
	if len(cfg.WarmPerRegion) > 0 {
		go f.keepWarm()
	} else {
		close(f.pool.done)
	}
	return f, nil
}

var slugUnsafe = regexp.MustCompile(`[^a-z0-9-]+`)

// AppName is the Fly app of a tenant: <prefix>-<slug>, lowercased, other
// characters turned into dashes, at most 63 characters.
func (f *Fly) AppName(tenantSlug string) string {
	slug := strings.Trim(slugUnsafe.ReplaceAllString(strings.ToLower(tenantSlug), "-"), "-")
	name := f.cfg.AppPrefix + "-" + slug
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	return name
}

// Launch creates the interview's machine in its tenant's app (creating the
// app and syncing its secrets first if needed), waits for it to start and
// for /healthz through the proxy. A machine that never gets healthy is
// destroyed before Launch returns its error.
func (f *Fly) Launch(ctx context.Context, s Spec) (Machine, error) {
	if err := validateSpec(s); err != nil {
		return Machine{}, err
	}
	slug := s.TenantSlug
	if slug == "" {
		slug = s.TenantID
	}
	app := f.AppName(slug)
	ctx, cancel := context.WithTimeout(ctx, f.cfg.ReadyTimeout)
	defer cancel()

	if err := f.ensureApp(ctx, app); err != nil {
		return Machine{}, err
	}
	minSecrets, err := f.syncSecrets(ctx, app, contract.TenantSecrets(s.Secrets))
	if err != nil {
		return Machine{}, err
	}
	in := f.machineInput(s, minSecrets)
	key := poolKey{app: app, region: in.Region}
	if f.cfg.WarmPerRegion[key.region] > 0 {
		if err := f.adoptWarm(ctx, key); err != nil {
			f.log.Warn("look up warm fly machines", "app", app, "err", err)
		}
	}
	warmID := f.takeWarm(key)
	f.requestWarm(key, s.TenantID) // after the take, so the refill counts it gone
	var fm *fly.Machine
	if id := warmID; id != "" {
		fm, err = f.claimWarm(ctx, app, id, in)
		if err != nil {
			f.log.Warn("claim of a warm fly machine failed; creating one", "app", app, "machine", id, "err", err)
			f.destroyAbandoned(ctx, app, id)
		}
	}
	if fm == nil {
		if fm, err = f.create(ctx, app, in); err != nil {
			return Machine{}, err
		}
	}
	m := f.machine(app, fm)
	if err := f.waitReady(ctx, m); err != nil {
		f.destroyAbandoned(ctx, app, fm.ID)
		return Machine{}, fmt.Errorf("fly: machine %s for interview %s: %w", fm.ID, s.InterviewID, err)
	}
	m.State = "running"
	return m, nil
}

func (f *Fly) machine(app string, fm *fly.Machine) Machine {
	m := Machine{
		ID: fm.ID, Provider: ProviderFly, App: app, Region: fm.Region, State: machineState(fm.State),
		URL:     strings.ReplaceAll(f.cfg.ProxyBaseURL, "{app}", app),
		Headers: map[string]string{"fly-force-instance-id": fm.ID},
	}
	if fm.Config != nil {
		m.InterviewID, m.TenantID = fm.Config.Metadata[metaInterview], fm.Config.Metadata[metaTenant]
	}
	return m
}

// machineState maps a Fly machine state onto candor's machine states
// (DESIGN §5: starting, running, stopping, destroyed, failed).
func machineState(flyState string) string {
	switch flyState {
	case fly.MachineStateStarted:
		return "running"
	case fly.MachineStateCreated, "starting", "replacing", "updating":
		return "starting"
	case "stopping", "suspending":
		return "stopping"
	case fly.MachineStateStopped, fly.MachineStateSuspended, fly.MachineStateDestroying, fly.MachineStateDestroyed:
		// Interview machines have auto_destroy: stopped is on its way out.
		return "destroyed"
	case "failed":
		return "failed"
	}
	return flyState
}

// machineInput is the create request for s. Tenant secrets are not in it:
// they are app secrets, which Fly adds to the machine's env itself
// (MinSecretsVersion makes sure the machine sees the ones just written).
func (f *Fly) machineInput(s Spec, minSecrets *uint64) fly.LaunchMachineInput {
	env := make(map[string]string, len(s.Env)+6)
	for k, v := range s.Env {
		env[k] = v
	}
	env[envSessionID] = s.InterviewID
	env[envTenantID] = s.TenantID
	env[envCandidateID] = s.CandidateID
	env[envPositionID] = s.PositionID
	env[envPort] = fmt.Sprint(f.cfg.InternalPort)
	var files []*fly.File
	if len(s.Plan) > 0 {
		raw := base64.StdEncoding.EncodeToString(s.Plan)
		files = append(files, &fly.File{GuestPath: planGuestPath, RawValue: &raw})
		env[envPlanFile] = planGuestPath
	}
	region := s.Region
	if region == "" {
		region = f.cfg.DefaultRegion
	}
	return fly.LaunchMachineInput{
		Name:              "interview-" + s.InterviewID,
		Region:            region,
		MinSecretsVersion: minSecrets,
		Config:            f.machineConfig(env, files, map[string]string{metaTenant: s.TenantID, metaInterview: s.InterviewID}),
	}
}

// machineConfig is the config every candor machine shares: image, guest,
// destroyed when its process exits, never restarted, one HTTPS service.
func (f *Fly) machineConfig(env map[string]string, files []*fly.File, metadata map[string]string) *fly.MachineConfig {
	// The image's entrypoint serves the control plane by default; every
	// machine this backend makes is an interview processor.
	env[envRole] = "processor"
	autostart, autostop := false, fly.MachineAutostopOff
	p443, p80 := 443, 80
	return &fly.MachineConfig{
		Image:       f.cfg.Image,
		Env:         env,
		Files:       files,
		Guest:       &fly.MachineGuest{CPUKind: f.cfg.CPUKind, CPUs: f.cfg.CPUs, MemoryMB: f.cfg.MemoryMB},
		Metadata:    metadata,
		AutoDestroy: true,
		Restart:     &fly.MachineRestart{Policy: fly.MachineRestartPolicyNo},
		Services: []fly.MachineService{{
			Protocol: "tcp", InternalPort: f.cfg.InternalPort, Autostart: &autostart, Autostop: &autostop,
			Ports: []fly.MachinePort{
				{Port: &p443, Handlers: []string{"tls", "http"}},
				{Port: &p80, Handlers: []string{"http"}, ForceHTTPS: true},
			},
		}},
	}
}

// ensureApp makes sure the tenant's app exists, with its own network and a
// public address for the proxy route. Another control plane creating it at
// the same time is fine.
func (f *Fly) ensureApp(ctx context.Context, app string) error {
	f.mu.Lock()
	known := f.apps[app]
	f.mu.Unlock()
	if known {
		return nil
	}
	err := f.retry(ctx, true, func() error { _, err := f.api.GetApp(ctx, app); return err })
	if statusOf(err) == http.StatusNotFound {
		network := strings.ReplaceAll(f.cfg.Network, "{app}", app)
		err = f.retry(ctx, true, func() error {
			_, err := f.api.CreateApp(ctx, flaps.CreateAppRequest{Name: app, Org: f.cfg.Org, Network: network})
			return err
		})
		switch st := statusOf(err); {
		case err == nil:
			f.log.Info("created fly app", "app", app, "network", network)
			err = f.assignIPs(ctx, app)
		case st == http.StatusUnprocessableEntity || st == http.StatusConflict:
			// Taken: by a concurrent create of ours (fine) or by another org
			// (then this GET fails and says so).
			err = f.retry(ctx, true, func() error { _, err := f.api.GetApp(ctx, app); return err })
			if statusOf(err) == http.StatusNotFound {
				err = fmt.Errorf("app name %s is taken outside org %s; set a different app prefix: %w", app, f.cfg.Org, err)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("fly: app %s: %w", app, err)
	}
	f.mu.Lock()
	f.apps[app] = true
	f.mu.Unlock()
	return nil
}

// assignIPs gives a new app the addresses <app>.fly.dev resolves to.
// Assignment is not idempotent, so only a 429 (nothing done) is retried.
func (f *Fly) assignIPs(ctx context.Context, app string) error {
	for _, typ := range []string{"shared_v4", "v6"} {
		err := f.retry(ctx, false, func() error {
			_, err := f.api.AssignIP(ctx, app, flaps.AssignIPRequest{Type: typ, Organization: f.cfg.Org})
			return err
		})
		if err != nil {
			return fmt.Errorf("assign %s address: %w", typ, err)
		}
	}
	return nil
}

// syncSecrets makes the app's secrets exactly want, skipping the API when
// they are what this process last wrote. It returns the secrets version new
// machines must see (nil if the app never had secrets).
func (f *Fly) syncSecrets(ctx context.Context, app string, want map[string]string) (*uint64, error) {
	h := sha256.New()
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(h, "%s=%s\x00", k, want[k])
	}
	digest := hex.EncodeToString(h.Sum(nil))
	f.mu.Lock()
	last, ok := f.secrets[app]
	f.mu.Unlock()
	if ok && last.digest == digest {
		if last.version == 0 {
			return nil, nil
		}
		return &last.version, nil
	}

	var have []fly.AppSecret
	err := f.retry(ctx, true, func() (err error) { have, err = f.api.ListAppSecrets(ctx, app, nil, false); return err })
	if err != nil {
		return nil, fmt.Errorf("fly: app %s secrets: %w", app, err)
	}
	values := make(map[string]*string, len(want)+len(have))
	for k, v := range want {
		values[k] = &v
	}
	for _, sec := range have {
		if _, keep := want[sec.Name]; !keep {
			values[sec.Name] = nil
		}
	}
	var version uint64
	if len(values) > 0 {
		err := f.retry(ctx, true, func() error {
			resp, err := f.api.UpdateAppSecrets(ctx, app, values)
			if err == nil {
				version = resp.Version
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("fly: app %s secrets: %w", app, err)
		}
	}
	f.mu.Lock()
	f.secrets[app] = secretsSynced{digest: digest, version: version}
	f.mu.Unlock()
	if version == 0 {
		return nil, nil
	}
	return &version, nil
}

// create launches the machine. A create is retried only when the answer
// says nothing was created (429; fly-go itself already retried 502/503). On
// an answer that leaves it unknown (other 5xx, broken connection) a machine
// with the interview's name is looked up and destroyed, so none is left
// running unaccounted for.
func (f *Fly) create(ctx context.Context, app string, in fly.LaunchMachineInput) (*fly.Machine, error) {
	for attempt := 1; ; attempt++ {
		fm, err := f.api.Launch(ctx, app, in)
		if err == nil {
			f.log.Info("created fly machine", "app", app, "machine", fm.ID, "region", fm.Region, "interview", in.Config.Metadata[metaInterview])
			return fm, nil
		}
		st := statusOf(err)
		switch {
		case isCapacity(err):
			return nil, fmt.Errorf("fly: %w in region %s: %v", ErrCapacity, in.Region, err)
		case st == http.StatusTooManyRequests && attempt < f.cfg.MaxAttempts:
			if err := f.backoff(ctx, attempt); err != nil {
				return nil, fmt.Errorf("fly: create machine in %s: %w", app, err)
			}
			continue
		case st == 0 || st >= 500:
			f.destroyAbandoned(ctx, app, "name:"+in.Name)
		}
		return nil, fmt.Errorf("fly: create machine in %s: %w", app, err)
	}
}

// waitReady waits for the machine to be started, then for /healthz through
// the proxy route. Both are bounded by ctx.
func (f *Fly) waitReady(ctx context.Context, m Machine) error {
	for {
		timeout := 60 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			timeout = time.Until(dl)
		}
		err := f.retry(ctx, true, func() error {
			return f.api.Wait(ctx, m.App, m.ID, flaps.WithWaitStates(fly.MachineStateStarted), flaps.WithWaitTimeout(timeout))
		})
		if err == nil {
			break
		}
		if statusOf(err) == http.StatusRequestTimeout && ctx.Err() == nil {
			continue // the API caps a wait at 60 s
		}
		return fmt.Errorf("wait for started: %w", err)
	}
	return waitHealthy(ctx, f.http, m.URL, m.Headers, 250*time.Millisecond, nil, true)
}

// destroyAbandoned removes a machine a failed Launch leaves behind, with a
// context of its own since the launch's may be what ran out. id
// "name:<name>" means: whichever live machine has that name.
func (f *Fly) destroyAbandoned(ctx context.Context, app, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if name, ok := strings.CutPrefix(id, "name:"); ok {
		var ms []*fly.Machine
		err := f.retry(ctx, true, func() (err error) { ms, err = f.api.List(ctx, app, ""); return err })
		if err != nil {
			f.log.Error("list machines to clean up a failed create", "app", app, "name", name, "err", err)
			return
		}
		id = ""
		for _, m := range ms {
			if m.Name == name && m.IsActive() {
				id = m.ID
			}
		}
		if id == "" {
			return
		}
	}
	if err := f.destroy(ctx, app, id); err != nil {
		f.log.Error("destroy machine of a failed launch", "app", app, "machine", id, "err", err)
		return
	}
	f.log.Warn("destroyed machine of a failed launch", "app", app, "machine", id)
}

// Destroy force-destroys the machine (stopping it if it runs). A machine
// that is already gone is not an error.
func (f *Fly) Destroy(ctx context.Context, m Machine) error {
	if m.App == "" || m.ID == "" {
		return fmt.Errorf("fly: destroy needs the machine's app and id, got %q/%q", m.App, m.ID)
	}
	if err := f.destroy(ctx, m.App, m.ID); err != nil {
		return fmt.Errorf("fly: destroy machine %s: %w", m.ID, err)
	}
	return nil
}

func (f *Fly) destroy(ctx context.Context, app, id string) error {
	err := f.retry(ctx, true, func() error {
		return f.api.Destroy(ctx, app, fly.RemoveMachineInput{ID: id, Kill: true}, "")
	})
	if statusOf(err) == http.StatusNotFound {
		return nil
	}
	return err
}

// List returns the live interview machines in every candor app of the org.
func (f *Fly) List(ctx context.Context) ([]Machine, error) {
	var apps []flaps.App
	err := f.retry(ctx, true, func() (err error) {
		apps, err = f.api.ListApps(ctx, flaps.ListAppsRequest{OrgSlug: f.cfg.Org})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fly: list apps: %w", err)
	}
	var out []Machine
	for _, a := range apps {
		if !strings.HasPrefix(a.Name, f.cfg.AppPrefix+"-") {
			continue
		}
		var ms []*fly.Machine
		err := f.retry(ctx, true, func() (err error) { ms, err = f.api.List(ctx, a.Name, ""); return err })
		if statusOf(err) == http.StatusNotFound {
			continue // deleted since ListApps
		}
		if err != nil {
			return nil, fmt.Errorf("fly: list machines of %s: %w", a.Name, err)
		}
		for _, fm := range ms {
			if fm.IsActive() && fm.Config != nil && fm.Config.Metadata[metaInterview] != "" {
				out = append(out, f.machine(a.Name, fm))
			}
		}
	}
	return out, nil
}

// Close stops the warm pool's goroutine. Machines outlive the control plane
// on purpose: interview machines are reconciled and warm ones adopted at the
// next start-up.
func (f *Fly) Close() error {
	f.pool.stop()
	return nil
}

// retry runs op, retrying 429 and, when idempotent, 5xx answers and broken
// connections, with exponential backoff (fly-go has already retried
// 502/503 a few times underneath).
func (f *Fly) retry(ctx context.Context, idempotent bool, op func() error) error {
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || attempt >= f.cfg.MaxAttempts || ctx.Err() != nil {
			return err
		}
		st := statusOf(err)
		if !(st == http.StatusTooManyRequests || (idempotent && (st == 0 || st >= 500) && !isCapacity(err))) {
			return err
		}
		f.log.Debug("retrying fly API call", "status", st, "attempt", attempt, "err", err)
		if err := f.backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

func (f *Fly) backoff(ctx context.Context, attempt int) error {
	d := f.cfg.RetryBase << (attempt - 1)
	d = min(d, 5*time.Second)
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// bodyPerAttempt gives every request attempt its own copy of the body.
// fly-go v0.8.0 retries 502/503 with rehttp, which rewinds the one body
// reader for the next attempt as soon as a response arrives; when the API
// answers before it has read the body (a 503 from a proxy does), net/http is
// still writing that reader, so the retry races it and goes out empty or
// truncated ("ContentLength=870 with Body length 0", or a 400). Sitting
// under rehttp, this reads the body before sending, so rehttp's rewind
// touches nothing net/http still uses.
//
// It also re-aims requests at FlyConfig.APIBaseURL (to), when set.
type bodyPerAttempt struct {
	base http.RoundTripper
	to   *url.URL
}

func (t bodyPerAttempt) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.to != nil {
		req = req.Clone(req.Context())
		req.URL.Scheme, req.URL.Host = t.to.Scheme, t.to.Host
		req.URL.Path = strings.TrimRight(t.to.Path, "/") + req.URL.Path
		req.URL.RawPath = ""
		req.Host = t.to.Host
	}
	if req.Body == nil || req.Body == http.NoBody {
		return t.base.RoundTrip(req)
	}
	b, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	r.ContentLength = int64(len(b))
	return t.base.RoundTrip(r)
}

// statusOf is the HTTP status of a Machines API error, 0 if there was no
// answer (or no error).
func statusOf(err error) int {
	var fe *flaps.FlapsError
	if errors.As(err, &fe) {
		return fe.ResponseStatusCode
	}
	return 0
}

func isCapacity(err error) bool {
	if sc := flaps.GetErrorStatusCode(err); sc != nil && *sc == "insufficient_capacity" {
		return true
	}
	msg := strings.ToLower(fmt.Sprint(err))
	return statusOf(err) != 0 && (strings.Contains(msg, "insufficient resources") || strings.Contains(msg, "capacity"))
}
