package fly

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"candor/processor/contract"
)

// LocalConfig configures the local backend.
type LocalConfig struct {
	Executable string   // the candor binary; default os.Executable()
	Args       []string // default ["--role=processor"]
	// DataDir is the control plane's data dir; each processor gets
	// DataDir/processors/<id> as its CANDOR_DATA and a pid file beside it.
	DataDir string
	// BaseEnv is given to every child. Children do not inherit the control
	// plane's environment (it holds its secrets); only PATH, HOME, TMPDIR,
	// LANG and TZ are passed through when BaseEnv does not set them, so the
	// processor still finds pocketsphinx, ffmpeg and espeak-ng.
	BaseEnv      map[string]string
	WarmPool     int           // idle processors kept ready to claim; 0 disables the pool
	ReadyTimeout time.Duration // spawn → /healthz 200, and claim; default 30 s
	StopGrace    time.Duration // SIGTERM → SIGKILL; default 5 s
	KeepData     bool          // keep a processor's data dir after Destroy (debugging)
}

// passthroughEnv are the only control-plane variables a child inherits.
var passthroughEnv = []string{"PATH", "HOME", "TMPDIR", "LANG", "TZ"}

// Local runs each processor as a child process on a free loopback port.
type Local struct {
	cfg     LocalConfig
	log     *slog.Logger
	client  *http.Client
	procDir string

	mu      sync.Mutex
	running map[string]*child // claimed or cold-started, by machine id
	idle    []*child          // warm pool, oldest first
	closed  bool

	refill   chan struct{}
	ctx      context.Context // ends at Close; bounds pool spawns
	cancel   context.CancelFunc
	poolDone chan struct{} // closed when the pool goroutine returned
	wg       sync.WaitGroup
}

var _ Machines = (*Local)(nil)

// child is one processor process. done is closed once it has been reaped.
type child struct {
	id, dir, url          string
	cmd                   *exec.Cmd
	poolToken             string
	interviewID, tenantID string
	done                  chan struct{}
	waitErr               error // set before done is closed
	stopOnce              sync.Once
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// NewLocal kills processors left behind by a previous run (CleanupOrphans)
// and starts the warm pool, if any. Close stops every child it started.
func NewLocal(cfg LocalConfig, log *slog.Logger) (*Local, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("fly: local machines need a data dir (--data)")
	}
	if cfg.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("fly: find own executable for processors: %w", err)
		}
		cfg.Executable = exe
	}
	if cfg.Args == nil {
		cfg.Args = []string{"--role=processor"}
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 30 * time.Second
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 5 * time.Second
	}
	if cfg.WarmPool < 0 {
		cfg.WarmPool = 0
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	procDir := filepath.Join(cfg.DataDir, "processors")
	if err := os.MkdirAll(procDir, 0o700); err != nil {
		return nil, fmt.Errorf("fly: create processors dir: %w", err)
	}
	if _, err := CleanupOrphans(procDir, log); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Local{
		cfg:      cfg,
		log:      log,
		client:   &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second}},
		procDir:  procDir,
		running:  make(map[string]*child),
		refill:   make(chan struct{}, 1),
		ctx:      ctx,
		cancel:   cancel,
		poolDone: make(chan struct{}),
	}
	if cfg.WarmPool > 0 {
		go l.keepWarm()
	} else {
		close(l.poolDone)
	}
	return l, nil
}

// Launch claims a warm processor if one is idle, else starts one, and
// returns once its /healthz answers 200.
func (l *Local) Launch(ctx context.Context, s Spec) (Machine, error) {
	if err := validateSpec(s); err != nil {
		return Machine{}, err
	}
	if len(s.Plan) > 0 && !json.Valid(s.Plan) {
		return Machine{}, errors.New("fly: interview plan is not valid JSON")
	}
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return Machine{}, ErrClosed
	}
	env := processorEnv(s)
	if c := l.takeIdle(); c != nil {
		err := l.claim(ctx, c, s, env)
		// Refill only now: a spawn competing for CPU would slow the claim.
		l.signalRefill()
		if err == nil {
			return l.adopt(c, s)
		}
		l.log.Warn("warm processor claim failed; starting a cold one", "machine", c.id, "interview", s.InterviewID, "err", err)
		l.stopInBackground(c)
	}

	id := "local-" + randomHex(8)
	dir := filepath.Join(l.procDir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Machine{}, fmt.Errorf("fly: create processor dir: %w", err)
	}
	if len(s.Plan) > 0 {
		plan := filepath.Join(dir, "plan.json")
		if err := os.WriteFile(plan, s.Plan, 0o600); err != nil {
			return Machine{}, fmt.Errorf("fly: write interview plan: %w", err)
		}
		env[envPlanFile] = plan
	}
	c, err := l.spawn(ctx, id, env)
	if err != nil {
		l.removeDir(dir)
		return Machine{}, fmt.Errorf("fly: start processor for interview %s: %w", s.InterviewID, err)
	}
	return l.adopt(c, s)
}

