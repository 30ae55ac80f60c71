package processor

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"

	"candor/processor/contract"
)

// startTURN runs a TURN server on loopback that checks time-limited
// credentials in the TURN REST scheme with secret, as coturn's
// use-auth-secret does. It answers the server's "turn:" address.
func startTURN(t *testing.T, secret string) string {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:       "candor.test",
		AuthHandler: turn.LongTermTURNRESTAuthHandler(secret, nil),
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            conn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: net.IPv4(127, 0, 0, 1), Address: "127.0.0.1"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "turn:" + conn.LocalAddr().String() + "?transport=udp"
}

// A candidate that can only use TURN (relay-only, as behind a firewall
// that drops UDP to anything but the relay) reaches the processor with the
// time-limited credentials the control plane derives from
// CANDOR_TURN_SECRET; the WHIP answer lists the ICE servers (RFC 9725 §4.4).
func TestWHIPConnectsOverTURNWithTimeLimitedCredentials(t *testing.T) {
	const secret = "turn-shared-secret"
	turnURL := startTURN(t, secret)
	servers, err := contract.ParseICEServers(turnURL, secret, "iv_turn", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	control := newFakeControl(t, "iv_turn", "proc-token")
	env := interviewEnv(control, t.TempDir())
	env[contract.EnvICEServers] = contract.FormatICEServers(servers)
	p := startProcessor(t, control, env, func(c *Config) { c.WebRTC.LoopbackOnly = true })
	control.waitEvent(t, "ready")
	if len(p.cfg.WebRTC.ICEServers) != 1 {
		t.Fatalf("processor ICE servers %+v", p.cfg.WebRTC.ICEServers)
	}

	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{
		ICEServers:         []webrtc.ICEServer{{URLs: servers[0].URLs, Username: servers[0].Username, Credential: servers[0].Credential}},
		ICETransportPolicy: webrtc.ICETransportPolicyRelay,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.CreateDataChannel("interviewer", nil); err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	if !strings.Contains(pc.LocalDescription().SDP, "typ relay") {
		t.Fatalf("the client gathered no relay candidate: the TURN server refused the credentials\n%s", pc.LocalDescription().SDP)
	}
	code, answer, h := p.do(t, http.MethodPost, "/whip", contract.CandidateToken(control.token, control.interviewID), "application/sdp", []byte(pc.LocalDescription().SDP))
	if code != http.StatusCreated {
		t.Fatalf("POST /whip = %d\n%s", code, answer)
	}
	if link := strings.Join(h.Values("Link"), ", "); !strings.Contains(link, `rel="ice-server"`) || !strings.Contains(link, servers[0].Username) {
		t.Errorf("WHIP answer Link headers %q, want the ICE server with its credentials", link)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(30 * time.Second):
		t.Fatalf("relay-only client did not connect: %s", pc.ConnectionState())
	}
	pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local.Typ != webrtc.ICECandidateTypeRelay {
		t.Errorf("selected pair %v (%v), want the client's relay candidate", pair, err)
	}

	// Credentials from another secret are refused by the TURN server.
	bad, _ := contract.ParseICEServers(turnURL, "wrong-secret", "iv_turn", time.Now().Add(time.Hour))
	pc2, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{
		ICEServers:         []webrtc.ICEServer{{URLs: bad[0].URLs, Username: bad[0].Username, Credential: bad[0].Credential}},
		ICETransportPolicy: webrtc.ICETransportPolicyRelay,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pc2.Close()
	pc2.CreateDataChannel("x", nil)
	o2, _ := pc2.CreateOffer(nil)
	g2 := webrtc.GatheringCompletePromise(pc2)
	pc2.SetLocalDescription(o2)
	<-g2
	if strings.Contains(pc2.LocalDescription().SDP, "typ relay") {
		t.Error("the TURN server allocated a relay for credentials of another secret")
	}
}
