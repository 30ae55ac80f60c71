package media

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// reassemblyLog records what a Reassembler delivered and skipped, in order.
type reassemblyLog struct {
	mu     sync.Mutex
	events []string
}

func newReassemblyLog() *reassemblyLog { return &reassemblyLog{} }

func (l *reassemblyLog) deliver(seq int64, chunk []byte) {
	l.add(fmt.Sprintf("%d:%s", seq, chunk))
}

func (l *reassemblyLog) skipped(seq int64) { l.add(fmt.Sprintf("skip %d", seq)) }

func (l *reassemblyLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *reassemblyLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func ptr[T any](v T) *T { return &v }

// The gap tests run in a synctest bubble: time is the bubble's, so they
// can say exactly when a gap is skipped, and take no wall time.

func TestReassemblerSkipsAGapAfterTheTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newReassemblyLog()
		r := NewReassembler(50*time.Millisecond, l.deliver, l.skipped)
		defer r.Close()
		r.Push(0, []byte("a"))
		r.Push(3, []byte("d"))
		r.Push(4, []byte("e"))
		time.Sleep(49 * time.Millisecond)
		synctest.Wait()
		if got := l.get(); !slices.Equal(got, []string{"0:a"}) {
			t.Fatalf("before the timeout got %v, want only 0:a (the gap still awaited)", got)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		want := []string{"0:a", "skip 1", "skip 2", "3:d", "4:e"}
		if got := l.get(); !slices.Equal(got, want) {
			t.Fatalf("at the timeout got %v, want %v", got, want)
		}
		// A chunk of the skipped gap arriving late is a duplicate; the stream goes on.
		if !r.Push(2, []byte("late")) {
			t.Error("late chunk of a skipped gap was not reported as duplicate")
		}
		r.Push(6, []byte("g"))
		r.Push(5, []byte("f"))
		synctest.Wait()
		if got, want := l.get(), append(want, "5:f", "6:g"); !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}

func TestReassemblerWaitsAgainForASecondGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newReassemblyLog()
		r := NewReassembler(40*time.Millisecond, l.deliver, l.skipped)
		defer r.Close()
		r.Push(0, []byte("a"))
		r.Push(2, []byte("c"))
		r.Push(5, []byte("f"))
		time.Sleep(40 * time.Millisecond)
		synctest.Wait()
		if got, want := l.get(), []string{"0:a", "skip 1", "2:c"}; !slices.Equal(got, want) {
			t.Fatalf("after one timeout got %v, want %v (the second gap waits its own timeout)", got, want)
		}
		time.Sleep(40 * time.Millisecond)
		synctest.Wait()
		want := []string{"0:a", "skip 1", "2:c", "skip 3", "skip 4", "5:f"}
		if got := l.get(); !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}

func TestReassemblerFlushDeliversEverythingHeld(t *testing.T) {
	l := newReassemblyLog()
	r := NewReassembler(time.Hour, l.deliver, l.skipped)
	defer r.Close()
	r.Push(10, []byte("a"))
	r.Push(14, []byte("e"))
	r.Push(12, []byte("c"))
	r.Flush()
	want := []string{"10:a", "skip 11", "12:c", "skip 13", "14:e"}
	if got := l.get(); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	r.Push(15, []byte("f"))
	if got := l.get(); got[len(got)-1] != "15:f" {
		t.Fatalf("after Flush the stream continues at 15; got %v", got)
	}
}

func TestReassemblerCloseStopsItsTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newReassemblyLog()
		r := NewReassembler(10*time.Millisecond, l.deliver, l.skipped)
		r.Push(0, []byte("a"))
		r.Push(2, []byte("c"))
		r.Close()
		r.Close() // idempotent
		if !r.Push(3, []byte("d")) {
			t.Error("Push after Close was accepted")
		}
		time.Sleep(30 * time.Millisecond)
		synctest.Wait()
		if got := l.get(); !slices.Equal(got, []string{"0:a"}) {
			t.Fatalf("after Close got %v", got)
		}
	})
}