// adopt records c as the processor of s. A child that arrives after Close is
// stopped instead.
func (l *Local) adopt(c *child, s Spec) (Machine, error) {
	c.interviewID, c.tenantID = s.InterviewID, s.TenantID
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.running[c.id] = c
	}
	l.mu.Unlock()
	if closed {
		l.finish(context.Background(), c)
		return Machine{}, ErrClosed
	}
	return c.machine(), nil
}

func (c *child) machine() Machine {
	return Machine{ID: c.id, Provider: ProviderLocal, Region: "local", State: "running", URL: c.url, InterviewID: c.interviewID, TenantID: c.tenantID}
}

// Destroy stops the processor: SIGTERM to its process group, StopGrace (or
// until ctx ends), SIGKILL, reap. Unknown or already destroyed ids are not
// an error.
func (l *Local) Destroy(ctx context.Context, m Machine) error {
	l.mu.Lock()
	c := l.running[m.ID]
	l.mu.Unlock()
	if c == nil {
		return nil
	}
	l.finish(ctx, c)
	return nil
}

// List returns the processors serving interviews (never idle pool ones, so
// reconciliation cannot mistake them for orphans).
func (l *Local) List(ctx context.Context) ([]Machine, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ms := make([]Machine, 0, len(l.running))
	for _, c := range l.running {
		if !c.exited() {
			ms = append(ms, c.machine())
		}
	}
	slices.SortFunc(ms, func(a, b Machine) int { return strings.Compare(a.ID, b.ID) })
	return ms, nil
}

// Idle is how many warm processors are ready to be claimed.
func (l *Local) Idle() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.idle {
		if !c.exited() {
			n++
		}
	}
	return n
}

// Close stops the warm pool and every child, and waits for them.
func (l *Local) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.wg.Wait()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	<-l.poolDone

	l.mu.Lock()
	children := slices.Clone(l.idle)
	for _, c := range l.running {
		children = append(children, c)
	}
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range children {
		wg.Go(func() { l.finish(context.Background(), c) })
	}
	wg.Wait()
	l.wg.Wait()
	return nil
}

// spawn starts the executable with env on a free port and waits for its
// /healthz. A child that exits before it is healthy (most likely another
// process took the port between our probe and its bind) is retried twice.
func (l *Local) spawn(ctx context.Context, id string, env map[string]string) (*child, error) {
	var err error
	for range 3 {
		var c *child
		c, err = l.spawnOnce(ctx, id, env)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil || !errors.Is(err, errExitedEarly) {
			break
		}
	}
	return nil, err
}

var errExitedEarly = errors.New("processor exited before it was healthy")

