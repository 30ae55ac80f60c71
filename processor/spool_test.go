package processor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"candor/processor/contract"
)

func fastTiming() Timing {
	t := DefaultTiming()
	t.Heartbeat = 100 * time.Millisecond
	t.AnswerPause = 400 * time.Millisecond
	t.ReassemblyGap = 300 * time.Millisecond
	t.RetryMin = 5 * time.Millisecond
	t.RetryMax = 40 * time.Millisecond
	t.EndTimeout = 60 * time.Second
	t.StartTimeout = 20 * time.Second
	t.ShutdownTimeout = 10 * time.Second
	return t
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testDeadline bounds every wait in these tests.
func testDeadline(t *testing.T) <-chan time.Time {
	t.Helper()
	return time.After(90 * time.Second)
}

// runSender runs a sender over sp until the returned stop is called.
func runSender(t *testing.T, sp *spool, br *bridge) (*sender, func()) {
	t.Helper()
	snd := newSender(sp, br, fastTiming(), discardLog())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		snd.Run(ctx)
	}()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return snd, stop
}

func TestSpoolDeliversEachEntryExactlyOnceAcrossAnOutage(t *testing.T) {
	f := newFakeControl(t, "iv_out", "tok")
	// The control plane is down for a while, then restarts twice after having
	// stored a batch but before its ack reached the processor.
	f.mu.Lock()
	f.down, f.loseAcks = 8, 2
	f.mu.Unlock()

	sp, err := openSpool(t.Context(), filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	snd, _ := runSender(t, sp, newBridge(f.URL(), "iv_out", "tok"))
	const n = 250
	for i := int64(1); i <= n; i++ {
		if err := sp.Append(t.Context(), contract.Entry{Seq: i, Speaker: "candidate", Text: fmt.Sprint("word ", i)}); err != nil {
			t.Fatal(err)
		}
		snd.Notify()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := snd.Drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}

	got := f.Entries()
	if len(got) != n {
		t.Fatalf("bridge stored %d entries, want %d", len(got), n)
	}
	for i, e := range got {
		if e.Seq != int64(i+1) || e.Text != fmt.Sprint("word ", i+1) {
			t.Fatalf("entry %d = %+v", i, e)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for seq, k := range f.inserts {
		if k != 1 {
			t.Errorf("seq %d inserted %d times", seq, k)
		}
	}
	if f.down != 0 || f.loseAcks != 0 {
		t.Errorf("outage not exercised: down=%d loseAcks=%d left", f.down, f.loseAcks)
	}
	if left, _ := sp.Len(t.Context()); left != 0 {
		t.Errorf("spool still holds %d entries", left)
	}
}

func TestSpoolSendsUndeliveredRowsFirstAfterARestart(t *testing.T) {
	f := newFakeControl(t, "iv_rs", "tok")
	path := filepath.Join(t.TempDir(), "spool.db")
	sp, err := openSpool(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i <= 5; i++ {
		if err := sp.Append(t.Context(), contract.Entry{Seq: i, Speaker: "candidate", Text: "before"}); err != nil {
			t.Fatal(err)
		}
	}
	sp.Close() // the processor died before delivering anything

	sp, err = openSpool(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if maxSeq, _ := sp.MaxSeq(t.Context()); maxSeq != 5 {
		t.Fatalf("max seq after restart = %d, want 5", maxSeq)
	}
	snd, _ := runSender(t, sp, newBridge(f.URL(), "iv_rs", "tok"))
	if err := sp.Append(t.Context(), contract.Entry{Seq: 6, Speaker: "candidate", Text: "after"}); err != nil {
		t.Fatal(err)
	}
	snd.Notify()
	if err := snd.Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := f.Entries()
	if len(got) != 6 || got[0].Text != "before" || got[5].Text != "after" {
		t.Fatalf("bridge got %+v", got)
	}
}

func TestDrainGivesUpWhenTheBridgeStaysDown(t *testing.T) {
	f := newFakeControl(t, "iv_dn", "tok")
	f.mu.Lock()
	f.down = 1 << 30
	f.mu.Unlock()
	sp, err := openSpool(t.Context(), filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	snd, _ := runSender(t, sp, newBridge(f.URL(), "iv_dn", "tok"))
	if err := sp.Append(t.Context(), contract.Entry{Seq: 1, Speaker: "candidate", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	snd.Notify()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err = snd.Drain(ctx)
	var de *drainError
	if err == nil || !asDrainError(err, &de) || de.pending != 1 {
		t.Fatalf("drain = %v, want a drainError with 1 pending", err)
	}
	if n, _ := sp.Len(t.Context()); n != 1 {
		t.Fatalf("spool lost the entry: len %d", n)
	}
}

func asDrainError(err error, target **drainError) bool {
	de, ok := err.(*drainError)
	*target = de
	return ok
}

func TestAnEntryTheBridgeRefusesIsDroppedWithoutBlockingTheRest(t *testing.T) {
	f := newFakeControl(t, "iv_poison", "tok")
	f.refuse = func(e contract.Entry) bool { return e.Text == "poison" }
	sp, err := openSpool(t.Context(), filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	for i, text := range []string{"a", "b", "poison", "d", "e"} {
		if err := sp.Append(t.Context(), contract.Entry{Seq: int64(i + 1), Speaker: "candidate", Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	snd, _ := runSender(t, sp, newBridge(f.URL(), "iv_poison", "tok"))
	snd.Notify()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := snd.Drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
	var got []string
	for _, e := range f.Entries() {
		got = append(got, e.Text)
	}
	if fmt.Sprint(got) != "[a b d e]" {
		t.Fatalf("bridge stored %v, want every entry but the refused one", got)
	}
}
