package flyfake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	fly "github.com/superfly/fly-go"
)

// The fake's edge stands in for Fly Proxy and fly-global-services:
//
//   - HTTP reaches an app only if the app has a public address (a shared
//     IPv4, an IPv6 or a dedicated IPv4: without one {app}.fly.dev does not
//     resolve), and only machines that are started and publish a tcp service
//     with the http handler
//     (https://fly.io/docs/reference/services/, https://fly.io/docs/networking/services/).
//   - A response carrying fly-replay is replayed by the edge to the named
//     app (same organization) and instance, with the original method, path,
//     headers and body; bodies over 1 MB cannot be replayed
//     (https://fly.io/docs/networking/dynamic-request-routing/).
//   - UDP reaches an app only through its dedicated IPv4 (shared IPv4 and
//     IPv6 carry no UDP), only on a port some started machine publishes in a
//     udp service, and is delivered to that machine's fly-global-services
//     address on the same port, with the source address rewritten and the
//     port kept (https://fly.io/docs/networking/udp-and-tcp/).
//
// Every byte the edge carries is counted by where it went (Traffic).

// MaxReplayBody is the largest request body Fly Proxy replays.
const MaxReplayBody = 1 << 20

// Traffic is what the edge carried, in bytes, both directions together.
type Traffic struct {
	Backends int64 // to and from apps outside the fake (Edge), e.g. a control plane
	Machines int64 // HTTP and WebSocket to and from machines
	UDP      int64 // UDP relayed between clients and machines
	// MachinePaths splits Machines by the path the machine served, its
	// /p/{id} prefix dropped ("/ws/audio", "/events", "/whip", …).
	MachinePaths map[string]int64
}

type edgeState struct {
	backends, machines, udp atomic.Int64
	toMachines              *http.Transport

	pathMu sync.Mutex
	paths  map[string]*atomic.Int64

	mu        sync.Mutex
	listeners map[string]*udpListener // by "ip:port"
	wg        sync.WaitGroup
	closed    bool
}

func (e *edgeState) init() {
	e.paths = make(map[string]*atomic.Int64)
	e.listeners = make(map[string]*udpListener)
	e.toMachines = countingTransport(&e.machines)
}

func (e *edgeState) close() {
	e.mu.Lock()
	e.closed = true
	ls := e.listeners
	e.listeners = map[string]*udpListener{}
	e.mu.Unlock()
	for _, l := range ls {
		l.close()
	}
	e.wg.Wait()
	e.toMachines.CloseIdleConnections()
}

// Traffic reports the bytes the edge has carried so far.
func (s *Server) Traffic() Traffic {
	t := Traffic{Backends: s.edge.backends.Load(), Machines: s.edge.machines.Load(), UDP: s.edge.udp.Load(), MachinePaths: map[string]int64{}}
	s.edge.pathMu.Lock()
	for p, n := range s.edge.paths {
		t.MachinePaths[p] = n.Load()
	}
	s.edge.pathMu.Unlock()
	return t
}

// pathCounter is the byte counter of requests to a machine path.
func (e *edgeState) pathCounter(path string) *atomic.Int64 {
	if rest, ok := strings.CutPrefix(path, "/p/"); ok {
		if _, sub, ok := strings.Cut(rest, "/"); ok {
			path = "/" + sub
		}
	}
	if strings.HasPrefix(path, "/whip/") {
		path = "/whip"
	}
	e.pathMu.Lock()
	defer e.pathMu.Unlock()
	n := e.paths[path]
	if n == nil {
		n = &atomic.Int64{}
		e.paths[path] = n
	}
	return n
}

// GlobalServicesIP is the address "fly-global-services" names on machine
// id: where it must bind its UDP sockets to receive the app's UDP.
func (s *Server) GlobalServicesIP(appName, id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.apps[appName]; ok {
		if m, ok := a.machines[id]; ok {
			return m.globalIP
		}
	}
	return ""
}

// loopbackIP picks an address in 127.0.0.0/8 other than 127.0.0.1, so
// each dedicated IPv4 and each machine's fly-global-services has its own.
func loopbackIP() string {
	return fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(254), rand.IntN(256), 1+rand.IntN(254))
}

