package processor

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	candormedia "candor/processor/media"

	"candor/processor/contract"
)

// uploadedRecording returns the recording the fake control plane received
// and its Content-Type.
func uploadedRecording(t *testing.T, control *fakeControl) ([]byte, string) {
	t.Helper()
	control.mu.Lock()
	defer control.mu.Unlock()
	if len(control.recording) == 0 {
		t.Fatal("no recording was uploaded")
	}
	return control.recording, control.recordingType
}

// probeSeconds is the duration ffprobe reads from a media file.
func probeSeconds(t *testing.T, file []byte, ext string) float64 {
	t.Helper()
	path := filepath.Join(t.TempDir(), "recording"+ext)
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe duration %q: %v", out, err)
	}
	return d
}

// checkWAV checks that rec is the 16 kHz mono s16 WAV of exactly pcm.
func checkWAV(t *testing.T, rec, pcm []byte) {
	t.Helper()
	if len(rec) < 44 || string(rec[:4]) != "RIFF" || string(rec[8:16]) != "WAVEfmt " {
		t.Fatalf("recording is not WAV: prefix %q", rec[:min(16, len(rec))])
	}
	if rate := binary.LittleEndian.Uint32(rec[24:]); rate != 16000 {
		t.Errorf("WAV rate %d, want 16000", rate)
	}
	if size := binary.LittleEndian.Uint32(rec[40:]); int(size) != len(rec)-44 {
		t.Errorf("WAV data size %d, file holds %d bytes of data: the header was not fixed up", size, len(rec)-44)
	}
	if !bytes.Equal(rec[44:], pcm) {
		t.Errorf("WAV data (%d bytes) is not the PCM sent (%d bytes)", len(rec)-44, len(pcm))
	}
	want := float64(len(pcm)/2) / 16000
	if got := probeSeconds(t, rec, ".wav"); got < want-0.2 || got > want+0.2 {
		t.Errorf("recording lasts %.2f s, the audio sent %.2f s", got, want)
	}
}

func TestPCMOverWebSocketIsUploadedAsAWAVRecording(t *testing.T) {
	control := newFakeControl(t, "iv_wsrec", "proc-token")
	p := startProcessor(t, control, interviewEnv(control, t.TempDir()))
	control.waitEvent(t, "ready")
	pcm := append(readWAVPCM(t, librivox+"sense_and_sensibility_01_austen_64kb-0890.wav"), silence(0.5)...)
	ws := dialAudio(t, p)
	for off := 0; off < len(pcm); off += 3201 { // odd sizes: samples split across frames
		if err := ws.WriteMessage(websocket.BinaryMessage, pcm[off:min(off+3201, len(pcm))]); err != nil {
			t.Fatal(err)
		}
	}
	waitMedia(t, control, int64(len(pcm)/2)*1000/16000)
	p.end(t)
	rec, typ := uploadedRecording(t, control)
	if typ != "audio/wav" {
		t.Errorf("Content-Type %q, want audio/wav", typ)
	}
	checkWAV(t, rec, pcm)
}

func TestWebMChunksAreUploadedAsTheReassembledWebM(t *testing.T) {
	control := newFakeControl(t, "iv_webmrec", "proc-token")
	p := startProcessor(t, control, interviewEnv(control, t.TempDir()))
	control.waitEvent(t, "ready")
	wav := librivox + "sense_and_sensibility_01_austen_64kb-0930.wav"
	webm := encodeOpus(t, wav, "webm") // padded with 1 s of silence
	var chunks [][]byte
	for off := 0; off < len(webm); off += 3000 {
		chunks = append(chunks, webm[off:min(off+3000, len(webm))])
	}
	tok := contract.CandidateToken(control.token, control.interviewID)
	// Out of order, with a duplicate: the recording is still the file in order.
	order := []int{0, 2, 1}
	for i := 3; i < len(chunks); i++ {
		order = append(order, i)
	}
	order = append(order, 3)
	for _, i := range order {
		if code, b := p.postChunk(t, tok, int64(i), "audio/webm;codecs=opus", chunks[i]); code != http.StatusOK {
			t.Fatalf("chunk %d: %d %s", i, code, b)
		}
	}
	p.end(t)
	rec, typ := uploadedRecording(t, control)
	if typ != "audio/webm" {
		t.Errorf("Content-Type %q, want audio/webm", typ)
	}
	if !bytes.Equal(rec, webm) {
		t.Errorf("recording (%d bytes) is not the WebM sent (%d bytes)", len(rec), len(webm))
	}
	want := float64(len(readWAVPCM(t, wav))/2)/16000 + 1
	if got := probeSeconds(t, rec, ".webm"); got < want-0.2 || got > want+0.2 {
		t.Errorf("recording lasts %.2f s, the audio sent %.2f s", got, want)
	}
}

