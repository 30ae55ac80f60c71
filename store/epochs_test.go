package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// A retired processor's late entries and its replacement's are numbered by
// each processor from the same base; neither may be lost, none stored
// twice, and the seqs a viewer sees only grow.
func TestDeliveriesOfTwoEpochsNeverCollide(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	f := newFixture(t, db, "Acme")
	tid, iid := f.tenant.ID, f.interview.ID
	entry := func(n int64, text string, startMS int64) Entry {
		return Entry{Seq: n, Speaker: SpeakerCandidate, Text: text, StartMS: startMS, EndMS: startMS + 500}
	}
	deliver := func(epoch int64, es ...Entry) []Entry {
		t.Helper()
		in, err := db.Deliver(ctx, tid, iid, epoch, es)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	deliver(1, entry(1, "one", 0), entry(2, "two", 1000))
	// The replacement numbers on from the last stored seq (2), as the old
	// one does with what it spooled during the partition: both use 3.
	got := deliver(2, entry(3, "new three", 9000))
	if len(got) != 1 || got[0].Seq != 3 || got[0].LocalSeq != 3 || got[0].Epoch != 2 {
		t.Fatalf("replacement's entry = %+v", got)
	}
	got = deliver(1, entry(3, "old three", 2000), entry(4, "old four", 3000))
	if len(got) != 2 || got[0].Seq != 4 || got[1].Seq != 5 {
		t.Fatalf("retired processor's late entries = %+v, want seqs 4 and 5", got)
	}
	// Retries of either change nothing.
	if again := deliver(1, entry(3, "old three", 2000)); len(again) != 0 {
		t.Errorf("a retried late entry was stored again: %+v", again)
	}
	if again := deliver(2, entry(3, "new three", 9000)); len(again) != 0 {
		t.Errorf("a retried entry was stored again: %+v", again)
	}
	es, err := db.Entries(ctx, tid, iid, 0)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for i, e := range es {
		if e.Seq != int64(i+1) {
			t.Errorf("entry %d has seq %d: seqs must be 1..n", i, e.Seq)
		}
		texts = append(texts, e.Text)
	}
	want := []string{"one", "two", "new three", "old three", "old four"}
	if !slices.Equal(texts, want) {
		t.Errorf("transcript = %q, want %q", texts, want)
	}
	// A viewer that saw seq 3 resumes and misses nothing delivered later.
	later, _ := db.Entries(ctx, tid, iid, 3)
	if len(later) != 2 || later[0].Text != "old three" {
		t.Errorf("resume after seq 3 = %+v", later)
	}
}

// A replacement that drains its predecessor keeps the old credential as a
// retired one, bounded by the hand-over and the drain's deadline, until
// the old processor reports drained.
func TestADrainingReplacementRetiresTheOldCredential(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	f := newFixture(t, db, "Acme")
	tid, iid := f.tenant.ID, f.interview.ID
	if err := db.SetProcessorTokenHash(ctx, tid, iid, "hash-1"); err != nil {
		t.Fatal(err)
	}
	old, err := db.CreateMachine(ctx, Machine{TenantID: tid, InterviewID: iid, Provider: "local", State: MachineRunning})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := db.ProcessorCredentials(ctx, iid)
	if err != nil || pc.Epoch != 1 || pc.TokenHash != "hash-1" || len(pc.Retired) != 0 {
		t.Fatalf("credentials before = %+v, %v", pc, err)
	}
	if err := db.RecordHeartbeat(ctx, tid, iid, 4000, time.Now()); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	h2 := "hash-2"
	_, err = db.Step(ctx, Step{TenantID: tid, InterviewID: iid, Event: "machine.retired", ProcessorTokenHash: &h2,
		Drain: &Drain{MachineID: old.ID, HandoverMediaMS: 9000, Until: until}})
	if err != nil {
		t.Fatal(err)
	}
	pc, err = db.ProcessorCredentials(ctx, iid)
	if err != nil || pc.Epoch != 2 || pc.TokenHash != "hash-2" {
		t.Fatalf("credentials after = %+v, %v", pc, err)
	}
	if len(pc.Retired) != 1 || pc.Retired[0].TokenHash != "hash-1" || pc.Retired[0].Epoch != 1 ||
		pc.Retired[0].HandoverMediaMS != 9000 || !pc.Retired[0].DrainUntil.Equal(until) || pc.Retired[0].MachineID != old.ID {
		t.Fatalf("retired = %+v", pc.Retired)
	}
	iv, _ := db.Interview(ctx, tid, iid)
	if iv.MediaMS != 9000 {
		t.Errorf("media clock = %d, want the hand-over 9000 the replacement continues from", iv.MediaMS)
	}
	// The draining machine is live (reconciliation keeps it) but not the
	// interview's current machine.
	if _, err := db.CurrentMachine(ctx, tid, iid); !errors.Is(err, ErrNotFound) {
		t.Errorf("CurrentMachine = %v, want none: a draining machine is not current", err)
	}
	live, _ := db.ListLiveMachines(ctx)
	if len(live) != 1 || live[0].State != MachineStopping || live[0].DrainUntil == nil {
		t.Errorf("live machines = %+v", live)
	}
	// Its machine destroyed (drain over, or reconciliation), the retired
	// credential dies with it.
	if _, err := db.Step(ctx, Step{TenantID: tid, InterviewID: iid, Event: "machine.drained",
		Retire: []Retirement{{ID: old.ID, State: MachineDestroyed}}}); err != nil {
		t.Fatal(err)
	}
	if pc, _ := db.ProcessorCredentials(ctx, iid); len(pc.Retired) != 0 {
		t.Errorf("a destroyed machine's credential is still listed: %+v", pc.Retired)
	}
	if _, err := db.MarkDrained(ctx, tid, iid, "hash-2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkDrained of the current credential: %v, want ErrNotFound", err)
	}
	m, err := db.MarkDrained(ctx, tid, iid, "hash-1")
	if err != nil || m != old.ID {
		t.Fatalf("MarkDrained = %q, %v", m, err)
	}
	if pc, _ := db.ProcessorCredentials(ctx, iid); len(pc.Retired) != 0 {
		t.Errorf("a drained credential is still listed: %+v", pc.Retired)
	}
	if _, err := db.MarkDrained(ctx, tid, iid, "hash-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkDrained twice: %v, want ErrNotFound", err)
	}
}
