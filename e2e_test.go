package main

// End-to-end tests of an interview with real parts: the candor control
// plane (run), local processors (this test binary re-executed with
// --role=processor, see TestMain), pocketsphinx, espeak-ng, ffmpeg and a
// headless Chromium whose fake microphone plays a real recording.

import (
	"bufio"
	"bytes"
	"candor/fly/flyfake"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
)

// TestMain lets the test binary stand in for the candor binary: the local
// machines backend spawns os.Executable() with --role=processor, which here
// is this binary, so processors run the real code without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("CANDOR_TEST_AS_MAIN") == "1" {
		// The test binary standing in for the candor binary, privilege
		// drop included (TestImageWorksOnARootOwnedVolume).
		main()
		os.Exit(0)
	}
	if slices.Contains(os.Args[1:], "--role=processor") {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := run(ctx, os.Args[1:], envMap(os.Environ()), os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "candor:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const (
	librivoxDir = "/usr/share/pocketsphinx/test/data/librivox"
	chromiumBin = "/usr/bin/chromium"
	shotsDir    = "/tmp/candor-shots"
	ownerEmail  = "owner@acme.test"
	ownerPass   = "correct horse battery"
)

func TestInterviewEndToEndOverWebRTC(t *testing.T) {
	res := runInterview(t, interviewOptions{
		Clips:     []string{"0880", "0890", "0930"},
		Shots:     "webrtc",
		Transport: "webrtc",
	})
	t.Logf("webrtc: %d candidate entries, word recall %.2f, latencies %v", len(res.Candidate), res.Recall, res.Latencies)
}

// TestInterviewFallsBackWhenICEIsSlow gives ICE 1 ms: the page has made its
// WHIP offer, gives up on it and moves the audio to the WebSocket.
func TestInterviewFallsBackWhenICEIsSlow(t *testing.T) {
	res := runInterview(t, interviewOptions{
		Clips:     []string{"0880", "0930"},
		Query:     "ice_ms=1",
		Transport: "websocket",
	})
	t.Logf("ICE timeout: %d candidate entries, word recall %.2f", len(res.Candidate), res.Recall)
}

// TestInterviewSurvivesProcessorLoss kills the processor mid-interview: the
// control plane replaces it (missed heartbeats), the page notices the drop,
// asks again where the processor is, reconnects on its own, and the
// transcript goes on without a gap or a duplicate in its sequence.
func TestInterviewSurvivesProcessorLoss(t *testing.T) {
	res := runInterview(t, interviewOptions{
		Clips:         []string{"0870", "0880", "0890", "0920", "0930"},
		Transport:     "webrtc",
		KillProcessor: true,
		MinRecall:     0.2,
	})
	t.Logf("after a processor loss: %d candidate entries, word recall %.2f", len(res.Candidate), res.Recall)
}

func TestInterviewEndToEndOverWebSocketFallback(t *testing.T) {
	res := runInterview(t, interviewOptions{
		Clips:     []string{"0880", "0890", "0930"},
		Query:     "force=ws",
		Shots:     "websocket",
		Transport: "websocket",
		Camera:    true,
	})
	t.Logf("websocket: %d candidate entries, word recall %.2f, latencies %v", len(res.Candidate), res.Recall, res.Latencies)
}

// interviewOptions says how runInterview conducts its interview.
type interviewOptions struct {
	Clips     []string // librivox clip numbers spoken by the candidate, in order
	Query     string   // extra query parameters of the invite link
	Shots     string   // screenshot name prefix; "" takes none
	Transport string   // the transport the page must end up on
	Camera    bool     // turn the camera on: the video is uploaded at the end
	// KillProcessor kills the processor after the first answer; the page
	// must reconnect to its replacement and the interview go on.
	KillProcessor bool
	// MinRecall is the share of the reference's words that must appear in
	// the candidate's entries (pocketsphinx has a 25-50% WER here);
	// default 0.35.
	MinRecall float64
	// Fly runs the control plane with --provisioner=fly against flyfake,
	// behind the fake's edge (fly-replay, UDP through a dedicated IPv4):
	// see startFlyStack.
	Fly *flyStackOptions
}

// interviewResult is what the realtime client saw.
type interviewResult struct {
	Candidate   []rtEntry
	Interviewer []rtEntry
	Recall      float64
	// Latencies are, per candidate utterance, the time from its end in the
	// browser's microphone to its entry reaching the realtime client.
	Latencies []time.Duration
}

// runInterview runs one whole interview as a candidate and a recruiter
// would and checks what every side saw.
func runInterview(t testing.TB, o interviewOptions) interviewResult {
	t.Helper()
	if o.MinRecall == 0 {
		o.MinRecall = 0.35
	}
	var st *stack
	if o.Fly != nil {
		st = startFlyStack(t, *o.Fly)
	} else {
		st = startStack(t)
	}
	speech := makeSpeech(t, o.Clips)

	questions := []string{
		"Tell me about a project you are proud of.",
		"How do you handle disagreement in a team?",
	}
	var pos, cand, iv struct {
		ID        string `json:"id"`
		InviteURL string `json:"invite_url"`
	}
	st.api(t, "POST", "/api/v1/positions", map[string]any{
		"title": "Backend Engineer", "description": "Go, SQLite, calm under pressure",
		"questions": questions, "rubric": []map[string]any{{"name": "Clarity", "description": "explains well", "weight": 1}},
	}, &pos)
	st.api(t, "POST", "/api/v1/candidates", map[string]any{"name": "Ada Lovelace", "email": "ada@example.com"}, &cand)
	st.api(t, "POST", "/api/v1/interviews", map[string]any{"position_id": pos.ID, "candidate_id": cand.ID}, &iv)
	if !strings.HasPrefix(iv.InviteURL, st.url+"/i/") {
		t.Fatalf("invite_url = %q, want one under %s/i/", iv.InviteURL, st.url)
	}

	rt := st.realtime(t, iv.ID)
	br := newBrowser(t, speech.path44k, st.browserFlags...)

	invite := iv.InviteURL + "?raw=1"
	if o.Query != "" {
		invite += "&" + o.Query
	}
	page := br.tab(t)
	mustRun(t, page, "open the invite",
		chromedp.Navigate(invite),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=start]`)),
	)
	shoot(t, page, o.Shots, "candidate-welcome")
	mustRun(t, page, "consent and check the microphone",
		chromedp.Click(chromedp.CSS(`[data-testid=start]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=consent]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=consent]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=consent-continue]:not([disabled])`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=join]:not([disabled])`)),
	)
	if o.Camera {
		mustRun(t, page, "turn the camera on",
			chromedp.Click(chromedp.CSS(`[data-testid=camera]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=preview]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=join]:not([disabled])`)),
		)
	}
	shoot(t, page, o.Shots, "candidate-devices")
	mustRun(t, page, "join", chromedp.Click(chromedp.CSS(`[data-testid=join]`)))
	waitStatus(t, page, "live", 120*time.Second)
	st.wsFallback = o.Transport == "websocket"
	var trafficAtLive flyfake.Traffic
	var turnAtLive int64
	if st.fake != nil {
		trafficAtLive = st.fake.Traffic()
	}
	if st.turnBytes != nil {
		turnAtLive = st.turnBytes.Load()
	}

	transport := evaluate[string](t, page, `document.querySelector("[data-testid=transport]").getAttribute("data-transport")`)
	if transport != o.Transport {
		t.Errorf("the page connected over %q, want %q", transport, o.Transport)
	}
	audioStartMS := evaluate[float64](t, page, `window.candorTiming.audioStart`)
	audioStart := time.UnixMilli(int64(audioStartMS))

	var afterKill int // candidate entries seen before the processor was killed
	if o.KillProcessor {
		waitUntil(t, 90*time.Second, "a first candidate entry", func() bool { return len(rt.entries("candidate")) > 0 })
		killProcessors(t)
		waitStatus(t, page, "reconnecting", 30*time.Second)
		waitStatus(t, page, "live", 90*time.Second)
		afterKill = len(rt.entries("candidate"))
	}

	// The candidate talks; wait until the recording has been heard whole
	// (its end plus time for the last utterance to be finalized).
	deadline := audioStart.Add(speech.duration + 25*time.Second)
	var recall float64
	for {
		cands := rt.entries("candidate")
		recall = wordRecall(speech.reference, cands)
		ivs := rt.entries("interviewer")
		if time.Now().After(audioStart.Add(speech.duration+3*time.Second)) && recall >= o.MinRecall && len(ivs) >= 2 &&
			(!o.KillProcessor || len(cands) > afterKill) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the recording: word recall %.2f (want ≥ %.2f), %d candidate and %d interviewer entries over the realtime API:\n%s\ncontrol plane log:\n%s",
				recall, o.MinRecall, len(cands), len(ivs), rt.dump(), st.logTail())
		}
		time.Sleep(250 * time.Millisecond)
	}
	waitCaptions(t, page)
	shoot(t, page, o.Shots, "candidate-live")

	if o.Shots != "" {
		rec := br.tab(t)
		mustRun(t, rec, "sign in to the dashboard",
			chromedp.Navigate(st.url+"/login"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name=email]`), ownerEmail),
			chromedp.SendKeys(chromedp.CSS(`input[name=password]`), ownerPass),
			chromedp.Click(chromedp.CSS(`[data-testid=login-submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=nav]`)),
			chromedp.Navigate(st.url+"/interviews/"+iv.ID),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=transcript-entry]`)),
		)
		time.Sleep(500 * time.Millisecond) // let the live view settle
		shoot(t, rec, o.Shots, "recruiter-live")
	}

	if st.fake != nil {
		var turnNow int64
		if st.turnBytes != nil {
			turnNow = st.turnBytes.Load()
		}
		checkFlyTraffic(t, st, trafficAtLive, st.fake.Traffic(), turnAtLive, turnNow, time.Since(audioStart))
	}
	mustRun(t, page, "end the interview", chromedp.Click(chromedp.CSS(`[data-testid=end]`)))
	waitStatus(t, page, "ended", 120*time.Second)
	// The page may show the end as soon as the processor says so, while
	// the control plane still destroys the machine.
	var got struct {
		Status string `json:"status"`
	}
	waitUntil(t, 60*time.Second, "completed interview", func() bool {
		st.api(t, "GET", "/api/v1/interviews/"+iv.ID, nil, &got)
		return got.Status == "completed"
	})
	shoot(t, page, o.Shots, "candidate-closing")

	// Once ended, the stored transcript is complete.
	var tr struct {
		Entries []rtEntry `json:"entries"`
	}
	st.api(t, "GET", "/api/v1/interviews/"+iv.ID+"/transcript", nil, &tr)
	var stored []rtEntry
	var askedFirst bool
	for i, e := range tr.Entries {
		if e.Seq != int64(i+1) {
			t.Errorf("stored entry %d has seq %d: the transcript has a gap or a duplicate", i, e.Seq)
		}
		switch e.Speaker {
		case "candidate":
			stored = append(stored, e)
		case "interviewer":
			askedFirst = askedFirst || e.Text == questions[0]
		}
	}
	if got := wordRecall(speech.reference, stored); got < o.MinRecall {
		t.Errorf("stored transcript: word recall %.2f, want ≥ %.2f", got, o.MinRecall)
	}
	if !askedFirst {
		t.Errorf("stored transcript lacks the first question %q:\n%s", questions[0], rt.dump())
	}
	for _, e := range rt.entries("") {
		if !slices.ContainsFunc(tr.Entries, func(s rtEntry) bool { return s.Seq == e.Seq && s.Text == e.Text }) {
			t.Errorf("realtime entry seq %d %q is not in the stored transcript", e.Seq, e.Text)
		}
	}

	var evs struct {
		Events []struct {
			Type string `json:"type"`
		} `json:"events"`
	}
	st.api(t, "GET", "/api/v1/interviews/"+iv.ID+"/events", nil, &evs)
	wantEvents := []string{"candidate.consented", "machine.launched", "candidate.joined", "interview.ended"}
	if o.KillProcessor {
		wantEvents = append(wantEvents, "heartbeat.lost", "machine.replaced")
	}
	for _, want := range wantEvents {
		if !slices.ContainsFunc(evs.Events, func(e struct {
			Type string `json:"type"`
		}) bool {
			return e.Type == want
		}) {
			t.Errorf("events lack %s: %+v", want, evs.Events)
		}
	}
	waitNoProcessors(t, st.dir)
	if o.Camera {
		checkVideo(t, st, page, iv.ID)
	}
	if o.Shots != "" {
		mustRun(t, page, "open an ended interview's link", chromedp.Navigate(iv.InviteURL),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=candidate-notice]`)))
		shoot(t, page, o.Shots, "candidate-notice")
	}

	return interviewResult{
		Candidate:   rt.entries("candidate"),
		Interviewer: rt.entries("interviewer"),
		Recall:      recall,
		Latencies:   utteranceLatencies(speech.ends, audioStart, rt.entries("candidate")),
	}
}

// checkVideo waits for the page to upload the camera recording and fetches
// it as the recruiter would.
func checkVideo(t testing.TB, st *stack, page context.Context, interviewID string) {
	t.Helper()
	var msg string
	for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(200 * time.Millisecond) {
		msg = evaluate[string](t, page, `document.querySelector("[data-testid=upload-status]").textContent`)
		if !strings.HasPrefix(msg, "Uploading") {
			break
		}
	}
	if msg != "Your video was uploaded." {
		t.Fatalf("upload status %q, want the video uploaded", msg)
	}
	req, _ := http.NewRequest("GET", st.apiURL+"/api/v1/interviews/"+interviewID+"/video", nil)
	req.Header.Set("Authorization", "Bearer "+st.key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "video/webm" {
		t.Fatalf("GET video: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if len(body) < 1000 || !bytes.HasPrefix(body, []byte{0x1a, 0x45, 0xdf, 0xa3}) {
		t.Errorf("the video is %d bytes and does not start with the EBML magic: not a WebM file", len(body))
	}
}

// ---- the control plane ----

type stack struct {
	url, dir, key string
	log           *syncBuffer
	// apiURL is where the test's own API and realtime calls go: url,
	// except behind the fly edge, where it is the control plane's listen
	// address (so the edge counts only the browser's bytes).
	apiURL       string
	browserFlags []chromedp.ExecAllocatorOption
	fake         *flyfake.Server // fly mode only
	turnBytes    *atomic.Int64   // fly mode over TURN: bytes through the TURN server
	wsFallback   bool            // the page is expected on the WebSocket
}

// startStack bootstraps a tenant in a fresh data dir and runs the control
// plane on a free loopback port until the test ends.
func startStack(t testing.TB, extraArgs ...string) *stack {
	t.Helper()
	dir := t.TempDir()
	env := envMap(os.Environ())
	for k := range env {
		if strings.HasPrefix(k, "CANDOR_") {
			delete(env, k)
		}
	}
	env["CANDOR_LOG_LEVEL"] = "debug"

	var out bytes.Buffer
	if err := run(context.Background(), []string{"admin", "bootstrap", "--tenant", "Acme", "--email", ownerEmail, "--password", ownerPass, "--data", dir}, env, &out, io.Discard); err != nil {
		t.Fatalf("admin bootstrap: %v", err)
	}
	var boot struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal(out.Bytes(), &boot); err != nil || boot.APIKey == "" {
		t.Fatalf("admin bootstrap printed %q: %v", out.String(), err)
	}

	addr := freeAddr(t)
	st := &stack{url: "http://" + addr, apiURL: "http://" + addr, dir: dir, key: boot.APIKey, log: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--addr=" + addr, "--data=" + dir, "--warm-pool=0"}, extraArgs...), env, io.Discard, st.log)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("control plane: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("the control plane did not stop within 60 s of its context ending")
		}
		if t.Failed() || os.Getenv("CANDOR_E2E_LOG") != "" {
			t.Logf("control plane log (tail):\n%s", st.logTail())
		}
	})
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		res, err := http.Get(st.apiURL + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("control plane exited: %v\n%s", err, st.logTail())
		default:
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("control plane not healthy after 30 s: %v", err)
		}
	}
	return st
}

func (st *stack) logTail() string {
	s := st.log.String()
	if len(s) > 12000 {
		s = "…" + s[len(s)-12000:]
	}
	return s
}

// api calls the REST API with the tenant's API key and decodes a 2xx answer
// into out.
func (st *stack) api(t testing.TB, method, path string, body, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, st.apiURL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+st.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer collects the control plane's log (and its processors').
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 8<<20 {
		b.buf.Reset() // bounded: only the tail is ever shown
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitNoProcessors fails unless every processor this test started is gone:
// no child of this process runs with --role=processor and no pid file is
// left in the data dir.
func waitNoProcessors(t testing.TB, dataDir string) {
	t.Helper()
	var left []string
	for start := time.Now(); time.Since(start) < 20*time.Second; time.Sleep(200 * time.Millisecond) {
		left = processorChildren()
		pids, _ := filepath.Glob(filepath.Join(dataDir, "processors", "*.pid"))
		left = append(left, pids...)
		if len(left) == 0 {
			return
		}
	}
	t.Errorf("processors left after the interview ended: %v", left)
}

// processorChildren lists "pid cmdline" of this process's children that run
// as processors.
func processorChildren() []string {
	self := os.Getpid()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []string
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// The command name may hold spaces: fields start after its ")".
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid != self {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		if bytes.Contains(cmd, []byte("--role=processor")) {
			out = append(out, filepath.Base(d)+" "+strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	return out
}

// killProcessors kills every processor this test process runs, at once and
// without warning (SIGKILL to its process group), as a machine dies.
func killProcessors(t testing.TB) {
	t.Helper()
	procs := processorChildren()
	if len(procs) == 0 {
		t.Fatal("no processor to kill")
	}
	for _, p := range procs {
		pid, _ := strconv.Atoi(strings.Fields(p)[0])
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill processor %d: %v", pid, err)
			}
		}
	}
}

// waitUntil is the root package's one poll helper: it polls ok until it
// holds, failing the test after timeout (a bound for a loaded machine, not
// a speed assertion).
func waitUntil(t testing.TB, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	for start := time.Now(); !ok(); time.Sleep(100 * time.Millisecond) {
		if time.Since(start) > timeout {
			t.Fatalf("no %s within %s", what, timeout)
		}
	}
}

// ---- the realtime client (the recruiter's view through the API) ----

type rtEntry struct {
	Seq      int64  `json:"seq"`
	Speaker  string `json:"speaker"`
	Text     string `json:"text"`
	StartMS  int64  `json:"start_ms"`
	EndMS    int64  `json:"end_ms"`
	Received time.Time
}

type rtClient struct {
	mu   sync.Mutex
	seen []rtEntry
}

// realtime subscribes to the interview's topic over /api/v1/realtime with
// the API key and records every entry with the time it arrived.
func (st *stack) realtime(t testing.TB, interviewID string) *rtClient {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + st.key}}
	conn, res, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(st.apiURL, "http")+"/api/v1/realtime", h)
	if err != nil {
		t.Fatalf("dial realtime: %v (%v)", err, res)
	}
	topic := "interview:" + interviewID
	if err := conn.WriteJSON(map[string]string{"type": "subscribe", "topic": topic}); err != nil {
		t.Fatal(err)
	}
	c := &rtClient{}
	subscribed := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var once sync.Once
		for {
			var m struct {
				Type  string          `json:"type"`
				Topic string          `json:"topic"`
				Data  json.RawMessage `json:"data"`
			}
			if err := conn.ReadJSON(&m); err != nil {
				return
			}
			now := time.Now()
			switch m.Type {
			case "subscribed":
				once.Do(func() { close(subscribed) })
			case "transcript.entry":
				var e rtEntry
				if json.Unmarshal(m.Data, &e) == nil {
					e.Received = now
					c.mu.Lock()
					c.seen = append(c.seen, e)
					c.mu.Unlock()
				}
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	select {
	case <-subscribed:
	case <-time.After(10 * time.Second):
		t.Fatalf("realtime: no subscribed answer for %s", topic)
	}
	return c
}

// entries returns what arrived of speaker ("" for all), first arrival of
// each seq only.
func (c *rtClient) entries(speaker string) []rtEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []rtEntry
	seen := map[int64]bool{}
	for _, e := range c.seen {
		if seen[e.Seq] || (speaker != "" && e.Speaker != speaker) {
			continue
		}
		seen[e.Seq] = true
		out = append(out, e)
	}
	return out
}

func (c *rtClient) dump() string {
	var b strings.Builder
	for _, e := range c.entries("") {
		fmt.Fprintf(&b, "  #%d %-11s %6d-%6dms %q\n", e.Seq, e.Speaker, e.StartMS, e.EndMS, e.Text)
	}
	return b.String()
}

// ---- the browser ----

type browser struct {
	ctx context.Context
}

// newBrowser starts a headless Chromium whose fake microphone plays wav
// once (then silence) each time a capture starts.
func newBrowser(t testing.TB, wav string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumBin); err != nil {
		t.Fatalf("chromium is needed for this test: %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumBin),
		chromedp.Flag("headless", "new"),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// The candidate's tab keeps running at full speed behind the
		// recruiter's.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-audio-capture", wav+"%noloop"),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	return &browser{ctx: bctx}
}

// tab opens a new tab; the first call uses the browser's initial one.
func (b *browser) tab(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return ctx
}

func mustRun(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// evaluate runs a JavaScript expression in the page and returns its value.
func evaluate[T any](t testing.TB, ctx context.Context, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("browser: evaluate %s: %v", js, err)
	}
	return v
}

func runAction[T any](t testing.TB, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// waitStatus waits for the page's status text to read want.
func waitStatus(t testing.TB, ctx context.Context, want string, timeout time.Duration) {
	t.Helper()
	var got string
	for start := time.Now(); time.Since(start) < timeout; time.Sleep(100 * time.Millisecond) {
		got = evaluate[string](t, ctx, `(document.querySelector("[data-testid=status]")||{}).textContent||""`)
		if got == want {
			return
		}
	}
	t.Fatalf("page status is %q after %s, want %q", got, timeout, want)
}

// waitCaptions waits until the page shows captions of both speakers.
func waitCaptions(t testing.TB, ctx context.Context) {
	t.Helper()
	var n struct{ Candidate, Interviewer int }
	js := `({Candidate: document.querySelectorAll("[data-testid=caption][data-speaker=candidate]").length,
	         Interviewer: document.querySelectorAll("[data-testid=caption][data-speaker=interviewer]").length})`
	for start := time.Now(); time.Since(start) < 20*time.Second; time.Sleep(200 * time.Millisecond) {
		n = evaluate[struct{ Candidate, Interviewer int }](t, ctx, js)
		if n.Candidate > 0 && n.Interviewer > 0 {
			return
		}
	}
	t.Errorf("the candidate page shows %d candidate and %d interviewer captions, want both", n.Candidate, n.Interviewer)
}

func shoot(t testing.TB, ctx context.Context, prefix, name string) {
	t.Helper()
	if prefix == "" {
		return
	}
	png := runAction(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(shotsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shotsDir, prefix+"-"+name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ---- speech fixture ----

const speechRate = 16000

type speech struct {
	path44k   string          // what the fake microphone plays: 44.1 kHz stereo
	reference string          // the words spoken
	duration  time.Duration   // of the whole file
	ends      []time.Duration // utterance ends in the file (energy VAD)
}

// Silence around the clips: the lead covers connection set-up; the gaps
// let the recognizer end each utterance.
const (
	leadSilence = time.Second
	gapSilence  = 1200 * time.Millisecond
)

// makeSpeech joins librivox clips with silence, converts them with ffmpeg
// to the 44.1 kHz stereo WAV Chromium's fake device plays, and finds the
// utterance ends with an energy VAD over the same audio.
func makeSpeech(t testing.TB, clips []string) speech {
	t.Helper()
	refs := librivoxRefs(t)
	var pcm []int16
	silence := func(d time.Duration) { pcm = append(pcm, make([]int16, int(d.Seconds()*speechRate))...) }
	silence(leadSilence)
	var words []string
	for i, id := range clips {
		name := "sense_and_sensibility_01_austen_64kb-" + id
		s, err := readWAV16k(filepath.Join(librivoxDir, name+".wav"))
		if err != nil {
			t.Fatal(err)
		}
		pcm = append(pcm, s...)
		if i < len(clips)-1 {
			silence(gapSilence)
		}
		ref, ok := refs[name]
		if !ok {
			t.Fatalf("no reference transcription of %s", name)
		}
		words = append(words, ref)
	}
	silence(500 * time.Millisecond)

	dir := t.TempDir()
	src := filepath.Join(dir, "speech16k.wav")
	if err := writeWAV16k(src, pcm); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "speech44k.wav")
	cmd := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", src, "-ar", "44100", "-ac", "2", "-c:a", "pcm_s16le", dst)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	return speech{
		path44k:   dst,
		reference: strings.Join(words, " "),
		duration:  time.Duration(len(pcm)) * time.Second / speechRate,
		ends:      utteranceEnds(pcm),
	}
}

// librivoxRefs reads the clips' reference transcriptions.
func librivoxRefs(t testing.TB) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(librivoxDir, "transcription"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	refs := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		i, j := strings.LastIndexByte(line, '('), strings.LastIndexByte(line, ')')
		if i < 0 || j < i {
			continue
		}
		text := strings.NewReplacer("<s>", "", "</s>", "").Replace(line[:i])
		refs[line[i+1:j]] = strings.Join(strings.Fields(text), " ")
	}
	return refs
}

// readWAV16k reads a 16 kHz mono s16le WAV file.
func readWAV16k(path string) ([]int16, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%s: not a WAV file", path)
	}
	var rate uint32
	var channels, bits uint16
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:]))
		body := b[p+8 : min(len(b), p+8+size)]
		switch id {
		case "fmt ":
			channels, rate, bits = binary.LittleEndian.Uint16(body[2:]), binary.LittleEndian.Uint32(body[4:]), binary.LittleEndian.Uint16(body[14:])
		case "data":
			if rate != speechRate || channels != 1 || bits != 16 {
				return nil, fmt.Errorf("%s: %d Hz, %d channels, %d bits; want 16 kHz mono s16", path, rate, channels, bits)
			}
			pcm := make([]int16, len(body)/2)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			return pcm, nil
		}
		p += 8 + size + size%2
	}
	return nil, fmt.Errorf("%s: no data chunk", path)
}

func writeWAV16k(path string, pcm []int16) error {
	var b bytes.Buffer
	n := uint32(len(pcm) * 2)
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, 36+n)
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(speechRate), uint32(speechRate * 2), uint16(2), uint16(16)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, n)
	binary.Write(&b, binary.LittleEndian, pcm)
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// utteranceEnds finds where speech stops for at least 600 ms, by the energy
// of 10 ms frames against a threshold between the noise floor and the
// speech level.
func utteranceEnds(pcm []int16) []time.Duration {
	const frame = speechRate / 100
	var energies []float64
	for i := 0; i+frame <= len(pcm); i += frame {
		var sum float64
		for _, s := range pcm[i : i+frame] {
			sum += float64(s) * float64(s)
		}
		energies = append(energies, sum/frame)
	}
	sorted := slices.Clone(energies)
	slices.Sort(sorted)
	floor, loud := sorted[len(sorted)/10], sorted[len(sorted)*9/10]
	threshold := floor + (loud-floor)*0.02
	const hang = 60 // frames of quiet that end an utterance
	var ends []time.Duration
	speaking, quiet, last := false, 0, 0
	for i, e := range energies {
		if e > threshold {
			speaking, quiet, last = true, 0, i
			continue
		}
		if speaking {
			if quiet++; quiet >= hang {
				ends = append(ends, time.Duration(last+1)*10*time.Millisecond)
				speaking = false
			}
		}
	}
	if speaking {
		ends = append(ends, time.Duration(last+1)*10*time.Millisecond)
	}
	return ends
}

// utteranceLatencies matches each candidate entry to the last utterance end
// before it arrived (each end counted once) and returns arrival − end.
// audioStart is when the browser's capture (and so the file) started.
func utteranceLatencies(ends []time.Duration, audioStart time.Time, entries []rtEntry) []time.Duration {
	var out []time.Duration
	used := map[int]bool{}
	for _, e := range entries {
		best := -1
		for i, end := range ends {
			if audioStart.Add(end).Before(e.Received) {
				best = i
			}
		}
		if best < 0 || used[best] {
			continue
		}
		used[best] = true
		out = append(out, e.Received.Sub(audioStart.Add(ends[best])).Round(time.Millisecond))
	}
	return out
}

// wordRecall is the share of the reference's distinct words found in the
// entries' text.
func wordRecall(reference string, entries []rtEntry) float64 {
	heard := map[string]bool{}
	for _, e := range entries {
		for _, w := range strings.Fields(strings.ToLower(e.Text)) {
			heard[strings.Trim(w, ".,;:!?\"'")] = true
		}
	}
	want := map[string]bool{}
	for _, w := range strings.Fields(strings.ToLower(reference)) {
		want[w] = true
	}
	if len(want) == 0 {
		return 0
	}
	n := 0
	for w := range want {
		if heard[w] {
			n++
		}
	}
	return float64(n) / float64(len(want))
}
