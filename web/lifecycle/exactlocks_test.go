package lifecycle

import (
	"testing"
	"time"
)

func TestExactLocks(t *testing.T) {
	t.Run("another interview is not held up by a held lock", func(t *testing.T) {
		var l ExactLocks
		unlockA := l.Lock("iv_a")
		defer unlockA()
		done := make(chan struct{})
		go func() {
			l.Lock("iv_b")()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("locking iv_b waited for iv_a")
		}
	})
	t.Run("the same interview waits, and nothing is left behind", func(t *testing.T) {
		var l ExactLocks
		unlock := l.Lock("iv_a")
		got := make(chan struct{})
		go func() {
			defer close(got)
			l.Lock("iv_a")()
		}()
		select {
		case <-got:
			t.Fatal("a second lock of iv_a did not wait")
		case <-time.After(20 * time.Millisecond):
		}
		unlock()
		<-got
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.locks) != 0 {
			t.Errorf("%d locks left after every unlock", len(l.locks))
		}
	})
}
