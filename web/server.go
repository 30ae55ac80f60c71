// Package web is Candor's control-plane HTTP server: the REST API, the bridge
// API processors report to, the realtime endpoint, auth, and (in dash_*.go)
// the recruiter dashboard. Errors become HTTP answers in one place,
// Server.handleError.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"candor/fly"
	"candor/processor/contract"
	"candor/realtime"
	"candor/store"
	"candor/web/lifecycle"
)

// Config is what the control plane's HTTP server needs to know.
type Config struct {
	Addr      string
	PublicURL string // the one address by which browsers and processors reach the control plane
	DataDir   string // recordings live under <DataDir>/recordings
	Version   string

	BodyLimit           int64         // JSON request bodies; default 1 MiB
	InviteTTL           time.Duration // how long an invite link works; default 7 days
	DefaultRegion       string
	PricePerMachineHour float64 // for cost estimates; default 0.0079 (USD)
	SecretKey           []byte  // HMAC key of invite and processor tokens
	SecureCookies       bool

	// Additive to the team seam (all optional):

	// RecordingLimit caps an uploaded recording; default 200 MiB.
	RecordingLimit int64
	// Registry receives the server's metrics and is served at /metrics; nil
	// makes a fresh one (with Go and process collectors).
	Registry *prometheus.Registry

	// Evaluator scores completed interviews (scorecards.go); nil is the
	// "none" evaluator: stats only.
	Evaluator Evaluator
	// EvalTimeout bounds one evaluation; default 10 minutes.
	EvalTimeout time.Duration
	// WebhookRetryScale multiplies the webhook retry schedule; default 1.
	WebhookRetryScale float64
	// RetentionInterval is how often retention policies are applied;
	// default 1 hour, negative disables the sweeper.
	RetentionInterval time.Duration
	// OutboxPoll is how often outbox consumers (scorer, webhooks) look
	// for new events; default 1 s, negative disables them.
	OutboxPoll time.Duration
	// AllowPrivateTargets lets tenant URLs (OPENAI_BASE_URL, webhooks) be http and
	// point at loopback and private addresses: for self-hosted model
	// servers and tests. Off, they must be https and public.
	AllowPrivateTargets bool
	// PasswordConcurrency bounds concurrent password hashing (19 MiB
	// each); default the CPU count. PasswordWait is how long a sign-in
	// waits for a slot before it is answered 429; default 5 s.
	PasswordConcurrency int
	PasswordWait        time.Duration
	// OnFly (FLY_APP_NAME is set): the client address is Fly-Client-IP,
	// which Fly's proxy sets. TrustedProxies: peers whose Fly-Client-IP or
	// X-Forwarded-For is believed. Otherwise the address is the peer's:
	// a client can set any header.
	OnFly          bool
	TrustedProxies []netip.Prefix
	// ReadHeaderTimeout and IdleTimeout are HTTPServer's; defaults 10 s
	// and 2 minutes.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// RealtimeRecheck is how often a live connection's credential is
	// checked again, for revocations this server does not see happen
	// (an expired session); default 15 s.
	RealtimeRecheck time.Duration
	// MetricsToken is the bearer token /metrics asks for on the public
	// address; "" serves no metrics there.
	MetricsToken string
	// BodyReadTimeout is how long a form or JSON body may take to arrive;
	// default 30 s (streams are exempt).
	BodyReadTimeout time.Duration
	// ICEServers is CANDOR_ICE_SERVERS, the STUN/TURN servers both ends of
	// a WebRTC session use; TURNSecret (CANDOR_TURN_SECRET) gives TURN
	// servers listed without credentials time-limited ones per interview
	// (contract.TURNCredentials), for the candidate page's join answer and
	// the processor's env.
	ICEServers string
	TURNSecret string
	// FlyCost prices interviews on Fly for the usage card (machine time,
	// the tenant app's dedicated IPv4, egress); nil off Fly.
	FlyCost *fly.CostModel
	// Mailer sends email (invitations, reminders, member invitations,
	// password resets); nil turns email off.
	Mailer mailer
	// ReminderBefore is how long before an interview's window closes its
	// candidate is reminded, if they have not joined; default 24 hours.
	ReminderBefore time.Duration
}

