package processor

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

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
	for _, raw := range splitList(get(contract.EnvICEServers)) {
		s, err := parseICEServer(raw)
		if err != nil {
			return media.WebRTCConfig{}, fmt.Errorf("CANDOR_ICE_SERVERS entry %q %w", redactICE(raw), err)
		}
		cfg.ICEServers = append(cfg.ICEServers, s)
	}
	var err error
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

// parseICEServer turns "scheme:[user:pass@]host[:port][?query]" into an
// ICE server whose URL pion accepts.
func parseICEServer(raw string) (webrtc.ICEServer, error) {
	scheme, rest, ok := strings.Cut(raw, ":")
	scheme = strings.ToLower(scheme)
	if !ok || (scheme != "stun" && scheme != "stuns" && scheme != "turn" && scheme != "turns") {
		return webrtc.ICEServer{}, fmt.Errorf("does not start with stun:, stuns:, turn: or turns:")
	}
	var user, pass string
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		cred := rest[:at]
		rest = rest[at+1:]
		u, p, ok := strings.Cut(cred, ":")
		var err1, err2 error
		user, err1 = url.PathUnescape(u)
		pass, err2 = url.PathUnescape(p)
		if !ok || user == "" || pass == "" || err1 != nil || err2 != nil {
			return webrtc.ICEServer{}, fmt.Errorf("has credentials that are not user:password (percent-encode ':', '@', ',' inside them)")
		}
		if scheme == "stun" || scheme == "stuns" {
			return webrtc.ICEServer{}, fmt.Errorf("is a STUN server with credentials: only TURN servers take user:password@")
		}
	}
	if scheme == "turn" || scheme == "turns" {
		if user == "" {
			return webrtc.ICEServer{}, fmt.Errorf("is a TURN server without credentials: write it as %s:user:password@host:port", scheme)
		}
	}
	hostport, _, _ := strings.Cut(rest, "?")
	if hostport == "" || strings.ContainsAny(hostport, "/ ") {
		return webrtc.ICEServer{}, fmt.Errorf("has no host: write it like %s:host:port", scheme)
	}
	if strings.Contains(hostport, ":") && !strings.HasSuffix(hostport, "]") {
		if _, port, err := net.SplitHostPort(hostport); err != nil {
			return webrtc.ICEServer{}, fmt.Errorf("has a bad host:port: %v", err)
		} else if _, err := parsePort("port", port); err != nil {
			return webrtc.ICEServer{}, fmt.Errorf("has a port that is not a number between 1 and 65535")
		}
	}
	s := webrtc.ICEServer{URLs: []string{scheme + ":" + rest}}
	if user != "" {
		s.Username, s.Credential = user, pass
		s.CredentialType = webrtc.ICECredentialTypePassword
	}
	return s, nil
}

// redactICE hides a TURN password in error messages.
func redactICE(raw string) string {
	scheme, rest, ok := strings.Cut(raw, ":")
	at := strings.LastIndex(rest, "@")
	if !ok || at < 0 {
		return raw
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return scheme + ":" + user + ":***@" + rest[at+1:]
}
