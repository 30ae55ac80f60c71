package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"candor/fly"
	"candor/processor/contract"
	"candor/realtime"
	"candor/store"
	"candor/web"
	"candor/web/lifecycle"
)

// realtimeLoad is the shape of one realtime benchmark run: interviews that
// each produce entries at rate per second, watched by viewers each.
type realtimeLoad struct {
	Interviews int
	Rate       float64
	Viewers    int
	Duration   time.Duration
}

// realtimeResult is what one run measured.
type realtimeResult struct {
	Sent, Acked  int           // entries posted / acknowledged by the bridge
	Delivered    int           // entry frames received, summed over viewers
	Lost         int           // expected deliveries never received
	Duplicates   int           // deliveries of a seq a viewer had already seen
	Elapsed      time.Duration // from the first post to the last delivery
	P50, P99     time.Duration // bridge request sent → viewer received
	PostErrors   int
	FirstPostErr string
}

func (r realtimeResult) ingestRate() float64   { return float64(r.Acked) / r.Elapsed.Seconds() }
func (r realtimeResult) deliveryRate() float64 { return float64(r.Delivered) / r.Elapsed.Seconds() }

// Realtime serves `candor bench realtime`: the bridge → hub → viewer path
// under load, against a floor of the same load without Candor.
func Realtime(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("candor bench realtime", flag.ContinueOnError)
	fs.SetOutput(stderr)
	load := realtimeLoad{}
	fs.IntVar(&load.Interviews, "interviews", 500, "interviews producing entries at once")
	fs.Float64Var(&load.Rate, "rate", 10, "entries per second per interview")
	fs.IntVar(&load.Viewers, "viewers", 2, "viewers per interview")
	fs.DurationVar(&load.Duration, "duration", 10*time.Second, "how long entries are produced")
	idle := fs.Int("idle-viewers", 2000, "idle viewers for the memory figure")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the candor run to this file")
	traceFile := fs.String("trace", "", "write a runtime trace of the candor run to this file (go tool trace)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if load.Interviews < 1 || load.Interviews > 5000 || load.Viewers < 1 || load.Viewers > 10 || load.Rate <= 0 || load.Rate > 1000 || load.Duration <= 0 || load.Duration > 10*time.Minute {
		return errors.New("bench realtime: use 1..5000 interviews, 1..10 viewers, a rate in (0,1000] and a duration up to 10m")
	}
	fmt.Fprintf(stdout, "load: %d interviews × %.0f entries/s = %.0f entries/s, %d viewers each = %.0f deliveries/s, for %v (GOMAXPROCS=%d)\n",
		load.Interviews, load.Rate, float64(load.Interviews)*load.Rate, load.Viewers,
		float64(load.Interviews)*load.Rate*float64(load.Viewers), load.Duration, runtime.GOMAXPROCS(0))

	fmt.Fprintln(stdout, "floor: bare gorilla/websocket fan-out, same messages, same clients …")
	floor, err := runRealtimeFloor(ctx, load)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	printRealtimeResult(stdout, "floor", floor)

	fmt.Fprintln(stdout, "candor: HTTP bridge → SQLite → hub → WebSocket viewers …")
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
	}
	full, err := runRealtimeCandor(ctx, load, stderr)
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if *traceFile != "" {
		trace.Stop()
	}
	if err != nil {
		return fmt.Errorf("candor: %w", err)
	}
	printRealtimeResult(stdout, "candor", full)
	if floor.P99 > 0 {
		fmt.Fprintf(stdout, "p99 ratio candor/floor: %.2f (goal ≤ 3)\n", float64(full.P99)/float64(floor.P99))
	}

	perViewer, err := realtime.BenchIdleMemory(ctx, *idle)
	if err != nil {
		return fmt.Errorf("idle memory: %w", err)
	}
	fmt.Fprintf(stdout, "memory per idle viewer: %.1f KB over %d viewers (goal ≤ 64 KB)\n", perViewer/1024, *idle)
	if full.Lost > 0 || full.Duplicates > 0 {
		return fmt.Errorf("bench realtime: %d deliveries lost, %d duplicated", full.Lost, full.Duplicates)
	}
	return nil
}

func printRealtimeResult(w io.Writer, name string, r realtimeResult) {
	fmt.Fprintf(w, "%-7s entries/s ingested %.0f · deliveries/s %.0f · latency p50 %v p99 %v · lost %d · duplicates %d",
		name, r.ingestRate(), r.deliveryRate(), r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Lost, r.Duplicates)
	if r.PostErrors > 0 {
		fmt.Fprintf(w, " · post errors %d (first: %s)", r.PostErrors, r.FirstPostErr)
	}
	fmt.Fprintln(w)
}

