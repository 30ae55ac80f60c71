package main

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkCandidateLatency measures, over the real librivox recording
// played by Chromium's fake microphone, the time from the end of each
// candidate utterance in the browser to its transcript entry reaching a
// recruiter's realtime WebSocket. The utterance ends come from an energy
// VAD over the file, placed on the wall clock by the instant the page's
// capture started (window.candorTiming.audioStart). Run it with
//
//	go test -run '^$' -bench CandidateLatency -benchtime 1x .
//
// Each iteration is one whole interview (about 40 s).
func BenchmarkCandidateLatency(b *testing.B) {
	for _, tc := range []struct{ name, query, transport string }{
		{"webrtc", "", "webrtc"},
		{"websocket", "force=ws", "websocket"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var all []time.Duration
			for range b.N {
				res := runInterview(b, interviewOptions{
					Clips:     []string{"0870", "0880", "0890", "0920", "0930"},
					Query:     tc.query,
					Transport: tc.transport,
				})
				all = append(all, res.Latencies...)
				b.Logf("%s: %d candidate entries, recall %.2f, latencies %v", tc.name, len(res.Candidate), res.Recall, res.Latencies)
			}
			if len(all) == 0 {
				b.Fatal("no utterance was matched to an entry")
			}
			slices.Sort(all)
			b.ReportMetric(float64(latencyPercentile(all, 50).Milliseconds()), "p50-ms")
			b.ReportMetric(float64(latencyPercentile(all, 95).Milliseconds()), "p95-ms")
			b.ReportMetric(float64(len(all))/float64(b.N), "utterances/op")
		})
	}
}

// latencyPercentile is the p-th percentile of sorted durations, nearest rank.
func latencyPercentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(len(sorted)-1, i-1))]
}
