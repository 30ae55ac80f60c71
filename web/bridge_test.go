package web

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"candor/processor/contract"
	"candor/store"
)

func TestBridgeEntries(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	st := e.start(t, a, iv)
	tok := st.Bridge

	t.Run("a replayed batch is stored once", func(t *testing.T) {
		batch := []map[string]any{entry(1, "one"), entry(2, "two"), entry(3, "three")}
		var first, again struct{ Inserted, LastSeq int64 }
		e.postEntries(t, iv, tok, batch...).decode(t, &first)
		res := e.postEntries(t, iv, tok, batch...)
		if res.Status != 200 {
			t.Fatalf("replay: %d %s", res.Status, res.Body)
		}
		res.decode(t, &again)
		if first.Inserted != 3 || again.Inserted != 0 {
			t.Errorf("inserted %d then %d, want 3 then 0", first.Inserted, again.Inserted)
		}
		if n := e.entryCount(t, a.ID, iv); n != 3 {
			t.Errorf("%d entries stored, want 3", n)
		}
	})

	bad := func(mut func(map[string]any)) map[string]any {
		en := entry(5, "five")
		mut(en)
		return en
	}
	tooMany := make([]map[string]any, 501)
	for i := range tooMany {
		tooMany[i] = entry(int64(10+i), "x")
	}
	tests := []struct {
		name    string
		batch   []map[string]any
		mention string
	}{
		{"an empty text rejects the batch", []map[string]any{entry(4, "ok"), bad(func(m map[string]any) { m["text"] = "  " })}, "entries[1].text"},
		{"an unknown speaker rejects the batch", []map[string]any{entry(4, "ok"), bad(func(m map[string]any) { m["speaker"] = "narrator" })}, "entries[1].speaker"},
		{"a negative start rejects the batch", []map[string]any{entry(4, "ok"), bad(func(m map[string]any) { m["start_ms"] = -1 })}, "entries[1].start_ms"},
		{"an end before the start rejects the batch", []map[string]any{entry(4, "ok"), bad(func(m map[string]any) { m["end_ms"] = 10 })}, "entries[1].end_ms"},
		{"a zero seq rejects the batch", []map[string]any{entry(4, "ok"), bad(func(m map[string]any) { m["seq"] = 0 })}, "entries[1].seq"},
		{"a missing seq rejects the batch", []map[string]any{entry(4, "ok"), bad(func(m map[string]any) { delete(m, "seq") })}, "entries[1].seq"},
		{"a seq too far ahead rejects the batch", []map[string]any{entry(4, "ok"), bad(func(m map[string]any) { m["seq"] = 3 + 10001 })}, "seq 10004"},
		{"a seq twice in a batch rejects it", []map[string]any{entry(4, "ok"), entry(4, "again")}, "entries[1].seq"},
		{"a confidence above 1 rejects the batch", []map[string]any{entry(4, "ok"), bad(func(m map[string]any) { m["confidence"] = 1.5 })}, "entries[1].confidence"},
		{"an unknown field rejects the batch", []map[string]any{entry(4, "ok"), bad(func(m map[string]any) { m["mood"] = "happy" })}, "mood"},
		{"more than 500 entries reject the batch", tooMany, "at most 500"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := e.postEntries(t, iv, tok, tc.batch...)
			if res.Status != 400 || !strings.Contains(string(res.Body), tc.mention) {
				t.Errorf("status %d, want 400 mentioning %q: %s", res.Status, tc.mention, res.Body)
			}
			if n := e.entryCount(t, a.ID, iv); n != 3 {
				t.Errorf("%d entries stored, want still 3", n)
			}
		})
	}
	t.Run("a seq at the jump limit is accepted", func(t *testing.T) {
		e.must(t, 200, request{Method: "POST", Path: "/api/v1/bridge/interviews/" + iv + "/entries", Key: tok,
			Body: map[string]any{"entries": []map[string]any{entry(3+10000, "far")}}}, nil)
	})
}

