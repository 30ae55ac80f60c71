package processor

import (
	"context"
	"sync/atomic"
	"time"
)

// silenceWatch tells when the candidate has been quiet for a while: heard
// moves its clock on every candidate utterance, wait returns once d passes
// with none.
type silenceWatch struct {
	last atomic.Int64 // unix nanoseconds of the latest utterance (or the start of the watch)
}

func (w *silenceWatch) heard(at time.Time) {
	for {
		old := w.last.Load()
		if at.UnixNano() <= old || w.last.CompareAndSwap(old, at.UnixNano()) {
			return
		}
	}
}

// wait blocks until d has passed since the latest utterance heard (or
// since now, if that is later); false if ctx ended first.
func (w *silenceWatch) wait(ctx context.Context, d time.Duration) bool {
	w.heard(time.Now())
	for {
		left := time.Until(time.Unix(0, w.last.Load()).Add(d))
		if left <= 0 {
			return true
		}
		t := time.NewTimer(left)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}
