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
	if err == nil || !strings.Contains(err.Error(), "exited before it was healthy") || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "exiting at once as asked") {
		t.Fatalf("Launch error = %v, want processor exited with status 3 and what it said", err)
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

// previousControlPlane runs this test binary as a control plane (see
// runStandInControl) on dataDir: it launches a processor for interview
// "int_survivor" and keeps one idle in its warm pool, prints the machine,
// and is then killed with SIGKILL, as a crash would end it.
func previousControlPlane(t *testing.T, dataDir string) Machine {
	t.Helper()
	cp := exec.Command(os.Args[0])
	cp.Env = append(os.Environ(), "CANDOR_TEST_CONTROL="+dataDir)
	out, err := cp.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cp.Stderr = testWriter{t}
	if err := cp.Start(); err != nil {
		t.Fatal(err)
	}
	var m Machine
	if err := json.NewDecoder(out).Decode(&m); err != nil {
		cp.Process.Kill()
		cp.Wait()
		t.Fatalf("previous control plane: %v", err)
	}
	if err := cp.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cp.Wait()
	return m
}

// runStandInControl is the previous control plane of
// TestARestartedControlPlaneAdoptsTheProcessorsOfACrashedOne.
func runStandInControl(dataDir string) int {
	l, err := NewLocal(LocalConfig{
		Executable: os.Args[0], DataDir: dataDir, WarmPool: 1,
		BaseEnv: map[string]string{"CANDOR_TEST_PROCESSOR": "1"},
	}, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 1
	}
	m, err := l.Launch(context.Background(), testSpec("int_survivor"))
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 1
	}
	for l.Idle() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	json.NewEncoder(os.Stdout).Encode(m)
	select {} // until SIGKILL
}

func TestARestartedControlPlaneAdoptsTheProcessorsOfACrashedOne(t *testing.T) {
	dataDir := t.TempDir()
	procDir := filepath.Join(dataDir, "processors")
	old := previousControlPlane(t, dataDir)
	if old.InterviewID != "int_survivor" {
		t.Fatalf("previous control plane launched %+v", old)
	}
	// Its processors outlived it: no parent-death signal, no broken pipe.
	pids := map[string]pidRecord{}
	files, _ := filepath.Glob(filepath.Join(procDir, "*.pid"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		var rec pidRecord
		json.Unmarshal(b, &rec)
		pids[rec.ID] = rec
	}
	if len(pids) != 2 {
		t.Fatalf("pid files after the crash: %v, want the interview's and the idle one's", pids)
	}
	var idle pidRecord
	for _, rec := range pids {
		if processGone(rec.PID) {
			t.Fatalf("processor %s died with its control plane", rec.ID)
		}
		if rec.InterviewID == "" {
			idle = rec
		}
		t.Cleanup(func() { syscall.Kill(-rec.PID, syscall.SIGKILL) })
	}
	if st := standInStateOf(t, old); st.Env["SESSION_ID"] != "int_survivor" {
		t.Fatalf("surviving processor serves %q", st.Env["SESSION_ID"])
	}
	// A pid file whose pid now belongs to someone else (the test itself).
	if err := writePidFile(filepath.Join(procDir, "local-recycled.pid"), pidRecord{PID: os.Getpid(), ID: "local-recycled", URL: "http://127.0.0.1:9", InterviewID: "int_x"}); err != nil {
		t.Fatal(err)
	}

	l, err := NewLocal(LocalConfig{Executable: os.Args[0], DataDir: dataDir, StopGrace: 2 * time.Second,
		BaseEnv: map[string]string{"CANDOR_TEST_PROCESSOR": "1"}}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	ms, err := l.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].ID != old.ID || ms[0].URL != old.URL || ms[0].InterviewID != "int_survivor" || ms[0].TenantID != "ten_1" || ms[0].Provider != ProviderLocal {
		t.Fatalf("List after the restart = %+v, want the surviving processor %+v", ms, old)
	}
	waitFor(t, "the previous run's idle processor to be stopped", func() bool { return processGone(idle.PID) })
	if _, err := os.Stat(filepath.Join(procDir, "local-recycled.pid")); err == nil {
		t.Error("the recycled pid's file was kept")
	}
	if processGone(os.Getpid()) {
		t.Fatal("the test process was hit")
	}
	// The adopted processor keeps serving, and logged to its file all along.
	if st := standInStateOf(t, ms[0]); st.Env["SESSION_ID"] != "int_survivor" {
		t.Fatalf("adopted processor serves %q", st.Env["SESSION_ID"])
	}
	if b, err := os.ReadFile(filepath.Join(procDir, old.ID+".log")); err != nil || !strings.Contains(string(b), "stand-in") {
		t.Errorf("processor log file: %q, %v", b, err)
	}

	// Its interview is over: Destroy ends it, leaving no process or pid file.
	pid := pids[old.ID].PID
	if err := l.Destroy(context.Background(), ms[0]); err != nil {
		t.Fatal(err)
	}
	if !processGone(pid) {
		t.Error("destroyed processor still runs")
	}
	if _, err := os.Stat(l.pidFile(old.ID)); err == nil {
		t.Error("pid file left after Destroy")
	}
	if ms, _ := l.List(context.Background()); len(ms) != 0 {
		t.Errorf("List after Destroy = %+v", ms)
	}
}

func TestAnAdoptedProcessorThatExitsLeavesTheList(t *testing.T) {
	dataDir := t.TempDir()
	old := previousControlPlane(t, dataDir)
	l, err := NewLocal(LocalConfig{Executable: os.Args[0], DataDir: dataDir}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b, _ := os.ReadFile(l.pidFile(old.ID))
	var rec pidRecord
	json.Unmarshal(b, &rec)
	syscall.Kill(-rec.PID, syscall.SIGKILL)
	waitFor(t, "the exited processor to leave the list", func() bool {
		ms, _ := l.List(context.Background())
		return len(ms) == 0
	})
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
