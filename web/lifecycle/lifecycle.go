// Package lifecycle owns an interview's life: start, end, cancel, replace
// and reconcile, and the supervisor and reconciliation loops. It knows no
// HTTP: handlers call its small API and map its *Error kinds to statuses.
//
// Every transition is one store.Step (status, event row, machine rows,
// bridge credential and outbox row in one transaction); hub messages are
// published after the commit, from what was committed.
//
// Concurrency: per-interview exclusion is exact (one interview never waits
// for another) and is held only while deciding, never across a machine
// launch, a processor flush or any other network call. A slow operation in
// flight (launch, end, replacement) is registered as the interview's op;
// end and cancel abandon a pending launch at once, and the launch's own
// goroutine then destroys whatever machine it got.
package lifecycle

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"candor/fly"
	"candor/processor/contract"
	"candor/realtime"
	"candor/store"
	"candor/web/account"
)

// Config is what the lifecycle needs to know.
type Config struct {
	// PublicURL is the control plane's one address (processors get it as
	// CANDOR_CONTROL_URL; browsers reach processors under {PublicURL}/p/).
	PublicURL string
	// SecretKey is the HMAC key of processor tokens.
	SecretKey     []byte
	DefaultRegion string
	// Regions are where interview machines may run (CANDOR_REGIONS); see
	// Service.Regions for the list in force when it is empty.
	Regions []string
	// ICEServers is CANDOR_ICE_SERVERS and TURNSecret CANDOR_TURN_SECRET:
	// a processor gets the servers with TURN credentials of its own.
	ICEServers, TURNSecret string
	// ProcessorEnv is added to every processor's environment on top of
	// what the backend sets.
	ProcessorEnv map[string]string
	// LaunchTimeout bounds a machine launch; default 3 minutes.
	LaunchTimeout time.Duration
	// EndTimeout bounds the processor's final flush; default 2 minutes.
	EndTimeout time.Duration
	// HeartbeatTimeout turns on supervision: a running interview whose
	// processor is silent this long is investigated. 0 disables it.
	HeartbeatTimeout time.Duration
	// ReplaceAfter is how long a silent processor may stay unreachable
	// from the control plane before it is replaced; default 15 s.
	ReplaceAfter time.Duration
	// DrainTimeout is how long a processor replaced while it may still be
	// alive (unreachable, not known dead) may deliver what it heard before
	// the hand-over; its machine is destroyed when it says it drained, or
	// after this; default 10 minutes.
	DrainTimeout time.Duration
	// ReconcileInterval is how often machines are reconciled after the
	// pass at start-up; default 1 minute, negative disables.
	ReconcileInterval time.Duration
	// AllowPrivateTargets lets tenant URLs (OPENAI_BASE_URL) be http and
	// point at loopback and private addresses (tenantenv.go).
	AllowPrivateTargets bool
	// Registerer receives the lifecycle's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() error {
	if c.LaunchTimeout <= 0 {
		c.LaunchTimeout = 3 * time.Minute
	}
	if c.EndTimeout <= 0 {
		c.EndTimeout = 2 * time.Minute
	}
	if c.ReplaceAfter <= 0 {
		c.ReplaceAfter = 15 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Minute
	}
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = time.Minute
	}
	if len(c.SecretKey) < 16 {
		return errors.New("lifecycle: Config.SecretKey must hold at least 16 bytes")
	}
	if c.PublicURL == "" {
		return errors.New("lifecycle: Config.PublicURL is required")
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	return nil
}

// Service runs interviews' lives. Build it with New; Run runs its
// background loops until its context ends; Close waits for work in flight.
type Service struct {
	cfg      Config
	db       *store.DB
	hub      *realtime.Hub
	machines fly.Machines // nil: interviews cannot be started (ErrNoMachines)
	log      *slog.Logger
	metrics  metrics
	client   *http.Client // to processors: POST /end, health probes

	locks ExactLocks

	mu  sync.Mutex
	ops map[string]*op // interview id → its slow operation in flight
	// silences and investigating are supervision's (supervise.go).
	silences      map[string]*silence
	investigating map[string]bool
	// onStatus hears of every committed status change (see OnStatus).
	onStatus func(store.Interview)

	// ctx ends with Close: launches, flushes and destroys in flight derive
	// from it and are counted in wg.
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closeMu sync.Mutex
	closed  bool
	// stopping is set when the control plane begins a graceful stop
	// (Stopping): no new machine is launched from then on.
	stopping atomic.Bool
}