func countingTransport(n *atomic.Int64) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	dial := (&net.Dialer{}).DialContext
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, n: n}, nil
	}
	return t
}

// countingTransport2 counts into two counters.
func countingTransport2(n, m *atomic.Int64) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	dial := (&net.Dialer{}).DialContext
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, n: n, m: m}, nil
	}
	return t
}

type countingConn struct {
	net.Conn
	n, m *atomic.Int64 // m may be nil
}

func (c *countingConn) add(k int) {
	c.n.Add(int64(k))
	if c.m != nil {
		c.m.Add(int64(k))
	}
}

func (c *countingConn) Read(p []byte) (int, error) {
	k, err := c.Conn.Read(p)
	c.add(k)
	return k, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	k, err := c.Conn.Write(p)
	c.add(k)
	return k, err
}

// hasPublicIP reports whether {app}.fly.dev resolves. Callers hold s.mu.
func (a *app) hasPublicIP() bool {
	for _, ip := range a.ips {
		if !strings.HasPrefix(ip.IP, "fdaa:") {
			return true
		}
	}
	return false
}

// dedicatedIPv4 is the app's dedicated IPv4, or "". Callers hold s.mu.
func (a *app) dedicatedIPv4() string {
	for _, ip := range a.ips {
		if !ip.Shared && net.ParseIP(ip.IP).To4() != nil {
			return ip.IP
		}
	}
	return ""
}

// publishesHTTP reports whether m has a tcp service with the http handler.
func (m *machine) publishesHTTP() bool {
	for _, svc := range m.Config.Services {
		if svc.Protocol != "tcp" {
			continue
		}
		for _, p := range svc.Ports {
			for _, h := range p.Handlers {
				if h == "http" {
					return true
				}
			}
		}
	}
	return false
}

// udpPorts are the UDP ports m publishes.
func (m *machine) udpPorts() []int {
	var out []int
	for _, svc := range m.Config.Services {
		if svc.Protocol == "udp" {
			out = append(out, svc.InternalPort)
		}
	}
	return out
}

// routeError is why the edge cannot deliver a request; it answers as Fly
// Proxy does when it has nowhere to send one.
type routeError struct {
	status int
	msg    string
}

func (e *routeError) Error() string { return e.msg }

