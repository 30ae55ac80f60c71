// Package bench holds the `candor bench realtime|machines` commands:
// performance figures of the control plane measured on this machine. It
// drives the whole control plane as main does (web, store, fly), which is
// why it sits beside main rather than inside one of its packages.
package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"slices"
	"sync"
	"time"

	"candor/fly"
	"candor/processor"
	"candor/processor/contract"
	"candor/processor/stt"
	"candor/realtime"
	"candor/store"
	"candor/web"
	"candor/web/lifecycle"
)

// Machines serves `candor bench machines`: start → processor ready
// for the local backend (cold and from the warm pool, through the HTTP
// start API and directly on Machines.Launch), and for the Fly backend
// against flyfake the API calls per start and end and the latency the
// control plane adds over the fake's own, with the log of one start/end.
func Machines(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench machines", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 20, "starts measured per case")
	skipLocal := fs.Bool("skip-local", false, "measure only the Fly backend against the fake")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > 500 {
		return errors.New("-n must be between 1 and 500")
	}
	dir, err := os.MkdirTemp("", "candor-bench-machines-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	if !*skipLocal {
		fmt.Fprintf(stdout, "local backend: start → processor ready, %d starts per case (this machine: %d CPUs shared)\n", *n, runtime.NumCPU())
		for _, warm := range []int{0, 1} {
			if err := benchLocal(ctx, filepath.Join(dir, fmt.Sprintf("local-%d", warm)), warm, *n, env, stdout, log); err != nil {
				return err
			}
		}
	}
	if err := benchFly(ctx, filepath.Join(dir, "fly"), *n, stdout, log); err != nil {
		return err
	}
	printCostModel(stdout)
	return nil
}

// printCostModel answers the sizing question for Fly: 1,000 hour-long
// interviews a month, one tenant app, per transport (fly.CostModel; the
// bytes per interview-hour are measured by the fly-mode browser tests).
func printCostModel(w io.Writer) {
	fmt.Fprintln(w, "\nFly cost of 1,000 hour-long interviews a month (one tenant app; list prices: $0.0079/machine-hour, $2/month dedicated IPv4, $0.02/GB egress):")
	for _, tr := range []struct {
		t   fly.Transport
		udp bool
	}{{fly.TransportUDP, true}, {fly.TransportTURN, false}, {fly.TransportWebSocket, false}} {
		m := fly.DefaultCostModel(0.0079, tr.udp)
		m.Transport = tr.t
		c := m.Month(1000, 1, 1)
		fmt.Fprintf(w, "  %-12s machine $%.2f + IPv4 $%.2f + egress %.0f GB $%.2f = $%.2f / month (%.0f MB per interview-hour)\n",
			tr.t, c.Machine, c.IPv4, c.EgressGB, c.Egress, c.Total, fly.BytesPerInterviewHour[tr.t]/1e6)
	}
}

// benchPlane is an in-process control plane on a loopback port, wired as
// serveControl wires it, with a tenant and a position/candidate to
// interview.
type benchPlane struct {
	db       *store.DB
	hub      *realtime.Hub
	srv      *web.Server
	lc       *lifecycle.Service
	http     *http.Server
	served   chan error
	url, key string
	tenantID string
	position string
	client   *http.Client
}