// New builds the service. machines may be nil: starting and ending
// interviews then fail with ErrNoMachines (cancel still works).
func New(cfg Config, db *store.DB, hub *realtime.Hub, machines fly.Machines, log *slog.Logger) (*Service, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if db == nil || hub == nil || log == nil {
		return nil, errors.New("lifecycle: New needs a store, a hub and a logger")
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{
		cfg: cfg, db: db, hub: hub, machines: machines, log: log, metrics: m,
		client: &http.Client{},
		ops:    map[string]*op{},
		ctx:    ctx, cancel: cancel,
	}, nil
}

// HasMachines reports whether interviews can be started here.
func (s *Service) HasMachines() bool { return s.machines != nil }

// OnStatus sets f to hear of every committed status change (after the
// commit, from what committed), e.g. to publish it in the shape of the API.
// Call it once, before serving. Without it the lifecycle publishes a
// minimal {id, status} message.
func (s *Service) OnStatus(f func(store.Interview)) { s.onStatus = f }

// Regions are the regions an interview may name and its machine may run
// in: Config.Regions (CANDOR_REGIONS), else the default region, else
// "local" (machines on this server). It is the one list: scheduling
// checks a region against it and a launch places a candidate's edge
// region only when it is in it.
func (s *Service) Regions() []string {
	switch {
	case len(s.cfg.Regions) > 0:
		return s.cfg.Regions
	case s.cfg.DefaultRegion != "":
		return []string{s.cfg.DefaultRegion}
	}
	return []string{"local"}
}

// Close cancels work in flight (launches, flushes) and waits for it and for
// the machines it abandoned to be destroyed. Call it after Run returned.
// Stopping tells the service the control plane is stopping gracefully:
// from now on starts answer ErrStopping (retry in a moment) and
// replacements are left to the next start, instead of launching machines
// on a provider that is shutting down (a start would fail the interview).
func (s *Service) Stopping() { s.stopping.Store(true) }

func (s *Service) Close() error {
	s.closeMu.Lock()
	s.closed = true
	s.closeMu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// owned returns a context for work that must not die with its request (a
// launch must not end with a closed tab) but ends with Close, which waits
// until done is called.
func (s *Service) owned(timeout time.Duration) (ctx context.Context, done func()) {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		ctx, cancel := context.WithCancel(s.ctx)
		cancel()
		return ctx, func() {}
	}
	s.wg.Add(1)
	var cancel context.CancelFunc
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(s.ctx, timeout)
	} else {
		ctx, cancel = context.WithCancel(s.ctx)
	}
	return ctx, func() {
		cancel()
		s.wg.Done()
	}
}

// background runs f in a goroutine owned by the service.
func (s *Service) background(f func(ctx context.Context)) {
	ctx, done := s.owned(0)
	go func() {
		defer done()
		f(ctx)
	}()
}

// Run runs supervision (if Config.HeartbeatTimeout is set) and
// reconciliation (unless Config.ReconcileInterval is negative) until ctx
// ends, then returns. main owns it.
func (s *Service) Run(ctx context.Context) {
	if s.machines == nil {
		<-ctx.Done()
		return
	}
	var wg sync.WaitGroup
	if s.cfg.HeartbeatTimeout > 0 {
		wg.Go(func() { s.superviseLoop(ctx) })
	}
	if s.cfg.ReconcileInterval >= 0 {
		wg.Go(func() { s.reconcileLoop(ctx) })
	}
	wg.Wait()
	<-ctx.Done()
}

// opKind is what an interview's slow operation is doing.
type opKind int

const (
	opLaunch opKind = iota + 1
	opEnd
	opReplace
)

// op is an interview's slow operation in flight. Fields other than done
// are guarded by Service.mu.
type op struct {
	kind      opKind
	cancel    context.CancelFunc
	abandoned bool          // an end or cancel took over: the op's result is to be undone
	done      chan struct{} // closed when the op finished
}

// beginOp registers op kind for interview id, or returns the op in flight.
// The caller holds id's lock.
func (s *Service) beginOp(id string, kind opKind, cancel context.CancelFunc) (*op, *op) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.ops[id]; cur != nil {
		return nil, cur
	}
	o := &op{kind: kind, cancel: cancel, done: make(chan struct{})}
	s.ops[id] = o
	return o, nil
}

