package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFTSQueryTakesOperatorsLiterally(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "",
		"  ":                   "",
		"kubernetes":           `"kubernetes"*`,
		"Rust OR go":           `"Rust" "OR" "go"*`,
		`"quoted" NEAR(a b)`:   `"quoted" "NEAR" "a" "b"*`,
		"ada@example.com":      `"ada@example.com"*`,
		"body:foo -bar ^baz *": `"body" "foo" "bar" "baz"*`,
		"one two three four five six seven eight nine": `"one" "two" "three" "four" "five" "six" "seven" "eight"*`,
	} {
		if got := FTSQuery(in); got != want {
			t.Errorf("FTSQuery(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestSearchFindsEntriesAndCandidatesOfTheTenantOnly(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	a := newFixture(t, db, "Acme")
	b := newFixture(t, db, "Beta")
	if _, err := db.AppendEntries(ctx, a.tenant.ID, a.interview.ID, []Entry{
		{Seq: 1, Speaker: SpeakerInterviewer, Text: "Tell me about a project.", StartMS: 0, EndMS: 2000},
		{Seq: 2, Speaker: SpeakerCandidate, Text: "I migrated our billing to Kubernetes last spring.", StartMS: 4200, EndMS: 9000},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AppendEntries(ctx, b.tenant.ID, b.interview.ID, []Entry{
		{Seq: 1, Speaker: SpeakerCandidate, Text: "Kubernetes at Beta too.", StartMS: 100, EndMS: 900},
	}); err != nil {
		t.Fatal(err)
	}

	hits, err := db.Search(ctx, a.tenant.ID, "kubernet", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 {
		t.Fatalf("hits = %+v, want the one entry of Acme", hits)
	}
	h := hits[0]
	if h.Kind != HitEntry || h.InterviewID != a.interview.ID || h.Seq != 2 || h.StartMS != 4200 ||
		h.CandidateID != a.candidate.ID || h.CandidateName != "Ada" || h.PositionTitle != "Engineer" || h.Speaker != SpeakerCandidate {
		t.Errorf("hit = %+v", h)
	}
	if !strings.Contains(h.Snippet, MarkStart+"Kubernetes"+MarkEnd) {
		t.Errorf("snippet %q does not mark the match", h.Snippet)
	}

	// Candidates are found by name, email and notes, and follow edits.
	c := a.candidate
	c.Notes = "Referred by Grace; strong on databases"
	if _, err := db.UpdateCandidate(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"ada", "ada@example", "databases", "grace"} {
		hits, err := db.Search(ctx, a.tenant.ID, q, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != 1 || hits[0].Kind != HitCandidate || hits[0].CandidateID != a.candidate.ID {
			t.Errorf("Search(%q) = %+v, want Acme's candidate only", q, hits)
		}
	}
	c.Notes = ""
	if _, err := db.UpdateCandidate(ctx, c); err != nil {
		t.Fatal(err)
	}
	if hits, _ := db.Search(ctx, a.tenant.ID, "grace", 10); len(hits) != 0 {
		t.Errorf("after removing the note, Search(grace) = %+v", hits)
	}

	if hits, err := db.Search(ctx, a.tenant.ID, "", 10); err != nil || len(hits) != 0 {
		t.Errorf("empty query: %v, %v", hits, err)
	}
	if _, err := db.Search(ctx, a.tenant.ID, strings.Repeat("x", MaxSearchQuery+1), 10); !errors.Is(err, ErrInvalid) {
		t.Errorf("long query: err = %v, want ErrInvalid", err)
	}
}

// Erasure deletes source rows; the index must follow, including deletes by
// ON DELETE CASCADE from interviews.
func TestSearchIndexForgetsDeletedRows(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	a := newFixture(t, db, "Acme")
	if _, err := db.AppendEntries(ctx, a.tenant.ID, a.interview.ID, []Entry{
		{Seq: 1, Speaker: SpeakerCandidate, Text: "zanzibar", StartMS: 0, EndMS: 10},
	}); err != nil {
		t.Fatal(err)
	}
	err := db.inWrite(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM interviews WHERE id = ?`, a.interview.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM candidates WHERE id = ?`, a.candidate.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"zanzibar", "ada"} {
		if hits, err := db.Search(ctx, a.tenant.ID, q, 10); err != nil || len(hits) != 0 {
			t.Errorf("after erasure Search(%q) = %+v, %v", q, hits, err)
		}
	}
	var docs, fts int
	if err := db.read.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM search_docs), (SELECT count(*) FROM search_fts)`).Scan(&docs, &fts); err != nil {
		t.Fatal(err)
	}
	if docs != 0 || fts != 0 {
		t.Errorf("index rows left after erasure: search_docs %d, search_fts %d", docs, fts)
	}
}

func TestDeletePositionRefusedWhileItHasInterviews(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	a := newFixture(t, db, "Acme")
	b := newFixture(t, db, "Beta")
	if err := db.DeletePosition(ctx, a.tenant.ID, a.position.ID); !errors.Is(err, ErrConflict) {
		t.Errorf("delete with an interview: %v, want ErrConflict", err)
	}
	if err := db.DeletePosition(ctx, b.tenant.ID, a.position.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete of another tenant's position: %v, want ErrNotFound", err)
	}
	p, err := db.CreatePosition(ctx, Position{TenantID: a.tenant.ID, Title: "Spare", InterviewerName: "Ada", Voice: "flite-slt"})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Position(ctx, a.tenant.ID, p.ID); got.InterviewerName != "Ada" || got.Voice != "flite-slt" {
		t.Errorf("stored position = %+v", got)
	}
	if err := db.DeletePosition(ctx, a.tenant.ID, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Position(ctx, a.tenant.ID, p.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
}

func TestUpdateCandidate(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	a := newFixture(t, db, "Acme")
	b := newFixture(t, db, "Beta")
	other, err := db.CreateCandidate(ctx, Candidate{TenantID: a.tenant.ID, Name: "Grace", Email: "grace@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	c := a.candidate
	c.Email = "GRACE@example.com"
	if _, err := db.UpdateCandidate(ctx, c); !errors.Is(err, ErrConflict) {
		t.Errorf("taking another candidate's email: %v, want ErrConflict", err)
	}
	bad := other
	bad.TenantID = b.tenant.ID
	if _, err := db.UpdateCandidate(ctx, bad); !errors.Is(err, ErrNotFound) {
		t.Errorf("another tenant's candidate: %v, want ErrNotFound", err)
	}
	c.Email, c.Name, c.Notes = " ada@new.example ", " Ada L. ", "notes"
	got, err := db.UpdateCandidate(ctx, c)
	if err != nil || got.Email != "ada@new.example" || got.Name != "Ada L." || got.Notes != "notes" {
		t.Errorf("UpdateCandidate = %+v, %v", got, err)
	}
}

func TestListInterviewsFiltersAndSorts(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	a := newFixture(t, db, "Acme")
	grace, err := db.CreateCandidate(ctx, Candidate{TenantID: a.tenant.ID, Name: "Grace 100%", Email: "grace@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	iv2, err := db.CreateInterview(ctx, Interview{TenantID: a.tenant.ID, PositionID: a.position.ID, CandidateID: grace.ID}, "h2")
	if err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string][]string{
		"grace":    {iv2.ID},
		"ADA@":     {a.interview.ID},
		"100%":     {iv2.ID},
		"1_0":      nil,
		"engineer": {iv2.ID, a.interview.ID},
	} {
		got, err := ids(db.ListInterviews(ctx, a.tenant.ID, InterviewFilter{Query: q}))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("Query %q: %v, want %v", q, got, want)
		}
	}
	got, _ := ids(db.ListInterviews(ctx, a.tenant.ID, InterviewFilter{Sort: "candidate"}))
	if strings.Join(got, ",") != a.interview.ID+","+iv2.ID {
		t.Errorf("by candidate: %v", got)
	}
	got, _ = ids(db.ListInterviews(ctx, a.tenant.ID, InterviewFilter{CandidateID: grace.ID}))
	if strings.Join(got, ",") != iv2.ID {
		t.Errorf("by candidate id: %v", got)
	}
}

func TestListInterviewsSortsByScore(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	a := newFixture(t, db, "Acme")
	iv2, err := db.CreateInterview(ctx, Interview{TenantID: a.tenant.ID, PositionID: a.position.ID, CandidateID: a.candidate.ID}, "h2")
	if err != nil {
		t.Fatal(err)
	}
	iv3, err := db.CreateInterview(ctx, Interview{TenantID: a.tenant.ID, PositionID: a.position.ID, CandidateID: a.candidate.ID}, "h3")
	if err != nil {
		t.Fatal(err)
	}
	for id, score := range map[string]string{a.interview.ID: "2.5", iv2.ID: "4.5"} {
		if _, err := db.write.ExecContext(ctx, `INSERT INTO scorecards (interview_id, tenant_id, status, evaluator, body, created_at, updated_at)
			VALUES (?, ?, 'ready', 'test', ?, '', '')`, id, a.tenant.ID, `{"overall":{"score":`+score+`}}`); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := ids(db.ListInterviews(ctx, a.tenant.ID, InterviewFilter{Sort: "score"}))
	if strings.Join(got, ",") != iv2.ID+","+a.interview.ID+","+iv3.ID {
		t.Errorf("by score: %v, want best first and unscored last", got)
	}
	got, _ = ids(db.ListInterviews(ctx, a.tenant.ID, InterviewFilter{Sort: "score_asc"}))
	if strings.Join(got, ",") != a.interview.ID+","+iv2.ID+","+iv3.ID {
		t.Errorf("by score ascending: %v", got)
	}
}

func TestEntriesReachTheSearchIndexInBatchesAndErasedOnesNever(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	a := newFixture(t, db, "Acme")
	pending := func() (n int) {
		t.Helper()
		if err := db.read.QueryRow(`SELECT count(*) FROM search_pending`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := db.AppendEntries(ctx, a.tenant.ID, a.interview.ID, []Entry{
		{Seq: 1, Speaker: SpeakerCandidate, Text: "Quixotic marmalade", StartMS: 0, EndMS: 900},
		{Seq: 2, Speaker: SpeakerCandidate, Text: "Vermilion lighthouse", StartMS: 1000, EndMS: 1900},
	}); err != nil {
		t.Fatal(err)
	}
	// An entry deleted while still queued is skipped, not indexed.
	if _, err := db.write.Exec(`DELETE FROM transcript_entries WHERE interview_id = ? AND seq = 2`, a.interview.ID); err != nil {
		t.Fatal(err)
	}
	// The writer drains the queue by itself, without a search.
	deadline := time.Now().Add(30 * time.Second)
	for pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d entries still queued for the index", pending())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var docs, fts int
	db.read.QueryRow(`SELECT count(*) FROM search_docs WHERE kind = 'entry'`).Scan(&docs)
	db.read.QueryRow(`SELECT count(*) FROM search_fts WHERE search_fts MATCH 'lighthouse OR marmalade'`).Scan(&fts)
	if docs != 1 || fts != 1 {
		t.Fatalf("index holds %d entry docs and %d matching rows, want only the entry that still exists", docs, fts)
	}
	// A search right after an append finds it: it indexes the queue first.
	ins, err := db.AppendEntries(ctx, a.tenant.ID, a.interview.ID, []Entry{
		{Seq: 3, Speaker: SpeakerCandidate, Text: "Zebras everywhere", StartMS: 2000, EndMS: 2900},
	})
	if err != nil || len(ins) != 1 {
		t.Fatal(ins, err)
	}
	if hits, err := db.Search(ctx, a.tenant.ID, "zebras", 10); err != nil || len(hits) != 1 || hits[0].Seq != ins[0].Seq {
		t.Fatalf("search right after the append = %+v, %v; want seq %d", hits, err, ins[0].Seq)
	}
	if hits, _ := db.Search(ctx, a.tenant.ID, "lighthouse", 10); len(hits) != 0 {
		t.Fatalf("a deleted entry was found: %+v", hits)
	}
}