func (l *Local) spawnOnce(ctx context.Context, id string, extra map[string]string) (*child, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(l.procDir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create processor dir: %w", err)
	}
	env := l.baseEnv()
	for k, v := range extra {
		env[k] = v
	}
	env[envPort] = strconv.Itoa(port)
	env[envAddr] = "127.0.0.1:" + strconv.Itoa(port)
	env[envData] = dir
	env[envMachineID] = id

	cmd := exec.Command(l.cfg.Executable, l.cfg.Args...)
	cmd.Dir = dir
	cmd.Env = envList(env)
	stdout := &lineLog{log: l.log, machine: id, stream: "stdout"}
	stderr := &lineLog{log: l.log, machine: id, stream: "stderr"}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = childProcAttr()
	cmd.WaitDelay = time.Second // a grandchild holding our pipes must not block the reap
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", l.cfg.Executable, err)
	}
	c := &child{id: id, dir: dir, url: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, poolToken: env[envPoolToken], done: make(chan struct{})}
	l.wg.Go(func() {
		c.waitErr = cmd.Wait()
		stdout.flush()
		stderr.flush()
		l.log.Debug("processor exited", "machine", id, "status", exitStatus(c.waitErr))
		close(c.done)
	})
	if err := writePidFile(l.pidFile(id), cmd.Process.Pid, id); err != nil {
		l.stop(context.Background(), c)
		return nil, err
	}

	readyCtx, cancel := context.WithTimeout(ctx, l.cfg.ReadyTimeout)
	defer cancel()
	// A pool processor has no interview until claimed; any other must have
	// started its session before it counts as ready.
	needSession := extra[envSessionID] != ""
	if err := waitHealthy(readyCtx, l.client, c.url, nil, 5*time.Millisecond, c.done, needSession); err != nil {
		early := c.exited()
		l.stop(context.Background(), c)
		if early {
			return nil, fmt.Errorf("%w (%s)", errExitedEarly, exitStatus(c.waitErr))
		}
		return nil, err
	}
	l.log.Debug("processor ready", "machine", id, "url", c.url, "pid", cmd.Process.Pid)
	return c, nil
}