// takeOver registers op kind for interview id in place of any op in
// flight (which the caller abandoned). The caller holds id's lock.
func (s *Service) takeOver(id string, kind opKind, cancel context.CancelFunc) *op {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &op{kind: kind, cancel: cancel, done: make(chan struct{})}
	s.ops[id] = o
	return o
}

// currentOp is interview id's op in flight, or nil.
func (s *Service) currentOp(id string) *op {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ops[id]
}

// abandon cancels o and marks its result to be undone.
func (s *Service) abandon(o *op) {
	s.mu.Lock()
	o.abandoned = true
	s.mu.Unlock()
	o.cancel()
}

// finishOp removes o (unless another op took over) and reports whether it
// was abandoned. Only o's owner calls it, once.
func (s *Service) finishOp(id string, o *op) (abandoned bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ops[id] == o {
		delete(s.ops, id)
	}
	close(o.done)
	return o.abandoned
}

// InHandOver reports whether interview id is between processors (a launch
// or replacement in flight): its processor route answers 503 + Retry-After.
func (s *Service) InHandOver(id string) bool {
	o := s.currentOp(id)
	return o != nil && (o.kind == opLaunch || o.kind == opReplace)
}

// processorToken is the bearer token of the processor running on machine
// row machineID for an interview: base64url(HMAC-SHA256(SecretKey,
// "processor:"+interview+":"+machine)). 256 bits no one can guess without
// the secret key, new for every machine, and derivable again, so a repeated
// start answers the same token without it being stored: the database holds
// only its hash.
func (s *Service) processorToken(interviewID, machineID string) string {
	m := hmac.New(sha256.New, s.cfg.SecretKey)
	m.Write([]byte("processor:" + interviewID + ":" + machineID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// ClientToken is interview id's client token: what API clients present to
// its processor (the start answer's processor.token) and the key of the
// candidate page's token. base64url(HMAC-SHA256(SecretKey,
// "client:"+interview)): one per interview, not per machine, so every
// processor of the interview accepts it (each gets it as
// CANDOR_CLIENT_TOKEN) and a client that retries across a hand-over keeps
// being accepted; derivable again, so nothing is stored. It is no bridge
// credential: the bridge accepts only the current machine's token.
func (s *Service) ClientToken(interviewID string) string {
	m := hmac.New(sha256.New, s.cfg.SecretKey)
	m.Write([]byte("client:" + interviewID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// TokenHash is how tokens are stored (account.TokenHash, the one rule).
var TokenHash = account.TokenHash

// Access is what a client needs to reach an interview's processor.
type Access struct {
	URL       string // where the processor answers
	Token     string // the interview's client token (API clients)
	MachineID string // the machine row serving now
}

// CandidateToken is the token the candidate page uses.
func (a Access) CandidateToken(interviewID string) string {
	return contract.CandidateToken(a.Token, interviewID)
}

// access is how clients reach interview iv's processor on machine m.
func (s *Service) access(m store.Machine) Access {
	return Access{URL: s.ProcessorURL(m), Token: s.ClientToken(m.InterviewID), MachineID: m.ID}
}

// ProcessorURL is where clients reach an interview's processor: the
// control-plane route {public url}/p/<interview id>, for every provisioner.
// It stays the same for the interview's whole life: the route reaches
// whichever processor is current and answers 503 + Retry-After between
// processors, where a machine's own address would refuse connections.
func (s *Service) ProcessorURL(m store.Machine) string {
	return s.cfg.PublicURL + "/p/" + m.InterviewID
}

// Access returns how clients reach interview iv's current processor;
// ErrNotFound (store) when no machine is live.
func (s *Service) Access(ctx context.Context, iv store.Interview) (Access, error) {
	m, err := s.db.CurrentMachine(ctx, iv.TenantID, iv.ID)
	if err != nil {
		return Access{}, err
	}
	return s.access(m), nil
}

// MachineHeaders are the headers that route a request to exactly machine m
// (Fly's proxy needs fly-force-instance-id).
func MachineHeaders(m store.Machine) map[string]string {
	if m.Provider == fly.ProviderFly && m.ProviderID != "" {
		return map[string]string{"fly-force-instance-id": m.ProviderID}
	}
	return nil
}

// flyMachine is the backend's view of machine row m.
func flyMachine(m store.Machine) fly.Machine {
	return fly.Machine{
		ID: m.ProviderID, Provider: m.Provider, App: m.App, Region: m.Region, State: m.State,
		URL: m.URL, Headers: MachineHeaders(m), InterviewID: m.InterviewID, TenantID: m.TenantID,
	}
}

// step commits st and publishes what committed.
func (s *Service) step(ctx context.Context, st store.Step) (store.StepResult, error) {
	res, err := s.db.Step(ctx, st)
	if err != nil {
		return res, err
	}
	s.publishEvent(res.Event)
	if st.To != "" {
		s.publishStatus(res.Interview)
	}
	for _, m := range res.Retired {
		s.metrics.machineSeconds.Add(m.SecondsBilled)
	}
	return res, nil
}

// Record appends an event that changes nothing else (candidate.consented,
// processor.error, …) and publishes it after the commit.
func (s *Service) Record(ctx context.Context, tenantID, interviewID, typ string, data any) error {
	ev, err := s.db.AppendEvent(ctx, tenantID, interviewID, typ, data)
	if err != nil {
		return fmt.Errorf("record %s event: %w", typ, err)
	}
	s.publishEvent(ev)
	return nil
}

// EventTypeRealtime is the realtime message type of an interview event
// (additive to DESIGN §6): data is {id, type, at, data} as in GET …/events.
const EventTypeRealtime = "interview.event"

// EventJSON is an interview event as the API and realtime show it.
type EventJSON struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	At   time.Time       `json:"at"`
	Data json.RawMessage `json:"data"`
}

// ToEventJSON is ev as the API and realtime show it.
func ToEventJSON(ev store.Event) EventJSON {
	data := ev.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	return EventJSON{ID: strconv.FormatInt(ev.ID, 10), Type: ev.Type, At: ev.At.UTC(), Data: data}
}

func (s *Service) publishEvent(ev store.Event) {
	s.hub.Publish("interview:"+ev.InterviewID, EventTypeRealtime, 0, ToEventJSON(ev))
}

func (s *Service) publishStatus(iv store.Interview) {
	if s.onStatus != nil {
		s.onStatus(iv)
		return
	}
	data := map[string]any{"id": iv.ID, "status": iv.Status}
	s.hub.Publish("interview:"+iv.ID, realtime.TypeInterviewStatus, 0, data)
	s.hub.Publish("tenant:"+iv.TenantID, realtime.TypeInterviewStatus, 0, data)
}

// ExactLocks serializes work on the same interview, and only on the same
// one (striped locks made interviews sharing a stripe wait for each
// other). The lifecycle holds them only while deciding and committing,
// never across a network call; the bridge orders each interview's entry
// commits and publishes with its own.
type ExactLocks struct {
	mu    sync.Mutex
	locks map[string]*exactLock
}

type exactLock struct {
	sync.Mutex
	users int // guarded by exactLocks.mu
}

// Lock locks interview id and returns its unlock.
func (l *ExactLocks) Lock(id string) func() {
	l.mu.Lock()
	m := l.locks[id]
	if m == nil {
		if l.locks == nil {
			l.locks = make(map[string]*exactLock)
		}
		m = &exactLock{}
		l.locks[id] = m
	}
	m.users++
	l.mu.Unlock()
	m.Lock()
	return func() {
		m.Unlock()
		l.mu.Lock()
		if m.users--; m.users == 0 {
			delete(l.locks, id)
		}
		l.mu.Unlock()
	}
}

type metrics struct {
	launches       *prometheus.CounterVec
	interviewsEnd  prometheus.Counter
	machineSeconds prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		launches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "candor_machine_launches_total",
			Help: "Interview machine launches, by result (ok, failed, abandoned).",
		}, []string{"result"}),
		interviewsEnd: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "candor_interviews_ended_total",
			Help: "Interviews ended.",
		}),
		machineSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "candor_machine_seconds_total",
			Help: "Machine seconds billed for machines retired.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.launches, m.interviewsEnd, m.machineSeconds} {
		if err := reg.Register(c); err != nil {
			return metrics{}, fmt.Errorf("lifecycle: register metrics: %w", err)
		}
	}
	return m, nil
}