// route finds the machine of appName a request goes to: instance if given,
// else any started machine that publishes http. With a Runner it returns
// that machine's process (once it is up); without one, a nil run and the
// machine (the caller answers /healthz itself).
func (s *Server) route(ctx context.Context, appName, instance string) (*run, error) {
	s.mu.Lock()
	a, ok := s.apps[appName]
	if !ok {
		s.mu.Unlock()
		return nil, &routeError{http.StatusBadGateway, "no such app: " + appName + ".fly.dev does not resolve"}
	}
	if !a.hasPublicIP() {
		s.mu.Unlock()
		return nil, &routeError{http.StatusBadGateway, "app " + appName + " has no public IP: " + appName + ".fly.dev does not resolve"}
	}
	var target *machine
	for _, id := range a.order {
		m := a.machines[id]
		m.advance()
		if instance != "" && id != instance {
			continue
		}
		if m.State == fly.MachineStateStarted && m.publishesHTTP() {
			target = m
			break
		}
		if instance != "" {
			s.mu.Unlock()
			if !m.publishesHTTP() {
				return nil, &routeError{http.StatusServiceUnavailable, "instance " + id + " publishes no http service"}
			}
			return nil, &routeError{http.StatusServiceUnavailable, "instance " + id + " is " + m.State}
		}
	}
	if target == nil {
		s.mu.Unlock()
		if instance != "" {
			return nil, &routeError{http.StatusServiceUnavailable, "no such instance " + instance}
		}
		return nil, &routeError{http.StatusServiceUnavailable, "no started instance publishes an http service in " + appName}
	}
	rn := s.runs[target.ID]
	s.mu.Unlock()
	if rn == nil {
		return nil, nil
	}
	select {
	case <-rn.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if rn.err != nil {
		return nil, &routeError{http.StatusServiceUnavailable, "instance failed to start: " + rn.err.Error()}
	}
	return rn, nil
}

// proxy is https://{app}.fly.dev/{rest}: /_proxy/{app}/{rest...}, routed to
// the machine fly-force-instance-id names (or any that publishes http).
// Without a Runner only /healthz answers (200).
func (s *Server) proxy(w http.ResponseWriter, r *http.Request) {
	rest := "/" + r.PathValue("rest")
	rn, err := s.route(r.Context(), r.PathValue("app"), r.Header.Get("fly-force-instance-id"))
	if err != nil {
		writeRouteError(w, err)
		return
	}
	if rn == nil {
		if rest == "/healthz" {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			return
		}
		http.NotFound(w, r)
		return
	}
	s.forward(w, r, rn.url, rest)
}

func writeRouteError(w http.ResponseWriter, err error) {
	var re *routeError
	if errors.As(err, &re) {
		http.Error(w, re.msg, re.status)
		return
	}
	http.Error(w, err.Error(), http.StatusBadGateway)
}

// forward sends r to a machine's process at base, with path.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, base *url.URL, path string) {
	// A transport of its own per request, so its bytes are counted by path
	// (a fake can afford no connection reuse).
	tr := countingTransport2(&s.edge.machines, s.edge.pathCounter(path))
	defer tr.CloseIdleConnections()
	rp := &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = base.Scheme, base.Host
			pr.Out.URL.Path, pr.Out.URL.RawPath = path, ""
			pr.Out.Host = base.Host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() == nil {
				http.Error(w, "instance did not answer: "+err.Error(), http.StatusBadGateway)
			}
		},
	}
	rp.ServeHTTP(w, r)
}

// Edge is Fly Proxy in front of an app that runs outside the fake (a
// control plane, say): it forwards every request to backend and, when the
// answer carries fly-replay, replays the request to the app and instance it
// names. org is the app's organization: replays only reach apps in it.
func (s *Server) Edge(org, backend string) (http.Handler, error) {
	u, err := url.Parse(backend)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("flyfake: edge backend %q is not a URL", backend)
	}
	return &edgeHandler{s: s, org: org, backend: u, transport: countingTransport(&s.edge.backends)}, nil
}

type edgeHandler struct {
	s         *Server
	org       string
	backend   *url.URL
	transport *http.Transport
}

// replayAnswer is a backend answer that asked for a replay.
type replayAnswer struct{ header string }

func (replayAnswer) Error() string { return "fly-replay" }

func (h *edgeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The edge holds the body so it can replay it.
	var held []byte
	tooBig := false
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, MaxReplayBody+1))
		if err != nil {
			http.Error(w, "reading request: "+err.Error(), http.StatusBadRequest)
			return
		}
		held = b
		if len(b) > MaxReplayBody {
			tooBig = true
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
		} else {
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
	}
	rp := &httputil.ReverseProxy{
		Transport: h.transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(h.backend)
			pr.Out.Host = r.Host
			pr.SetXForwarded()
		},
		ModifyResponse: func(resp *http.Response) error {
			if v := resp.Header.Get("fly-replay"); v != "" {
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				return replayAnswer{header: v}
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			var ra replayAnswer
			if !errors.As(err, &ra) {
				if req.Context().Err() == nil {
					http.Error(w, "app did not answer: "+err.Error(), http.StatusBadGateway)
				}
				return
			}
			if tooBig {
				http.Error(w, "fly-replay: request body larger than 1MB cannot be replayed", http.StatusBadGateway)
				return
			}
			h.replay(w, r, ra.header, held)
		},
	}
	rp.ServeHTTP(w, r)
}