// stop ends c (SIGTERM, grace, SIGKILL to its whole group), waits until it
// is reaped and forgets it. Concurrent and repeated calls are safe.
func (l *Local) stop(ctx context.Context, c *child) {
	c.stopOnce.Do(func() {
		if c.exited() {
			// Reaped a while ago: its pid (and so its group id) may belong
			// to someone else by now.
			return
		}
		pid := c.cmd.Process.Pid
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		grace := time.NewTimer(l.cfg.StopGrace)
		select {
		case <-c.done:
		case <-grace.C:
		case <-ctx.Done():
		}
		grace.Stop()
		// Even when the leader exited in time, helpers it started in its group
		// may not have: the group id stays valid while any member lives.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	})
	<-c.done
	l.mu.Lock()
	delete(l.running, c.id)
	if i := slices.Index(l.idle, c); i >= 0 {
		l.idle = slices.Delete(l.idle, i, i+1)
	}
	l.mu.Unlock()
	_ = os.Remove(l.pidFile(c.id))
}

// finish stops c and removes its data dir (unless KeepData).
func (l *Local) finish(ctx context.Context, c *child) {
	l.stop(ctx, c)
	if !l.cfg.KeepData {
		l.removeDir(c.dir)
	}
}

func (l *Local) stopInBackground(c *child) {
	l.wg.Go(func() { l.finish(context.Background(), c) })
}

func (l *Local) removeDir(dir string) {
	if err := os.RemoveAll(dir); err != nil {
		l.log.Warn("remove processor data dir", "dir", dir, "err", err)
	}
}

func (l *Local) pidFile(id string) string { return filepath.Join(l.procDir, id+".pid") }

func (l *Local) baseEnv() map[string]string {
	env := make(map[string]string, len(l.cfg.BaseEnv)+len(passthroughEnv))
	for _, k := range passthroughEnv {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	for k, v := range l.cfg.BaseEnv {
		env[k] = v
	}
	return env
}

// takeIdle pops the oldest live warm processor, or returns nil.
func (l *Local) takeIdle() *child {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	for len(l.idle) > 0 {
		c := l.idle[0]
		l.idle = l.idle[1:]
		if !c.exited() {
			return c
		}
		l.stopInBackground(c) // already dead: only its files are left to clean
	}
	return nil
}

// claim hands an idle processor the interview's identity. The processor
// answers 200 once it has taken it and is ready.
func (l *Local) claim(ctx context.Context, c *child, s Spec, env map[string]string) error {
	if len(s.Plan) > 0 {
		plan := filepath.Join(c.dir, "plan.json")
		if err := os.WriteFile(plan, s.Plan, 0o600); err != nil {
			return fmt.Errorf("write interview plan: %w", err)
		}
		env[envPlanFile] = plan
	}
	body := contract.ClaimRequest{Env: env, Plan: json.RawMessage("null")}
	if len(s.Plan) > 0 {
		body.Plan = s.Plan
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.ReadyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/claim", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.poolToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("claim answered %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

func (l *Local) signalRefill() {
	select {
	case l.refill <- struct{}{}:
	default:
	}
}

// keepWarm keeps cfg.WarmPool idle processors until Close. It wakes on every
// claim and every few seconds, to replace idle processors that died.
func (l *Local) keepWarm() {
	defer close(l.poolDone)
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		l.fillPool()
		select {
		case <-l.ctx.Done():
			return
		case <-l.refill:
		case <-tick.C:
		}
	}
}

func (l *Local) fillPool() {
	failures := 0
	for failures < 3 && l.ctx.Err() == nil {
		l.mu.Lock()
		l.idle = slices.DeleteFunc(l.idle, func(c *child) bool {
			if c.exited() {
				l.log.Warn("warm processor died while idle", "machine", c.id)
				l.stopInBackground(c)
				return true
			}
			return false
		})
		need := l.cfg.WarmPool - len(l.idle)
		l.mu.Unlock()
		if need <= 0 {
			return
		}
		id := "local-" + randomHex(8)
		c, err := l.spawn(l.ctx, id, map[string]string{envPoolToken: randomHex(16)})
		if err != nil {
			failures++
			if l.ctx.Err() == nil {
				l.log.Error("start warm processor", "err", err)
			}
			l.removeDir(filepath.Join(l.procDir, id))
			continue
		}
		l.mu.Lock()
		closed := l.closed
		if !closed {
			l.idle = append(l.idle, c)
		}
		l.mu.Unlock()
		if closed {
			l.finish(context.Background(), c)
			return
		}
	}
}

// pidRecord is the content of DataDir/processors/<id>.pid.
type pidRecord struct {
	PID int    `json:"pid"`
	ID  string `json:"id"`
}

func writePidFile(path string, pid int, id string) error {
	b, _ := json.Marshal(pidRecord{PID: pid, ID: id})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

// CleanupOrphans kills the processors listed by pid files in procDir
// (DataDir/processors) — leftovers of a control plane that crashed — and
// removes the pid files. A pid is only killed if /proc shows it still runs
// with our CANDOR_MACHINE_ID, so a recycled pid is never hit. Data dirs are
// kept: they may hold a spool or recording worth recovering by hand.
func CleanupOrphans(procDir string, log *slog.Logger) (killed int, err error) {
	files, err := filepath.Glob(filepath.Join(procDir, "*.pid"))
	if err != nil {
		return 0, fmt.Errorf("fly: list pid files: %w", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return killed, fmt.Errorf("fly: read pid file: %w", err)
		}
		var rec pidRecord
		if err := json.Unmarshal(b, &rec); err != nil || rec.PID <= 1 {
			log.Warn("ignoring unreadable processor pid file", "file", f)
		} else if ours(rec) {
			_ = syscall.Kill(-rec.PID, syscall.SIGKILL)
			_ = syscall.Kill(rec.PID, syscall.SIGKILL)
			killed++
			log.Warn("killed processor left over from a previous run", "machine", rec.ID, "pid", rec.PID)
		}
		if err := os.Remove(f); err != nil {
			return killed, fmt.Errorf("fly: remove pid file: %w", err)
		}
	}
	return killed, nil
}

// ours reports whether rec.PID is alive and is the processor rec.ID.
func ours(rec pidRecord) bool {
	if err := syscall.Kill(rec.PID, 0); err != nil {
		return false
	}
	environ, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(rec.PID), "environ"))
	if errors.Is(err, os.ErrNotExist) {
		if _, statErr := os.Stat("/proc/self"); statErr != nil {
			return true // no procfs (not Linux): trust the pid file
		}
		return false
	}
	if err != nil {
		return false
	}
	want := []byte(envMachineID + "=" + rec.ID)
	return slices.ContainsFunc(bytes.Split(environ, []byte{0}), func(kv []byte) bool { return bytes.Equal(kv, want) })
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port, nil
}

func envList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	slices.Sort(list)
	return list
}

func exitStatus(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

// lineLog turns a child's output into one log record per line, tagged with
// the machine id. exec writes to it from one goroutine per stream.
type lineLog struct {
	log     *slog.Logger
	machine string
	stream  string
	buf     []byte
}

const maxLogLine = 4 << 10

func (w *lineLog) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > maxLogLine {
				w.emit(w.buf)
				w.buf = w.buf[:0]
			}
			return len(p), nil
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func (w *lineLog) flush() {
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = nil
	}
}

func (w *lineLog) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(line) > maxLogLine {
		line = line[:maxLogLine]
	}
	w.log.Info("processor: "+string(line), "machine", w.machine, "stream", w.stream)
}
