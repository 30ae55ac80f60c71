package media

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// pcmSink is a WHIPHandler that keeps what it receives.
type pcmSink struct {
	mu     sync.Mutex
	pcm    []int16
	calls  int
	closed chan struct{}
	once   sync.Once
}

func newPCMSink() *pcmSink { return &pcmSink{closed: make(chan struct{})} }

func (s *pcmSink) OnAudio(pcm []int16) {
	s.mu.Lock()
	s.pcm = append(s.pcm, pcm...)
	s.calls++
	s.mu.Unlock()
}

func (s *pcmSink) OnClosed() { s.once.Do(func() { close(s.closed) }) }

func (s *pcmSink) samples() []int16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int16(nil), s.pcm...)
}

func (s *pcmSink) waitClosed(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(within):
		t.Fatalf("OnClosed not called within %v", within)
	}
}

// whipClient is a pion peer playing the candidate page: it sends Opus and
// opens the "interviewer" data channel.
type whipClient struct {
	pc     *webrtc.PeerConnection
	sample *webrtc.TrackLocalStaticSample
	rtp    *webrtc.TrackLocalStaticRTP

	mu     sync.Mutex
	text   []string
	binary []byte
	got    chan struct{}
}

func newWHIPClient(t *testing.T, rawRTP bool, tcp bool) *whipClient {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if tcp {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	c := &whipClient{pc: pc, got: make(chan struct{}, 100)}
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	var track webrtc.TrackLocal
	if rawRTP {
		c.rtp, err = webrtc.NewTrackLocalStaticRTP(codec, "audio", "candidate")
		track = c.rtp
	} else {
		c.sample, err = webrtc.NewTrackLocalStaticSample(codec, "audio", "candidate")
		track = c.sample
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	dc, err := pc.CreateDataChannel("interviewer", nil)
	if err != nil {
		t.Fatal(err)
	}
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		c.mu.Lock()
		if m.IsString {
			c.text = append(c.text, string(m.Data))
		} else {
			c.binary = append(c.binary, m.Data...)
		}
		c.mu.Unlock()
		c.got <- struct{}{}
	})
	return c
}

func (c *whipClient) offer(t *testing.T) string {
	t.Helper()
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return c.pc.LocalDescription().SDP
}

func (c *whipClient) answer(t *testing.T, sdp string) {
	t.Helper()
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{})
	var once sync.Once
	c.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	if c.pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
		return
	}
	select {
	case <-connected:
	case <-time.After(15 * time.Second):
		t.Fatalf("client did not connect; state %s", c.pc.ConnectionState())
	}
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

func ffprobeDuration(t *testing.T, path string) float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration,format_name",
		"-of", "default=noprint_wrappers=1", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	var dur float64
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "duration="); ok {
			dur, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(line, "format_name="); ok && v != "ogg" {
			t.Errorf("recording format %q, want ogg", v)
		}
	}
	return dur
}

