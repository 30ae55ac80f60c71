package fly

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func testLogger(t testing.TB) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newTestLocal starts a local backend whose children are the stand-in
// processor (this test binary), closed at the end of the test.
func newTestLocal(t testing.TB, warm int, extraEnv map[string]string) *Local {
	t.Helper()
	base := map[string]string{"CANDOR_TEST_PROCESSOR": "1"}
	for k, v := range extraEnv {
		base[k] = v
	}
	l, err := NewLocal(LocalConfig{
		Executable:   os.Args[0],
		DataDir:      t.TempDir(),
		BaseEnv:      base,
		WarmPool:     warm,
		ReadyTimeout: 20 * time.Second,
		StopGrace:    2 * time.Second,
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func testSpec(id string) Spec {
	return Spec{
		InterviewID: id, TenantID: "ten_1", TenantSlug: "acme", CandidateID: "cand_1", PositionID: "pos_1",
		Env:     map[string]string{"CANDOR_CONTROL_URL": "http://127.0.0.1:9", "CANDOR_PROCESSOR_TOKEN": "tok-" + id},
		Plan:    []byte(`{"questions":["Tell me about yourself."]}`),
		Secrets: map[string]string{"OPENAI_API_KEY": "sk-test"},
	}
}

func standInStateOf(t *testing.T, m Machine) standInState {
	t.Helper()
	resp, err := http.Get(m.URL + "/env")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st standInState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func childPID(t *testing.T, l *Local, id string) int {
	t.Helper()
	b, err := os.ReadFile(l.pidFile(id))
	if err != nil {
		t.Fatalf("pid file of %s: %v", id, err)
	}
	var rec pidRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	return rec.PID
}

// processGone reports whether pid no longer runs: signal 0 fails, or /proc
// shows a zombie (a grandchild waiting for a reaper that is not us).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestLocalLaunchGivesTheProcessorItsEnvAndDestroyKillsIt(t *testing.T) {
	t.Setenv("CANDOR_SECRET_KEY", "control-plane-only")
	l := newTestLocal(t, 0, nil)
	ctx := context.Background()

	m, err := l.Launch(ctx, testSpec("iv_1"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Provider != "local" || m.State != "running" || !strings.HasPrefix(m.URL, "http://127.0.0.1:") || m.InterviewID != "iv_1" {
		t.Fatalf("machine = %+v", m)
	}
	u, _ := url.Parse(m.URL)
	st := standInStateOf(t, m)
	dir := filepath.Join(l.procDir, m.ID)
	want := map[string]string{
		"SESSION_ID": "iv_1", "TENANT_ID": "ten_1", "CANDIDATE_ID": "cand_1", "POSITION_ID": "pos_1",
		"CANDOR_CONTROL_URL": "http://127.0.0.1:9", "CANDOR_PROCESSOR_TOKEN": "tok-iv_1", "OPENAI_API_KEY": "sk-test",
		"PORT": u.Port(), "CANDOR_ADDR": "127.0.0.1:" + u.Port(), "CANDOR_DATA": dir,
		"CANDOR_PLAN_FILE": filepath.Join(dir, "plan.json"), "CANDOR_TEST_PROCESSOR": "1", "PATH": os.Getenv("PATH"),
	}
	for k, v := range want {
		if st.Env[k] != v {
			t.Errorf("child env %s = %q, want %q", k, st.Env[k], v)
		}
	}
	for _, k := range []string{"CANDOR_SECRET_KEY", "CANDOR_POOL_TOKEN"} {
		if v, ok := st.Env[k]; ok {
			t.Errorf("child env has %s=%q; it must not", k, v)
		}
	}
	if st.PlanFile != `{"questions":["Tell me about yourself."]}` {
		t.Errorf("plan file = %q", st.PlanFile)
	}
	if len(st.Args) != 1 || st.Args[0] != "--role=processor" {
		t.Errorf("child args = %q", st.Args)
	}
	if ms, _ := l.List(ctx); len(ms) != 1 || ms[0].ID != m.ID || ms[0].TenantID != "ten_1" {
		t.Errorf("List = %+v", ms)
	}

	pid := childPID(t, l, m.ID)
	if err := l.Destroy(ctx, m); err != nil {
		t.Fatal(err)
	}
	if !processGone(pid) {
		t.Errorf("processor pid %d still runs after Destroy", pid)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); !os.IsNotExist(err) {
		t.Errorf("/proc/%d still exists after Destroy (not reaped?): %v", pid, err)
	}
	if _, err := os.Stat(l.pidFile(m.ID)); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data dir left behind: %v", err)
	}
	if err := l.Destroy(ctx, m); err != nil {
		t.Errorf("second Destroy = %v, want nil", err)
	}
	if ms, _ := l.List(ctx); len(ms) != 0 {
		t.Errorf("List after Destroy = %+v", ms)
	}
	l.Close()
	if _, err := l.Launch(ctx, testSpec("iv_late")); !errors.Is(err, ErrClosed) {
		t.Errorf("Launch after Close = %v, want ErrClosed", err)
	}
}

func TestLocalDestroyKillsTheWholeGroupOfAProcessorThatIgnoresSIGTERM(t *testing.T) {
	l := newTestLocal(t, 0, map[string]string{"CANDOR_TEST_IGNORE_TERM": "1", "CANDOR_TEST_GRANDCHILD": "1"})
	l.cfg.StopGrace = 50 * time.Millisecond
	m, err := l.Launch(context.Background(), testSpec("iv_stubborn"))
	if err != nil {
		t.Fatal(err)
	}
	st := standInStateOf(t, m)
	pid := childPID(t, l, m.ID)
	if st.GrandchildPID == 0 || processGone(st.GrandchildPID) {
		t.Fatalf("stand-in did not start its grandchild: %+v", st.GrandchildPID)
	}
	if err := l.Destroy(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if !processGone(pid) {
		t.Errorf("processor %d survived SIGKILL", pid)
	}
	waitFor(t, "grandchild to die", func() bool { return processGone(st.GrandchildPID) })
}

func TestLocalLaunchReportsAProcessorThatExitsAtOnce(t *testing.T) {
	l := newTestLocal(t, 0, map[string]string{"CANDOR_TEST_EXIT": "1"})
	_, err := l.Launch(context.Background(), testSpec("iv_dead"))
	if err == nil || !strings.Contains(err.Error(), "exited before it was healthy") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Launch error = %v, want processor exited with status 3", err)
	}
	left, _ := os.ReadDir(l.procDir)
	if len(left) != 0 {
		t.Errorf("processors dir not empty after failed launch: %v", left)
	}
}

func TestLocalLaunchClaimsAWarmProcessorAndRefillsThePool(t *testing.T) {
	l := newTestLocal(t, 1, nil)
	ctx := context.Background()
	idleID := waitIdle(t, l, "")

	m, err := l.Launch(ctx, testSpec("iv_warm"))
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != idleID {
		t.Errorf("launched %s, want the warm processor %s", m.ID, idleID)
	}
	st := standInStateOf(t, m)
	if st.Env["SESSION_ID"] != "iv_warm" || st.Env["CANDOR_PROCESSOR_TOKEN"] != "tok-iv_warm" || st.Env["OPENAI_API_KEY"] != "sk-test" {
		t.Errorf("claimed env = %v", st.Env)
	}
	if st.Env["CANDOR_POOL_TOKEN"] == "" {
		t.Error("warm processor was started without a pool token")
	}
	if string(st.ClaimedPlan) != `{"questions":["Tell me about yourself."]}` || st.PlanFile != string(st.ClaimedPlan) {
		t.Errorf("claimed plan = %s, plan file = %q", st.ClaimedPlan, st.PlanFile)
	}
	next := waitIdle(t, l, idleID)
	if next == idleID {
		t.Fatal("pool was not refilled with a new processor")
	}
	if ms, _ := l.List(ctx); len(ms) != 1 || ms[0].ID != m.ID {
		t.Errorf("List = %+v; idle processors must not be listed", ms)
	}

	pids := []int{childPID(t, l, m.ID), childPID(t, l, next)}
	if err := l.Destroy(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if !processGone(pid) {
			t.Errorf("pid %d still runs after Close", pid)
		}
	}
}

func TestLocalLaunchFallsBackToAColdStartWhenTheClaimFails(t *testing.T) {
	l := newTestLocal(t, 1, map[string]string{"CANDOR_TEST_FAIL_CLAIM": "1"})
	idleID := waitIdle(t, l, "")
	idlePID := childPID(t, l, idleID)

	m, err := l.Launch(context.Background(), testSpec("iv_cold"))
	if err != nil {
		t.Fatal(err)
	}
	if m.ID == idleID {
		t.Fatal("Launch returned the processor whose claim failed")
	}
	if st := standInStateOf(t, m); st.Env["SESSION_ID"] != "iv_cold" || st.Env["CANDOR_POOL_TOKEN"] != "" {
		t.Errorf("cold processor env = %v", st.Env)
	}
	waitFor(t, "refused warm processor to be stopped", func() bool { return processGone(idlePID) })
}

func TestNewLocalKillsProcessorsLeftByACrashedRun(t *testing.T) {
	dataDir := t.TempDir()
	procDir := filepath.Join(dataDir, "processors")
	if err := os.MkdirAll(procDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A processor of the "previous run": not our child's child, no Pdeathsig.
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	old := exec.Command(os.Args[0])
	old.Env = append(os.Environ(), "CANDOR_TEST_PROCESSOR=1", "CANDOR_MACHINE_ID=local-old", "CANDOR_ADDR=127.0.0.1:"+strconv.Itoa(port))
	old.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { old.Process.Kill(); old.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := waitHealthy(ctx, http.DefaultClient, "http://127.0.0.1:"+strconv.Itoa(port), nil, 5*time.Millisecond, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := writePidFile(filepath.Join(procDir, "local-old.pid"), old.Process.Pid, "local-old"); err != nil {
		t.Fatal(err)
	}
	// A pid file whose pid now belongs to someone else (here: the test itself).
	if err := writePidFile(filepath.Join(procDir, "local-recycled.pid"), os.Getpid(), "local-recycled"); err != nil {
		t.Fatal(err)
	}

	l, err := NewLocal(LocalConfig{Executable: os.Args[0], DataDir: dataDir}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	err = old.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("leftover processor ended with %v, want killed by SIGKILL", err)
	}
	if !processGone(old.Process.Pid) {
		t.Error("leftover processor still runs")
	}
	if pids, _ := filepath.Glob(filepath.Join(procDir, "*.pid")); len(pids) != 0 {
		t.Errorf("pid files left: %v", pids)
	}
}

// waitIdle waits until the pool holds an idle processor other than not and
// returns its id.
func waitIdle(t *testing.T, l *Local, not string) string {
	t.Helper()
	var id string
	waitFor(t, "a warm processor", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, c := range l.idle {
			if c.id != not {
				id = c.id
				return true
			}
		}
		return false
	})
	return id
}

func BenchmarkLocalLaunch(b *testing.B) {
	for _, bc := range []struct {
		name string
		warm int
	}{{"cold", 0}, {"warm", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			l := newTestLocal(b, bc.warm, nil)
			l.log = slog.New(slog.DiscardHandler)
			ctx := context.Background()
			for i := 0; b.Loop(); i++ {
				if bc.warm > 0 {
					b.StopTimer()
					waitPoolFull(b, l)
					b.StartTimer()
				}
				m, err := l.Launch(ctx, testSpec("iv_bench"+strconv.Itoa(i)))
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := l.Destroy(ctx, m); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

func waitPoolFull(b *testing.B, l *Local) {
	b.Helper()
	for range 4000 {
		l.mu.Lock()
		n := len(l.idle)
		l.mu.Unlock()
		if n >= l.cfg.WarmPool {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.Fatal("pool never filled")
}
