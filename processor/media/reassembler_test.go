package media

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// reassemblyLog records what a Reassembler delivered and skipped, in order.
type reassemblyLog struct {
	mu     sync.Mutex
	events []string
	ch     chan struct{}
}

func newReassemblyLog() *reassemblyLog { return &reassemblyLog{ch: make(chan struct{}, 1000)} }

func (l *reassemblyLog) deliver(seq int64, chunk []byte) {
	l.add(fmt.Sprintf("%d:%s", seq, chunk))
}

func (l *reassemblyLog) skipped(seq int64) { l.add(fmt.Sprintf("skip %d", seq)) }

func (l *reassemblyLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	l.ch <- struct{}{}
}

func (l *reassemblyLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// waitFor waits (bounded) until n events were recorded.
func (l *reassemblyLog) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for len(l.get()) < n {
		select {
		case <-l.ch:
		case <-deadline:
			t.Fatalf("waited for %d events, have %v", n, l.get())
		}
	}
	return l.get()
}

func TestReassemblerOrdersChunks(t *testing.T) {
	type push struct {
		seq int64
		dup bool
	}
	tests := []struct {
		name   string
		expect *int64
		pushes []push
		want   []string
	}{
		{"in-order chunks are delivered at once", nil,
			[]push{{0, false}, {1, false}, {2, false}},
			[]string{"0:c0", "1:c1", "2:c2"}},
		{"out-of-order chunks are held until the gap fills", nil,
			[]push{{0, false}, {2, false}, {3, false}, {1, false}},
			[]string{"0:c0", "1:c1", "2:c2", "3:c3"}},
		{"duplicates are ignored, held or delivered", nil,
			[]push{{5, false}, {5, true}, {7, false}, {7, true}, {6, false}, {6, true}, {4, true}},
			[]string{"5:c5", "6:c6", "7:c7"}},
		{"an expected start holds an early later chunk", ptr(int64(0)),
			[]push{{1, false}, {0, false}},
			[]string{"0:c0", "1:c1"}},
		{"chunks absurdly far ahead are refused", ptr(int64(0)),
			[]push{{0, false}, {maxAhead + 5, true}, {1, false}},
			[]string{"0:c0", "1:c1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newReassemblyLog()
			r := NewReassembler(time.Hour, l.deliver, l.skipped)
			defer r.Close()
			if tt.expect != nil {
				r.Expect(*tt.expect)
			}
			for _, p := range tt.pushes {
				if dup := r.Push(p.seq, []byte(fmt.Sprintf("c%d", p.seq))); dup != p.dup {
					t.Errorf("Push(%d) duplicate = %v, want %v", p.seq, dup, p.dup)
				}
			}
			if got := l.get(); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestReassemblerSkipsAGapAfterTheTimeout(t *testing.T) {
	l := newReassemblyLog()
	r := NewReassembler(50*time.Millisecond, l.deliver, l.skipped)
	defer r.Close()
	r.Push(0, []byte("a"))
	r.Push(3, []byte("d"))
	r.Push(4, []byte("e"))
	got := l.waitFor(t, 5)
	want := []string{"0:a", "skip 1", "skip 2", "3:d", "4:e"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// A chunk of the skipped gap arriving late is a duplicate; the stream goes on.
	if !r.Push(2, []byte("late")) {
		t.Error("late chunk of a skipped gap was not reported as duplicate")
	}
	r.Push(6, []byte("g"))
	r.Push(5, []byte("f"))
	got = l.waitFor(t, 7)
	if want := append(want, "5:f", "6:g"); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestReassemblerWaitsAgainForASecondGap(t *testing.T) {
	l := newReassemblyLog()
	r := NewReassembler(40*time.Millisecond, l.deliver, l.skipped)
	defer r.Close()
	r.Push(0, []byte("a"))
	r.Push(2, []byte("c"))
	r.Push(5, []byte("f"))
	got := l.waitFor(t, 6)
	want := []string{"0:a", "skip 1", "2:c", "skip 3", "skip 4", "5:f"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
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
	if got := l.get(); !slices.Equal(got, []string{"0:a"}) {
		t.Fatalf("after Close got %v", got)
	}
}
