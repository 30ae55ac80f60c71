package media

import (
	"errors"
	"sort"
	"sync"
	"time"
)

// maxAhead bounds how far past the next expected sequence number a chunk may
// be held; anything further is dropped (as a duplicate would be), which keeps
// a hostile or broken client from filling memory.
const maxAhead = 4096

// Reassembler orders the chunks of one stream by sequence number. A chunk is
// delivered as soon as every chunk before it has been; a duplicate, or a chunk
// older than what was already delivered, is ignored; a missing chunk is waited
// for at most gap (counted from when a later chunk is first held) and then
// skipped, reported through skipped once per missing sequence number.
//
// The stream starts at the first sequence number pushed unless Expect says
// otherwise. deliver and skipped are called one at a time, in sequence order,
// from Push, Flush or the Reassembler's timer goroutine, with an internal lock
// held: they must not call back into the Reassembler.
type Reassembler struct {
	gap     time.Duration
	deliver func(seq int64, chunk []byte)
	skipped func(seq int64)

	mu      sync.Mutex
	started bool
	next    int64
	held    map[int64][]byte
	// heldBytes is the size of the chunks in held.
	heldBytes int
	closed    bool
	waiting   bool // a gap timer is armed

	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

// NewReassembler starts the Reassembler's one timer goroutine; Close stops it.
func NewReassembler(gap time.Duration, deliver func(seq int64, chunk []byte), skipped func(seq int64)) *Reassembler {
	if skipped == nil {
		skipped = func(int64) {}
	}
	r := &Reassembler{
		gap:     gap,
		deliver: deliver,
		skipped: skipped,
		held:    map[int64][]byte{},
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	r.wg.Add(1)
	go r.timer()
	return r
}

// Expect fixes the first sequence number of the stream (for example 0, or
// where a predecessor stopped). Without it the first Push decides. It has no
// effect once anything was delivered or held.
func (r *Reassembler) Expect(seq int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		r.started, r.next = true, seq
	}
}

// Push adds a chunk and delivers what is now in order. It reports duplicate
// for a sequence number already delivered, skipped or held, and for chunks
// pushed after Close.
func (r *Reassembler) Push(seq int64, chunk []byte) (duplicate bool) {
	dup, _ := r.PushLimited(seq, chunk, 0)
	return dup
}

// ErrHeldFull is PushLimited's refusal of a chunk that would have to wait
// for an earlier one while the stream already holds its limit.
var ErrHeldFull = errors.New("media: too much audio held out of order")

// PushLimited is Push that holds at most maxHeld bytes out of order (0: no
// limit): a chunk that is next in order is always taken; one that would
// have to wait past the limit is refused with ErrHeldFull and not kept, so
// the client may send it again once the gap is filled or skipped.
func (r *Reassembler) PushLimited(seq int64, chunk []byte, maxHeld int) (duplicate bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return true, nil
	}
	if !r.started {
		r.started, r.next = true, seq
	}
	if seq < r.next || seq-r.next > maxAhead {
		return true, nil
	}
	if _, ok := r.held[seq]; ok {
		return true, nil
	}
	if maxHeld > 0 && seq != r.next && r.heldBytes+len(chunk) > maxHeld {
		return false, ErrHeldFull
	}
	r.held[seq] = chunk
	r.heldBytes += len(chunk)
	r.drain()
	if len(r.held) > 0 && !r.waiting {
		r.waiting = true
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	return false, nil
}

// drain delivers the in-order run at r.next. r.mu is held.
func (r *Reassembler) drain() {
	for {
		chunk, ok := r.held[r.next]
		if !ok {
			break
		}
		delete(r.held, r.next)
		r.heldBytes -= len(chunk)
		r.deliver(r.next, chunk)
		r.next++
		r.waiting = false // the gap that was timed has closed
	}
	if len(r.held) == 0 {
		r.waiting = false
	}
}

// skipGap skips the missing numbers before the lowest held chunk, then
// delivers the run that follows. r.mu is held.
func (r *Reassembler) skipGap() {
	if len(r.held) == 0 {
		return
	}
	lowest := int64(-1)
	for seq := range r.held {
		if lowest < 0 || seq < lowest {
			lowest = seq
		}
	}
	for ; r.next < lowest; r.next++ {
		r.skipped(r.next)
	}
	r.drain()
}

// Flush delivers everything held, in order, skipping (and reporting) gaps.
func (r *Reassembler) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	seqs := make([]int64, 0, len(r.held))
	for seq := range r.held {
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for _, seq := range seqs {
		for ; r.next < seq; r.next++ {
			r.skipped(r.next)
		}
		r.deliver(seq, r.held[seq])
		r.heldBytes -= len(r.held[seq])
		delete(r.held, seq)
		r.next = seq + 1
	}
	r.waiting = false
}

// Close stops the timer goroutine and waits for it. Held chunks are dropped;
// call Flush first to keep them.
func (r *Reassembler) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.held = map[int64][]byte{}
	r.heldBytes = 0
	r.mu.Unlock()
	close(r.done)
	r.wg.Wait()
}

// timer waits gap after each kick; if the gap it was armed for is still open
// then (the held set still waits on the same r.next), the gap is skipped.
func (r *Reassembler) timer() {
	defer r.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	var armedAt int64
	armed := false
	for {
		select {
		case <-r.done:
			t.Stop()
			return
		case <-r.kick:
			r.mu.Lock()
			armedAt = r.next
			r.mu.Unlock()
			armed = true
			t.Reset(r.gap)
		case <-t.C:
			if !armed {
				continue
			}
			armed = false
			r.mu.Lock()
			if r.waiting && !r.closed {
				if r.next == armedAt {
					r.skipGap()
				}
				if len(r.held) > 0 {
					// A later gap (or a gap that moved on) gets its own full wait.
					r.waiting = true
					select {
					case r.kick <- struct{}{}:
					default:
					}
				}
			}
			r.mu.Unlock()
		}
	}
}