func TestMediaRecorderChunksAreUploadedAsAWebMWithADuration(t *testing.T) {
	control := newFakeControl(t, "iv_mediarecorder", "proc-token")
	p := startProcessor(t, control, interviewEnv(control, t.TempDir()))
	control.waitEvent(t, "ready")
	webm, err := os.ReadFile("media/testdata/chromium-mediarecorder-1s.webm")
	if err != nil {
		t.Fatal(err)
	}
	tok := contract.CandidateToken(control.token, control.interviewID)
	for i, off := 0, 0; off < len(webm); i, off = i+1, off+700 {
		if code, b := p.postChunk(t, tok, int64(i), "audio/webm;codecs=opus", webm[off:min(off+700, len(webm))]); code != http.StatusOK {
			t.Fatalf("chunk %d: %d %s", i, code, b)
		}
	}
	// What the processor heard is the length the recording must have.
	var heard []int16
	dec, err := candormedia.NewStreamDecoder("audio/webm", func(pcm []int16) { heard = append(heard, pcm...) })
	if err != nil {
		t.Fatal(err)
	}
	dec.Write(webm)
	dec.Close()
	p.end(t)
	rec, typ := uploadedRecording(t, control)
	if typ != "audio/webm" || !bytes.HasPrefix(rec, []byte{0x1a, 0x45, 0xdf, 0xa3}) {
		t.Fatalf("recording %q, prefix %x", typ, rec[:min(4, len(rec))])
	}
	want := float64(len(heard)) / 16000
	if got := probeSeconds(t, rec, ".webm"); got < want-0.2 || got > want+0.2 {
		t.Errorf("recording lasts %.2f s, the audio sent %.2f s", got, want)
	}
}

func TestASkippedWebMChunkFallsBackToTheWAVOfWhatWasDecoded(t *testing.T) {
	control := newFakeControl(t, "iv_webmgap", "proc-token")
	p := startProcessor(t, control, interviewEnv(control, t.TempDir()))
	control.waitEvent(t, "ready")
	webm := encodeOpus(t, librivox+"sense_and_sensibility_01_austen_64kb-0930.wav", "webm")
	tok := contract.CandidateToken(control.token, control.interviewID)
	half := len(webm) / 2
	// Chunk 1 never arrives: chunk 2 is skipped to after the gap times out.
	for _, c := range []struct {
		seq   int64
		audio []byte
	}{{0, webm[:half/2]}, {2, webm[half:]}} {
		if code, b := p.postChunk(t, tok, c.seq, "audio/webm;codecs=opus", c.audio); code != http.StatusOK {
			t.Fatalf("chunk %d: %d %s", c.seq, code, b)
		}
	}
	p.end(t)
	rec, typ := uploadedRecording(t, control)
	if typ != "audio/wav" || !bytes.HasPrefix(rec, []byte("RIFF")) {
		t.Fatalf("recording %q (prefix %q), want the WAV", typ, rec[:min(4, len(rec))])
	}
	if got := probeSeconds(t, rec, ".wav"); got <= 0 {
		t.Errorf("recording lasts %.2f s", got)
	}
}

