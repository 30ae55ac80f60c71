package processor

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

func TestConfigFromEnvSetsUpTheRealtimeInterviewer(t *testing.T) {
	base := map[string]string{"SESSION_ID": "iv_1", "CANDOR_CONTROL_URL": "http://127.0.0.1:8080", "CANDOR_PROCESSOR_TOKEN": "t", "CANDOR_INTERVIEWER": "openai-realtime", "OPENAI_API_KEY": "k"}
	with := func(kv ...string) map[string]string {
		env := copyEnv(base)
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(env, kv[i])
			} else {
				env[kv[i]] = kv[i+1]
			}
		}
		return env
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(Config) bool
	}{
		{"the interviewer transcribes the candidate by default", base, "", func(c Config) bool {
			return c.STT == "openai-realtime" && c.RealtimeSessionMax == 55*time.Minute
		}},
		{"an explicit speech engine runs beside it", with("CANDOR_STT", "pocketsphinx"), "", func(c Config) bool { return c.STT == "pocketsphinx" }},
		{"the rollover age is configurable", with("CANDOR_REALTIME_SESSION_MAX", "30m"), "", func(c Config) bool { return c.RealtimeSessionMax == 30*time.Minute }},
		{"a missing key is named", with("OPENAI_API_KEY", ""), "OPENAI_API_KEY", nil},
		{"a rollover age past the service cap is named", with("CANDOR_REALTIME_SESSION_MAX", "61m"), "CANDOR_REALTIME_SESSION_MAX", nil},
		{"a rollover age that is not a duration is named", with("CANDOR_REALTIME_SESSION_MAX", "soon"), "CANDOR_REALTIME_SESSION_MAX", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ConfigFromEnv(tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(cfg) {
				t.Fatalf("config %+v, err %v", cfg, err)
			}
		})
	}
}

func TestWebRTCSettingsAreReadFromTheEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{"nothing set gives the direct-reach defaults", nil, "", func(t *testing.T, c Config) {
			if len(c.WebRTC.ICEServers) != 0 || c.WebRTC.UDPMuxPort != 0 || c.WebRTC.ICETCPPort != 0 || c.WebRTC.PublicIPs != nil {
				t.Errorf("%+v", c.WebRTC)
			}
		}},
		{"STUN and TURN servers with credentials are parsed", map[string]string{
			"CANDOR_ICE_SERVERS": " stun:stun.l.google.com:19302 , turn:alice:p%40ss%3Aw0rd@turn.example.com:3478?transport=udp,turns:bob:x@turn.example.com",
		}, "", func(t *testing.T, c Config) {
			got := c.WebRTC.ICEServers
			want := []webrtc.ICEServer{
				{URLs: []string{"stun:stun.l.google.com:19302"}},
				{URLs: []string{"turn:turn.example.com:3478?transport=udp"}, Username: "alice", Credential: "p@ss:w0rd", CredentialType: webrtc.ICECredentialTypePassword},
				{URLs: []string{"turns:turn.example.com"}, Username: "bob", Credential: "x", CredentialType: webrtc.ICECredentialTypePassword},
			}
			if len(got) != len(want) {
				t.Fatalf("servers %+v", got)
			}
			for i := range want {
				if !slices.Equal(got[i].URLs, want[i].URLs) || got[i].Username != want[i].Username || got[i].Credential != want[i].Credential || got[i].CredentialType != want[i].CredentialType {
					t.Errorf("server %d = %+v, want %+v", i, got[i], want[i])
				}
			}
			// pion accepts them as they are handed to WHIP.
			pc, err := webrtc.NewPeerConnection(webrtc.Configuration{ICEServers: got})
			if err != nil {
				t.Fatalf("pion refuses the parsed servers: %v", err)
			}
			pc.Close()
		}},
		{"ports and public IPs are parsed", map[string]string{
			"CANDOR_WEBRTC_UDP_PORT": "3478", "CANDOR_WEBRTC_TCP_PORT": "3479", "CANDOR_PUBLIC_IPS": "203.0.113.7, 2001:db8::7",
		}, "", func(t *testing.T, c Config) {
			if c.WebRTC.UDPMuxPort != 3478 || c.WebRTC.ICETCPPort != 3479 || !slices.Equal(c.WebRTC.PublicIPs, []string{"203.0.113.7", "2001:db8::7"}) {
				t.Errorf("%+v", c.WebRTC)
			}
		}},
		{"a TURN server without credentials is named", map[string]string{"CANDOR_ICE_SERVERS": "turn:turn.example.com:3478"}, "CANDOR_ICE_SERVERS", nil},
		{"an unknown scheme is named", map[string]string{"CANDOR_ICE_SERVERS": "http://stun.example.com"}, "CANDOR_ICE_SERVERS", nil},
		{"STUN with credentials is named", map[string]string{"CANDOR_ICE_SERVERS": "stun:a:b@stun.example.com"}, "only TURN", nil},
		{"a bad port in a server URL is named", map[string]string{"CANDOR_ICE_SERVERS": "stun:stun.example.com:99999"}, "CANDOR_ICE_SERVERS", nil},
		{"a UDP port out of range is named", map[string]string{"CANDOR_WEBRTC_UDP_PORT": "70000"}, "CANDOR_WEBRTC_UDP_PORT", nil},
		{"a TCP port that is not a number is named", map[string]string{"CANDOR_WEBRTC_TCP_PORT": "tcp"}, "CANDOR_WEBRTC_TCP_PORT", nil},
		{"a public IP that is a host name is named", map[string]string{"CANDOR_PUBLIC_IPS": "fly.example.com"}, "CANDOR_PUBLIC_IPS", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"SESSION_ID": "iv_1", "CANDOR_CONTROL_URL": "http://127.0.0.1:8080", "CANDOR_PROCESSOR_TOKEN": "t"}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg, err := ConfigFromEnv(env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "p%40ss") || strings.Contains(err.Error(), ":b@") {
					t.Errorf("error leaks a credential: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg)
		})
	}
}
