package stt_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"candor/processor/stt"
)

// realtimeTrack is the librivox recordings separated by 1.5 s of silence.
func realtimeTrack(tb testing.TB, limitMS int) []int16 {
	var pcm []int16
	for len(pcm) < limitMS*stt.SampleRate/1000 {
		for _, r := range loadLibrivox(tb) {
			pcm = append(pcm, silence(1500)...)
			pcm = append(pcm, r.pcm...)
		}
	}
	return append(pcm[:limitMS*stt.SampleRate/1000], silence(1500)...)
}

// feedRealtime writes 20 ms pieces on a real-time schedule from t0 and
// returns how far behind schedule the writes fell at worst.
func feedRealtime(tb testing.TB, st stt.Stream, pcm []int16, t0 time.Time) time.Duration {
	const chunk = stt.SampleRate / 50
	var worst time.Duration
	for i, off := 0, 0; off < len(pcm); i, off = i+1, off+chunk {
		due := t0.Add(time.Duration(i) * 20 * time.Millisecond)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		} else {
			worst = max(worst, -d)
		}
		if err := st.Write(pcm[off:min(off+chunk, len(pcm))]); err != nil {
			tb.Fatal(err)
		}
	}
	return worst
}

func percentile(ms []float64, p float64) float64 {
	if len(ms) == 0 {
		return 0
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	return s[min(int(p*float64(len(s))), len(s)-1)]
}

// BenchmarkPocketsphinxResultLatency feeds real recordings in real time and
// measures, per utterance, from the moment the sample at the utterance's
// end was written to the moment its Result arrived.
func BenchmarkPocketsphinxResultLatency(b *testing.B) {
	pcm := realtimeTrack(b, 60000)
	eng := newPocketsphinx(b)
	var lat []float64
	for b.Loop() {
		var mu sync.Mutex
		var t0 time.Time
		st, err := eng.NewStream(context.Background(), 0, func(r stt.Result) {
			mu.Lock()
			l := float64(time.Since(t0.Add(time.Duration(r.EndMS) * time.Millisecond)).Milliseconds())
			lat = append(lat, l)
			mu.Unlock()
			b.Logf("%6d-%6d ms: result +%4.0f ms: %q", r.StartMS, r.EndMS, l, r.Text)
		})
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // model load, as at the start of an interview
		mu.Lock()
		t0 = time.Now()
		mu.Unlock()
		feedRealtime(b, st, pcm, t0)
		st.Close()
	}
	b.ReportMetric(percentile(lat, 0.5), "p50-ms")
	b.ReportMetric(percentile(lat, 0.95), "p95-ms")
	b.ReportMetric(float64(len(lat)), "utterances")
}

// BenchmarkPocketsphinxConcurrentStreams runs N real-time streams at once
// and reports decoder CPU per second of audio per stream (cpu-rtf), the
// result latency, and how far the feeders fell behind real time.
func BenchmarkPocketsphinxConcurrentStreams(b *testing.B) {
	pcm := realtimeTrack(b, 20000)
	audio := float64(len(pcm)) / stt.SampleRate
	eng := newPocketsphinx(b)
	for _, n := range []int{1, 2, 3, 4, 6} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			var lat []float64
			var cpu time.Duration
			var behind time.Duration
			for b.Loop() {
				var before syscall.Rusage
				syscall.Getrusage(syscall.RUSAGE_CHILDREN, &before)
				var mu sync.Mutex
				var wg sync.WaitGroup
				streams := make([]stt.Stream, n)
				t0 := time.Now().Add(time.Second)
				for i := range streams {
					st, err := eng.NewStream(context.Background(), 0, func(r stt.Result) {
						mu.Lock()
						lat = append(lat, float64(time.Since(t0.Add(time.Duration(r.EndMS)*time.Millisecond)).Milliseconds()))
						mu.Unlock()
					})
					if err != nil {
						b.Fatal(err)
					}
					streams[i] = st
				}
				for _, st := range streams {
					wg.Add(1)
					go func() {
						defer wg.Done()
						w := feedRealtime(b, st, pcm, t0)
						st.Flush(context.Background())
						mu.Lock()
						behind = max(behind, w)
						mu.Unlock()
					}()
				}
				wg.Wait()
				for _, st := range streams {
					st.Close()
				}
				var after syscall.Rusage
				syscall.Getrusage(syscall.RUSAGE_CHILDREN, &after)
				cpu += time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
			}
			b.ReportMetric(cpu.Seconds()/float64(b.N*n)/audio, "cpu-rtf/stream")
			b.ReportMetric(percentile(lat, 0.5), "p50-ms")
			b.ReportMetric(percentile(lat, 0.95), "p95-ms")
			b.ReportMetric(float64(behind.Milliseconds()), "feed-lag-ms")
		})
	}
}
