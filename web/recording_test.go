package web

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// wavBytes is a WAV header followed by n bytes of silence.
func wavBytes(n int) []byte {
	h := []byte("RIFF\x00\x00\x00\x00WAVEfmt ")
	h = binary.LittleEndian.AppendUint32(h, 16)
	h = append(h, 1, 0, 1, 0)
	h = binary.LittleEndian.AppendUint32(h, 16000)
	h = binary.LittleEndian.AppendUint32(h, 32000)
	h = append(h, 2, 0, 16, 0)
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(n))
	binary.LittleEndian.PutUint32(h[4:], uint32(36+n))
	return append(h, make([]byte, n)...)
}

// webmBytes starts like every WebM file (the EBML magic).
func webmBytes(n int) []byte {
	b := make([]byte, n)
	copy(b, []byte{0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01})
	return b
}

func TestRecordingUploadsOfEveryTypeAreServedAsThatType(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	for _, tc := range []struct {
		name, contentType string
		body              []byte
		served            string
	}{
		{"Ogg/Opus from WHIP is served as audio/ogg", "audio/ogg", oggBytes(300), "audio/ogg"},
		{"WebM from MediaRecorder chunks is served as audio/webm", "audio/webm", webmBytes(300), "audio/webm"},
		{"WAV from the PCM paths is served as audio/wav", "audio/wav", wavBytes(320), "audio/wav"},
		{"an octet stream is typed by its magic bytes", "application/octet-stream", wavBytes(64), "audio/wav"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, iv := e.seed(t, a)
			tok := e.start(t, a, iv).Bridge
			e.must(t, 200, request{Method: "PUT", Path: "/api/v1/bridge/interviews/" + iv + "/recording", Key: tok,
				ContentType: tc.contentType, Body: tc.body}, nil)
			res := e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + iv + "/recording", Key: a.Key}, nil)
			if got := res.Header.Get("Content-Type"); got != tc.served {
				t.Errorf("Content-Type %q, want %q", got, tc.served)
			}
			if !bytes.Equal(res.Body, tc.body) {
				t.Errorf("served %d bytes, uploaded %d", len(res.Body), len(tc.body))
			}
			var got interviewJSON
			e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + iv, Key: a.Key}, &got)
			if got.RecordingURL == nil || len(got.RecordingParts) != 1 || got.RecordingParts[0].ContentType != tc.served {
				t.Errorf("recording_url %v, parts %+v", got.RecordingURL, got.RecordingParts)
			}
		})
	}
}

func TestRecordingUploadsWhoseBytesBelieTheirTypeAreRefused(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	tok := e.start(t, a, iv).Bridge
	for _, tc := range []struct {
		name, contentType string
		body              []byte
		status            int
	}{
		{"Ogg bytes sent as WAV are a 400", "audio/wav", oggBytes(100), 400},
		{"WAV bytes sent as WebM are a 400", "audio/webm", wavBytes(100), 400},
		{"a RIFF that is not WAVE is a 400", "audio/wav", []byte("RIFF\x00\x00\x00\x00AVI LIST"), 400},
		{"an octet stream of no known type is a 400", "application/octet-stream", []byte("ID3\x03 an mp3"), 400},
		{"a body shorter than any header is a 400", "audio/webm", []byte{0x1a, 0x45}, 400},
		{"an mp3 content type is a 415", "audio/mpeg", oggBytes(100), 415},
		{"a bad segment name is a 400", "audio/ogg", oggBytes(100), 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request{Method: "PUT", Path: "/api/v1/bridge/interviews/" + iv + "/recording", Key: tok, ContentType: tc.contentType, Body: tc.body}
			if strings.Contains(tc.name, "segment") {
				req.Header = map[string]string{"Candor-Recording-Segment": "../../etc"}
			}
			res := e.do(t, req)
			if res.Status != tc.status {
				t.Errorf("status %d, want %d: %s", res.Status, tc.status, res.Body)
			}
		})
	}
	e.must(t, 404, request{Method: "GET", Path: "/api/v1/interviews/" + iv + "/recording", Key: a.Key}, nil)
}

