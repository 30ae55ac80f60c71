package processor

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"candor/processor/contract"
	"candor/processor/media"
)

// parseWebRTC reads the WHIP ingest settings a deployment behind NAT needs
// (Fly: a dedicated IPv4, UDP through fly-global-services):
//
//   - CANDOR_ICE_SERVERS: comma-separated ICE server URLs given to the
//     processor's peer connections, e.g.
//     "stun:stun.l.google.com:19302,turn:alice:s3cret@turn.example.com:3478?transport=udp".
//     A TURN URL (turn:, turns:) carries its username and password before an
//     "@" as user:pass@host:port; both are required for TURN. Characters that
//     would be ambiguous there (":", "@", ",", "%") are percent-encoded
//     (%3A, %40, %2C, %25). STUN URLs take no credentials.
//   - CANDOR_WEBRTC_UDP_PORT: one UDP port that every session shares (a
//     single UDP mux), so a firewall or Fly service needs one port.
//   - CANDOR_WEBRTC_TCP_PORT: a TCP port for ICE-TCP, the path when UDP is blocked.
//   - CANDOR_PUBLIC_IPS: comma-separated IPs advertised in ICE candidates
//     instead of the machine's own (1:1 NAT).
//   - CANDOR_WEBRTC_BIND_HOST: where the UDP port binds (Fly:
//     fly-global-services; tests: a loopback address standing in for it).
func parseWebRTC(get func(string) string) (media.WebRTCConfig, error) {
	var cfg media.WebRTCConfig
	// The control plane has already given TURN servers their credentials
	// (contract.TURNCredentials), so no secret is needed here.
	servers, err := contract.ParseICEServers(get(contract.EnvICEServers), "", "", time.Time{})
	if err != nil {
		return media.WebRTCConfig{}, fmt.Errorf("%s: %w", contract.EnvICEServers, err)
	}
	for _, s := range servers {
		ice := webrtc.ICEServer{URLs: s.URLs}
		if s.Username != "" {
			ice.Username, ice.Credential = s.Username, s.Credential
			ice.CredentialType = webrtc.ICECredentialTypePassword
		}
		cfg.ICEServers = append(cfg.ICEServers, ice)
	}
	if cfg.UDPMuxPort, err = parsePort(contract.EnvWebRTCUDPPort, get(contract.EnvWebRTCUDPPort)); err != nil {
		return media.WebRTCConfig{}, err
	}
	if cfg.ICETCPPort, err = parsePort(contract.EnvWebRTCTCPPort, get(contract.EnvWebRTCTCPPort)); err != nil {
		return media.WebRTCConfig{}, err
	}
	cfg.UDPBindHost = strings.TrimSpace(get(contract.EnvWebRTCBindHost))
	for _, ip := range splitList(get(contract.EnvPublicIPs)) {
		if net.ParseIP(ip) == nil {
			return media.WebRTCConfig{}, fmt.Errorf("CANDOR_PUBLIC_IPS entry %q is not an IP address: list addresses like 203.0.113.7,2001:db8::7", ip)
		}
		cfg.PublicIPs = append(cfg.PublicIPs, ip)
	}
	return cfg, nil
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parsePort(name, v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > 65535 {
		return 0, fmt.Errorf("%s=%q is not a port: set it to a number between 1 and 65535", name, v)
	}
	return n, nil
}