func TestBridgeTokens(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	b := e.tenant(t, "Bobco")
	_, _, ivX := e.seed(t, a)
	_, _, ivY := e.seed(t, a)
	_, _, ivB := e.seed(t, b)
	_, _, ivScheduled := e.seed(t, a)
	tokX := e.start(t, a, ivX).Bridge
	e.start(t, a, ivY)
	tokB := e.start(t, b, ivB).Bridge

	paths := []struct{ method, suffix string }{
		{"POST", "/entries"}, {"POST", "/events"}, {"GET", "/state"}, {"PUT", "/recording"},
	}
	cases := []struct {
		name, interview, token string
	}{
		{"the token of X cannot reach Y of the same tenant", ivY, tokX},
		{"the token of another tenant's interview cannot reach Y", ivY, tokB},
		{"an API key is not a processor token", ivY, a.Key},
		{"no token is refused", ivY, ""},
		{"an unknown interview answers like a wrong token", "iv_missing", tokX},
		{"a scheduled interview has no valid token", ivScheduled, tokX},
	}
	for _, tc := range cases {
		for _, p := range paths {
			t.Run(fmt.Sprintf("%s (%s %s)", tc.name, p.method, p.suffix), func(t *testing.T) {
				req := request{Method: p.method, Path: "/api/v1/bridge/interviews/" + tc.interview + p.suffix, Key: tc.token}
				switch p.suffix {
				case "/entries":
					req.Body = map[string]any{"entries": []map[string]any{entry(1, "intruder")}}
				case "/events":
					req.Body = map[string]any{"type": "heartbeat", "media_ms": 99999}
				case "/recording":
					req.Body, req.ContentType = oggBytes(64), "audio/ogg"
				}
				res := e.do(t, req)
				if res.Status != 401 || res.errorCode() != CodeUnauthorized {
					t.Errorf("status %d, want 401 unauthorized: %s", res.Status, res.Body)
				}
			})
		}
	}
	t.Run("nothing was written to Y", func(t *testing.T) {
		if n := e.entryCount(t, a.ID, ivY); n != 0 {
			t.Errorf("%d entries on Y", n)
		}
		iv, err := e.db.Interview(context.Background(), a.ID, ivY)
		if err != nil || iv.MediaMS != 0 || iv.RecordingPath != "" {
			t.Errorf("Y = %+v (err %v), want untouched", iv, err)
		}
	})
	t.Run("the bridge closes when the interview ends", func(t *testing.T) {
		e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + ivX + "/end", Key: a.Key}, nil)
		res := e.postEntries(t, ivX, tokX, entry(1, "late"))
		if res.Status != 409 {
			t.Errorf("status %d, want 409: %s", res.Status, res.Body)
		}
		if n := e.entryCount(t, a.ID, ivX); n != 0 {
			t.Errorf("%d entries stored after the end", n)
		}
	})
}

func TestBridgeEventsAndState(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	tok := e.start(t, a, iv).Bridge
	post := func(body any) response {
		return e.do(t, request{Method: "POST", Path: "/api/v1/bridge/interviews/" + iv + "/events", Key: tok, Body: body})
	}
	for _, body := range []map[string]any{
		{"type": "ready", "media_ms": 0},
		{"type": "heartbeat", "media_ms": 4200},
		{"type": "error", "message": "stt engine restarted", "data": map[string]any{"engine": "pocketsphinx"}},
		{"type": "ended", "media_ms": 4300},
	} {
		if res := post(body); res.Status != 200 {
			t.Fatalf("event %v: %d %s", body["type"], res.Status, res.Body)
		}
	}
	for _, tc := range []struct {
		name string
		body any
	}{
		{"an unknown type is a 400", map[string]any{"type": "party"}},
		{"a missing type is a 400", map[string]any{"media_ms": 1}},
		{"a heartbeat without media_ms is a 400", map[string]any{"type": "heartbeat"}},
		{"an error without message is a 400", map[string]any{"type": "error"}},
		{"a negative media_ms is a 400", map[string]any{"type": "heartbeat", "media_ms": -5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if res := post(tc.body); res.Status != 400 {
				t.Errorf("status %d: %s", res.Status, res.Body)
			}
		})
	}
	question := entry(2, "Tell me about a system you built.")
	question["speaker"] = "interviewer"
	followUp := entry(4, "Could you say a little more?")
	followUp["speaker"] = "interviewer"
	e.postEntries(t, iv, tok, entry(1, "a"), question, entry(3, "b"), followUp, entry(7, "c"))
	var state contract.State
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/bridge/interviews/" + iv + "/state", Key: tok}, &state)
	// The last heartbeat said 4200 ms, but entry 7 ends at 7900 ms: a
	// replacement continues after the transcript, not before it. The
	// store numbered the five entries 1..5 as it committed them (the
	// processor's own 7 only dedupes its retries); the processor is the
	// interview's first launch, epoch 1.
	want := contract.State{LastSeq: 5, MediaMS: 7900, Status: string(store.StatusRunning), InterviewerTurns: 2,
		InterviewerTexts: []string{"Tell me about a system you built.", "Could you say a little more?"}, Epoch: 1}
	if !reflect.DeepEqual(state, want) {
		t.Errorf("state = %+v, want %+v", state, want)
	}
	var evs struct{ Events []eventJSON }
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + iv + "/events", Key: a.Key}, &evs)
	var types []string
	for _, ev := range evs.Events {
		types = append(types, ev.Type)
	}
	if got := strings.Join(types, ","); got != "interview.starting,machine.launched,processor.ready,error,processor.ended" {
		t.Errorf("event types %s", got)
	}
}

