package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
)

// sender delivers the spool to the bridge: one goroutine, batches in seq order,
// capped exponential backoff on failure. Entries leave the spool only after the
// bridge acked them.
type sender struct {
	spool  *spool
	bridge *bridge
	log    *slog.Logger
	retry  backoff

	poke  chan struct{} // new entries were spooled
	hurry chan struct{} // a drain is waiting: skip the current backoff

	mu        sync.Mutex
	delivered chan struct{} // closed and replaced after every ack
	lastErr   error
}

const sendBatch = 100

func newSender(sp *spool, br *bridge, t Timing, log *slog.Logger) *sender {
	return &sender{
		spool:     sp,
		bridge:    br,
		log:       log,
		retry:     newBackoff(t),
		poke:      make(chan struct{}, 1),
		hurry:     make(chan struct{}, 1),
		delivered: make(chan struct{}),
	}
}

// Notify tells the sender that the spool grew.
func (s *sender) Notify() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// Run sends until ctx is done. Undelivered rows from a previous run go first
// because the spool is read in seq order.
func (s *sender) Run(ctx context.Context) {
	failures := 0
	for {
		es, err := s.spool.Pending(ctx, sendBatch)
		if err == nil && len(es) > 0 {
			err = s.bridge.PostEntries(ctx, es)
			if refused(err) && len(es) > 1 {
				// One bad entry refuses the whole batch: find it by sending
				// one entry at a time.
				es = es[:1]
				err = s.bridge.PostEntries(ctx, es)
			}
			if refused(err) {
				// The bridge will never take this entry; retrying would block
				// every later one. Drop it loudly.
				s.log.Error("bridge refused an entry; dropped", "seq", es[0].Seq, "err", err)
				err = nil
			}
			if err == nil {
				err = s.spool.Ack(ctx, es)
			}
			if err == nil {
				failures = 0
				s.retry.Reset()
				s.signal(nil)
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			s.signal(err)
			// Log the first failure and then every tenth, not every retry.
			if failures == 1 || failures%10 == 0 {
				s.log.Warn("deliver entries to bridge", "err", err, "failures", failures)
			}
			if !sleep(ctx, s.retry.Next(), s.hurry) {
				return
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-s.poke:
		case <-s.hurry:
		}
	}
}

func (s *sender) signal(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr = err
	if err == nil {
		close(s.delivered)
		s.delivered = make(chan struct{})
	}
}

// Drain returns when the spool is empty, or ctx's error (with the last
// delivery error) when it is not empty in time. The sender must be running.
func (s *sender) Drain(ctx context.Context) error {
	for {
		s.mu.Lock()
		delivered, lastErr := s.delivered, s.lastErr
		s.mu.Unlock()
		n, err := s.spool.Len(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		select {
		case s.hurry <- struct{}{}:
		default:
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return &drainError{pending: n, cause: lastErr}
			}
			return &drainError{pending: n, cause: ctx.Err()}
		case <-delivered:
		}
	}
}

type drainError struct {
	pending int
	cause   error
}

func (e *drainError) Error() string {
	return fmt.Sprintf("spool not drained: %d entries undelivered: %v", e.pending, e.cause)
}

func (e *drainError) Unwrap() error { return e.cause }

// refused reports a permanent refusal of the request's content (400 or 422),
// as opposed to an outage, auth trouble or throttling, which are retried.
func refused(err error) bool {
	var be *bridgeError
	return errors.As(err, &be) && (be.Status == http.StatusBadRequest || be.Status == http.StatusUnprocessableEntity)
}
