package fly

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

	// InstallID names this installation (random, kept in its database). It
	// is part of every app name, since Fly app names are global and secrets
	// are per app, and of every machine's metadata: List and reconciliation
	// touch only this install's machines. Required.
	InstallID string
	// Regions are the regions machines may run in, in fallback order
	// (CANDOR_REGIONS): a launch goes to the interview's region, and on a
	// capacity error to the next ones. Empty: only DefaultRegion.
	Regions []string
	// MediaPorts, when set (CANDOR_FLY_MEDIA_PORTS "lo-hi"), turns on direct
	// WebRTC over UDP: the tenant app gets a dedicated IPv4 and each machine
	// publishes one UDP port of the range, unique among the app's live
	// machines, on which its processor binds fly-global-services.
	MediaPorts [2]int
	// MediaTCP also publishes the media port over TCP, for ICE-TCP.
	MediaTCP bool
	// MediaBindHost is where the processor binds its UDP media port
	// (default "fly-global-services", the one address Fly delivers UDP to).
	MediaBindHost string
	// OperatorSecrets are the operator's provider settings (after the
	// tenant-secret allowlist): app secrets under the tenant's own, so a
	// tenant without its own OpenAI key uses the operator's.
	OperatorSecrets map[string]string
	// StopTimeout is how long a machine has between SIGTERM and SIGKILL:
	// enough to flush pending speech and upload the recording. Default 60 s.
	StopTimeout time.Duration
}

// Fly runs each interview on a Fly Machine in its tenant's app.
type Fly struct {
	cfg  FlyConfig
	log  *slog.Logger
	api  *flaps.Client
	http *http.Client

	mu      sync.Mutex
	apps    map[string]appInfo       // apps known to be provisioned
	secrets map[string]secretsSynced // last secrets written per app
	ports   map[string]*appPorts     // media ports in use, per app

	launching atomic.Int32 // Launch calls in progress; warm refills wait for 0

	pool warmPool
}

// appInfo is what a provisioned tenant app has.
type appInfo struct {
	dedicatedIPv4 string // "" unless direct UDP is on
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
	metaAttempt   = "candor_attempt"
	metaInstall   = "candor_install"
)

var installIDRE = regexp.MustCompile(`^[a-z0-9]{4,12}$`)

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
	case !installIDRE.MatchString(cfg.InstallID):
		return nil, fmt.Errorf("fly: install id %q must be 4–12 lowercase letters or digits", cfg.InstallID)
	case cfg.MediaPorts != [2]int{} && (cfg.MediaPorts[0] < 1 || cfg.MediaPorts[1] > 65535 || cfg.MediaPorts[0] > cfg.MediaPorts[1]):
		return nil, fmt.Errorf("fly: media ports %d-%d are not a port range; set CANDOR_FLY_MEDIA_PORTS like 40000-40999", cfg.MediaPorts[0], cfg.MediaPorts[1])
	}
	if cfg.MediaBindHost == "" {
		cfg.MediaBindHost = "fly-global-services"
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 60 * time.Second
	}
	if cfg.AppPrefix == "" {
		cfg.AppPrefix = "candor"
	}
	if cfg.DefaultRegion == "" {
		cfg.DefaultRegion = "iad"
		if len(cfg.Regions) > 0 {
			cfg.DefaultRegion = cfg.Regions[0]
		}
	}
	if len(cfg.Regions) == 0 {
		cfg.Regions = []string{cfg.DefaultRegion}
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
		Transport: &apiTransport{base: http.DefaultTransport.(*http.Transport).Clone(), to: apiBase, log: log},
	})
	if err != nil {
		return nil, fmt.Errorf("fly: machines API client: %w", err)
	}
	f := &Fly{cfg: cfg, log: log, api: api, http: cfg.HTTPClient, apps: make(map[string]appInfo), secrets: make(map[string]secretsSynced), ports: make(map[string]*appPorts)}
	f.pool.init()
	if len(cfg.WarmPerRegion) > 0 {
		go f.keepWarm()
	} else {
		close(f.pool.done)
	}
	return f, nil
}

var slugUnsafe = regexp.MustCompile(`[^a-z0-9-]+`)

