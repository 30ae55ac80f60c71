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

// child is one processor process. done is closed once it has been reaped
// (a child we started) or is seen gone (one adopted from a previous run of
// the control plane, which is not our child and is reaped by init).
type child struct {
	id, dir, url          string
	pid                   int
	cmd                   *exec.Cmd // nil when adopted
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

// NewLocal adopts the processors of interviews that a previous run of the
// control plane left running (a crash does not take them down: they have no
// parent-death signal and log to files), ends that run's idle pool
// processors, and starts the warm pool, if any. List then reports the
// adopted ones, so reconciliation keeps those whose interviews still run and
// destroys the rest. Close stops every child, adopted ones included.
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
	if err := l.recoverLeftovers(); err != nil {
		cancel()
		return nil, err
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
	// The pid file now names the interview: a control plane restarted after
	// a crash adopts the processor by it.
	if err := writePidFile(l.pidFile(c.id), c.record()); err != nil {
		l.finish(context.Background(), c)
		return Machine{}, err
	}
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

// closeGrace is the least a processor gets between SIGTERM and SIGKILL when
// the control plane stops: enough for its own shutdown (HTTP 5 s, then
// finalizing speech and delivering its spool, processor.Timing's 10 s), so
// a graceful stop kills no processor mid-delivery.
const closeGrace = 16 * time.Second

// grace is how long a stopping processor has before SIGKILL.
func (l *Local) grace() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return max(l.cfg.StopGrace, closeGrace)
	}
	return l.cfg.StopGrace
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

	// Output goes to a file, not a pipe to us: a pipe breaks when the
	// control plane dies, and the processor must outlive that.
	logFile, err := os.OpenFile(l.logFile(id), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open processor log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(l.cfg.Executable, l.cfg.Args...)
	cmd.Dir = dir
	cmd.Env = envList(env)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", l.cfg.Executable, err)
	}
	c := &child{id: id, dir: dir, url: "http://127.0.0.1:" + strconv.Itoa(port), pid: cmd.Process.Pid, cmd: cmd, poolToken: env[envPoolToken], done: make(chan struct{})}
	l.wg.Go(func() {
		c.waitErr = cmd.Wait()
		l.log.Debug("processor exited", "machine", id, "status", exitStatus(c.waitErr), "log", l.logFile(id))
		close(c.done)
	})
	if err := writePidFile(l.pidFile(id), c.record()); err != nil {
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
		// Its log would name no interview; what it said goes into the error.
		said := logTail(l.logFile(id))
		_ = os.Remove(l.logFile(id))
		if early {
			return nil, fmt.Errorf("%w (%s)%s", errExitedEarly, exitStatus(c.waitErr), said)
		}
		return nil, fmt.Errorf("%w%s", err, said)
	}
	l.log.Debug("processor ready", "machine", id, "url", c.url, "pid", c.pid, "log", l.logFile(id))
	return c, nil
}

// logTail returns the last lines of a processor's log, as ": …" for an
// error message, or "" when it is empty.
func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 1 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, max))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	if t := strings.Join(lines, " | "); t != "" {
		return ": " + t
	}
	return ""
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
		pid := c.pid
		if c.cmd == nil && !ours(c.record()) {
			return // an adopted processor that is gone; its pid may be reused
		}
		// The leader only: it stops its helpers (the speech engine) itself,
		// after it used them to finalize what it heard.
		_ = syscall.Kill(pid, syscall.SIGTERM)
		grace := time.NewTimer(l.grace())
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

// logFile is where processor id writes its output. It outlives the
// processor's data dir, for a post-mortem; pruneLogs bounds how many stay.
func (l *Local) logFile(id string) string { return filepath.Join(l.procDir, id+".log") }

// keptLogs is how many processor log files pruneLogs keeps.
const keptLogs = 200