func TestWHIPReceivesOpusAndRecordsIt(t *testing.T) {
	ref := sourcePCM(t)
	pkts := oggPackets(t, onePacketPerPageOgg(t))

	tests := []struct {
		name string
		cfg  WebRTCConfig
		tcp  bool
	}{
		{"a session over a shared UDP port decodes the candidate's speech",
			WebRTCConfig{LoopbackOnly: true, UDPMuxPort: freePort(t, "udp")}, false},
		{"a session over ICE-TCP decodes the candidate's speech",
			WebRTCConfig{LoopbackOnly: true, ICETCPPort: freePort(t, "tcp")}, true},
		{"a session on ephemeral ports decodes the candidate's speech",
			WebRTCConfig{LoopbackOnly: true, PublicIPs: []string{"127.0.0.1"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := NewWHIP(tt.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			client := newWHIPClient(t, false, tt.tcp)
			recPath := filepath.Join(t.TempDir(), "rec.ogg")
			rec, err := os.Create(recPath)
			if err != nil {
				t.Fatal(err)
			}
			defer rec.Close()
			sink := newPCMSink()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			answer, id, err := w.Offer(ctx, client.offer(t), sink, rec)
			if err != nil {
				t.Fatalf("Offer: %v", err)
			}
			if id == "" || !strings.Contains(answer, "a=candidate") {
				t.Fatalf("answer without candidates or id %q:\n%s", id, answer)
			}
			// Sent before the page's channel is open: buffered.
			if err := w.Send(id, []byte(`{"type":"state","state":"live"}`), nil); err != nil {
				t.Fatalf("Send before open: %v", err)
			}
			client.answer(t, answer)

			// 4x real time keeps the test short; RTP timestamps carry stream time.
			tick := time.NewTicker(5 * time.Millisecond)
			for _, p := range pkts {
				<-tick.C
				if err := client.sample.WriteSample(media.Sample{Data: p, Duration: 20 * time.Millisecond}); err != nil {
					t.Fatal(err)
				}
			}
			tick.Stop()
			speech := bytes.Repeat([]byte{1, 2, 3, 4}, 10000) // 40000 bytes: three messages
			if err := w.Send(id, nil, speech); err != nil {
				t.Fatalf("Send binary: %v", err)
			}
			waitUntil(t, 10*time.Second, func() bool {
				client.mu.Lock()
				defer client.mu.Unlock()
				return len(client.binary) >= len(speech) && len(sink.samples()) >= len(pkts)*320-3*320
			})
			client.mu.Lock()
			if len(client.text) != 1 || client.text[0] != `{"type":"state","state":"live"}` {
				t.Errorf("client text messages %q", client.text)
			}
			if !bytes.Equal(client.binary, speech) {
				t.Errorf("client got %d binary bytes, not the %d sent", len(client.binary), len(speech))
			}
			client.mu.Unlock()

			if err := w.Delete(id); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			sink.waitClosed(t, 5*time.Second)
			if err := w.Delete(id); !errors.Is(err, ErrSessionNotFound) {
				t.Errorf("second Delete = %v, want ErrSessionNotFound", err)
			}
			if err := w.Send(id, []byte("x"), nil); !errors.Is(err, ErrSessionNotFound) {
				t.Errorf("Send after Delete = %v, want ErrSessionNotFound", err)
			}

			got := sink.samples()
			if d := len(got) - len(ref); d < -960 || d > 960 {
				t.Errorf("received %d samples (%.3f s), source has %d", len(got), float64(len(got))/SampleRate, len(ref))
			}
			if c, lag := similarity(ref, got, 800); c < 0.8 {
				t.Errorf("correlation with the source %.3f (lag %d), want > 0.8", c, lag)
			} else {
				t.Logf("received %d samples, correlation %.3f at lag %d", len(got), c, lag)
			}
			if err := rec.Close(); err != nil {
				t.Fatal(err)
			}
			if dur := ffprobeDuration(t, recPath); dur < 7.0 || dur > 7.2 {
				t.Errorf("recording lasts %.3f s, want about 7.1 s", dur)
			}
		})
	}
}

func TestWHIPTurnsLostPacketsIntoSilence(t *testing.T) {
	ref := sourcePCM(t)
	pkts := oggPackets(t, onePacketPerPageOgg(t))
	w, err := NewWHIP(WebRTCConfig{LoopbackOnly: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	client := newWHIPClient(t, true, false)
	sink := newPCMSink()
	answer, id, err := w.Offer(context.Background(), client.offer(t), sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	client.answer(t, answer)
	lost := func(i int) bool { return (i >= 100 && i < 110) || i == 200 || i == 201 }
	tick := time.NewTicker(5 * time.Millisecond)
	sent := 0
	for i, p := range pkts {
		<-tick.C
		if lost(i) {
			continue
		}
		err := client.rtp.WriteRTP(&rtp.Packet{
			Header:  rtp.Header{Version: 2, SequenceNumber: uint16(40000 + i), Timestamp: uint32(4e9) + uint32(i*960)},
			Payload: p,
		})
		if err != nil {
			t.Fatal(err)
		}
		sent++
	}
	tick.Stop()
	last := len(pkts) * 320
	waitUntil(t, 10*time.Second, func() bool { return len(sink.samples()) >= last })
	if err := w.Delete(id); err != nil {
		t.Fatal(err)
	}
	got := sink.samples()
	if len(got) != last {
		t.Errorf("received %d samples for %d packets (%d sent), want %d: lost packets must become silence",
			len(got), len(pkts), sent, last)
	}
	silent := true
	for _, v := range got[100*320+40 : 110*320-40] {
		silent = silent && v == 0
	}
	if !silent {
		t.Error("the lost packets' time is not silence")
	}
	if c, _ := similarity(ref, got, 800); c < 0.8 {
		t.Errorf("correlation %.3f, want > 0.8", c)
	}
}

func TestWHIPRefusesGarbageOffers(t *testing.T) {
	w, err := NewWHIP(WebRTCConfig{LoopbackOnly: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, sdp := range []string{"", "hello", "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"} {
		sink := newPCMSink()
		_, _, err := w.Offer(context.Background(), sdp, sink, nil)
		if !errors.Is(err, ErrBadOffer) {
			t.Errorf("Offer(%q) = %v, want ErrBadOffer", sdp, err)
		}
	}
	w.mu.Lock()
	n := len(w.sessions)
	w.mu.Unlock()
	if n != 0 {
		t.Errorf("%d sessions left after refused offers", n)
	}
}

func TestWHIPSessionClosesWhenThePeerGoesAway(t *testing.T) {
	w, err := NewWHIP(WebRTCConfig{LoopbackOnly: true, ICEDisconnectedTimeout: time.Second, ICEFailedTimeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	client := newWHIPClient(t, false, false)
	sink := newPCMSink()
	answer, id, err := w.Offer(context.Background(), client.offer(t), sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	client.answer(t, answer)
	client.pc.Close()
	sink.waitClosed(t, 15*time.Second)
	if err := w.Delete(id); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("Delete of a self-closed session = %v, want ErrSessionNotFound", err)
	}
}

func TestWHIPSessionThatNeverConnectsIsClosed(t *testing.T) {
	w, err := NewWHIP(WebRTCConfig{LoopbackOnly: true, ConnectTimeout: 300 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := newWHIPClient(t, false, false)
	sink := newPCMSink()
	if _, _, err := w.Offer(context.Background(), client.offer(t), sink, nil); err != nil {
		t.Fatal(err)
	}
	sink.waitClosed(t, 10*time.Second)
	if err := w.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	late := newWHIPClient(t, false, false)
	if _, _, err := w.Offer(context.Background(), late.offer(t), newPCMSink(), nil); err == nil {
		t.Error("Offer after Close succeeded")
	}
}

func waitUntil(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
