package web

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"candor/store"
	"candor/web/scorecard"
	"candor/web/scorecard/chatfake"
)

// filesHolding lists the files under dir whose bytes contain any of needles.
func filesHolding(t *testing.T, dir string, needles ...string) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				rel, _ := filepath.Rel(dir, path)
				hits = append(hits, rel+" holds "+n)
			}
		}
		return nil
	})
	return hits
}

func TestEraseCandidateLeavesNothing(t *testing.T) {
	fake := chatfake.Start("sk-eval", chatfake.Quoting)
	defer fake.Close()
	rcv := newReceiver(t, 0)
	e := newTestEnv(t, withEvaluator(&scorecard.OpenAI{BaseURL: fake.URL, APIKey: "sk-eval", Model: "m"}),
		withConfig(func(c *Config) { c.AllowPrivateTargets = true }))
	a := e.tenant(t, "Acme")
	var hook webhookJSON
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/webhooks", Key: a.Key, Body: map[string]any{
		"url": rcv.srv.URL, "events": []string{"candidate.erased", "scorecard.ready"}}}, &hook)
	rcv.mu.Lock()
	rcv.secret = hook.Secret
	rcv.mu.Unlock()

	// Words only this candidate said, in the transcript, the scorecard's
	// evidence and the recording's bytes.
	const secret1, secret2 = "Quixotic marmalade zebras", "Vermilion quartz lighthouse"
	var p, c, iv1, iv2 idJSON
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/positions", Key: a.Key, Body: map[string]any{
		"title": "Engineer", "questions": []string{"Why?"},
		"rubric": []map[string]any{{"name": "Depth", "description": "d", "weight": 1}}}}, &p)
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/candidates", Key: a.Key, Body: map[string]any{
		"name": "Erika Mustermann", "email": "erika@example.com"}}, &c)
	for _, iv := range []*idJSON{&iv1, &iv2} {
		e.must(t, 201, request{Method: "POST", Path: "/api/v1/interviews", Key: a.Key, Body: map[string]any{
			"position_id": p.ID, "candidate_id": c.ID}}, iv)
	}
	st1 := e.start(t, a, iv1.ID)
	if res := e.postEntries(t, iv1.ID, st1.Bridge,
		map[string]any{"seq": 1, "speaker": "interviewer", "text": "Why?", "start_ms": 0, "end_ms": 500},
		map[string]any{"seq": 2, "speaker": "candidate", "text": secret1 + " dance at midnight in the old harbour.", "start_ms": 900, "end_ms": 4000},
	); res.Status != 200 {
		t.Fatalf("entries: %d %s", res.Status, res.Body)
	}
	rec := append(oggBytes(4096), []byte(secret1)...)
	e.must(t, 200, request{Method: "PUT", Path: "/api/v1/bridge/interviews/" + iv1.ID + "/recording", Key: st1.Bridge,
		ContentType: "audio/ogg", Body: rec}, nil)
	e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + iv1.ID + "/end", Key: a.Key}, nil)
	e.ensureCompletedEvent(t, a.ID, iv1.ID)
	waitUntil(t, "the scorecard quotes the candidate", func() bool {
		sc := e.scorecard(t, a.Key, iv1.ID)
		return sc.Status == "ready" && len(sc.Criteria) == 1 && strings.Contains(sc.Criteria[0].Evidence[0].Quote, "Quixotic")
	})
	// The second interview is still running when the erasure comes.
	st2 := e.start(t, a, iv2.ID)
	if res := e.postEntries(t, iv2.ID, st2.Bridge, entry(1, secret2+" at dawn")); res.Status != 200 {
		t.Fatalf("entries: %d", res.Status)
	}
	if hits := filesHolding(t, e.dataDir, secret1, secret2); len(hits) == 0 {
		t.Fatal("the byte search finds nothing even before erasure: it proves nothing")
	}
	// A search indexes what is queued (entries reach the index in batches)
	// and finds the words; the index keeps them as stemmed, lower-case terms.
	var found struct {
		Hits []json.RawMessage `json:"hits"`
	}
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/search?q=marmalade", Key: a.Key}, &found)
	if len(found.Hits) == 0 {
		t.Fatal("a search for the candidate's word finds nothing before erasure")
	}
	ftsTerms := []string{"marmalad", "quixot", "lighthous", "mustermann"}
	if hits := filesHolding(t, e.dataDir, ftsTerms...); len(hits) < len(ftsTerms) {
		t.Fatalf("the index terms are not on disk before erasure (%v): the search would prove nothing", hits)
	}
	destroyedBefore := len(e.machines.destroys())

	e.must(t, 204, request{Method: "DELETE", Path: "/api/v1/candidates/" + c.ID, Key: a.Key}, nil)

	if len(e.machines.destroys()) != destroyedBefore+1 {
		t.Error("the running interview's machine was not destroyed before the erasure")
	}
	for _, path := range []string{
		"/api/v1/candidates/" + c.ID,
		"/api/v1/interviews/" + iv1.ID, "/api/v1/interviews/" + iv1.ID + "/transcript",
		"/api/v1/interviews/" + iv1.ID + "/transcript?format=vtt", "/api/v1/interviews/" + iv1.ID + "/events",
		"/api/v1/interviews/" + iv1.ID + "/recording", "/api/v1/interviews/" + iv1.ID + "/video",
		"/api/v1/interviews/" + iv1.ID + "/scorecard", "/api/v1/interviews/" + iv1.ID + "/report.pdf",
		"/api/v1/interviews/" + iv2.ID, "/api/v1/interviews/" + iv2.ID + "/transcript",
	} {
		if res := e.do(t, request{Method: "GET", Path: path, Key: a.Key}); res.Status != 404 {
			t.Errorf("GET %s after erasure: %d, want 404", path, res.Status)
		}
	}
	e.must(t, 404, request{Method: "DELETE", Path: "/api/v1/candidates/" + c.ID, Key: a.Key}, nil)
	if res := e.postEntries(t, iv2.ID, st2.Bridge, entry(2, secret2+" again")); res.Status < 400 {
		t.Errorf("the erased interview's processor can still post entries: %d", res.Status)
	}

	// The candidate.erased webhook fires (and carries no words).
	var erasedBody string
	waitUntil(t, "candidate.erased is delivered", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		for _, b := range rcv.bodies {
			if strings.Contains(string(b), `"candidate.erased"`) {
				erasedBody = string(b)
				return true
			}
		}
		return false
	})
	if !strings.Contains(erasedBody, c.ID) || strings.Contains(erasedBody, "Erika") {
		t.Errorf("candidate.erased body %s", erasedBody)
	}

	// Nothing of theirs is left in the data dir: database, WAL, recordings,
	// processor dirs.
	if hits := filesHolding(t, e.dataDir, append([]string{secret1, secret2, "Erika Mustermann", "erika@example.com"}, ftsTerms...)...); len(hits) > 0 {
		t.Errorf("erased data is still on disk: %v", hits)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.dataDir, "recordings", a.ID)); len(entries) > 0 {
		var names []string
		for _, en := range entries {
			names = append(names, en.Name())
		}
		t.Errorf("recording files remain: %v", names)
	}
	if fi, err := os.Stat(filepath.Join(e.dataDir, "candor.db-wal")); err == nil && fi.Size() > 0 {
		t.Logf("WAL is %d bytes after erasure (later writes)", fi.Size())
	}

	// The audit log says who erased what, without personal data; owners only.
	var audit struct {
		Entries []auditJSON `json:"entries"`
	}
	e.must(t, 403, request{Method: "GET", Path: "/api/v1/audit", Key: a.Key}, nil) // API keys act as recruiters
	owner := e.login(t, a, store.RoleOwner)
	res := e.must(t, 200, request{Method: "GET", Path: "/api/v1/audit", Session: &owner}, &audit)
	if len(audit.Entries) == 0 || audit.Entries[0].Action != "candidate.erased" || audit.Entries[0].Subject.ID != c.ID ||
		audit.Entries[0].Actor.Kind != "api_key" {
		t.Fatalf("audit %s", res.Body)
	}
	var data map[string]any
	json.Unmarshal(audit.Entries[0].Data, &data)
	if data["interviews"] != float64(2) {
		t.Errorf("audit data %v", data)
	}
	if strings.Contains(string(res.Body), "Erika") || strings.Contains(string(res.Body), "Quixotic") {
		t.Errorf("the audit log holds personal data: %s", res.Body)
	}
	viewer := e.login(t, a, store.RoleViewer)
	e.must(t, 403, request{Method: "GET", Path: "/api/v1/audit", Session: &viewer}, nil)
}