// replay delivers r again, as fly-replay asks.
func (h *edgeHandler) replay(w http.ResponseWriter, r *http.Request, header string, body []byte) {
	f := parseReplay(header)
	appName := f["app"]
	if appName == "" {
		http.Error(w, "fly-replay without app: replays within one app are not supported by this fake", http.StatusBadGateway)
		return
	}
	h.s.mu.Lock()
	a, ok := h.s.apps[appName]
	sameOrg := ok && a.Organization.Slug == h.org
	h.s.mu.Unlock()
	if !sameOrg {
		http.Error(w, "fly-replay: app "+appName+" is not in organization "+h.org, http.StatusBadGateway)
		return
	}
	instance := f["instance"]
	if instance == "" {
		instance = f["prefer_instance"]
	}
	rn, err := h.s.route(r.Context(), appName, instance)
	if err != nil {
		writeRouteError(w, err)
		return
	}
	if rn == nil {
		http.Error(w, "fly-replay: the instance runs no process (no Runner)", http.StatusServiceUnavailable)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	src := "instance=edge"
	if st := f["state"]; st != "" {
		src += ";state=" + st
	}
	r.Header.Set("fly-replay-src", src)
	h.s.forward(w, r, rn.url, r.URL.Path)
}

// parseReplay reads "k=v;k2=\"v2\"" into a map.
func parseReplay(v string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		out[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(strings.TrimSpace(val), `"`)
	}
	return out
}

// udpListener is the edge's UDP socket on an app's dedicated IPv4 and one
// published port.
type udpListener struct {
	s       *Server
	app     string
	port    int
	conn    *net.UDPConn
	mu      sync.Mutex
	clients map[string]*net.UDPConn // client address → socket towards the machine
}

// listenUDPLocked makes sure the edge listens on the app's dedicated IPv4
// for every UDP port m publishes. Callers hold s.mu.
func (s *Server) listenUDPLocked(a *app, m *machine) {
	ip := a.dedicatedIPv4()
	if ip == "" {
		return
	}
	for _, port := range m.udpPorts() {
		key := net.JoinHostPort(ip, strconv.Itoa(port))
		s.edge.mu.Lock()
		if s.edge.closed || s.edge.listeners[key] != nil {
			s.edge.mu.Unlock()
			continue
		}
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip), Port: port})
		if err != nil {
			s.edge.mu.Unlock()
			continue // the port is taken on this host; packets to it go nowhere
		}
		l := &udpListener{s: s, app: a.Name, port: port, conn: conn, clients: map[string]*net.UDPConn{}}
		s.edge.listeners[key] = l
		s.edge.wg.Go(l.serve)
		s.edge.mu.Unlock()
	}
}

// target is the fly-global-services address of the started machine that
// publishes l's port, or nil.
func (l *udpListener) target() *net.UDPAddr {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	a, ok := l.s.apps[l.app]
	if !ok {
		return nil
	}
	for _, id := range a.order {
		m := a.machines[id]
		m.advance()
		if m.State == fly.MachineStateStarted && slices.Contains(m.udpPorts(), l.port) {
			return &net.UDPAddr{IP: net.ParseIP(m.globalIP), Port: l.port}
		}
	}
	return nil
}

func (l *udpListener) serve() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := l.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		l.s.edge.udp.Add(int64(n))
		key := from.String()
		l.mu.Lock()
		up := l.clients[key]
		l.mu.Unlock()
		if up == nil {
			to := l.target()
			if to == nil {
				continue // no machine publishes this port: dropped
			}
			c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, to)
			if err != nil {
				continue
			}
			up = c
			l.mu.Lock()
			l.clients[key] = c
			l.mu.Unlock()
			client := *from
			l.s.edge.wg.Go(func() { l.back(c, &client) })
		}
		_, _ = up.Write(buf[:n])
	}
}

// back relays a machine's answers to one client, from the dedicated IPv4
// and the same port the client sent to.
func (l *udpListener) back(up *net.UDPConn, client *net.UDPAddr) {
	buf := make([]byte, 64<<10)
	for {
		n, err := up.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		l.s.edge.udp.Add(int64(n))
		_, _ = l.conn.WriteToUDP(buf[:n], client)
	}
}

func (l *udpListener) close() {
	l.conn.Close()
	l.mu.Lock()
	for _, c := range l.clients {
		c.Close()
	}
	l.mu.Unlock()
}