func (c *Config) setDefaults() error {
	if c.BodyLimit <= 0 {
		c.BodyLimit = 1 << 20
	}
	if c.InviteTTL <= 0 {
		c.InviteTTL = 7 * 24 * time.Hour
	}
	if c.PricePerMachineHour <= 0 {
		c.PricePerMachineHour = 0.0079
	}
	if c.RecordingLimit <= 0 {
		c.RecordingLimit = 200 << 20
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = readHeaderTimeout
	}
	if c.RealtimeRecheck <= 0 {
		c.RealtimeRecheck = 15 * time.Second
	}
	if c.BodyReadTimeout <= 0 {
		c.BodyReadTimeout = bodyReadTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = idleTimeout
	}
	if c.PasswordConcurrency <= 0 {
		c.PasswordConcurrency = runtime.NumCPU()
	}
	if c.PasswordWait <= 0 {
		c.PasswordWait = 5 * time.Second
	}
	if c.ReminderBefore <= 0 {
		c.ReminderBefore = 24 * time.Hour
	}
	if c.EvalTimeout <= 0 {
		c.EvalTimeout = 10 * time.Minute
	}
	if c.WebhookRetryScale <= 0 {
		c.WebhookRetryScale = 1
	}
	if c.RetentionInterval == 0 {
		c.RetentionInterval = time.Hour
	}
	if c.OutboxPoll == 0 {
		c.OutboxPoll = time.Second
	}
	if len(c.SecretKey) < 16 {
		return errors.New("web: Config.SecretKey must hold at least 16 bytes")
	}
	if c.PublicURL == "" {
		if c.Addr == "" {
			return errors.New("web: Config.PublicURL (or Addr) is required")
		}
		c.PublicURL = "http://" + c.Addr
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("web: Config.PublicURL %q is not an absolute http(s) URL", c.PublicURL)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.DataDir == "" {
		return errors.New("web: Config.DataDir is required")
	}
	return nil
}

// Server is the control plane's HTTP side. Build it with New, serve
// Handler(), and Close it after the http.Server has shut down.
type Server struct {
	cfg Config
	db  *store.DB
	hub *realtime.Hub
	lc  *lifecycle.Service
	log *slog.Logger
	e   *echo.Echo

	// renderErrorPage, when set (by the dashboard), renders the error page
	// for browser requests outside /api and /p. nil answers plain text.
	renderErrorPage func(c echo.Context, status int, msg string) error

	metrics  *metrics
	logins   *windowLimiter // per account (email)
	ipLogins *windowLimiter // per client address
	// live are the realtime connections, ended when their credential is
	// revoked (revoke.go).
	live liveConns
	// joinEvents caps the candidate.joined events stored per machine.
	joinEvents *windowLimiter
	// eventLimit caps stored bridge events per interview per minute.
	eventLimit *windowLimiter
	// hashSlots bounds concurrent argon2id work (passwordWork);
	// passwordChecks counts it, for tests and benchmarks.
	hashSlots      chan struct{}
	passwordChecks atomic.Int64
	upgrader       *websocket.Upgrader
	resets         *windowLimiter // password reset requests per client address
	// entryLocks orders each interview's entry writes and their publishes:
	// the hub drops a live entry whose seq is below one already sent, so two
	// overlapping bridge requests must not publish out of order.
	entryLocks lifecycle.ExactLocks
	// scoring tracks evaluations in flight (scorecards.go).
	scoring rerun
	// webhookKick wakes the webhook deliverer; webhookHTTP posts.
	webhookKick chan struct{}
	webhookOnce sync.Once
	webhookHTTP *http.Client
	// sweepKick wakes the retention sweeper (erasure.go).
	sweepKick chan struct{}

	// ctx is cancelled by Close; long-lived work (websocket connections,
	// launches) derives from it and is counted in wg.
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closeMu sync.Mutex
	closed  bool
}

// New builds the server and its routes on lc, the interviews' lifecycle
// (whose loops main runs). lc without machines answers 501 to starting and
// ending interviews.
func New(cfg Config, db *store.DB, hub *realtime.Hub, lc *lifecycle.Service, log *slog.Logger) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if db == nil || hub == nil || lc == nil || log == nil {
		return nil, errors.New("web: New needs a store, a hub, a lifecycle and a logger")
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:        cfg,
		db:         db,
		hub:        hub,
		lc:         lc,
		log:        log,
		metrics:    m,
		logins:     newWindowLimiter(5, 15*time.Minute),
		ipLogins:   newWindowLimiter(50, 15*time.Minute),
		eventLimit: newWindowLimiter(storedEventsPerMinute, time.Minute),
		joinEvents: newWindowLimiter(5, time.Hour),
		hashSlots:  make(chan struct{}, cfg.PasswordConcurrency),
		resets:     newWindowLimiter(5, 15*time.Minute),
		ctx:        ctx,
		cancel:     cancel,
	}
	lc.OnStatus(s.publishStatus)
	// Origin is checked in handleRealtime, where the kind of credential
	// is known.
	s.upgrader = realtime.NewUpgrader(func(*http.Request) bool { return true })
	s.buildEcho()
	s.startAfterInterview()
	return s, nil
}