func TestEraseInterviewKeepsTheCandidate(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	ivID := e.seedTranscript(t, a, "Ada Lovelace")
	var iv interviewJSON
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + ivID, Key: a.Key}, &iv)
	b := e.tenant(t, "Bobco")
	e.must(t, 404, request{Method: "DELETE", Path: "/api/v1/interviews/" + ivID, Key: b.Key}, nil)
	viewer := e.login(t, a, store.RoleViewer)
	e.must(t, 403, request{Method: "DELETE", Path: "/api/v1/interviews/" + ivID, Session: &viewer, CSRF: viewer.CSRF}, nil)

	e.must(t, 204, request{Method: "DELETE", Path: "/api/v1/interviews/" + ivID, Key: a.Key}, nil)
	e.must(t, 404, request{Method: "GET", Path: "/api/v1/interviews/" + ivID + "/transcript", Key: a.Key}, nil)
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/candidates/" + iv.CandidateID, Key: a.Key}, nil)
	if hits := filesHolding(t, e.dataDir, "moved payments between banks"); len(hits) > 0 {
		t.Errorf("erased transcript on disk: %v", hits)
	}
}

func TestRetentionSweepsOldRecordingsAndTranscripts(t *testing.T) {
	e := newTestEnv(t, withConfig(func(c *Config) { c.RetentionInterval = -1 }))
	a := e.tenant(t, "Acme")
	ivID := e.seedTranscript(t, a, "Ada Lovelace")
	var ret retentionJSON
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/retention", Key: a.Key}, &ret)
	if ret.RecordingsDays != nil || ret.TranscriptsDays != nil {
		t.Fatalf("default retention %+v, want keep forever", ret)
	}
	owner := e.login(t, a, store.RoleOwner)
	for _, bad := range []string{`{"recordings_days":0}`, `{"transcripts_days":-3}`, `{"recordings_days":"ten"}`} {
		e.must(t, 400, request{Method: "PUT", Path: "/api/v1/retention", Session: &owner, CSRF: owner.CSRF, Body: bad}, nil)
	}
	recruiter := e.login(t, a, store.RoleRecruiter)
	e.must(t, 403, request{Method: "PUT", Path: "/api/v1/retention", Session: &recruiter, CSRF: recruiter.CSRF, Body: `{"recordings_days":7}`}, nil)
	e.must(t, 200, request{Method: "PUT", Path: "/api/v1/retention", Session: &owner, CSRF: owner.CSRF,
		Body: `{"recordings_days":7,"transcripts_days":30}`}, &ret)
	if *ret.RecordingsDays != 7 || *ret.TranscriptsDays != 30 {
		t.Fatalf("retention %+v", ret)
	}

	ctx := t.Context()
	// A recording segment on disk, as the bridge stores one.
	rel := filepath.ToSlash(filepath.Join("recordings", a.ID, ivID, "000000000000-seg1.ogg"))
	if err := os.MkdirAll(filepath.Join(e.dataDir, "recordings", a.ID, ivID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dataDir, filepath.FromSlash(rel)), oggBytes(2048), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.db.SetRecording(ctx, a.ID, ivID, rel); err != nil {
		t.Fatal(err)
	}
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + ivID + "/recording", Key: a.Key}, nil)
	e.srv.sweep(ctx, time.Now().Add(6*24*time.Hour))
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + ivID + "/recording", Key: a.Key}, nil)
	if e.entryCount(t, a.ID, ivID) != 3 {
		t.Fatal("a young transcript was swept")
	}
	e.srv.sweep(ctx, time.Now().Add(8*24*time.Hour))
	if e.entryCount(t, a.ID, ivID) != 3 {
		t.Fatal("the transcript went with the recording's age")
	}
	if _, err := os.Stat(filepath.Join(e.dataDir, "recordings", a.ID, ivID)); !os.IsNotExist(err) {
		t.Errorf("the recording's files outlived its retention: %v", err)
	}
	e.must(t, 404, request{Method: "GET", Path: "/api/v1/interviews/" + ivID + "/recording", Key: a.Key}, nil)
	e.srv.sweep(ctx, time.Now().Add(31*24*time.Hour))
	if n := e.entryCount(t, a.ID, ivID); n != 0 {
		t.Fatalf("%d entries after the transcript's age", n)
	}
	var audit struct {
		Entries []auditJSON `json:"entries"`
	}
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/audit", Session: &owner}, &audit)
	var actions []string
	for _, en := range audit.Entries {
		actions = append(actions, en.Action)
	}
	if !strings.Contains(strings.Join(actions, ","), "transcript.expired") || !strings.Contains(strings.Join(actions, ","), "recording.expired") {
		t.Errorf("audit actions %v", actions)
	}
	if hits := filesHolding(t, e.dataDir, "moved payments between banks"); len(hits) > 0 {
		t.Errorf("swept transcript on disk: %v", hits)
	}
}

