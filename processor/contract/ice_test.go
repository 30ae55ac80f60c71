package contract

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// The TURN REST scheme (draft-uberti-behave-turn-rest-00 §2.2, coturn's
// --use-auth-secret): username "<expiry>:<user>", password
// base64(HMAC-SHA1(secret, username)).
func TestTURNCredentialsFollowTheTURNRESTScheme(t *testing.T) {
	exp := time.Unix(1800000000, 0)
	u, c := TURNCredentials("s3cret", "iv_1", exp)
	mac := hmac.New(sha1.New, []byte("s3cret"))
	mac.Write([]byte("1800000000:iv_1"))
	if u != "1800000000:iv_1" || c != base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
		t.Errorf("credentials %q %q", u, c)
	}
}

func TestICEServersGetTimeLimitedTURNCredentialsAndRoundTrip(t *testing.T) {
	exp := time.Unix(1800000000, 0)
	got, err := ParseICEServers("stun:stun.example:3478, turn:turn.example:3478?transport=udp, turns:alice:p%40ss@turn.example:5349", "s3cret", "iv_1", exp)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Username != "" || got[1].Username != "1800000000:iv_1" || got[2].Username != "alice" || got[2].Credential != "p@ss" {
		t.Fatalf("servers %+v", got)
	}
	back, err := ParseICEServers(FormatICEServers(got), "", "", time.Time{})
	if err != nil || len(back) != 3 || back[1].Username != got[1].Username || back[1].Credential != got[1].Credential || back[1].URLs[0] != "turn:turn.example:3478?transport=udp" {
		t.Errorf("round trip %+v, %v", back, err)
	}
	if _, err := ParseICEServers("turn:turn.example:3478", "", "", exp); err == nil || !strings.Contains(err.Error(), "CANDOR_TURN_SECRET") {
		t.Errorf("TURN without credentials or secret: %v", err)
	}
	if _, err := ParseICEServers("turn:bob:hunter2@", "", "", exp); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v must not leak the password", err)
	}
}

// The control plane checks CANDOR_ICE_SERVERS at start-up with the same
// rules the processor applies at launch, so a list the processor would
// refuse is refused before any interview runs.
func TestICEServersTheProcessorWouldRefuseAreRefused(t *testing.T) {
	tests := []struct{ name, list, want string }{
		{"a STUN server with credentials", "stun:a:b@stun.example:3478", "only TURN"},
		{"a port out of range", "stun:stun.example:99999", "between 1 and 65535"},
		{"a host with a path", "stun:stun.example/x", "no host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseICEServers(tt.list, "s3cret", "iv_1", time.Unix(1800000000, 0))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), ":b@") {
				t.Errorf("error leaks a credential: %v", err)
			}
		})
	}
}
