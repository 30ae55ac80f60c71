package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/turn/v5"

	"candor/fly"
	"candor/fly/flyfake"
)

// flyStackOptions shape the fly-mode stack.
type flyStackOptions struct {
	// TURN runs a TURN server (REST credentials from a shared secret) and
	// no direct UDP: media goes candidate → TURN → machine.
	TURN bool
}

// TestInterviewEndToEndOnFly runs the browser interview with
// --provisioner=fly against flyfake: the control plane sits behind the
// fake's edge (as on Fly, FLY_APP_NAME set), the stable /p/{id} route
// answers fly-replay, the edge carries the candidate's HTTP and WebSocket
// bytes to the machine, and WebRTC goes over UDP to the app's dedicated
// IPv4 and the machine's published port. The edge counts where bytes went:
// the control plane must carry almost none of the candidate's media.
func TestInterviewEndToEndOnFly(t *testing.T) {
	res := runInterview(t, interviewOptions{
		Clips:     []string{"0880", "0890"},
		Transport: "webrtc",
		Fly:       &flyStackOptions{},
	})
	t.Logf("fly webrtc: %d candidate entries, word recall %.2f", len(res.Candidate), res.Recall)
}

// TestInterviewEndToEndOnFlyOverTheWebSocket gives ICE 1 ms: the page
// falls back to /ws/audio, WebM/Opus from MediaRecorder, replayed by the
// edge to the machine.
func TestInterviewEndToEndOnFlyOverTheWebSocket(t *testing.T) {
	res := runInterview(t, interviewOptions{
		Clips:     []string{"0880", "0890"},
		Transport: "websocket",
		Query:     "ice_ms=1",
		Fly:       &flyStackOptions{},
	})
	t.Logf("fly websocket: %d candidate entries, word recall %.2f", len(res.Candidate), res.Recall)
}

// TestInterviewEndToEndOnFlyOverTURN is the same interview with the page
// on TURN only (relay=1): the join answer's time-limited TURN credentials
// work in Chromium, and the media goes through the TURN server, not the
// control plane.
func TestInterviewEndToEndOnFlyOverTURN(t *testing.T) {
	res := runInterview(t, interviewOptions{
		Clips:     []string{"0880", "0890"},
		Transport: "webrtc",
		Query:     "relay=1",
		Fly:       &flyStackOptions{TURN: true},
	})
	t.Logf("fly turn: %d candidate entries, word recall %.2f", len(res.Candidate), res.Recall)
}