// AppName is the Fly app of a tenant: <prefix>-<install id>-<slug>,
// lowercased, other characters turned into dashes, at most 63 characters.
func (f *Fly) AppName(tenantSlug string) string {
	return f.appPrefix() + dnsLabel(tenantSlug, 63-len(f.appPrefix()))
}

// appPrefix starts the name of every app of this install.
func (f *Fly) appPrefix() string { return f.cfg.AppPrefix + "-" + f.cfg.InstallID + "-" }

// dnsLabel lowercases s, turns other characters into dashes and keeps at
// most n characters: what Fly accepts in app and machine names.
func dnsLabel(s string, n int) string {
	s = strings.Trim(slugUnsafe.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > n {
		s = strings.TrimRight(s[:n], "-")
	}
	return s
}

// MachineName is the name of an interview's machine for one launch
// attempt: interview-<id>-<attempt>, so a replacement never collides with
// a predecessor still being destroyed (Fly names are unique among an app's
// machines until destroyed, and must be DNS labels).
func MachineName(interviewID string, attempt int) string {
	suffix := "-" + strconv.Itoa(max(attempt, 1))
	return "interview-" + dnsLabel(interviewID, 63-len("interview-")-len(suffix)) + suffix
}

// Launch creates the interview's machine in its tenant's app (provisioning
// the app, its network, addresses and secrets first where missing), waits
// for it to start and for /healthz through the proxy. It places the machine
// in the spec's region (else the default) and, on a capacity error, in the
// next configured regions; Machine.Notes says where it went and why. A
// machine that never gets healthy is destroyed before Launch returns its
// error; one that stops first fails the launch at once (ErrProcessorExited).
func (f *Fly) Launch(ctx context.Context, s Spec) (Machine, error) {
	if err := validateSpec(s); err != nil {
		return Machine{}, err
	}
	f.launching.Add(1)
	defer f.launching.Add(-1)
	slug := s.TenantSlug
	if slug == "" {
		slug = s.TenantID
	}
	app := f.AppName(slug)
	regions, err := f.placement(s.Region)
	if err != nil {
		return Machine{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.ReadyTimeout)
	defer cancel()

	info, err := f.ensureApp(ctx, app)
	if err != nil {
		return Machine{}, err
	}
	secrets := maps.Clone(f.cfg.OperatorSecrets)
	if secrets == nil {
		secrets = map[string]string{}
	}
	maps.Copy(secrets, contract.TenantSecrets(s.Secrets))
	minSecrets, err := f.syncSecrets(ctx, app, secrets)
	if err != nil {
		return Machine{}, err
	}
	var notes []string
	for i, region := range regions {
		m, err := f.launchIn(ctx, app, info, s, region, minSecrets)
		if errors.Is(err, ErrCapacity) && i+1 < len(regions) {
			note := fmt.Sprintf("no machine capacity in %s; trying %s", region, regions[i+1])
			f.log.Warn("fly placement", "interview", s.InterviewID, "note", note)
			notes = append(notes, note)
			continue
		}
		m.Notes = notes
		return m, err
	}
	return Machine{}, fmt.Errorf("fly: %w in %v", ErrCapacity, regions)
}

// placement is the list of regions to try for want: want (or the default)
// first, then the other configured regions in their configured order.
func (f *Fly) placement(want string) ([]string, error) {
	first := cmp.Or(want, f.cfg.DefaultRegion)
	if !slices.Contains(f.cfg.Regions, first) {
		return nil, fmt.Errorf("fly: region %q is not one of the configured regions %v (CANDOR_REGIONS)", first, f.cfg.Regions)
	}
	out := []string{first}
	for _, r := range f.cfg.Regions {
		if r != first {
			out = append(out, r)
		}
	}
	return out, nil
}

// launchIn launches s's machine in region.
func (f *Fly) launchIn(ctx context.Context, app string, info appInfo, s Spec, region string, minSecrets *uint64) (Machine, error) {
	port, err := f.takeMediaPort(ctx, app)
	if err != nil {
		return Machine{}, err
	}
	in := f.machineInput(s, region, port, info, minSecrets)
	key := poolKey{app: app, region: region}
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
			f.log.Warn("claim of a warm fly machine failed; creating one", "app", app, "machine", id, "err", err, "fly_request_id", requestID(err))
			f.destroyAbandoned(ctx, app, id)
		}
	}
	if fm == nil {
		if fm, err = f.create(ctx, app, in); err != nil {
			f.releaseMediaPort(app, port, "")
			return Machine{}, err
		}
	}
	f.bindMediaPort(app, port, fm.ID)
	m := f.machine(app, fm)
	if err := f.waitReady(ctx, m); err != nil {
		f.destroyAbandoned(ctx, app, fm.ID)
		f.releaseMediaPort(app, port, fm.ID)
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

// machineInput is the create request for s in region. Tenant secrets are
// not in it: they are app secrets, which Fly adds to the machine's env
// itself (MinSecretsVersion makes sure the machine sees the ones just
// written).
func (f *Fly) machineInput(s Spec, region string, mediaPort int, info appInfo, minSecrets *uint64) fly.LaunchMachineInput {
	env := make(map[string]string, len(s.Env)+10)
	for k, v := range s.Env {
		env[k] = v
	}
	env[envSessionID] = s.InterviewID
	env[envTenantID] = s.TenantID
	env[envCandidateID] = s.CandidateID
	env[envPositionID] = s.PositionID
	env[envPort] = fmt.Sprint(f.cfg.InternalPort)
	if mediaPort > 0 {
		// Fly delivers UDP to fly-global-services on the port it arrived
		// at, with the address rewritten: the processor binds there and
		// advertises the app's dedicated IPv4 as its host candidate.
		env[envWebRTCUDPPort] = strconv.Itoa(mediaPort)
		env[envWebRTCBindHost] = f.cfg.MediaBindHost
		env[envPublicIPs] = info.dedicatedIPv4
		if f.cfg.MediaTCP {
			env[envWebRTCTCPPort] = strconv.Itoa(mediaPort)
		}
	}
	var files []*fly.File
	if len(s.Plan) > 0 {
		raw := base64.StdEncoding.EncodeToString(s.Plan)
		// Readable by the image's unprivileged user (uid 10001); it holds
		// no secret.
		files = append(files, &fly.File{GuestPath: planGuestPath, RawValue: &raw, Mode: 0o444})
		env[envPlanFile] = planGuestPath
	}
	attempt := max(s.Attempt, 1)
	in := fly.LaunchMachineInput{
		Name:              MachineName(s.InterviewID, attempt),
		Region:            region,
		MinSecretsVersion: minSecrets,
		Config: f.machineConfig(env, files, map[string]string{
			metaTenant: s.TenantID, metaInterview: s.InterviewID, metaAttempt: strconv.Itoa(attempt), metaInstall: f.cfg.InstallID,
		}),
	}
	if mediaPort > 0 {
		p := mediaPort
		in.Config.Services = append(in.Config.Services, fly.MachineService{
			Protocol: "udp", InternalPort: p, Ports: []fly.MachinePort{{Port: &p}},
		})
		if f.cfg.MediaTCP {
			in.Config.Services = append(in.Config.Services, fly.MachineService{
				Protocol: "tcp", InternalPort: p, Ports: []fly.MachinePort{{Port: &p}},
			})
		}
	}
	return in
}

// machineConfig is the config every candor machine shares: image, guest,
// destroyed when its process exits, never restarted, one HTTPS service with
// a health check, and a stop that leaves the processor time to flush.
func (f *Fly) machineConfig(env map[string]string, files []*fly.File, metadata map[string]string) *fly.MachineConfig {
	// The image's entrypoint serves the control plane by default; every
	// machine this backend makes is an interview processor.
	env[envRole] = "processor"
	autostart, autostop := false, fly.MachineAutostopOff
	p443, p80 := 443, 80
	port := f.cfg.InternalPort
	checkType, path, method := "http", "/healthz", "GET"
	signal := "SIGTERM"
	return &fly.MachineConfig{
		Image:       f.cfg.Image,
		Env:         env,
		Files:       files,
		Guest:       &fly.MachineGuest{CPUKind: f.cfg.CPUKind, CPUs: f.cfg.CPUs, MemoryMB: f.cfg.MemoryMB},
		Metadata:    metadata,
		AutoDestroy: true,
		Restart:     &fly.MachineRestart{Policy: fly.MachineRestartPolicyNo},
		Checks: map[string]fly.MachineCheck{"healthz": {
			Type: &checkType, Port: &port, HTTPPath: &path, HTTPMethod: &method,
			Interval: &fly.Duration{Duration: 10 * time.Second}, Timeout: &fly.Duration{Duration: 2 * time.Second},
			GracePeriod: &fly.Duration{Duration: 5 * time.Second},
		}},
		StopConfig: &fly.StopConfig{Signal: &signal, Timeout: &fly.Duration{Duration: f.cfg.StopTimeout}},
		Services: []fly.MachineService{{
			Protocol: "tcp", InternalPort: f.cfg.InternalPort, Autostart: &autostart, Autostop: &autostop,
			Ports: []fly.MachinePort{
				{Port: &p443, Handlers: []string{"tls", "http"}},
				{Port: &p80, Handlers: []string{"http"}, ForceHTTPS: true},
			},
		}},
	}
}

// ensureApp makes sure the tenant's app exists with its own network and
// the public addresses the edge needs ({app}.fly.dev resolves only to an
// app's IPs; UDP needs a dedicated IPv4). Every step checks before it
// creates, so a launch after a crash or a 429 halfway through finishes the
// job; another control plane creating the app at the same time is fine.
func (f *Fly) ensureApp(ctx context.Context, app string) (appInfo, error) {
	f.mu.Lock()
	info, known := f.apps[app]
	f.mu.Unlock()
	if known {
		return info, nil
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
		case st == http.StatusUnprocessableEntity || st == http.StatusConflict:
			// Taken: by a concurrent create of ours (fine) or by another org
			// (then this GET fails and says so).
			err = f.retry(ctx, true, func() error { _, err := f.api.GetApp(ctx, app); return err })
			if statusOf(err) == http.StatusNotFound {
				err = fmt.Errorf("app name %s is taken outside org %s; set a different app prefix: %w", app, f.cfg.Org, err)
			}
		}
	}
	if err == nil {
		info, err = f.ensureIPs(ctx, app)
	}
	if err != nil {
		return appInfo{}, fmt.Errorf("fly: app %s: %w (fly-request-id %s)", app, err, requestID(err))
	}
	f.mu.Lock()
	f.apps[app] = info
	f.mu.Unlock()
	return info, nil
}

// ensureIPs assigns the addresses the app lacks: a shared IPv4 and an IPv6
// for HTTP, and with direct UDP a dedicated IPv4 (billed monthly, so it is
// created only when none exists). Assignment is not idempotent, so only a
// 429 (nothing done) is retried, and the list is read first.
func (f *Fly) ensureIPs(ctx context.Context, app string) (appInfo, error) {
	var have *flaps.ListIPAssignmentsResponse
	err := f.retry(ctx, true, func() (err error) { have, err = f.api.GetIPAssignments(ctx, app); return err })
	if err != nil {
		return appInfo{}, fmt.Errorf("list addresses: %w", err)
	}
	var info appInfo
	var sharedV4, v6 bool
	for _, ip := range have.IPs {
		addr := net.ParseIP(ip.IP)
		switch {
		case addr == nil || ip.IsFlycast():
		case ip.Shared:
			sharedV4 = true
		case addr.To4() != nil:
			info.dedicatedIPv4 = ip.IP
		default:
			v6 = true
		}
	}
	want := []string{}
	if !sharedV4 {
		want = append(want, "shared_v4")
	}
	if !v6 {
		want = append(want, "v6")
	}
	if f.cfg.MediaPorts[0] > 0 && info.dedicatedIPv4 == "" {
		want = append(want, "v4")
	}
	for _, typ := range want {
		var got *flaps.IPAssignment
		err := f.retry(ctx, false, func() (err error) {
			got, err = f.api.AssignIP(ctx, app, flaps.AssignIPRequest{Type: typ, Organization: f.cfg.Org})
			return err
		})
		if err != nil {
			return appInfo{}, fmt.Errorf("assign %s address: %w", typ, err)
		}
		f.log.Info("assigned fly app address", "app", app, "type", typ, "ip", got.IP)
		if typ == "v4" {
			info.dedicatedIPv4 = got.IP
		}
	}
	return info, nil
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
	renamed := 0
	for attempt := 1; ; attempt++ {
		fm, err := f.api.Launch(ctx, app, in)
		if err == nil {
			f.log.Info("created fly machine", "app", app, "machine", fm.ID, "name", in.Name, "region", fm.Region, "interview", in.Config.Metadata[metaInterview])
			return fm, nil
		}
		st := statusOf(err)
		switch {
		case isCapacity(err):
			return nil, fmt.Errorf("fly: %w in region %s: %v", ErrCapacity, in.Region, err)
		case st == http.StatusConflict && in.Config.Metadata[metaInterview] != "" && renamed < 5:
			// The name is held, by a predecessor still being destroyed
			// (or a launch the caller does not know of): the next attempt
			// number is free.
			renamed++
			n, _ := strconv.Atoi(in.Config.Metadata[metaAttempt])
			in.Config.Metadata[metaAttempt] = strconv.Itoa(n + 1)
			in.Name = MachineName(in.Config.Metadata[metaInterview], n+1)
			attempt--
			continue
		case st == http.StatusTooManyRequests && attempt < f.cfg.MaxAttempts:
			if err := f.backoff(ctx, attempt); err != nil {
				return nil, fmt.Errorf("fly: create machine in %s: %w", app, err)
			}
			continue
		case st == 0 || st >= 500:
			f.destroyAbandoned(ctx, app, "name:"+in.Name)
		}
		return nil, fmt.Errorf("fly: create machine in %s: %w (fly-request-id %s)", app, err, requestID(err))
	}
}

// waitReady waits for the machine to be started, then for /healthz through
// the proxy, while watching the machine: one that stops or is destroyed
// first (its process exited: a configuration error, say) fails at once with
// ErrProcessorExited. Both are bounded by ctx.
func (f *Fly) waitReady(ctx context.Context, m Machine) error {
	for {
		timeout := 60 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(time.Until(dl), timeout)
		}
		err := f.retry(ctx, true, func() error {
			return f.api.Wait(ctx, m.App, m.ID, flaps.WithWaitStates(fly.MachineStateStarted, fly.MachineStateStopped, fly.MachineStateDestroyed), flaps.WithWaitTimeout(max(timeout, time.Second)))
		})
		if err == nil {
			break
		}
		if statusOf(err) == http.StatusRequestTimeout && ctx.Err() == nil {
			continue // the API caps a wait at 60 s
		}
		return fmt.Errorf("wait for started: %w", err)
	}
	if st, err := f.state(ctx, m); err != nil {
		return err
	} else if st != fly.MachineStateStarted {
		return fmt.Errorf("%w (machine is %s)", ErrProcessorExited, st)
	}
	exited := make(chan struct{})
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-watchCtx.Done():
				return
			case <-t.C:
			}
			if st, err := f.state(watchCtx, m); err == nil && st != fly.MachineStateStarted && st != "starting" {
				close(exited)
				return
			}
		}
	}()
	return waitHealthy(ctx, f.http, m.URL, m.Headers, 250*time.Millisecond, exited, true)
}

// state is the machine's Fly state ("destroyed" once it is gone).
func (f *Fly) state(ctx context.Context, m Machine) (string, error) {
	var fm *fly.Machine
	err := f.retry(ctx, true, func() (err error) { fm, err = f.api.Get(ctx, m.App, m.ID); return err })
	if statusOf(err) == http.StatusNotFound {
		return fly.MachineStateDestroyed, nil
	}
	if err != nil {
		return "", fmt.Errorf("machine state: %w", err)
	}
	return fm.State, nil
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
		return fmt.Errorf("fly: destroy machine %s: %w (fly-request-id %s)", m.ID, err, requestID(err))
	}
	f.releaseMediaPort(m.App, 0, m.ID)
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

// List returns the live interview machines of this install in the org:
// those in its apps whose metadata names this install.
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
		if !strings.HasPrefix(a.Name, f.appPrefix()) {
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
			if fm.IsActive() && fm.Config != nil && fm.Config.Metadata[metaInterview] != "" && fm.Config.Metadata[metaInstall] == f.cfg.InstallID {
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
	return contract.Sleep(ctx, contract.Backoff{Min: f.cfg.RetryBase, Max: 5 * time.Second, Jitter: true}.Delay(attempt))
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
