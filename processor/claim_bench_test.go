package processor

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkClaimUntilLive measures what the local warm pool waits for: from
// POST /claim on an idle processor (started and left idle first, as a pooled
// one is) until /healthz reports it live. It reports the median as p50-ms.
func BenchmarkClaimUntilLive(b *testing.B) {
	control := newFakeControl(b, "iv_bench", "proc-token")
	var took []time.Duration
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		p := startProcessor(b, control, map[string]string{"CANDOR_POOL_TOKEN": "pool-token", "CANDOR_DATA": dir, "CANDOR_STT": "pocketsphinx"})
		waitWarm(b, p)
		env := interviewEnv(control, dir)
		delete(env, "CANDOR_DATA")
		claim, _ := json.Marshal(map[string]any{"env": env, "plan": nil})
		b.StartTimer()

		start := time.Now()
		req, _ := http.NewRequest(http.MethodPost, p.url+"/claim", strings.NewReader(string(claim)))
		req.Header.Set("Authorization", "Bearer pool-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatalf("claim: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("claim: %s", resp.Status)
		}
		for healthState(b, p) != "live" {
		}
		took = append(took, time.Since(start))

		b.StopTimer()
		if err := p.stop(); err != nil {
			b.Fatalf("Run: %v", err)
		}
		b.StartTimer()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
}

// waitWarm waits until the idle processor answers, and gives it the moment
// a pooled processor has before its claim to prepare.
func waitWarm(tb testing.TB, p *testProcessor) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for healthState(tb, p) != "idle" {
		if time.Now().After(deadline) {
			tb.Fatal("the idle processor never answered /healthz")
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
}

func healthState(tb testing.TB, p *testProcessor) string {
	tb.Helper()
	resp, err := http.Get(p.url + "/healthz")
	if err != nil {
		tb.Fatalf("healthz: %v", err)
	}
	defer resp.Body.Close()
	var h struct{ State string }
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		tb.Fatalf("healthz: %v", err)
	}
	return h.State
}
