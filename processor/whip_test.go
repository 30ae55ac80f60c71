package processor

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	candormedia "candor/processor/media"

	"candor/processor/contract"
)

// encodeOpus encodes a WAV fixture with ffmpeg into the given container.
func encodeOpus(t *testing.T, wav, format string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "speech."+format)
	args := []string{"-v", "error", "-i", wav, "-af", "apad=pad_dur=1", "-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20"}
	if format == "ogg" {
		args = append(args, "-page_duration", "20000") // one packet per page
	}
	args = append(args, "-y", out)
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// oggOpusPackets returns the audio packets of an Ogg/Opus file (headers skipped).
func oggOpusPackets(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var pkts [][]byte
	var cur []byte
	for len(b) >= 27 {
		if string(b[:4]) != "OggS" {
			t.Fatal("not an Ogg page")
		}
		nseg := int(b[26])
		lacing := b[27 : 27+nseg]
		body := b[27+nseg:]
		off := 0
		for _, l := range lacing {
			cur = append(cur, body[off:off+int(l)]...)
			off += int(l)
			if l < 255 {
				pkts = append(pkts, cur)
				cur = nil
			}
		}
		b = body[off:]
	}
	if len(pkts) < 3 {
		t.Fatal("no audio packets")
	}
	return pkts[2:] // OpusHead, OpusTags
}

func TestSpeechOverWHIPIsTranscribedAndTheRecordingUploaded(t *testing.T) {
	control := newFakeControl(t, "iv_whip", "proc-token")
	p := startProcessor(t, control, interviewEnv(control, t.TempDir()), func(c *Config) {
		c.WebRTC = candormedia.WebRTCConfig{LoopbackOnly: true}
	})
	control.waitEvent(t, "ready")
	const name = "sense_and_sensibility_01_austen_64kb-0880"
	pkts := oggOpusPackets(t, encodeOpus(t, librivox+name+".wav", "ogg"))

	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "candidate")
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
	var mu sync.Mutex
	var captions []string
	var speechBytes int
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		mu.Lock()
		defer mu.Unlock()
		if m.IsString {
			captions = append(captions, string(m.Data))
		} else {
			speechBytes += len(m.Data)
		}
	})
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

	code, answer, h := p.do(t, http.MethodPost, "/whip", contract.CandidateToken(control.token, control.interviewID), "application/sdp", []byte(pc.LocalDescription().SDP))
	if code != http.StatusCreated || h.Get("Content-Type") != "application/sdp" || !strings.HasPrefix(h.Get("Location"), "/whip/") {
		t.Fatalf("POST /whip = %d %v\n%s", code, h, answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(30 * time.Second):
		t.Fatalf("WHIP client did not connect: %s", pc.ConnectionState())
	}
	// Twice real time: RTP timestamps carry stream time, so the clock follows the audio.
	tick := time.NewTicker(10 * time.Millisecond)
	for _, pkt := range pkts {
		<-tick.C
		if err := track.WriteSample(media.Sample{Data: pkt, Duration: 20 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	tick.Stop()
	wantMS := int64(len(pkts)-25) * 20
	control.waitFor(t, "the media clock to follow the WHIP audio", func() bool {
		for _, ev := range control.events {
			if ev.Type == "heartbeat" && *ev.MediaMS >= wantMS {
				return true
			}
		}
		return false
	})
	n := p.end(t)

	es := control.Entries()
	checkDenseSeqs(t, es, 1)
	if int64(len(es)) != n {
		t.Fatalf("bridge has %d entries, /end said %d", len(es), n)
	}
	hyp := candidateText(es)
	if got := overlap(reference(t, name), hyp); got < 0.5 {
		t.Fatalf("transcript %q overlaps the reference by %.2f", hyp, got)
	}
	control.mu.Lock()
	rec, typ := control.recording, control.recordingType
	control.mu.Unlock()
	if len(rec) < 1000 || !bytes.HasPrefix(rec, []byte("OggS")) || typ != "audio/ogg" {
		t.Fatalf("uploaded recording: %d bytes, prefix %q, type %q", len(rec), rec[:min(4, len(rec))], typ)
	}
	mu.Lock()
	defer mu.Unlock()
	// The candidate joined by connecting: the greeting and first question
	// reached the data channel as captions and speech.
	if len(captions) < 2 || !strings.Contains(captions[0], `"speaker":"interviewer"`) || speechBytes == 0 {
		t.Errorf("data channel: captions %q, %d speech bytes", captions, speechBytes)
	}
}

func TestWebMChunksFromMediaRecorderAreTranscribed(t *testing.T) {
	control := newFakeControl(t, "iv_webm", "proc-token")
	p := startProcessor(t, control, interviewEnv(control, t.TempDir()))
	control.waitEvent(t, "ready")
	const name = "sense_and_sensibility_01_austen_64kb-0930"
	webm := encodeOpus(t, librivox+name+".wav", "webm")
	// MediaRecorder chunks: only the first is a standalone file. Sent out of
	// order to exercise the reassembler.
	var chunks [][]byte
	for off := 0; off < len(webm); off += 4000 {
		chunks = append(chunks, webm[off:min(off+4000, len(webm))])
	}
	order := make([]int, len(chunks))
	for i := range order {
		order[i] = i
	}
	for i := 1; i+1 < len(order); i += 2 {
		order[i], order[i+1] = order[i+1], order[i]
	}
	for _, i := range order {
		if code, b := p.postChunk(t, contract.CandidateToken(control.token, control.interviewID), int64(i+1), "audio/webm;codecs=opus", chunks[i]); code != http.StatusOK {
			t.Fatalf("chunk %d: %d %s", i+1, code, b)
		}
	}
	p.end(t)
	hyp := candidateText(control.Entries())
	if got := overlap(reference(t, name), hyp); got < 0.5 {
		t.Fatalf("transcript %q overlaps the reference by %.2f", hyp, got)
	}
}
