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