// startFlyStack is startStack for --provisioner=fly: flyfake's API and edge,
// a Runner that runs each started machine as a real local processor, and
// the control plane behind the edge at http://candor.test:<port> (Chromium
// and the runner map that name to loopback; the fly provisioner refuses a
// loopback public URL, as Fly machines could not reach it).
func startFlyStack(t testing.TB, o flyStackOptions) *stack {
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

	fake := flyfake.New("fly-e2e-token")
	api := httptest.NewServer(fake)
	addr := freeAddr(t)
	edge, err := fake.Edge("candor-e2e", "http://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(edge)
	_, edgePort, _ := net.SplitHostPort(front.Listener.Addr().String())
	publicURL := "http://candor.test:" + edgePort

	local, err := fly.NewLocal(fly.LocalConfig{Args: []string{"--role=processor"}, DataDir: t.TempDir(),
		BaseEnv: map[string]string{"CANDOR_LOG_LEVEL": "debug"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	runner := &localRunner{local: local, publicURL: publicURL, listenURL: "http://" + addr,
		machines: map[string]fly.Machine{}, envs: map[string]map[string]string{}, globalIP: fake.GlobalServicesIP}
	fake.SetRunner(runner)
	t.Cleanup(func() {
		front.Close()
		api.Close()
		fake.Close()
		local.Close()
	})

	args := []string{"--addr=" + addr, "--data=" + dir, "--warm-pool=0",
		"--provisioner=fly", "--public-url=" + publicURL, "--fly-proxy-url=" + flyfake.ProxyURL(api.URL),
		"--regions=iad", "--default-region=iad"}
	var turnBytes *atomic.Int64
	if o.TURN {
		var turnURL string
		turnURL, turnBytes = startTURN(t, "e2e-turn-secret")
		env["CANDOR_ICE_SERVERS"] = turnURL
		env["CANDOR_TURN_SECRET"] = "e2e-turn-secret"
	} else {
		port := strconv.Itoa(freeUDPPort(t))
		args = append(args, "--fly-media-ports="+port+"-"+port)
	}
	env["FLY_API_TOKEN"] = "fly-e2e-token"
	env["FLY_ORG"] = "candor-e2e"
	env["FLY_PROCESSOR_IMAGE"] = "registry.fly.io/candor:e2e"
	env["FLY_FLAPS_BASE_URL"] = api.URL
	env["FLY_APP_NAME"] = "candor-control" // on Fly: /p/{id} answers fly-replay
	st := &stack{url: publicURL, apiURL: "http://" + addr, dir: dir, key: boot.APIKey, log: &syncBuffer{}, fake: fake, turnBytes: turnBytes,
		browserFlags: []chromedp.ExecAllocatorOption{
			chromedp.Flag("host-resolver-rules", "MAP candor.test 127.0.0.1"),
			// getUserMedia needs a secure context; candor.test is one
			// only by this flag (localhost would be one anyway).
			chromedp.Flag("unsafely-treat-insecure-origin-as-secure", publicURL),
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, env, io.Discard, st.log)
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
		if t.Failed() {
			t.Logf("control plane log (tail):\n%s", st.logTail())
		}
	})
	waitUntil(t, 30*time.Second, "the control plane to answer", func() bool {
		res, err := http.Get(st.apiURL + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	return st
}

// checkFlyTraffic holds the fly-mode interview to its point: while the
// candidate spoke, media went over UDP through the edge to the machine and
// the control plane carried next to nothing.
func checkFlyTraffic(t testing.TB, st *stack, atLive, now flyfake.Traffic, turnAtLive, turnNow int64, spoken time.Duration) {
	t.Helper()
	udp, control, machines := now.UDP-atLive.UDP, now.Backends-atLive.Backends, now.Machines-atLive.Machines
	if st.turnBytes != nil {
		udp = turnNow - turnAtLive // through the TURN server instead
	}
	perHour := func(n int64) float64 { return float64(n) / spoken.Hours() / 1e6 }
	path := "UDP through the edge"
	if st.turnBytes != nil {
		path = "through TURN"
	}
	t.Logf("while the candidate spoke (%s): media %s %d B (%.0f MB/h), to machines over HTTP/WS via the edge %d B (%.0f MB/h), to the control plane %d B",
		spoken.Round(time.Second), path, udp, perHour(udp), machines, perHour(machines), control)
	for p, n := range now.MachinePaths {
		if d := n - atLive.MachinePaths[p]; d > 0 {
			t.Logf("  to the machine at %s: %d B (%.1f MB/h)", p, d, perHour(d))
		}
	}
	media := udp
	if st.wsFallback {
		media = now.MachinePaths["/ws/audio"] - atLive.MachinePaths["/ws/audio"]
	}
	if !st.wsFallback && udp < 20_000 {
		t.Errorf("only %d media bytes %s: WebRTC did not take that path", udp, path)
	}
	if control*10 > media {
		t.Errorf("the control plane carried %d bytes against %d of media: bytes pass through it", control, media)
	}
}

func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// startTURN runs a TURN server on loopback checking TURN REST credentials
// made with secret, counting every byte it receives and sends.
func startTURN(t testing.TB, secret string) (string, *atomic.Int64) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &atomic.Int64{}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:       "candor.test",
		AuthHandler: turn.LongTermTURNRESTAuthHandler(secret, nil),
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            &countingPacketConn{PacketConn: conn, n: n},
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: net.IPv4(127, 0, 0, 1), Address: "127.0.0.1"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "turn:" + conn.LocalAddr().String() + "?transport=udp", n
}

type countingPacketConn struct {
	net.PacketConn
	n *atomic.Int64
}

func (c *countingPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	k, a, err := c.PacketConn.ReadFrom(p)
	c.n.Add(int64(k))
	return k, a, err
}

func (c *countingPacketConn) WriteTo(p []byte, a net.Addr) (int, error) {
	k, err := c.PacketConn.WriteTo(p, a)
	c.n.Add(int64(k))
	return k, err
}