// benchEntry is the payload both runs carry: the send time travels inside the
// entry's text so a viewer can measure latency without clock sharing.
type benchEntry struct {
	Seq     int64  `json:"seq"`
	Speaker string `json:"speaker"`
	Text    string `json:"text"`
	StartMS int64  `json:"start_ms"`
	EndMS   int64  `json:"end_ms"`
}

func newBenchEntry(seq int64, sent time.Time) benchEntry {
	return benchEntry{
		Seq: seq, Speaker: "candidate",
		Text:    "I led the migration of our billing service to event sourcing; sent " + strconv.FormatInt(sent.UnixNano(), 10),
		StartMS: seq * 1000, EndMS: seq*1000 + 900,
	}
}

func sentTime(text string) (time.Time, bool) {
	i := bytes.LastIndexByte([]byte(text), ' ')
	n, err := strconv.ParseInt(text[i+1:], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// viewerTally counts what one viewer received, in order of arrival.
type viewerTally struct {
	interview int
	last      int64
	seen      int
	dups      int
	latencies []time.Duration
}

func (v *viewerTally) receive(seq int64, text string, now time.Time) {
	if seq <= v.last {
		v.dups++
		return
	}
	v.last = seq
	v.seen++
	if t, ok := sentTime(text); ok {
		v.latencies = append(v.latencies, now.Sub(t))
	}
}

// produce runs load: each interview posts one entry every 1/Rate seconds
// through post, with seqs 1, 2, …. It returns how many were sent and acked.
func produce(ctx context.Context, load realtimeLoad, post func(ctx context.Context, interview int, e benchEntry) error) (sent, acked int, errs int, firstErr string) {
	var nSent, nAcked, nErr atomic.Int64
	var errOnce sync.Once
	period := time.Duration(float64(time.Second) / load.Rate)
	deadline := time.Now().Add(load.Duration)
	var wg sync.WaitGroup
	for i := range load.Interviews {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the interviews over one period so posts don't come in bursts.
			start := time.Now().Add(time.Duration(i) * period / time.Duration(load.Interviews))
			for seq := int64(1); ; seq++ {
				at := start.Add(time.Duration(seq-1) * period)
				if at.After(deadline) || ctx.Err() != nil {
					return
				}
				time.Sleep(time.Until(at))
				nSent.Add(1)
				if err := post(ctx, i, newBenchEntry(seq, time.Now())); err != nil {
					nErr.Add(1)
					errOnce.Do(func() { firstErr = err.Error() })
					continue
				}
				nAcked.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(nSent.Load()), int(nAcked.Load()), int(nErr.Load()), firstErr
}

// collect waits until every viewer has seen want[interview] entries, or
// ctx ends, and sums up.
func collect(ctx context.Context, tallies []*viewerTally, mu *sync.Mutex, want []int, res *realtimeResult, started time.Time) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	lastProgress, lastTotal := time.Now(), -1
	for {
		mu.Lock()
		done, total := true, 0
		for _, v := range tallies {
			total += v.seen
			if v.seen < want[v.interview] {
				done = false
			}
		}
		mu.Unlock()
		if total != lastTotal {
			lastProgress, lastTotal = time.Now(), total
		}
		// Give up once nothing has arrived for two seconds: what is
		// missing then is lost.
		if done || ctx.Err() != nil || time.Since(lastProgress) > 2*time.Second {
			break
		}
		<-tick.C
	}
	res.Elapsed = time.Since(started)
	mu.Lock()
	defer mu.Unlock()
	var all []time.Duration
	for _, v := range tallies {
		res.Delivered += v.seen
		res.Duplicates += v.dups
		if miss := want[v.interview] - v.seen; miss > 0 {
			res.Lost += miss
		}
		all = append(all, v.latencies...)
	}
	res.P50, res.P99 = percentile(all, 0.50), percentile(all, 0.99)
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(float64(len(ds))*p))]
}

// runRealtimeCandor drives the real control plane: the bridge over HTTP with
// processor tokens from real starts, SQLite, the hub, and WebSocket viewers
// authenticated with an API key.
func runRealtimeCandor(ctx context.Context, load realtimeLoad, stderr io.Writer) (realtimeResult, error) {
	dir, err := os.MkdirTemp("", "candor-bench-")
	if err != nil {
		return realtimeResult{}, err
	}
	defer os.RemoveAll(dir)
	key := make([]byte, 32)
	rand.Read(key)
	db, err := store.Open(ctx, filepath.Join(dir, "candor.db"), store.Options{SecretKey: key})
	if err != nil {
		return realtimeResult{}, err
	}
	defer db.Close()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	hub := realtime.New(realtime.Options{}, log)
	defer hub.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return realtimeResult{}, err
	}
	base := "http://" + ln.Addr().String()
	machines := &benchMachines{}
	lc, err := lifecycle.New(lifecycle.Config{PublicURL: base, SecretKey: key, ReconcileInterval: -1}, db, hub, machines, log)
	if err != nil {
		return realtimeResult{}, err
	}
	defer lc.Close()
	srv, err := web.New(web.Config{PublicURL: base, DataDir: dir, SecretKey: key, Version: benchVersion}, db, hub, lc, log)
	if err != nil {
		return realtimeResult{}, err
	}
	httpSrv := &http.Server{Handler: srv.Handler(), BaseContext: func(net.Listener) context.Context { return ctx }}
	go httpSrv.Serve(ln)
	defer func() {
		httpSrv.Close()
		srv.Close()
	}()

	boot, err := web.Bootstrap(ctx, db, "Bench", "bench@candor.test", "bench-password")
	if err != nil {
		return realtimeResult{}, err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * load.Interviews, MaxConnsPerHost: 0}}
	api := func(method, path string, body any, out any) error {
		return benchCall(ctx, client, method, base+path, "Bearer "+boot.APIKey, body, out)
	}
	var pos, cand struct{ ID string }
	if err := api("POST", "/api/v1/positions", map[string]any{"title": "Backend engineer", "description": "bench", "questions": []string{"Tell me about a system you built."}, "rubric": []any{}}, &pos); err != nil {
		return realtimeResult{}, err
	}
	if err := api("POST", "/api/v1/candidates", map[string]any{"name": "Bench Candidate", "email": "candidate@candor.test"}, &cand); err != nil {
		return realtimeResult{}, err
	}
	ids := make([]string, load.Interviews)
	tokens := make([]string, load.Interviews)
	for i := range ids {
		var iv struct{ ID string }
		if err := api("POST", "/api/v1/interviews", map[string]any{"position_id": pos.ID, "candidate_id": cand.ID}, &iv); err != nil {
			return realtimeResult{}, err
		}
		if err := api("POST", "/api/v1/interviews/"+iv.ID+"/start", nil, nil); err != nil {
			return realtimeResult{}, err
		}
		ids[i], tokens[i] = iv.ID, machines.bridgeToken(iv.ID)
	}

	wsURL := "ws" + base[len("http"):] + "/api/v1/realtime"
	hdr := http.Header{"Authorization": {"Bearer " + boot.APIKey}}
	subscribe := func(i int) (*websocket.Conn, error) {
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, wsURL, hdr)
		if err != nil {
			return nil, err
		}
		topic := "interview:" + ids[i]
		if err := ws.WriteJSON(realtime.Message{Type: realtime.TypeSubscribe, Topic: topic}); err != nil {
			return nil, err
		}
		for {
			var m realtime.Message
			if err := ws.ReadJSON(&m); err != nil {
				return nil, err
			}
			if m.Type == realtime.TypeSubscribed {
				return ws, nil
			}
			if m.Type == realtime.TypeError {
				return nil, fmt.Errorf("subscribe %s: %s", topic, m.Error.Message)
			}
		}
	}
	// A processor keeps its connection to the bridge for the whole
	// interview: open one per interview before measuring, so the first
	// second does not time hundreds of TCP handshakes at once.
	var warm sync.WaitGroup
	warmErrs := make([]error, len(ids))
	for i := range ids {
		warm.Add(1)
		go func() {
			defer warm.Done()
			warmErrs[i] = benchCall(ctx, client, "GET", base+"/api/v1/bridge/interviews/"+ids[i]+"/state", "Bearer "+tokens[i], nil, nil)
		}()
	}
	warm.Wait()
	if err := errors.Join(warmErrs...); err != nil {
		return realtimeResult{}, err
	}
	urls := make([]string, len(ids))
	for i, id := range ids {
		urls[i] = base + "/api/v1/bridge/interviews/" + id + "/entries"
	}
	type entriesBody struct {
		Entries [1]benchEntry `json:"entries"`
	}
	post := func(ctx context.Context, i int, e benchEntry) error {
		return benchCall(ctx, client, "POST", urls[i], "Bearer "+tokens[i], entriesBody{[1]benchEntry{e}}, nil)
	}
	return runRealtimeLoad(ctx, load, subscribe, post)
}