func TestBridgeRecording(t *testing.T) {
	e := newTestEnv(t, withConfig(func(c *Config) { c.RecordingLimit = 10_000 }))
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	tok := e.start(t, a, iv).Bridge
	path := "/api/v1/bridge/interviews/" + iv + "/recording"

	for _, tc := range []struct {
		name, contentType string
		body              []byte
		status            int
	}{
		{"a body that is not Ogg is a 400", "audio/ogg", []byte("RIFF....WAVEfmt "), 400},
		{"an empty body is a 400", "audio/ogg", []byte{}, 400},
		{"a JSON content type is a 415", "application/json", oggBytes(100), 415},
		{"a recording past the limit is a 413", "audio/ogg", oggBytes(10_001), 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.do(t, request{Method: "PUT", Path: path, Key: tok, ContentType: tc.contentType, Body: tc.body})
			if res.Status != tc.status {
				t.Errorf("status %d, want %d: %s", res.Status, tc.status, res.Body)
			}
			e.must(t, 404, request{Method: "GET", Path: "/api/v1/interviews/" + iv + "/recording", Key: a.Key}, nil)
		})
	}

	rec := oggBytes(5000)
	e.must(t, 200, request{Method: "PUT", Path: path, Key: tok, ContentType: "audio/ogg", Body: rec}, nil)
	stored, _ := filepath.Glob(filepath.Join(e.dataDir, "recordings", a.ID, iv, "*.ogg"))
	if len(stored) != 1 {
		t.Fatalf("recording files on disk: %v", stored)
	}
	onDisk, err := os.ReadFile(stored[0])
	if err != nil || !bytes.Equal(onDisk, rec) {
		t.Fatalf("recording on disk: %d bytes, err %v", len(onDisk), err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(e.dataDir, "recordings", a.ID, iv, ".upload-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	res := e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + iv + "/recording", Key: a.Key}, nil)
	if !bytes.Equal(res.Body, rec) || res.Header.Get("Content-Type") != "audio/ogg" {
		t.Errorf("download: %d bytes, type %q", len(res.Body), res.Header.Get("Content-Type"))
	}
	res = e.must(t, 206, request{Method: "GET", Path: "/api/v1/interviews/" + iv + "/recording", Key: a.Key,
		Header: map[string]string{"Range": "bytes=100-199"}}, nil)
	if !bytes.Equal(res.Body, rec[100:200]) {
		t.Errorf("range download differs")
	}
	var got interviewJSON
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + iv, Key: a.Key}, &got)
	if got.RecordingURL == nil || !strings.HasSuffix(*got.RecordingURL, "/api/v1/interviews/"+iv+"/recording") {
		t.Errorf("recording_url = %v", got.RecordingURL)
	}
}
