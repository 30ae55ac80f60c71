package main

import (
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAKilledProcessorsRecordingKeepsAllButTheLastPart runs issue 11's
// "SIGKILL of a processor 5 minutes into an interview: the recording keeps
// all but the last segment" with 1-second parts instead of minutes.
func TestAKilledProcessorsRecordingKeepsAllButTheLastPart(t *testing.T) {
	p := startPlane(t, []string{"Acme"}, []string{"--warm-pool=0", "--heartbeat-timeout=30s", "--recording-segment=1s"}, nil)
	key := p.keys["Acme"].Key
	id := p.schedule(t, "Acme")
	var st apiStart
	p.call(t, "POST", "/api/v1/interviews/"+id+"/start", key, nil, &st)

	pcm := speechPCM(t, "0880", "0890")
	p.sendAudio(t, st.Processor.URL, st.Processor.Token, pcm, 0)
	sent := float64(len(pcm)/2) / 16000
	type part struct {
		URL         string
		ContentType string `json:"content_type"`
		StartMS     int64  `json:"start_ms"`
		Bytes       int64
	}
	parts := func() []part {
		var iv struct {
			RecordingParts []part `json:"recording_parts"`
		}
		p.call(t, "GET", "/api/v1/interviews/"+id, key, nil, &iv)
		return iv.RecordingParts
	}
	complete := int(sent) // whole seconds: the parts closed so far
	waitUntil(t, 60*time.Second, "the closed parts at the control plane", func() bool { return len(parts()) >= complete })

	pids := mustGlob(t, filepath.Join(p.dir, "processors", "*.pid"))
	if len(pids) != 1 {
		t.Fatalf("pid files %v, want the one processor", pids)
	}
	if err := syscall.Kill(processorPID(t, p.dir, strings.TrimSuffix(filepath.Base(pids[0]), ".pid")), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	got := parts()
	var kept float64
	var at int64
	for i, pt := range got {
		if pt.ContentType != "audio/wav" {
			t.Fatalf("part %d is %s", i+1, pt.ContentType)
		}
		if d := pt.StartMS - at; d < -1 || d > 1 {
			t.Errorf("part %d starts at %d ms, the previous ended at %d ms: a gap", i+1, pt.StartMS, at)
		}
		status, b := p.try(t, "GET", pt.URL, key, nil)
		if status != http.StatusOK || len(b) < 44 || string(b[:4]) != "RIFF" || int(binary.LittleEndian.Uint32(b[40:])) != len(b)-44 {
			t.Fatalf("part %d: %d, %d bytes, not a complete WAV", i+1, status, len(b))
		}
		secs := float64(len(b)-44) / 32000
		kept += secs
		at = pt.StartMS + int64(secs*1000)
	}
	if lost := sent - kept; lost < 0 || lost >= 1 {
		t.Errorf("the recording keeps %.2f s of the %.2f s heard: %.2f s lost, want less than one part (1 s)", kept, sent, lost)
	}
}

// TestAProcessorsWebMReplacesTheWAVPartsItUploadedOnACleanEnd: while it
// records, a processor fed MediaRecorder WebM uploads WAV parts (what a
// crash would leave); at a clean end the WebM itself, a tenth of the size,
// replaces them at the control plane.
func TestAProcessorsWebMReplacesTheWAVPartsItUploadedOnACleanEnd(t *testing.T) {
	p := startPlane(t, []string{"Acme"}, []string{"--warm-pool=0", "--recording-segment=1s"}, nil)
	key := p.keys["Acme"].Key
	id := p.schedule(t, "Acme")
	var st apiStart
	p.call(t, "POST", "/api/v1/interviews/"+id+"/start", key, nil, &st)

	webm := filepath.Join(t.TempDir(), "speech.webm")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav",
		"-c:a", "libopus", "-b:a", "32k", "-y", webm).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	b, err := os.ReadFile(webm)
	if err != nil {
		t.Fatal(err)
	}
	for i, off := 0, 0; off < len(b); i, off = i+1, off+4000 {
		status, body := p.try(t, "POST", st.Processor.URL+"/process-audio", st.Processor.Token, map[string]any{
			"audio_chunk": base64.StdEncoding.EncodeToString(b[off:min(off+4000, len(b))]), "speaker": "candidate",
			"sequence_number": i, "mime_type": "audio/webm;codecs=opus",
		})
		if status != http.StatusOK {
			t.Fatalf("chunk %d: %d %s", i, status, body)
		}
	}
	type part struct {
		ContentType string `json:"content_type"`
		Bytes       int64
	}
	parts := func() []part {
		var iv struct {
			RecordingParts []part `json:"recording_parts"`
		}
		p.call(t, "GET", "/api/v1/interviews/"+id, key, nil, &iv)
		return iv.RecordingParts
	}
	waitUntil(t, 60*time.Second, "WAV parts uploaded while recording", func() bool {
		ps := parts()
		return len(ps) >= 2 && ps[0].ContentType == "audio/wav"
	})
	p.call(t, "POST", "/api/v1/interviews/"+id+"/end", key, nil, nil)
	got := parts()
	if len(got) != 1 || got[0].ContentType != "audio/webm" || got[0].Bytes < int64(len(b)) {
		t.Fatalf("recording parts after the end: %+v, want the one WebM of %d bytes (or more, with its duration)", got, len(b))
	}
}