func TestAReplacementProcessorsRecordingIsKeptBesideItsPredecessors(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	b := e.tenant(t, "Bobco")
	_, _, iv := e.seed(t, a)
	tok := e.start(t, a, iv).Bridge
	put := func(segment string, startMS string, contentType string, body []byte) {
		t.Helper()
		e.must(t, 200, request{Method: "PUT", Path: "/api/v1/bridge/interviews/" + iv + "/recording", Key: tok,
			ContentType: contentType, Body: body,
			Header: map[string]string{"Candor-Recording-Segment": segment, "Candor-Recording-Start-Ms": startMS}}, nil)
	}
	first := oggBytes(5000)   // WHIP, the first 90 s
	second := wavBytes(64000) // the replacement, on the WebSocket, from 87 s
	put("aaaa", "0", "audio/ogg", oggBytes(3000))
	put("aaaa", "0", "audio/ogg", first) // the same processor again: replaces its segment
	put("bbbb", "87000", "audio/wav", second)

	var got interviewJSON
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + iv, Key: a.Key}, &got)
	if len(got.RecordingParts) != 2 || got.RecordingParts[0].StartMS != 0 || got.RecordingParts[1].StartMS != 87000 ||
		got.RecordingParts[0].Bytes != int64(len(first)) || got.RecordingParts[1].ContentType != "audio/wav" {
		t.Fatalf("recording_parts %+v", got.RecordingParts)
	}
	if got.RecordingURL == nil || *got.RecordingURL != got.RecordingParts[0].URL {
		t.Errorf("recording_url %v is not part 1 %q", got.RecordingURL, got.RecordingParts[0].URL)
	}
	res := e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + iv + "/recording", Key: a.Key}, nil)
	if !bytes.Equal(res.Body, first) || res.Header.Get("Content-Type") != "audio/ogg" {
		t.Errorf("part 1: %d bytes of %s", len(res.Body), res.Header.Get("Content-Type"))
	}
	res = e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + iv + "/recording?part=2", Key: a.Key}, nil)
	if !bytes.Equal(res.Body, second) || res.Header.Get("Content-Type") != "audio/wav" {
		t.Errorf("part 2: %d bytes of %s", len(res.Body), res.Header.Get("Content-Type"))
	}
	e.must(t, 404, request{Method: "GET", Path: "/api/v1/interviews/" + iv + "/recording?part=3", Key: a.Key}, nil)

	// The same processor switching format (its WHIP session gave way to a
	// WebSocket) replaces its Ogg with the WAV of everything it heard.
	put("aaaa", "0", "audio/wav", wavBytes(96000))
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + iv, Key: a.Key}, &got)
	if len(got.RecordingParts) != 2 || got.RecordingParts[0].ContentType != "audio/wav" {
		t.Errorf("after the format change: %+v", got.RecordingParts)
	}

	for _, path := range []string{"/recording", "/recording?part=2"} {
		e.must(t, 404, request{Method: "GET", Path: "/api/v1/interviews/" + iv + path, Key: b.Key}, nil)
	}
}

func TestAProcessorsCompressedOriginalReplacesTheWAVPartsItUploadedAsItWent(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	tok := e.start(t, a, iv).Bridge
	put := func(segment string, startMS string, contentType string, body []byte) {
		t.Helper()
		e.must(t, 200, request{Method: "PUT", Path: "/api/v1/bridge/interviews/" + iv + "/recording", Key: tok,
			ContentType: contentType, Body: body,
			Header: map[string]string{"Candor-Recording-Segment": segment, "Candor-Recording-Start-Ms": startMS}}, nil)
	}
	parts := func() []recordingPartJSON {
		t.Helper()
		var got interviewJSON
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + iv, Key: a.Key}, &got)
		return got.RecordingParts
	}
	// A predecessor's part, and this processor's first three parts as it
	// recorded (60 s each).
	put("old1-1", "0", "audio/wav", wavBytes(32000))
	put("abcd-1", "10000", "audio/wav", wavBytes(64000))
	put("abcd-2", "70000", "audio/wav", wavBytes(64000))
	put("abcd-3", "130000", "audio/wav", wavBytes(64000))
	put("abcd-extra", "130000", "audio/wav", wavBytes(640)) // not a numbered part of abcd
	if got := parts(); len(got) != 5 || got[1].StartMS != 10000 || got[3].StartMS != 130000 {
		t.Fatalf("parts while recording: %+v", got)
	}
	// At its end the processor uploads its clean original of all it heard.
	orig := oggBytes(9000)
	put("abcd", "10000", "audio/ogg", orig)
	got := parts()
	if len(got) != 3 || got[0].StartMS != 0 || got[1].StartMS != 10000 || got[1].ContentType != "audio/ogg" || got[1].Bytes != int64(len(orig)) || got[2].Bytes != int64(44+640) {
		t.Fatalf("parts after the original: %+v, want the predecessor's, the original and abcd-extra", got)
	}
}