// Handler is the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.e }

// Close cancels long-lived work the server owns (websocket connections,
// machine launches in flight) and waits for it. Call it after the
// http.Server has shut down.
func (s *Server) Close() error {
	s.closeMu.Lock()
	s.closed = true
	s.closeMu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// buildEcho makes s.e with its middleware and every route.
func (s *Server) buildEcho() {
	e := echo.New()
	s.e = e
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	// Login rate limits key on the client address: trust only the peer,
	// never a header a client can set (clientIP).
	e.IPExtractor = s.clientIP

	e.Use(middleware.RequestID())
	e.Use(s.securityHeaders)
	e.Use(s.logRequests)
	e.Use(s.bodyDeadline)
	e.Use(s.limitForms)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		// The panic becomes an error that logRequests answers and logs
		// once, with the stack.
		DisableErrorHandler: true,
		DisableStackAll:     true,
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			return fmt.Errorf("panic: %w\n%s", err, stack)
		},
	}))

	e.GET("/healthz", s.handleHealth)
	e.GET("/metrics", s.handleMetrics)

	s.apiRoutes()
	s.bridgeRoutes()
	s.processorRoutes()
	s.dashboardRoutes()
}

// apiRoutes registers the REST API of DESIGN §5 and the realtime endpoint.
func (s *Server) apiRoutes() {
	api := s.e.Group("/api/v1", s.apiAuth)
	write := s.requireRole(store.RoleOwner, store.RoleRecruiter)

	api.POST("/positions", s.handleCreatePosition, write)
	api.GET("/positions", s.handleListPositions)
	api.GET("/positions/:id", s.handleGetPosition)
	api.PUT("/positions/:id", s.handleUpdatePosition, write)
	api.DELETE("/positions/:id", s.handleDeletePosition, write)

	api.POST("/candidates", s.handleCreateCandidate, write)
	api.GET("/candidates", s.handleListCandidates)
	api.GET("/candidates/:id", s.handleGetCandidate)
	api.PUT("/candidates/:id", s.handleUpdateCandidate, write)

	api.GET("/search", s.handleSearch)

	api.POST("/interviews", s.handleCreateInterview, write)
	api.GET("/interviews", s.handleListInterviews)
	api.GET("/interviews/:id", s.handleGetInterview)
	api.POST("/interviews/:id/start", s.handleStartInterview, write)
	api.POST("/interviews/:id/end", s.handleEndInterview, write)
	api.POST("/interviews/:id/cancel", s.handleCancelInterview, write)
	api.POST("/interviews/:id/invite", s.handleResendInvite, write)
	api.GET("/interviews/:id/transcript", s.handleTranscript)
	api.GET("/interviews/:id/events", s.handleEvents)
	api.GET("/interviews/:id/recording", s.handleGetRecording)

	api.GET("/realtime", s.handleRealtime)

	s.afterRoutes(api, write)
}

