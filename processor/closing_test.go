package processor

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestSilenceWatchWaitsForQuietAfterTheLastUtterance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w silenceWatch
		done := make(chan time.Time, 1)
		start := time.Now()
		go func() {
			if w.wait(context.Background(), 2*time.Minute) {
				done <- time.Now()
			}
		}()
		// The candidate keeps talking past the closing line: every
		// utterance restarts the two minutes.
		for range 5 {
			time.Sleep(90 * time.Second)
			synctest.Wait()
			select {
			case <-done:
				t.Fatal("ended while the candidate was still talking")
			default:
			}
			w.heard(time.Now())
		}
		got := <-done
		if want := start.Add(5*90*time.Second + 2*time.Minute); !got.Equal(want) {
			t.Errorf("ended at +%s, want +%s (two minutes after the last utterance)", got.Sub(start), want.Sub(start))
		}
	})
}

func TestSilenceWatchStopsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w silenceWatch
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan bool, 1)
		go func() { res <- w.wait(ctx, time.Minute) }()
		time.Sleep(30 * time.Second)
		cancel()
		if <-res {
			t.Error("wait reported silence after its context ended")
		}
	})
}