// pruneLogs removes the oldest processor logs beyond keptLogs, never one of
// a processor that still runs.
func (l *Local) pruneLogs() {
	files, err := filepath.Glob(filepath.Join(l.procDir, "*.log"))
	if err != nil || len(files) <= keptLogs {
		return
	}
	type logInfo struct {
		path string
		mod  time.Time
	}
	var logs []logInfo
	for _, f := range files {
		if _, err := os.Stat(strings.TrimSuffix(f, ".log") + ".pid"); err == nil {
			continue
		}
		if st, err := os.Stat(f); err == nil {
			logs = append(logs, logInfo{f, st.ModTime()})
		}
	}
	slices.SortFunc(logs, func(a, b logInfo) int { return a.mod.Compare(b.mod) })
	for i := 0; i < len(logs)-keptLogs; i++ {
		_ = os.Remove(logs[i].path)
	}
}

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

// pidRecord is the content of DataDir/processors/<id>.pid: enough for a
// restarted control plane to find, reach and adopt the processor.
type pidRecord struct {
	PID         int    `json:"pid"`
	ID          string `json:"id"`
	URL         string `json:"url,omitempty"`
	InterviewID string `json:"interview_id,omitempty"` // "" while idle in the warm pool
	TenantID    string `json:"tenant_id,omitempty"`
}

func (c *child) record() pidRecord {
	return pidRecord{PID: c.pid, ID: c.id, URL: c.url, InterviewID: c.interviewID, TenantID: c.tenantID}
}

// writePidFile replaces path with rec atomically: a reader (a control plane
// starting up) never sees half a record.
func writePidFile(path string, rec pidRecord) error {
	b, _ := json.Marshal(rec)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

// recoverLeftovers goes through the pid files a previous run of the control
// plane left in procDir. A processor that still runs as ours (checked in
// /proc, so a recycled pid is never touched) and serves an interview is
// adopted; one idle in that run's warm pool is killed (this run has its
// own pool); the pid files of processors that are gone are removed, their
// data dirs kept (they may hold a spool or recording worth recovering).
func (l *Local) recoverLeftovers() error {
	defer l.pruneLogs()
	files, err := filepath.Glob(filepath.Join(l.procDir, "*.pid"))
	if err != nil {
		return fmt.Errorf("fly: list pid files: %w", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("fly: read pid file: %w", err)
		}
		var rec pidRecord
		switch err := json.Unmarshal(b, &rec); {
		case err != nil || rec.PID <= 1 || rec.ID+".pid" != filepath.Base(f):
			l.log.Warn("ignoring unreadable processor pid file", "file", f)
		case !ours(rec):
			l.log.Info("processor of a previous run is gone", "machine", rec.ID)
		case rec.InterviewID == "" || rec.URL == "":
			_ = syscall.Kill(-rec.PID, syscall.SIGKILL)
			_ = syscall.Kill(rec.PID, syscall.SIGKILL)
			l.log.Info("stopped an idle warm processor of a previous run", "machine", rec.ID, "pid", rec.PID)
			l.removeDir(filepath.Join(l.procDir, rec.ID))
		default:
			c := &child{id: rec.ID, dir: filepath.Join(l.procDir, rec.ID), url: rec.URL, pid: rec.PID,
				interviewID: rec.InterviewID, tenantID: rec.TenantID, done: make(chan struct{})}
			l.running[c.id] = c
			l.wg.Go(func() { l.watchAdopted(c) })
			l.log.Info("adopted a processor of a previous run", "machine", c.id, "interview", c.interviewID, "pid", c.pid)
			continue
		}
		if err := os.Remove(f); err != nil {
			return fmt.Errorf("fly: remove pid file: %w", err)
		}
	}
	return nil
}

// watchAdopted closes c.done once the adopted processor is gone. Not being
// its parent, we cannot wait for it; polling /proc is the way to see it end.
func (l *Local) watchAdopted(c *child) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for ours(c.record()) {
		select {
		case <-tick.C:
		case <-l.ctx.Done():
			// Close stops it (stop waits for done), so keep watching
			// until it is gone, just faster.
			tick.Reset(20 * time.Millisecond)
			<-tick.C
		}
	}
	l.log.Debug("adopted processor exited", "machine", c.id)
	close(c.done)
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