// runRealtimeLoad connects the viewers, produces the load and tallies what
// arrives. Both the floor and the real run go through it, so they differ only
// in subscribe and post.
func runRealtimeLoad(ctx context.Context, load realtimeLoad, subscribe func(interview int) (*websocket.Conn, error), post func(ctx context.Context, interview int, e benchEntry) error) (realtimeResult, error) {
	var mu sync.Mutex
	var tallies []*viewerTally
	var conns []*websocket.Conn
	var readers sync.WaitGroup
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		readers.Wait()
	}()
	for i := range load.Interviews {
		for range load.Viewers {
			ws, err := subscribe(i)
			if err != nil {
				return realtimeResult{}, err
			}
			conns = append(conns, ws)
			v := &viewerTally{interview: i}
			tallies = append(tallies, v)
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					_, frame, err := ws.ReadMessage()
					if err != nil {
						return
					}
					now := time.Now()
					var m struct {
						Type string     `json:"type"`
						Data benchEntry `json:"data"`
					}
					if json.Unmarshal(frame, &m) != nil || m.Type != realtime.TypeTranscriptEntry {
						continue
					}
					mu.Lock()
					v.receive(m.Data.Seq, m.Data.Text, now)
					mu.Unlock()
				}
			}()
		}
	}
	acks := make([]atomic.Int64, load.Interviews)
	started := time.Now()
	var res realtimeResult
	res.Sent, res.Acked, res.PostErrors, res.FirstPostErr = produce(ctx, load, func(ctx context.Context, i int, e benchEntry) error {
		if err := post(ctx, i, e); err != nil {
			return err
		}
		acks[i].Add(1)
		return nil
	})
	want := make([]int, load.Interviews)
	for i := range want {
		want[i] = int(acks[i].Load())
	}
	collect(ctx, tallies, &mu, want, &res, started)
	return res, nil
}

