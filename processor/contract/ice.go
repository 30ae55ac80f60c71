package contract

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ICEServer is one STUN or TURN server, as a browser's RTCPeerConnection
// takes it (the candidate page gets them in its join answer, before it
// creates its peer connection).
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// TURNCredentials derives time-limited credentials in the TURN REST API
// scheme coturn implements with use-auth-secret
// (draft-uberti-behave-turn-rest-00): the username is "<expiry unix
// time>:<user>", the password base64(HMAC-SHA1(secret, username)). The
// TURN server checks both with the same shared secret and no database.
func TURNCredentials(secret, user string, expires time.Time) (username, credential string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + user
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ParseICEServers reads a CANDOR_ICE_SERVERS list: comma-separated
// "scheme:[user:pass@]host[:port][?query]" with scheme stun, stuns, turn
// or turns; ":", "@", ",", "%" inside credentials percent-encoded. When
// secret is set, TURN servers listed without credentials get
// TURNCredentials for user, valid until expires.
func ParseICEServers(list, secret, user string, expires time.Time) ([]ICEServer, error) {
	var out []ICEServer
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		scheme, rest, ok := strings.Cut(raw, ":")
		scheme = strings.ToLower(scheme)
		if !ok || (scheme != "stun" && scheme != "stuns" && scheme != "turn" && scheme != "turns") {
			return nil, fmt.Errorf("ICE server %q does not start with stun:, stuns:, turn: or turns:", redactedICE(raw))
		}
		s := ICEServer{}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			u, p, ok := strings.Cut(rest[:at], ":")
			user, err1 := url.PathUnescape(u)
			pass, err2 := url.PathUnescape(p)
			if !ok || user == "" || pass == "" || err1 != nil || err2 != nil {
				return nil, fmt.Errorf("ICE server %q has credentials that are not user:password", redactedICE(raw))
			}
			s.Username, s.Credential = user, pass
			rest = rest[at+1:]
		}
		turn := scheme == "turn" || scheme == "turns"
		if !turn && s.Username != "" {
			return nil, fmt.Errorf("ICE server %q is a STUN server with credentials: only TURN servers take user:password@", redactedICE(raw))
		}
		if err := checkICEHost(rest); err != nil {
			return nil, fmt.Errorf("ICE server %q %w", redactedICE(raw), err)
		}
		if turn && s.Username == "" {
			if secret == "" {
				return nil, fmt.Errorf("TURN server %q has no credentials: write turn:user:password@host:port, or set CANDOR_TURN_SECRET for time-limited ones", raw)
			}
			s.Username, s.Credential = TURNCredentials(secret, user, expires)
		}
		s.URLs = []string{scheme + ":" + rest}
		out = append(out, s)
	}
	return out, nil
}

// checkICEHost checks the "host[:port][?query]" part of an ICE server URL.
func checkICEHost(rest string) error {
	hostport, _, _ := strings.Cut(rest, "?")
	if hostport == "" || strings.ContainsAny(hostport, "/ ") {
		return fmt.Errorf("has no host: write it like stun:host:port")
	}
	if strings.Contains(hostport, ":") && !strings.HasSuffix(hostport, "]") {
		_, port, err := net.SplitHostPort(hostport)
		if err != nil {
			return fmt.Errorf("has a bad host:port: %v", err)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("has a port that is not a number between 1 and 65535")
		}
	}
	return nil
}

// FormatICEServers writes servers back as a CANDOR_ICE_SERVERS list (the
// processor's env), credentials percent-encoded.
func FormatICEServers(servers []ICEServer) string {
	esc := strings.NewReplacer("%", "%25", ":", "%3A", "@", "%40", ",", "%2C")
	var parts []string
	for _, s := range servers {
		for _, u := range s.URLs {
			scheme, rest, _ := strings.Cut(u, ":")
			if s.Username != "" {
				rest = esc.Replace(s.Username) + ":" + esc.Replace(s.Credential) + "@" + rest
			}
			parts = append(parts, scheme+":"+rest)
		}
	}
	return strings.Join(parts, ",")
}

func redactedICE(raw string) string {
	scheme, rest, ok := strings.Cut(raw, ":")
	at := strings.LastIndex(rest, "@")
	if !ok || at < 0 {
		return raw
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return scheme + ":" + user + ":***@" + rest[at+1:]
}