func TestAudioOverTwoPathsIsOneContinuousWAV(t *testing.T) {
	control := newFakeControl(t, "iv_mixed", "proc-token")
	p := startProcessor(t, control, interviewEnv(control, t.TempDir()))
	control.waitEvent(t, "ready")
	speech := readWAVPCM(t, librivox+"sense_and_sensibility_01_austen_64kb-0890.wav")
	first, second := speech[:len(speech)/2&^1], speech[len(speech)/2&^1:]

	// The WebSocket first (ICE failed), then the chunk API (a reload).
	ws := dialAudio(t, p)
	if err := ws.WriteMessage(websocket.BinaryMessage, first); err != nil {
		t.Fatal(err)
	}
	waitMedia(t, control, int64(len(first)/2)*1000/16000)
	ws.Close()
	p.sendPCM(t, 0, second)
	p.end(t)
	rec, typ := uploadedRecording(t, control)
	if typ != "audio/wav" {
		t.Errorf("Content-Type %q, want audio/wav", typ)
	}
	checkWAV(t, rec, speech)
}

func TestTheWAVIsUploadedInPartsAsItGrowsThatJoinIntoTheAudioSent(t *testing.T) {
	control := newFakeControl(t, "iv_parts", "proc-token")
	env := interviewEnv(control, t.TempDir())
	env[contract.EnvRecordingSegment] = "1s"
	p := startProcessor(t, control, env)
	control.waitEvent(t, "ready")
	pcm := append(readWAVPCM(t, librivox+"sense_and_sensibility_01_austen_64kb-0890.wav"), silence(0.5)...)
	ws := dialAudio(t, p)
	for off := 0; off < len(pcm); off += 3201 {
		if err := ws.WriteMessage(websocket.BinaryMessage, pcm[off:min(off+3201, len(pcm))]); err != nil {
			t.Fatal(err)
		}
	}
	waitMedia(t, control, int64(len(pcm)/2)*1000/16000)
	// Before the end: every complete second is at the control plane already.
	full := len(pcm) / 2 / 16000
	control.waitFor(t, "the complete parts to be uploaded", func() bool { return len(control.recordings) >= full })
	p.end(t)

	control.mu.Lock()
	defer control.mu.Unlock()
	type part struct {
		segment string
		start   int64
		wav     []byte
	}
	var parts []part
	for seg, b := range control.recordings {
		parts = append(parts, part{seg, control.recordingStarts[seg], b})
	}
	slices.SortFunc(parts, func(a, b part) int { return cmp.Compare(a.start, b.start) })
	if len(parts) != full+1 {
		t.Fatalf("%d parts uploaded for %.2f s of audio in 1 s parts, want %d", len(parts), float64(len(pcm)/2)/16000, full+1)
	}
	var joined []byte
	var at int64
	base, _, _ := strings.Cut(parts[0].segment, "-")
	for i, p := range parts {
		if p.segment != base+"-"+strconv.Itoa(i+1) {
			t.Errorf("part %d is segment %q, want %s-%d", i+1, p.segment, base, i+1)
		}
		if p.start != at*1000/16000 {
			t.Errorf("part %d starts at %d ms, want %d (where the previous ended)", i+1, p.start, at*1000/16000)
		}
		data := p.wav[44:]
		if size := binary.LittleEndian.Uint32(p.wav[40:]); int(size) != len(data) {
			t.Errorf("part %d: header says %d data bytes, file holds %d", i+1, size, len(data))
		}
		joined = append(joined, data...)
		at += int64(len(data) / 2) // samples
	}
	if !bytes.Equal(joined, pcm) {
		t.Errorf("the parts joined (%d bytes) are not the PCM sent (%d bytes)", len(joined), len(pcm))
	}
	if left, _ := filepath.Glob(filepath.Join(env["CANDOR_DATA"], "*.part*.wav")); len(left) > 0 {
		t.Errorf("uploaded parts still on the machine's disk: %v", left)
	}
}
