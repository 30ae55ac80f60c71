package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// controlPlaneProcess runs this test binary as the candor binary
// (CANDOR_TEST_AS_MAIN) serving the control plane on dir, so that the test
// can kill it with SIGKILL as a crash would.
func controlPlaneProcess(t *testing.T, p *plane, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"--addr=" + p.addr, "--data=" + p.dir}, args...)...)
	cmd.Env = []string{"CANDOR_TEST_AS_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "CANDOR_LOG_LEVEL=info"}
	cmd.Stdout, cmd.Stderr = io.Discard, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	waitUntil(t, 60*time.Second, "the control plane to answer /healthz", func() bool {
		res, err := http.Get(p.url + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return cmd
}

// TestAControlPlaneKilledMidInterviewComesBackToItsRunningProcessor: the
// local processor lives through a kill -9 of the control plane, keeps
// transcribing into its spool, is adopted by the restarted control plane,
// delivers everything once, and is ended with its interview.
// processPlane is a data dir with one tenant, Acme, for a control plane
// run as its own process (controlPlaneProcess); it returns the plane and
// Acme's API key.
func processPlane(t *testing.T) (*plane, string) {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &plane{addr: addr, url: "http://" + addr, dir: dir, log: &syncLog{}, client: &http.Client{Timeout: 2 * time.Minute}, keys: map[string]tenantKey{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("control plane log (tail):\n%s", p.log.tail())
		}
	})
	var boot bytes.Buffer
	if err := run(context.Background(), []string{"admin", "bootstrap", "--tenant", "Acme", "--email", "o@acme.test", "--password", "correct horse battery", "--data", dir}, nil, &boot, io.Discard); err != nil {
		t.Fatal(err)
	}
	var key struct {
		TenantID string `json:"tenant_id"`
		APIKey   string `json:"api_key"`
	}
	if err := json.Unmarshal(boot.Bytes(), &key); err != nil {
		t.Fatal(err)
	}
	p.keys["Acme"] = tenantKey{ID: key.TenantID, Key: key.APIKey}
	return p, key.APIKey
}

// processorOf reads the pid file of the plane's one processor.
func processorOf(t *testing.T, p *plane) (pid int, url string) {
	t.Helper()
	pids := mustGlob(t, filepath.Join(p.dir, "processors", "*.pid"))
	if len(pids) != 1 {
		t.Fatalf("pid files %v, want the one processor", pids)
	}
	var rec struct {
		PID int
		URL string
	}
	b, _ := os.ReadFile(pids[0])
	if err := json.Unmarshal(b, &rec); err != nil || rec.PID <= 1 || rec.URL == "" {
		t.Fatalf("pid file %s: %v", b, err)
	}
	return rec.PID, rec.URL
}

func TestAControlPlaneKilledMidInterviewComesBackToItsRunningProcessor(t *testing.T) {
	p, apiKey := processPlane(t)
	dir := p.dir
	key := struct{ APIKey string }{apiKey}
	args := []string{"--warm-pool=0", "--heartbeat-timeout=60s"}

	first := controlPlaneProcess(t, p, args...)
	id := p.schedule(t, "Acme")
	var st apiStart
	p.call(t, "POST", "/api/v1/interviews/"+id+"/start", key.APIKey, nil, &st)
	var rec struct {
		PID int
		URL string
	}
	rec.PID, rec.URL = processorOf(t, p)
	p.sendAudio(t, rec.URL, st.Processor.Token, speechPCM(t, "0880"), 0)
	waitUntil(t, 60*time.Second, "the first answer in the transcript", func() bool { return len(p.transcript(t, "Acme", id)) > 0 })

	before := len(p.transcript(t, "Acme", id))
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	if pidGone(rec.PID) {
		t.Fatal("the processor died with its control plane")
	}
	// The candidate goes on speaking while the control plane is down: the
	// processor transcribes into its spool.
	p.sendAudio(t, rec.URL, st.Processor.Token, speechPCM(t, "0890"), 1000)

	controlPlaneProcess(t, p, args...)
	if pidGone(rec.PID) {
		t.Fatal("the restarted control plane ended the running interview's processor")
	}
	waitUntil(t, 90*time.Second, "the answer spoken during the outage", func() bool {
		return strings.Contains(candidateText(p.transcript(t, "Acme", id)), "selfish")
	})
	if iv := p.interview(t, "Acme", id); iv.Status != "running" || iv.Machine == nil || iv.Machine.URL != rec.URL {
		t.Fatalf("after the restart the interview is %s on %+v, want running on the adopted processor %s", iv.Status, iv.Machine, rec.URL)
	}
	var ended apiInterview
	p.call(t, "POST", "/api/v1/interviews/"+id+"/end", key.APIKey, nil, &ended)
	if ended.Status != "completed" {
		t.Fatalf("end answered %s", ended.Status)
	}
	entries := p.transcript(t, "Acme", id)
	checkSequence(t, entries) // every entry once, no gap
	if len(entries) <= before {
		t.Errorf("no entry after the restart: %d before, %d at the end", before, len(entries))
	}
	waitUntil(t, 30*time.Second, "the processor to end with its interview", func() bool { return pidGone(rec.PID) })
	if left := mustGlob(t, filepath.Join(dir, "processors", "*.pid")); len(left) > 0 {
		t.Errorf("pid files left: %v", left)
	}
}

// TestAGracefulStopOfTheControlPlaneLosesNothingItsProcessorsHeard: SIGTERM
// of the control plane while the candidate is mid-sentence. The processor
// is ended (no orphans) but first finalizes what it heard and delivers it
// to the bridge, which still serves; the interview stays running and, at
// the next start, goes on on a new processor.
func TestAGracefulStopOfTheControlPlaneLosesNothingItsProcessorsHeard(t *testing.T) {
	p, key := processPlane(t)
	args := []string{"--warm-pool=0", "--heartbeat-timeout=60s"}
	first := controlPlaneProcess(t, p, args...)
	id := p.schedule(t, "Acme")
	var st apiStart
	p.call(t, "POST", "/api/v1/interviews/"+id+"/start", key, nil, &st)
	pid, url := processorOf(t, p)
	// Seven tenths of a clip, cut mid-speech: its last words are still in
	// the recognizer, not yet an entry, when the stop comes.
	pcm := speechPCM(t, "0880")
	pcm = pcm[:len(pcm)*7/10&^1]
	heardMS := int64(len(pcm)/2) * 1000 / 16000
	p.sendAudio(t, url, st.Processor.Token, pcm, 0)
	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	if !pidGone(pid) {
		t.Fatal("a graceful stop left the processor running")
	}

	controlPlaneProcess(t, p, args...)
	entries := p.transcript(t, "Acme", id)
	var lastEnd int64
	for _, e := range entries {
		if e.Speaker == "candidate" {
			lastEnd = max(lastEnd, e.EndMS)
		}
	}
	if lastEnd < heardMS-1500 {
		logs, _ := filepath.Glob(filepath.Join(p.dir, "processors", "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			t.Logf("%s:\n%s", l, b)
		}
		t.Fatalf("the transcript ends at %d ms of the %d ms heard before the stop: %q", lastEnd, heardMS, candidateText(entries))
	}
	waitUntil(t, 60*time.Second, "the interview on a new processor", func() bool {
		iv := p.interview(t, "Acme", id)
		return iv.Status == "running" && iv.Machine != nil && iv.Machine.URL != url && iv.Machine.State == "running"
	})
	var ended apiInterview
	p.call(t, "POST", "/api/v1/interviews/"+id+"/end", key, nil, &ended)
	if ended.Status != "completed" {
		t.Fatalf("end answered %s", ended.Status)
	}
	checkSequence(t, p.transcript(t, "Acme", id))
}

// pidGone reports whether pid no longer runs (or is a zombie nobody reaped).
func pidGone(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}
