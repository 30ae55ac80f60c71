package processor

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"candor/processor/contract"
)

// /ws/audio?format=webm takes one WebM/Opus stream in frames, as a page's
// MediaRecorder produces it: a fraction of PCM's 32 KB/s through the edge.
func TestWSAudioTakesACompressedWebMStreamWhenAskedTo(t *testing.T) {
	control := newFakeControl(t, "iv_wswebm", "proc-token")
	p := startProcessor(t, control, interviewEnv(control, t.TempDir()))
	control.waitEvent(t, "ready")
	const name = "sense_and_sensibility_01_austen_64kb-0880"
	webm := encodeOpus(t, librivox+name+".wav", "webm")
	pcmBytes := len(readWAVPCM(t, librivox+name+".wav"))
	seconds := float64(pcmBytes) / 32000
	t.Logf("%s: %.1f s; WebM/Opus %d B (%.1f KB/s) against PCM %d B (32 KB/s)", name, seconds, len(webm), float64(len(webm))/seconds/1000, pcmBytes)
	if rate := float64(len(webm)) / seconds; rate > 6000 {
		t.Errorf("WebM/Opus at %.0f B/s, over the 6 KB/s budget", rate)
	}

	cand := contract.CandidateToken(control.token, control.interviewID)
	base := strings.Replace(p.url, "http://", "ws://", 1) + "/ws/audio?token=" + cand
	if _, resp, err := websocket.DefaultDialer.Dial(base+"&format=flac", nil); err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an unknown format: %v %v, want 400", err, resp)
	}
	ws, _, err := websocket.DefaultDialer.Dial(base+"&format=webm", nil)
	if err != nil {
		t.Fatal(err)
	}
	// MediaRecorder-sized pieces (250 ms at 32 kb/s ≈ 1 KB), at twice real time.
	for off := 0; off < len(webm); off += 1000 {
		if err := ws.WriteMessage(websocket.BinaryMessage, webm[off:min(off+1000, len(webm))]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(125 * time.Millisecond)
	}
	ws.Close()
	p.end(t)
	var said []string
	for _, e := range control.Entries() {
		if e.Speaker == "candidate" {
			said = append(said, e.Text)
		}
	}
	if got := strings.Join(said, " "); !strings.Contains(got, "he was not") {
		t.Errorf("candidate entries %q do not hold the clip's words", got)
	}
}