// bridgeRoutes registers the processor → control API. Its own auth (the
// per-interview processor token) replaces apiAuth.
func (s *Server) bridgeRoutes() {
	b := s.e.Group(contract.BridgePath+":id", s.bridgeAuth)
	b.POST("/entries", s.handleBridgeEntries)
	b.POST("/events", s.handleBridgeEvents, s.withBridgeInterview)
	b.GET("/state", s.handleBridgeState, s.withBridgeInterview)
	b.PUT("/recording", s.handleBridgeRecording, s.withBridgeInterview)
}

func (s *Server) handleHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// logRequests logs every request once, at the boundary. Errors are turned
// into answers here (so the status is known) and internal ones are logged
// with their cause.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		req, res := c.Request(), c.Response()
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		s.metrics.observe(req.Method, route, res.Status, elapsed)

		level := slog.LevelInfo
		if strings.HasPrefix(route, "/api/v1/bridge/") && res.Status < 400 {
			// Processors report every second per interview; their
			// successful calls are routine.
			level = slog.LevelDebug
		}
		clientGone := res.Status >= 500 && req.Context().Err() != nil
		if res.Status >= 500 && !clientGone {
			level = slog.LevelError
		}
		// The bridge's hot path logs at debug, usually off: build the
		// record only when it will be written.
		if !s.log.Enabled(req.Context(), level) {
			return nil
		}
		attrs := []slog.Attr{
			slog.String("method", req.Method),
			slog.String("path", maskedPath(req.URL.Path)),
			slog.Int("status", res.Status),
			slog.Duration("elapsed", elapsed),
			slog.String("request_id", res.Header().Get(echo.HeaderXRequestID)),
			slog.String("ip", c.RealIP()),
		}
		if res.Status >= 500 && err != nil {
			attrs = append(attrs, slog.String("err", err.Error()))
		}
		if clientGone {
			// The client hung up (a processor that ended, a closed
			// tab): its request failing is expected, not an error.
			attrs = append(attrs, slog.Bool("client_gone", true))
		}
		s.log.LogAttrs(req.Context(), level, "http request", attrs...)
		return nil
	}
}

// owned returns a context for work that must not die with its request (a
// machine launch, a websocket connection) but must end with the server:
// Close cancels it and waits until done is called.
func (s *Server) owned(timeout time.Duration) (ctx context.Context, done func()) {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		ctx, cancel := context.WithCancel(s.ctx)
		return ctx, cancel
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

// clientIP is the address a request comes from, as far as it can be
// known: Fly-Client-IP when running on Fly (its proxy sets the header and
// overwrites a client's), or when the peer is a proxy the operator trusts
// (else that proxy's X-Forwarded-For, rightmost untrusted entry);
// otherwise the peer itself.
func (s *Server) clientIP(r *http.Request) string {
	peer := echo.ExtractIPDirect()(r)
	trusted := false
	if a, err := netip.ParseAddr(peer); err == nil {
		for _, p := range s.cfg.TrustedProxies {
			if p.Contains(a.Unmap()) {
				trusted = true
				break
			}
		}
	}
	if !s.cfg.OnFly && !trusted {
		return peer
	}
	if v := strings.TrimSpace(r.Header.Get("Fly-Client-IP")); v != "" {
		if a, err := netip.ParseAddr(v); err == nil {
			return a.Unmap().String()
		}
	}
	if trusted {
		xff := strings.Split(r.Header.Get(echo.HeaderXForwardedFor), ",")
		for i := len(xff) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(xff[i]))
			if err != nil {
				break
			}
			inTrusted := false
			for _, p := range s.cfg.TrustedProxies {
				inTrusted = inTrusted || p.Contains(a.Unmap())
			}
			if !inTrusted {
				return a.Unmap().String()
			}
		}
	}
	return peer
}

// maskedPath is path as it may be logged: an invite link's token is a
// credential (it starts and ends the interview), and so are the tokens of
// the set-password links sent by email, so /i/<token>/… is logged as
// /i/…/… (and likewise under resetPath and invitationPath).
func maskedPath(path string) string {
	for _, prefix := range []string{invitePath, resetPath, invitationPath} {
		rest, ok := strings.CutPrefix(path, prefix)
		if !ok {
			continue
		}
		_, after, found := strings.Cut(rest, "/")
		if !found {
			return prefix + "…"
		}
		return prefix + "…/" + after
	}
	return path
}
