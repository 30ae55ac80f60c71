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
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"candor/fly"
	"candor/fly/flyfake"
)

// flyStackOptions shape the fly-mode stack.
type flyStackOptions struct{}

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

	port := freeUDPPort(t)
	env["FLY_API_TOKEN"] = "fly-e2e-token"
	env["FLY_ORG"] = "candor-e2e"
	env["FLY_PROCESSOR_IMAGE"] = "registry.fly.io/candor:e2e"
	env["FLY_FLAPS_BASE_URL"] = api.URL
	env["FLY_APP_NAME"] = "candor-control" // on Fly: /p/{id} answers fly-replay
	st := &stack{url: publicURL, apiURL: "http://" + addr, dir: dir, key: boot.APIKey, log: &syncBuffer{}, fake: fake,
		browserFlags: []chromedp.ExecAllocatorOption{
			chromedp.Flag("host-resolver-rules", "MAP candor.test 127.0.0.1"),
			// getUserMedia needs a secure context; candor.test is one
			// only by this flag (localhost would be one anyway).
			chromedp.Flag("unsafely-treat-insecure-origin-as-secure", publicURL),
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr=" + addr, "--data=" + dir, "--warm-pool=0",
			"--provisioner=fly", "--public-url=" + publicURL, "--fly-proxy-url=" + flyfake.ProxyURL(api.URL),
			"--regions=iad", "--default-region=iad", "--fly-media-ports=" + strconv.Itoa(port) + "-" + strconv.Itoa(port),
		}, env, io.Discard, st.log)
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
func checkFlyTraffic(t testing.TB, st *stack, atLive, now flyfake.Traffic, spoken time.Duration) {
	t.Helper()
	udp, control, machines := now.UDP-atLive.UDP, now.Backends-atLive.Backends, now.Machines-atLive.Machines
	perHour := func(n int64) float64 { return float64(n) / spoken.Hours() / 1e6 }
	t.Logf("fly edge while the candidate spoke (%s): UDP %d B (%.0f MB/h), to machines over HTTP/WS %d B, to the control plane %d B",
		spoken.Round(time.Second), udp, perHour(udp), machines, control)
	if udp < 20_000 {
		t.Errorf("only %d UDP bytes through the edge: WebRTC did not go to the machine's published port", udp)
	}
	if control*10 > udp {
		t.Errorf("the control plane carried %d bytes against %d of media: bytes pass through it", control, udp)
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
