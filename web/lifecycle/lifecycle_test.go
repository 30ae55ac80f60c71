package lifecycle

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"candor/fly"
	"candor/realtime"
	"candor/store"
)

// env is a lifecycle on a real SQLite file and hub, with a tenant and a
// position and candidate to interview.
type env struct {
	db                *store.DB
	path              string
	lc                *Service
	tenant, pos, cand string
}

func newEnv(t *testing.T, machines fly.Machines, opts ...func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "candor.db")
	key := bytes.Repeat([]byte{9}, 32)
	db, err := store.Open(ctx, path, store.Options{SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	hub := realtime.New(realtime.Options{}, slog.New(slog.DiscardHandler))
	cfg := Config{PublicURL: "http://127.0.0.1:9", SecretKey: key, DefaultRegion: "local",
		LaunchTimeout: time.Minute, EndTimeout: 5 * time.Second, ReconcileInterval: -1}
	for _, o := range opts {
		o(&cfg)
	}
	lc, err := New(cfg, db, hub, machines, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tn, _, err := db.CreateTenantWithOwner(ctx, "Acme", "owner@example.com", "Owner", "hash")
	if err != nil {
		t.Fatal(err)
	}
	pos, err := db.CreatePosition(ctx, store.Position{TenantID: tn.ID, Title: "Engineer", Questions: []string{"Why?"}})
	if err != nil {
		t.Fatal(err)
	}
	cand, err := db.CreateCandidate(ctx, store.Candidate{TenantID: tn.ID, Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		lc.Close()
		if machines != nil {
			machines.Close()
		}
		hub.Close()
		db.Close()
	})
	return &env{db: db, path: path, lc: lc, tenant: tn.ID, pos: pos.ID, cand: cand.ID}
}

func (e *env) interview(t *testing.T) string {
	t.Helper()
	iv, err := e.db.CreateInterview(context.Background(), store.Interview{TenantID: e.tenant, PositionID: e.pos, CandidateID: e.cand}, "")
	if err != nil {
		t.Fatal(err)
	}
	return iv.ID
}

func (e *env) status(t *testing.T, id string) store.Status {
	t.Helper()
	iv, err := e.db.Interview(context.Background(), e.tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	return iv.Status
}

func (e *env) outboxTypes(t *testing.T, id string) []string {
	t.Helper()
	evs, err := e.db.OutboxAfter(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range evs {
		if ev.SubjectID == id {
			types = append(types, ev.Type)
		}
	}
	return types
}

// injectEventFailure makes every insert of an interview event of type typ
// fail, through a trigger written from a second connection to the file.
func (e *env) injectEventFailure(t *testing.T, typ string) {
	t.Helper()
	raw, err := sql.Open("sqlite", e.path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(fmt.Sprintf(`CREATE TRIGGER inject_failure BEFORE INSERT ON interview_events
		WHEN NEW.type = '%s' BEGIN SELECT RAISE(ABORT, 'injected failure'); END`, typ)); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, deadline time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAFailingEventInsertLeavesTheStatusUnchanged(t *testing.T) {
	ctx := context.Background()
	t.Run("cancel", func(t *testing.T) {
		e := newEnv(t, nil)
		id := e.interview(t)
		e.injectEventFailure(t, "interview.cancelled")
		if _, err := e.lc.Cancel(ctx, e.tenant, id); err == nil || !strings.Contains(err.Error(), "injected failure") {
			t.Fatalf("cancel with a failing event insert: %v", err)
		}
		if st := e.status(t, id); st != store.StatusScheduled {
			t.Errorf("status %s, want scheduled", st)
		}
		if got := e.outboxTypes(t, id); strings.Join(got, ",") != "interview.scheduled" {
			t.Errorf("outbox %v: the cancellation left a row", got)
		}
	})
	t.Run("end", func(t *testing.T) {
		fm := &blockingMachines{release: closedChan()}
		e := newEnv(t, fm)
		id := e.interview(t)
		if _, _, err := e.lc.Start(ctx, e.tenant, id, ""); err != nil {
			t.Fatal(err)
		}
		e.injectEventFailure(t, "interview.ended")
		if _, err := e.lc.End(ctx, e.tenant, id); err == nil || !strings.Contains(err.Error(), "injected failure") {
			t.Fatalf("end with a failing event insert: %v", err)
		}
		if st := e.status(t, id); st != store.StatusRunning {
			t.Errorf("status %s, want running", st)
		}
		m, err := e.db.LatestMachine(ctx, e.tenant, id)
		if err != nil || m.DestroyedAt != nil {
			t.Errorf("machine row %+v (%v): retired although its step failed", m, err)
		}
		if got := e.outboxTypes(t, id); strings.Join(got, ",") != "interview.scheduled,interview.started" {
			t.Errorf("outbox %v", got)
		}
	})
}

func TestOutboxRowsFollowTransitions(t *testing.T) {
	ctx := context.Background()
	fm := &blockingMachines{release: closedChan()}
	e := newEnv(t, fm, func(c *Config) { c.HeartbeatTimeout = time.Hour })
	id := e.interview(t)
	if _, _, err := e.lc.Start(ctx, e.tenant, id, ""); err != nil {
		t.Fatal(err)
	}
	// A replacement is no second start.
	fm.gone(1)
	iv, _ := e.db.Interview(ctx, e.tenant, id)
	if err := e.lc.Replace(ctx, iv, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.lc.End(ctx, e.tenant, id); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(e.outboxTypes(t, id), ","); got != "interview.scheduled,interview.started,interview.completed" {
		t.Errorf("outbox %s", got)
	}
	evs, _ := e.db.OutboxAfter(ctx, 0, 100)
	var data map[string]any
	if err := json.Unmarshal(evs[len(evs)-1].Data, &data); err != nil || data["interview_id"] != id || data["status"] != "completed" {
		t.Errorf("completed data %s (%v)", evs[len(evs)-1].Data, err)
	}
	t.Run("an illegal transition is refused by the store", func(t *testing.T) {
		_, err := e.db.Step(ctx, store.Step{TenantID: e.tenant, InterviewID: id, To: store.StatusRunning, Event: "x"})
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("completed → running: %v, want ErrConflict", err)
		}
	})
}

// neverHealthyExecutable writes a processor that starts, ignores SIGTERM
// and never answers /healthz.
func neverHealthyExecutable(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hung-processor")
	script := "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 1; done\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// pidsUnder returns the pids of the processes whose pid files are under
// procDir.
func pidsUnder(t *testing.T, procDir string) []int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(procDir, "*.pid"))
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var rec struct {
			PID int `json:"pid"`
		}
		if json.Unmarshal(b, &rec) == nil && rec.PID > 0 {
			pids = append(pids, rec.PID)
		}
	}
	return pids
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil {
		return false
	}
	// A zombie is dead for our purposes.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(b), ") Z ")
}

func TestEndDuringAPendingLaunch(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	local, err := fly.NewLocal(fly.LocalConfig{Executable: neverHealthyExecutable(t), Args: []string{}, DataDir: dataDir,
		ReadyTimeout: 5 * time.Minute}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, local)
	id := e.interview(t)
	other := e.interview(t)
	started := make(chan error, 1)
	go func() {
		_, _, err := e.lc.Start(ctx, e.tenant, id, "")
		started <- err
	}()
	procDir := filepath.Join(dataDir, "processors")
	var pid int
	waitFor(t, "the processor process to be spawned", 30*time.Second, func() bool {
		if pids := pidsUnder(t, procDir); len(pids) == 1 {
			pid = pids[0]
			return true
		}
		return false
	})
	if st := e.status(t, id); st != store.StatusStarting {
		t.Fatalf("status %s while launching", st)
	}
	t.Run("another interview is not held up by the pending launch", func(t *testing.T) {
		if _, err := e.lc.Cancel(ctx, e.tenant, other); err != nil {
			t.Fatal(err)
		}
	})

	begin := time.Now()
	iv, err := e.lc.End(ctx, e.tenant, id)
	took := time.Since(begin)
	if err != nil {
		t.Fatalf("end: %v", err)
	}
	t.Logf("end returned after %s", took)
	if took > 2*time.Second {
		t.Errorf("end took %s, want within 2 s (issue 10)", took)
	}
	if iv.Status != store.StatusCompleted {
		t.Errorf("status %s, want completed", iv.Status)
	}
	waitFor(t, "the abandoned machine to be destroyed", 10*time.Second-time.Since(begin), func() bool { return !alive(pid) })
	t.Logf("machine destroyed %s after end was called", time.Since(begin))
	select {
	case err := <-started:
		var le *Error
		if !errors.As(err, &le) || le.Kind != Conflict {
			t.Errorf("the abandoned start answered %v, want a conflict", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the abandoned start never answered")
	}
	if got := strings.Join(e.outboxTypes(t, id), ","); got != "interview.scheduled,interview.completed" {
		t.Errorf("outbox %s: a launch that never ran is no start", got)
	}
	if ms, _ := e.db.ListMachines(ctx, e.tenant, id); len(ms) != 0 {
		t.Errorf("machines on record %+v", ms)
	}
}

func TestReplacementsOfDifferentInterviewsRunInParallel(t *testing.T) {
	ctx := context.Background()
	fm := &blockingMachines{release: closedChan()}
	e := newEnv(t, fm, func(c *Config) { c.HeartbeatTimeout = time.Minute })
	a, b := e.interview(t), e.interview(t)
	for _, id := range []string{a, b} {
		if _, _, err := e.lc.Start(ctx, e.tenant, id, ""); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	fm.mu.Lock()
	fm.release = release
	fm.mu.Unlock()
	fm.gone(1)
	fm.gone(2)
	done := make(chan struct{})
	go func() {
		e.lc.SuperviseOnce(ctx, time.Now().Add(time.Hour))
		close(done)
	}()
	// Both replacements are launching at once: neither waits for the other.
	waitFor(t, "both replacement launches to be in flight", 30*time.Second, func() bool { return fm.pending() == 2 })
	if !e.lc.InHandOver(a) || !e.lc.InHandOver(b) {
		t.Error("interviews being replaced do not report a hand-over")
	}
	close(release)
	<-done
	for _, id := range []string{a, b} {
		if _, err := e.db.CurrentMachine(ctx, e.tenant, id); err != nil || e.status(t, id) != store.StatusRunning {
			t.Errorf("interview %s after replacement: %v", id, err)
		}
	}
}

// blockingMachines is a fly.Machines whose launches wait for release (a
// closed channel lets them through) and whose machines have no processor
// (their URL is empty, so end skips the flush).
type blockingMachines struct {
	mu       sync.Mutex
	release  chan struct{}
	n        int
	inFlight int
	live     map[string]bool
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func (b *blockingMachines) Launch(ctx context.Context, s fly.Spec) (fly.Machine, error) {
	b.mu.Lock()
	b.n++
	id := fmt.Sprintf("m-%d", b.n)
	release := b.release
	b.inFlight++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.inFlight--
		b.mu.Unlock()
	}()
	select {
	case <-release:
	case <-ctx.Done():
		return fly.Machine{}, ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.live == nil {
		b.live = map[string]bool{}
	}
	b.live[id] = true
	return fly.Machine{ID: id, Provider: fly.ProviderLocal, Region: "local", State: "running", InterviewID: s.InterviewID, TenantID: s.TenantID}, nil
}

func (b *blockingMachines) pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inFlight
}

func (b *blockingMachines) gone(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.live, fmt.Sprintf("m-%d", n))
}

func (b *blockingMachines) Destroy(ctx context.Context, m fly.Machine) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.live, m.ID)
	return nil
}

func (b *blockingMachines) List(ctx context.Context) ([]fly.Machine, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []fly.Machine
	for id := range b.live {
		out = append(out, fly.Machine{ID: id, Provider: fly.ProviderLocal, State: "running"})
	}
	return out, nil
}

func (b *blockingMachines) Close() error { return nil }

// Reconciliation lists machine rows before it asks the backend, which may
// take a while; a replacement that retires a machine as draining meanwhile
// must not be undone by the stale row: the draining machine is neither
// destroyed as an orphan nor, once it exits, replaced again.
func TestReconciliationJudgesADrainingMachineByItsRowNow(t *testing.T) {
	ctx := context.Background()
	fm := &blockingMachines{release: closedChan()}
	e := newEnv(t, fm)
	id := e.interview(t)
	if _, _, err := e.lc.Start(ctx, e.tenant, id, ""); err != nil {
		t.Fatal(err)
	}
	stale, err := e.db.CurrentMachine(ctx, e.tenant, id)
	if err != nil || stale.State != store.MachineRunning {
		t.Fatalf("machine %+v, %v", stale, err)
	}
	iv, _ := e.db.Interview(ctx, e.tenant, id)
	if err := e.lc.replace(ctx, iv, "unreachable", time.Now()); err != nil {
		t.Fatal(err)
	}
	if destroyed, err := e.lc.reconcileLive(ctx, stale); err != nil || destroyed {
		t.Fatalf("reconcileLive with the row as listed before the drain: destroyed %v, %v", destroyed, err)
	}
	fm.gone(1) // the retired processor drained and exited
	out, err := e.lc.reconcileVanished(ctx, stale)
	if err != nil || out != vanishedRetired {
		t.Fatalf("reconcileVanished = %v, %v; want the draining machine retired", out, err)
	}
	fm.mu.Lock()
	launches := fm.n
	fm.mu.Unlock()
	if launches != 2 {
		t.Errorf("%d launches: the interview was moved again when its retired machine exited", launches)
	}
	if cur, err := e.db.CurrentMachine(ctx, e.tenant, id); err != nil || cur.ProviderID != "m-2" {
		t.Errorf("current machine %+v, %v; want m-2", cur, err)
	}
}

// While the control plane stops gracefully, a start answers "try again"
// and changes nothing (launching on a provider that is shutting down would
// fail the interview), and supervision launches no replacement.
func TestAStartWhileTheControlPlaneStopsIsRefusedAndChangesNothing(t *testing.T) {
	ctx := context.Background()
	fm := &blockingMachines{release: closedChan()}
	e := newEnv(t, fm)
	running, scheduled := e.interview(t), e.interview(t)
	if _, _, err := e.lc.Start(ctx, e.tenant, running, ""); err != nil {
		t.Fatal(err)
	}
	e.lc.Stopping()
	_, _, err := e.lc.Start(ctx, e.tenant, scheduled, "")
	var le *Error
	if !errors.As(err, &le) || le.Kind != Unavailable {
		t.Fatalf("start while stopping: %v, want an Unavailable refusal", err)
	}
	if st := e.status(t, scheduled); st != store.StatusScheduled {
		t.Errorf("the refused start left the interview %s", st)
	}
	iv, _ := e.db.Interview(ctx, e.tenant, running)
	if err := e.lc.Replace(ctx, iv, "test"); err != nil {
		t.Fatal(err)
	}
	fm.mu.Lock()
	n := fm.n
	fm.mu.Unlock()
	if n != 1 || e.status(t, running) != store.StatusRunning {
		t.Errorf("%d launches, interview %s: want no replacement while stopping", n, e.status(t, running))
	}
}