func newBenchPlane(ctx context.Context, dir string, machines func(publicURL string) (fly.Machines, error), log *slog.Logger) (*benchPlane, fly.Machines, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	key, err := store.LoadSecretKey(dir, "")
	if err != nil {
		return nil, nil, err
	}
	db, err := store.Open(ctx, filepath.Join(dir, "candor.db"), store.Options{SecretKey: key})
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	url := "http://" + ln.Addr().String()
	m, err := machines(url)
	if err != nil {
		ln.Close()
		db.Close()
		return nil, nil, err
	}
	p := &benchPlane{db: db, hub: realtime.New(realtime.Options{}, log), url: url, served: make(chan error, 1),
		client: &http.Client{Transport: &http.Transport{Proxy: nil}}}
	p.lc, err = lifecycle.New(lifecycle.Config{
		PublicURL: url, SecretKey: key, DefaultRegion: "iad", ReconcileInterval: -1,
		ProcessorEnv: map[string]string{contract.EnvSTT: stt.DefaultEngine, contract.EnvInterviewer: processor.DefaultInterviewer},
	}, db, p.hub, m, log)
	if err == nil {
		p.srv, err = web.New(web.Config{
			Addr: ln.Addr().String(), PublicURL: url, DataDir: dir, Version: benchVersion, DefaultRegion: "iad", SecretKey: key,
		}, db, p.hub, p.lc, log)
	}
	if err != nil {
		m.Close()
		ln.Close()
		db.Close()
		return nil, nil, err
	}
	p.http = &http.Server{Handler: p.srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { p.served <- p.http.Serve(ln) }()

	boot, err := web.Bootstrap(ctx, db, "Bench", "bench@example.com", "bench password 123")
	if err != nil {
		p.close(m)
		return nil, nil, err
	}
	p.key, p.tenantID = boot.APIKey, boot.TenantID
	var pos struct{ ID string }
	if err := p.api(ctx, "POST", "/api/v1/positions", map[string]any{"title": "Engineer", "questions": []string{"Tell me about a project you are proud of."}}, &pos); err != nil {
		p.close(m)
		return nil, nil, err
	}
	p.position = pos.ID
	return p, m, nil
}

// close shuts HTTP down first, then the server, the machines, the hub and
// the database (as serveControl does).
func (p *benchPlane) close(m fly.Machines) {
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = p.http.Shutdown(sctx)
	<-p.served
	p.srv.Close()
	p.lc.Close()
	m.Close()
	p.hub.Close()
	p.db.Close()
}

func (p *benchPlane) api(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.url+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// newInterview schedules an interview of a fresh candidate.
func (p *benchPlane) newInterview(ctx context.Context, i int) (string, error) {
	var c, iv struct{ ID string }
	if err := p.api(ctx, "POST", "/api/v1/candidates", map[string]any{"name": fmt.Sprintf("Candidate %d", i), "email": fmt.Sprintf("c%d-%s@example.com", i, store.NewID(""))}, &c); err != nil {
		return "", err
	}
	err := p.api(ctx, "POST", "/api/v1/interviews", map[string]any{"position_id": p.position, "candidate_id": c.ID}, &iv)
	return iv.ID, err
}

func benchLocal(ctx context.Context, dir string, warm, n int, env map[string]string, stdout io.Writer, log *slog.Logger) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	base := map[string]string{contract.EnvSTT: stt.DefaultEngine, contract.EnvInterviewer: processor.DefaultInterviewer, contract.EnvLogLevel: "warn"}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG"} {
		if v, ok := env[k]; ok {
			base[k] = v
		}
	}
	var local *fly.Local
	p, m, err := newBenchPlane(ctx, dir, func(string) (fly.Machines, error) {
		local, err = fly.NewLocal(fly.LocalConfig{Executable: exe, Args: []string{"--role=processor"}, DataDir: dir, BaseEnv: base, WarmPool: warm}, log)
		return local, err
	}, log)
	if err != nil {
		return err
	}
	defer p.close(m)
	waitPool := func() error {
		if warm == 0 {
			return nil
		}
		for start := time.Now(); local.Idle() < warm; time.Sleep(5 * time.Millisecond) {
			if time.Since(start) > 30*time.Second {
				return errors.New("the warm pool did not refill within 30 s")
			}
		}
		return nil
	}
	label := "cold (warm pool 0)"
	if warm > 0 {
		label = fmt.Sprintf("warm pool (%d idle)", warm)
	}

	var viaAPI []time.Duration
	for i := range n {
		id, err := p.newInterview(ctx, i)
		if err != nil {
			return err
		}
		if err := waitPool(); err != nil {
			return err
		}
		t0 := time.Now()
		if err := p.api(ctx, "POST", "/api/v1/interviews/"+id+"/start", nil, nil); err != nil {
			return err
		}
		viaAPI = append(viaAPI, time.Since(t0))
		if err := p.api(ctx, "POST", "/api/v1/interviews/"+id+"/end", nil, nil); err != nil {
			return err
		}
	}
	printQuantiles(stdout, "  "+label+", POST …/start (HTTP API)", viaAPI)

	// Directly on Launch, as web's launch calls it: a running interview
	// with a processor token the bridge accepts, so a claimed processor
	// can read its resume state.
	var direct []time.Duration
	for i := range n {
		id, err := p.newInterview(ctx, n+i)
		if err != nil {
			return err
		}
		if _, err := p.db.SetInterviewStatus(ctx, p.tenantID, id, store.StatusRunning); err != nil {
			return err
		}
		token := store.NewID("tok_")
		sum := sha256.Sum256([]byte(token))
		if err := p.db.SetProcessorTokenHash(ctx, p.tenantID, id, hex.EncodeToString(sum[:])); err != nil {
			return err
		}
		if err := waitPool(); err != nil {
			return err
		}
		spec := fly.Spec{InterviewID: id, TenantID: p.tenantID, TenantSlug: "bench", Env: map[string]string{
			contract.EnvControlURL: p.url, contract.EnvProcessorToken: token,
			contract.EnvSTT: stt.DefaultEngine, contract.EnvInterviewer: processor.DefaultInterviewer,
		}}
		t0 := time.Now()
		fm, err := local.Launch(ctx, spec)
		if err != nil {
			return err
		}
		direct = append(direct, time.Since(t0))
		if err := local.Destroy(ctx, fm); err != nil {
			return err
		}
		if _, err := p.db.SetInterviewStatus(ctx, p.tenantID, id, store.StatusCompleted); err != nil {
			return err
		}
	}
	printQuantiles(stdout, "  "+label+", Machines.Launch        ", direct)
	return nil
}

func printQuantiles(w io.Writer, label string, ds []time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	fmt.Fprintf(w, "%s  p50 %7.2f ms  p95 %7.2f ms  max %7.2f ms  (n=%d)\n", label, ms(q(0.50)), ms(q(0.95)), ms(s[len(s)-1]), len(s))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// timedHandler sums the time the fake spends answering, so what the control
// plane adds on top of it can be told apart.
type timedHandler struct {
	h     http.Handler
	mu    sync.Mutex
	spent time.Duration
}

func (t *timedHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t0 := time.Now()
	t.h.ServeHTTP(w, r)
	t.mu.Lock()
	t.spent += time.Since(t0)
	t.mu.Unlock()
}

func (t *timedHandler) take() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.spent
	t.spent = 0
	return d
}

// benchVersion is the version the benchmarked control planes report.
const benchVersion = "bench"
