package store

import (
	"context"
	"testing"
	"time"
)

// The outbox keeps what any consumer has yet to finish, and what is newer
// than the cutoff; the rest goes.
func TestPruneOutboxKeepsWhatAConsumerHasNotFinished(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	for _, name := range []string{"Acme", "Globex", "Initech"} {
		newFixture(t, db, name) // each interview's creation is an outbox event
	}
	all, err := db.OutboxAfter(ctx, 0, 100)
	if err != nil || len(all) < 3 {
		t.Fatalf("outbox = %d events, %v", len(all), err)
	}
	consumers := []string{"scorer", "webhooks"}
	later := time.Now().Add(time.Hour)
	prune := func(cutoff time.Time) int64 {
		t.Helper()
		n, err := db.PruneOutbox(ctx, consumers, cutoff)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	left := func() int {
		evs, _ := db.OutboxAfter(ctx, 0, 100)
		return len(evs)
	}
	if n := prune(later); n != 0 || left() != len(all) {
		t.Fatalf("pruned %d with no consumer cursors, want 0", n)
	}
	if err := db.SetOutboxCursor(ctx, "scorer", all[len(all)-1].ID); err != nil {
		t.Fatal(err)
	}
	if n := prune(later); n != 0 {
		t.Fatalf("pruned %d while the webhooks consumer has no cursor, want 0", n)
	}
	if err := db.SetOutboxCursor(ctx, "webhooks", all[1].ID); err != nil {
		t.Fatal(err)
	}
	if n := prune(time.Now().Add(-time.Hour)); n != 0 {
		t.Fatalf("pruned %d events newer than the cutoff", n)
	}
	if n := prune(later); n != 2 || left() != len(all)-2 {
		t.Fatalf("pruned %d, %d left; want the 2 both consumers finished gone", n, left())
	}
	rest, _ := db.OutboxAfter(ctx, 0, 100)
	if rest[0].ID != all[2].ID {
		t.Errorf("the first event left is %d, want %d (not finished by webhooks)", rest[0].ID, all[2].ID)
	}
}
