//go:build flyfake

package bench

// The Fly case of `candor bench machines` drives the control plane against
// fly/flyfake. The fake is test code: only a binary built with
// -tags flyfake links it (go run -tags flyfake . bench machines).

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	flyapi "github.com/superfly/fly-go"

	"candor/fly"
	"candor/fly/flyfake"
)

// standInRunner plays the processor a Fly machine would run: /healthz and
// POST /end answer at once, so the control plane's whole start and end go
// through the fake (API and edge proxy) without a processor's own cost.
type standInRunner struct {
	mu      sync.Mutex
	servers map[string]*http.Server
	wg      sync.WaitGroup
}

func (r *standInRunner) Run(ctx context.Context, app string, m flyapi.Machine, env map[string]string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"status":"ok"}`) })
	mux.HandleFunc("POST /end", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"entries":0}`) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	r.wg.Go(func() { _ = srv.Serve(ln) })
	r.mu.Lock()
	r.servers[m.ID] = srv
	r.mu.Unlock()
	return "http://" + ln.Addr().String(), nil
}

func (r *standInRunner) Stop(app, id string) {
	r.mu.Lock()
	srv := r.servers[id]
	delete(r.servers, id)
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (r *standInRunner) close() {
	r.mu.Lock()
	for id, srv := range r.servers {
		_ = srv.Close()
		delete(r.servers, id)
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func benchFly(ctx context.Context, dir string, n int, stdout io.Writer, log *slog.Logger) error {
	fake := flyfake.New("bench-token")
	runner := &standInRunner{servers: map[string]*http.Server{}}
	fake.SetRunner(runner)
	timed := &timedHandler{h: fake}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	api := &http.Server{Handler: timed, ReadHeaderTimeout: 10 * time.Second}
	apiDone := make(chan struct{})
	go func() {
		defer close(apiDone)
		_ = api.Serve(ln)
	}()
	apiURL := "http://" + ln.Addr().String()
	defer func() {
		_ = api.Close()
		<-apiDone
		fake.Close()
		runner.close()
	}()
	p, m, err := newBenchPlane(ctx, dir, func(string) (fly.Machines, error) {
		return fly.NewFly(fly.FlyConfig{
			APIBaseURL: apiURL, Token: "bench-token", Org: "bench", Image: "registry.fly.io/candor:bench",
			ProxyBaseURL: flyfake.ProxyURL(apiURL), RetryBase: 10 * time.Millisecond, InstallID: "bench",
		}, log)
	}, log)
	if err != nil {
		return err
	}
	defer p.close(m)

	type op struct {
		wall, fake       time.Duration
		apiCalls, proxed int
		calls            []flyfake.Call
	}
	measure := func(f func() error) (op, error) {
		fake.ResetCalls()
		timed.take()
		t0 := time.Now()
		err := f()
		o := op{wall: time.Since(t0), fake: timed.take(), calls: fake.Calls()}
		for _, c := range o.calls {
			if strings.HasPrefix(c.Path, "/v1/") {
				o.apiCalls++
			} else {
				o.proxed++
			}
		}
		return o, err
	}
	var starts, ends []op
	for i := range n + 1 {
		id, err := p.newInterview(ctx, i)
		if err != nil {
			return err
		}
		s, err := measure(func() error { return p.api(ctx, "POST", "/api/v1/interviews/"+id+"/start", nil, nil) })
		if err != nil {
			return err
		}
		e, err := measure(func() error { return p.api(ctx, "POST", "/api/v1/interviews/"+id+"/end", nil, nil) })
		if err != nil {
			return err
		}
		starts, ends = append(starts, s), append(ends, e)
	}

	fmt.Fprintf(stdout, "\nfly backend against flyfake (start delay 0, via the control plane's HTTP API; %d interviews after the tenant's first)\n", n)
	fmt.Fprintf(stdout, "  first start of a tenant: %d Machines API calls + %d through the edge proxy (app, network, IPs, secrets, machine)\n", starts[0].apiCalls, starts[0].proxed)
	summarize := func(label string, ops []op) {
		var added []time.Duration
		api, prox := 0, 0
		for _, o := range ops {
			added = append(added, o.wall-o.fake)
			api += o.apiCalls
			prox += o.proxed
		}
		fmt.Fprintf(stdout, "  %s: %.1f Machines API calls + %.1f proxied calls each\n", label, float64(api)/float64(len(ops)), float64(prox)/float64(len(ops)))
		printQuantiles(stdout, "    added over the fake's own time", added)
	}
	summarize("start", starts[1:])
	summarize("end  ", ends[1:])

	fmt.Fprintln(stdout, "\none Fly start/end against the fake, every call (the tenant's first interview):")
	for _, c := range starts[0].calls {
		fmt.Fprintf(stdout, "  start  %s\n", c)
	}
	for _, c := range ends[0].calls {
		fmt.Fprintf(stdout, "  end    %s\n", c)
	}
	fmt.Fprintln(stdout, "and a later start/end of the same tenant:")
	for _, c := range starts[1].calls {
		fmt.Fprintf(stdout, "  start  %s\n", c)
	}
	for _, c := range ends[1].calls {
		fmt.Fprintf(stdout, "  end    %s\n", c)
	}
	return nil
}
