package processor

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"candor/processor/contract"
)

// server routes requests to the interview session, or handles the claim
// while the processor is idle.
type server struct {
	log    *slog.Logger
	runCtx context.Context

	mu    sync.Mutex
	cfg   Config
	sess  *session
	start sync.Mutex // one claim at a time
	warm  *warm      // what an idle processor prepared for its claim (guarded by start)
	taken bool       // warm was handed to a claim (guarded by start)

	drained chan struct{} // closed when the session, retired, drained: Run returns
}

// Run serves the processor until ctx is cancelled, then shuts down: HTTP
// first, then the interview's workers (after a bounded best-effort delivery
// of what is pending). It returns an error only when it cannot start.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("listen on CANDOR_ADDR/PORT %s: %w", cfg.Addr, err)
		}
	}
	srv := &server{log: log, runCtx: ctx, cfg: cfg, drained: make(chan struct{})}
	if cfg.Idle() {
		srv.warm = prepareWarm(ctx, cfg, log) // before serving: a claim may come at once
	}
	hs := &http.Server{
		Handler:           srv.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		// Anyone with an invite link reaches the processor: an idle
		// connection is closed, headers are bounded. Media streams
		// (WebSockets, chunk posts) are not cut by a read timeout.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	log.Info("processor listening", "addr", ln.Addr().String(), "idle", cfg.Idle())

	var err error
	if !cfg.Idle() {
		var s *session
		if s, err = startSession(ctx, cfg, log, nil); err == nil {
			srv.setSession(s)
		}
	}
	if err == nil {
		select {
		case <-ctx.Done():
		case err = <-serveErr:
			err = fmt.Errorf("serve: %w", err)
		case <-srv.drained:
			log.Info("retired processor drained; exiting")
		}
	}

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if serr := hs.Shutdown(shutdownCtx); serr != nil {
		hs.Close()
	}
	srv.mu.Lock()
	s := srv.sess
	srv.mu.Unlock()
	if s != nil {
		s.Close()
	}
	srv.start.Lock()
	if w := srv.warm; w != nil {
		if !srv.taken {
			w.discard(false) // never claimed
		}
		<-w.done
	}
	srv.start.Unlock()
	return err
}

func (srv *server) setSession(s *session) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.sess = s
	srv.cfg = s.cfg
	s.markServing()
	go func() {
		select {
		case <-srv.runCtx.Done():
		case <-s.Drained():
			close(srv.drained)
		}
	}()
}

func (srv *server) current() (Config, *session) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.cfg, srv.sess
}

func (srv *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", srv.handleHealthz)
	mux.HandleFunc("POST /claim", srv.handleClaim)
	mux.HandleFunc("POST /process-audio", srv.interview(false, (*session).handleProcessAudio))
	mux.HandleFunc("POST /whip", srv.interview(false, (*session).handleWHIP))
	mux.HandleFunc("DELETE /whip/{session}", srv.interview(false, (*session).handleWHIPDelete))
	mux.HandleFunc("GET /ws/audio", srv.interview(false, (*session).handleWSAudio))
	mux.HandleFunc("GET /events", srv.interview(false, (*session).handleEvents))
	mux.HandleFunc("POST /end", srv.interview(true, (*session).handleEnd))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	return cors(srv.underInterviewRoute(mux))
}

// cors lets the candidate page (served by the control plane, another origin)
// call the processor directly. Credentials are bearer tokens, never cookies.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", "Location")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// interview wraps a session handler with auth. Browser WebSockets cannot set
// headers, so GET requests may carry the token as ?token= instead.
func (srv *server) interview(processorOnly bool, h func(*session, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cfg, s := srv.current()
		if s == nil {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "not_ready", "the processor has no interview yet; retry shortly")
			return
		}
		token := bearer(r)
		if token == "" && r.Method == http.MethodGet {
			token = r.URL.Query().Get("token")
		}
		// The machine's bridge token (the control plane) and the
		// interview's client token (API clients, the same on every
		// processor of the interview) open everything; the candidate
		// token, derived from the client token, all but the
		// processor-only routes.
		switch {
		case equal(token, cfg.ProcessorToken), equal(token, cfg.ClientToken):
		case !processorOnly && equal(token, contract.CandidateToken(cfg.ClientToken, cfg.SessionID)):
		case processorOnly && equal(token, contract.CandidateToken(cfg.ClientToken, cfg.SessionID)):
			writeError(w, http.StatusForbidden, "forbidden", "this endpoint needs the processor token")
			return
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="candor-processor"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token")
			return
		}
		h(s, w, r)
	}
}

func bearer(r *http.Request) string {
	a := r.Header.Get("Authorization")
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// equal compares tokens in constant time; an empty expected token matches nothing.
func equal(got, want string) bool {
	if want == "" || got == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (srv *server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	_, s := srv.current()
	state := "idle"
	if s != nil {
		state = "live"
		if s.phase.reached(phaseEnded) {
			state = "ended"
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "state": state})
}

// handleClaim gives an idle processor its interview and answers 200 once the
// session is ready (and the bridge was asked for its state).
func (srv *server) handleClaim(w http.ResponseWriter, r *http.Request) {
	srv.start.Lock()
	defer srv.start.Unlock()
	cfg, s := srv.current()
	if !equal(bearer(r), cfg.PoolToken) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="candor-pool"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong pool token")
		return
	}
	if s != nil {
		writeError(w, http.StatusConflict, "already_claimed", "this processor already serves interview "+cfg.SessionID)
		return
	}
	var req contract.ClaimRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", `the body must be {"env":{...},"plan":{...}|null}`)
		return
	}
	next, err := cfg.withClaim(req.Env)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_env", err.Error())
		return
	}
	if len(req.Plan) > 0 && string(req.Plan) != "null" {
		if _, err := contract.ParsePlan(req.Plan); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_plan", err.Error())
			return
		}
		if err := os.MkdirAll(next.DataDir, 0o700); err != nil {
			writeError(w, http.StatusInternalServerError, "internal", "cannot create the data dir")
			return
		}
		next.PlanFile = filepath.Join(next.DataDir, "plan-"+safeName(next.SessionID)+".json")
		if err := os.WriteFile(next.PlanFile, req.Plan, 0o600); err != nil {
			srv.log.Error("write claimed plan", "err", err)
			writeError(w, http.StatusInternalServerError, "internal", "cannot write the plan")
			return
		}
	}
	var prepared *warm
	if srv.warm != nil && !srv.taken {
		prepared, srv.taken = srv.warm.take(), true
	}
	sess, err := startSession(srv.runCtx, next, srv.log, prepared)
	if err != nil {
		srv.log.Error("claim: start interview", "interview", next.SessionID, "err", err)
		writeError(w, http.StatusBadGateway, "start_failed", err.Error())
		return
	}
	srv.setSession(sess)
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "session_id": next.SessionID})
}

func (s *session) handleEvents(w http.ResponseWriter, r *http.Request) {
	if s.events.count() >= maxEventClients {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, "too_many_sessions", fmt.Sprintf("this interview already has %d /events connections", maxEventClients))
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.join()
	s.events.Serve(conn)
}

func (s *session) handleEnd(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timing.EndTimeout)
	defer cancel()
	res, err := s.End(ctx)
	if err != nil {
		s.log.Error("end interview", "err", err)
		writeError(w, http.StatusServiceUnavailable, "end_incomplete", err.Error()+"; retry POST /end")
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// apiError is the JSON error shape shared with the control plane.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	var e apiError
	e.Error.Code, e.Error.Message = code, message
	writeJSON(w, status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encode answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
