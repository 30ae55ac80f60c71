package web

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"candor/fly"
	"candor/processor/contract"
	"candor/web/lifecycle"
)

// On Fly the stable route answers fly-replay, so Fly's edge carries the
// candidate's bytes to the machine; the control plane only decides.
func TestOnFlyTheStableRouteAnswersFlyReplay(t *testing.T) {
	e := newTestEnv(t, withConfig(func(c *Config) { c.OnFly = true }))
	e.machines.provider = fly.ProviderFly
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	e.start(t, a, iv)
	want := "app=candor-test-acme;instance=fake-1"

	for _, tt := range []struct {
		name string
		req  request
	}{
		{"a chunk", request{Method: "POST", Path: "/p/" + iv + "/process-audio", Body: map[string]any{"audio_chunk": "AAAA"}}},
		{"a WHIP offer", request{Method: "POST", Path: "/p/" + iv + "/whip", Header: map[string]string{"Content-Type": "application/sdp"}}},
		{"a WebSocket upgrade", request{Method: "GET", Path: "/p/" + iv + "/ws/audio?token=x", Header: map[string]string{
			"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
		}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(t, tt.req)
			if got := res.Header.Get("fly-replay"); got != want {
				t.Errorf("status %d fly-replay %q, want %q (body %s)", res.Status, got, want, res.Body)
			}
		})
	}

	t.Run("a body too large to replay is proxied", func(t *testing.T) {
		big := bytes.Repeat([]byte("x"), maxReplayBody+1)
		req, _ := http.NewRequest("POST", e.ts.URL+"/p/"+iv+"/whoami", bytes.NewReader(big))
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("fly-replay") != "" {
			t.Errorf("a %d-byte body was sent to fly-replay, which refuses bodies over 1 MB", len(big))
		}
	})

	t.Run("off Fly the route proxies", func(t *testing.T) {
		off := newTestEnv(t)
		off.machines.provider = fly.ProviderFly
		b := off.tenant(t, "Acme")
		_, _, iv := off.seed(t, b)
		off.start(t, b, iv)
		res := off.must(t, 200, request{Method: "GET", Path: "/p/" + iv + "/whoami"}, nil)
		if res.Header.Get("fly-replay") != "" || !strings.HasPrefix(string(res.Body), "GET /whoami") {
			t.Errorf("off Fly: %q with fly-replay %q", res.Body, res.Header.Get("fly-replay"))
		}
	})
}

func TestTheCandidatesFlyRegionPlacesTheMachineWhenAllowed(t *testing.T) {
	for _, tt := range []struct {
		name, header, want string
	}{
		{"a configured region is used", "syd", "syd"},
		{"a region outside CANDOR_REGIONS is ignored", "ams", "iad"},
		{"no header: the default", "", "iad"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, withLifecycle(func(c *lifecycle.Config) { c.DefaultRegion = "iad"; c.Regions = []string{"iad", "syd"} }))
			a := e.tenant(t, "Acme")
			_, _, id := e.seed(t, a)
			invite := e.inviteOf(id)
			e.must(t, 200, request{Method: "POST", Path: invite + "/consent", Body: map[string]any{"consent": true},
				Header: map[string]string{"Origin": e.ts.URL}}, nil)
			e.must(t, 200, request{Method: "POST", Path: invite + "/join", Body: map[string]any{},
				Header: map[string]string{"Fly-Region": tt.header}}, nil)
			if got := e.machines.launched[0].Region; got != tt.want {
				t.Errorf("launched in %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPlacementNotesLandInTheInterviewsEvents(t *testing.T) {
	e := newTestEnv(t)
	e.machines.notes = []string{"no machine capacity in syd; trying sin"}
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	e.start(t, a, iv)
	if evs := e.eventsOf(t, a, iv); !slices.Contains(evs, "machine.placement") {
		t.Errorf("events %v lack machine.placement", evs)
	}
}

// A machine that stops before it is healthy fails the start at once, with
// the reason its processor posted to the bridge before exiting.
func TestAStartFailsWithTheProcessorsOwnReason(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	if err := e.srv.recordEvent(context.Background(), a.ID, iv, "error", map[string]string{
		"message": "processor configuration: OPENAI_API_KEY is not set: --stt=openai needs it",
	}); err != nil {
		t.Fatal(err)
	}
	e.machines.failNext = fmt.Errorf("fly: machine m1 for interview %s: %w (machine is stopped)", iv, fly.ErrProcessorExited)
	res := e.do(t, request{Method: "POST", Path: "/api/v1/interviews/" + iv + "/start", Key: a.Key})
	if res.Status != http.StatusBadGateway || !strings.Contains(string(res.Body), "OPENAI_API_KEY is not set") {
		t.Errorf("start: %d %s, want 502 with the processor's reason", res.Status, res.Body)
	}
}

// The candidate page gets its ICE servers in the join answer, before it
// makes its offer; TURN servers get time-limited credentials from
// CANDOR_TURN_SECRET, and the processor the same ones in its env.
func TestTheJoinAnswerCarriesICEServersWithTimeLimitedTURNCredentials(t *testing.T) {
	e := newTestEnv(t, withConfig(func(c *Config) {
		c.ICEServers = "stun:stun.example:3478,turn:turn.example:3478?transport=udp"
		c.TURNSecret = "shared"
	}))
	a := e.tenant(t, "Acme")
	_, _, id := e.seed(t, a)
	invite := e.inviteOf(id)
	e.must(t, 200, request{Method: "POST", Path: invite + "/consent", Body: map[string]any{"consent": true},
		Header: map[string]string{"Origin": e.ts.URL}}, nil)
	var j joinJSON
	e.must(t, 200, request{Method: "POST", Path: invite + "/join", Body: map[string]any{}}, &j)
	if len(j.ICEServers) != 2 || j.ICEServers[0].Username != "" {
		t.Fatalf("ice servers %+v", j.ICEServers)
	}
	turn := j.ICEServers[1]
	exp, user, _ := strings.Cut(turn.Username, ":")
	if user != id || exp == "" {
		t.Errorf("TURN username %q, want <expiry>:%s", turn.Username, id)
	}
	if wantUser, wantCred := contract.TURNCredentials("shared", id, time.Unix(mustAtoi(t, exp), 0)); turn.Username != wantUser || turn.Credential != wantCred {
		t.Errorf("TURN credential does not verify under the shared secret")
	}
	got, err := contract.ParseICEServers(e.machines.launched[0].Env[contract.EnvICEServers], "", "", time.Time{})
	if err != nil || len(got) != 2 || got[1].Username != turn.Username || got[1].Credential != turn.Credential {
		t.Errorf("processor env ICE servers %+v (%v), want the candidate's", got, err)
	}
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
