package processor

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"candor/processor/contract"
)

// fakeControl is the control plane's side of the bridge protocol (our own
// protocol): entries stored idempotently on seq, events appended, the
// recording kept. Failure modes let tests simulate outages.
type fakeControl struct {
	t           testing.TB
	interviewID string
	token       string
	srv         *httptest.Server

	mu        sync.Mutex
	entries   map[int64]contract.Entry
	inserts   map[int64]int // how many times each seq was newly inserted
	posts     int           // POST /entries requests received
	events    []contract.Event
	recording []byte // the latest upload
	// recordingType and recordingSegment are its Content-Type and segment
	// header; recordings keeps the latest upload of every segment.
	recordingType, recordingSegment string
	recordings                      map[string][]byte
	recordingStarts                 map[string]int64 // Candor-Recording-Start-Ms by segment
	mediaMS                         int64
	// down answers 503 without storing; loseAcks stores, then answers 503 as
	// if the control plane restarted before the ack left it.
	down, loseAcks int
	refuse         func(contract.Entry) bool // a batch holding such an entry is refused with 400
	// interviewerTexts, when set, is reported in the state as the proposed
	// interviewer_turns/interviewer_texts fields.
	interviewerTexts []string
	// retired, when set, answers every entries and events call as the
	// control plane answers a replaced processor: retired.
	retired bool
	changed chan struct{}
}

func newFakeControl(t testing.TB, interviewID, token string) *fakeControl {
	t.Helper()
	f := &fakeControl{
		t: t, interviewID: interviewID, token: token,
		entries: map[int64]contract.Entry{}, inserts: map[int64]int{},
		changed: make(chan struct{}),
	}
	mux := http.NewServeMux()
	base := "/api/v1/bridge/interviews/{id}"
	mux.HandleFunc("GET "+base+"/state", f.auth(f.state))
	mux.HandleFunc("POST "+base+"/entries", f.auth(f.postEntries))
	mux.HandleFunc("POST "+base+"/events", f.auth(f.postEvent))
	mux.HandleFunc("PUT "+base+"/recording", f.auth(f.putRecording))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeControl) URL() string { return f.srv.URL }

func (f *fakeControl) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != f.interviewID || r.Header.Get("Authorization") != "Bearer "+f.token {
			http.Error(w, `{"error":{"code":"unauthorized","message":"bad bridge token"}}`, http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

// notify wakes waiters; f.mu is held.
func (f *fakeControl) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeControl) state(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var last int64
	for seq := range f.entries {
		last = max(last, seq)
	}
	st := contract.State{LastSeq: last, MediaMS: f.mediaMS, Status: "running"}
	if f.interviewerTexts != nil {
		n := int64(len(f.interviewerTexts))
		st.InterviewerTurns, st.InterviewerTexts = n, f.interviewerTexts
	}
	json.NewEncoder(w).Encode(st)
}

func (f *fakeControl) postEntries(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Entries []contract.Entry `json:"entries"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.posts++
	if f.down > 0 {
		f.down--
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	for _, e := range body.Entries {
		if f.refuse != nil && f.refuse(e) {
			http.Error(w, `{"error":{"code":"invalid","message":"bad entry"}}`, http.StatusBadRequest)
			return
		}
	}
	for _, e := range body.Entries {
		if _, ok := f.entries[e.Seq]; !ok {
			f.entries[e.Seq] = e
			f.inserts[e.Seq]++
		}
	}
	f.notify()
	if f.loseAcks > 0 {
		f.loseAcks--
		http.Error(w, "restarting", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(contract.EntriesAnswer{Received: len(body.Entries), Retired: f.retired})
}

func (f *fakeControl) postEvent(w http.ResponseWriter, r *http.Request) {
	var ev contract.Event
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	if ev.Type == contract.EventHeartbeat && ev.MediaMS == nil {
		// As the control plane's bridge does.
		http.Error(w, "media_ms is required for a heartbeat", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.events = append(f.events, ev)
	f.notify()
	retired := f.retired
	f.mu.Unlock()
	json.NewEncoder(w).Encode(contract.EventAnswer{OK: true, Retired: retired})
}

func (f *fakeControl) putRecording(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.recording = b
	f.recordingType = r.Header.Get("Content-Type")
	f.recordingSegment = r.Header.Get(contract.RecordingSegmentHeader)
	if f.recordings == nil {
		f.recordings = map[string][]byte{}
	}
	f.recordings[f.recordingSegment] = b
	if f.recordingStarts == nil {
		f.recordingStarts = map[string]int64{}
	}
	f.recordingStarts[f.recordingSegment], _ = strconv.ParseInt(r.Header.Get(contract.RecordingStartHeader), 10, 64)
	f.notify()
	f.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// Entries returns the stored entries ordered by seq.
func (f *fakeControl) Entries() []contract.Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]contract.Entry, 0, len(f.entries))
	for _, e := range f.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b contract.Entry) int { return int(a.Seq - b.Seq) })
	return out
}

func (f *fakeControl) EventTypes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, ev := range f.events {
		if ev.Type != "heartbeat" {
			out = append(out, ev.Type)
		}
	}
	return out
}

func (f *fakeControl) Heartbeats() []contract.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []contract.Event
	for _, ev := range f.events {
		if ev.Type == "heartbeat" {
			out = append(out, ev)
		}
	}
	return out
}

// waitFor blocks until cond (called with f.mu held) is true; it fails the
// test after the deadline given by waitLimit.
func (f *fakeControl) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := testDeadline(t)
	for {
		f.mu.Lock()
		ok := cond()
		ch := f.changed
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (f *fakeControl) waitEvent(t *testing.T, typ string) {
	t.Helper()
	f.waitFor(t, "bridge event "+typ, func() bool {
		return slices.ContainsFunc(f.events, func(ev contract.Event) bool { return ev.Type == typ })
	})
}

func TestFakeControlStoresEachSeqOnceAndHonoursFailureModes(t *testing.T) {
	f := newFakeControl(t, "iv_1", "tok")
	br := newBridge(f.URL(), "iv_1", "tok")
	ctx := t.Context()
	es := []contract.Entry{{Seq: 1, Speaker: "candidate", Text: "a"}, {Seq: 2, Speaker: "candidate", Text: "b"}}

	f.mu.Lock()
	f.down, f.loseAcks = 1, 1
	f.mu.Unlock()
	if err := br.PostEntries(ctx, es); err == nil {
		t.Fatal("post while down: want error")
	}
	if got := len(f.Entries()); got != 0 {
		t.Fatalf("stored while down: %d entries", got)
	}
	if err := br.PostEntries(ctx, es); err == nil {
		t.Fatal("post with lost ack: want error")
	}
	if err := br.PostEntries(ctx, es); err != nil {
		t.Fatalf("post: %v", err)
	}
	if got := f.Entries(); len(got) != 2 || got[0].Text != "a" || f.inserts[1] != 1 || f.inserts[2] != 1 {
		t.Fatalf("stored %+v inserts %v", got, f.inserts)
	}
	if err := newBridge(f.URL(), "iv_1", "wrong").PostEntries(ctx, es); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v", err)
	}
	st, err := br.State(ctx)
	if err != nil || st.LastSeq != 2 {
		t.Fatalf("state %+v %v", st, err)
	}
}