// The retention sweep also prunes the outbox: events every consumer has
// finished go once they are older than outboxKeep; younger ones and any a
// consumer has yet to handle stay.
func TestTheSweepPrunesFinishedOutboxEvents(t *testing.T) {
	e := newTestEnv(t, withConfig(func(c *Config) { c.OutboxPoll = 10 * time.Millisecond }))
	ctx := t.Context()
	a := e.tenant(t, "Acme")
	e.seed(t, a)
	evs, err := e.db.OutboxAfter(ctx, 0, 100)
	if err != nil || len(evs) == 0 {
		t.Fatalf("outbox %+v, %v", evs, err)
	}
	last := evs[len(evs)-1].ID
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, _ := e.db.OutboxCursor(ctx, scorerConsumer)
		w, _ := e.db.OutboxCursor(ctx, webhookConsumer)
		if s >= last && w >= last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumers at %d and %d, want both past %d", s, w, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.srv.sweep(ctx, time.Now().Add(outboxKeep-time.Hour))
	if left, _ := e.db.OutboxAfter(ctx, 0, 100); len(left) != len(evs) {
		t.Fatalf("%d of %d events left after a sweep within outboxKeep", len(left), len(evs))
	}
	e.srv.sweep(ctx, time.Now().Add(outboxKeep+time.Hour))
	if left, _ := e.db.OutboxAfter(ctx, 0, 100); len(left) != 0 {
		t.Fatalf("%d events left after every consumer finished them and outboxKeep passed", len(left))
	}
}