// runRealtimeFloor is the same load over bare gorilla/websocket: a post hands
// the frame straight to the interview's viewers' writer goroutines. No HTTP,
// auth, SQLite or hub.
func runRealtimeFloor(ctx context.Context, load realtimeLoad) (realtimeResult, error) {
	type viewer struct{ out chan []byte }
	var mu sync.Mutex
	byInterview := make([][]*viewer, load.Interviews)
	var writers sync.WaitGroup
	upgrader := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.URL.Query().Get("i"))
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		v := &viewer{out: make(chan []byte, 256)}
		mu.Lock()
		byInterview[i] = append(byInterview[i], v)
		mu.Unlock()
		writers.Add(1)
		go func() {
			defer writers.Done()
			defer ws.Close()
			for frame := range v.out {
				if ws.WriteMessage(websocket.TextMessage, frame) != nil {
					return
				}
			}
		}()
		ws.WriteJSON(realtime.Message{Type: realtime.TypeSubscribed})
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return realtimeResult{}, err
	}
	go srv.Serve(ln)
	defer func() {
		srv.Close()
		mu.Lock()
		for _, vs := range byInterview {
			for _, v := range vs {
				close(v.out)
			}
		}
		mu.Unlock()
		writers.Wait()
	}()
	url := "ws://" + ln.Addr().String() + "/?i="
	subscribe := func(i int) (*websocket.Conn, error) {
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, url+strconv.Itoa(i), nil)
		if err != nil {
			return nil, err
		}
		var m realtime.Message
		return ws, ws.ReadJSON(&m)
	}
	post := func(_ context.Context, i int, e benchEntry) error {
		data, _ := json.Marshal(e)
		frame, _ := json.Marshal(realtime.Message{Type: realtime.TypeTranscriptEntry, Topic: "interview:" + strconv.Itoa(i), Data: data})
		mu.Lock()
		vs := byInterview[i]
		mu.Unlock()
		for _, v := range vs {
			v.out <- frame
		}
		return nil
	}
	return runRealtimeLoad(ctx, load, subscribe, post)
}

func benchCall(ctx context.Context, client *http.Client, method, url, auth string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", auth)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// benchMachines launches nothing: the benchmark plays the processor itself,
// so a launch only records the bridge token the processor would get (the
// start answer's token is the interview's client token, not a bridge
// credential).
type benchMachines struct {
	mu     sync.Mutex
	bridge map[string]string // interview id → CANDOR_PROCESSOR_TOKEN
}

func (b *benchMachines) Launch(_ context.Context, s fly.Spec) (fly.Machine, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bridge == nil {
		b.bridge = make(map[string]string)
	}
	b.bridge[s.InterviewID] = s.Env[contract.EnvProcessorToken]
	return fly.Machine{ID: "bench-" + s.InterviewID, Provider: fly.ProviderLocal, State: "running", URL: "http://127.0.0.1:9"}, nil
}

// bridgeToken is the bridge credential of interview id's current machine.
func (b *benchMachines) bridgeToken(id string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bridge[id]
}
func (*benchMachines) Destroy(context.Context, fly.Machine) error  { return nil }
func (*benchMachines) List(context.Context) ([]fly.Machine, error) { return nil, nil }
func (*benchMachines) Close() error                                { return nil }
