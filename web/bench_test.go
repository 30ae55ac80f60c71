package web

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"
)

// BenchmarkAPIPositions measures the REST API end to end over loopback HTTP
// with a real SQLite file: one iteration creates a position and reads it
// back. It reports requests/s and the p99 latency of a single request.
func BenchmarkAPIPositions(b *testing.B) {
	e := newTestEnv(b)
	a := e.tenant(b, "Acme")
	client := e.ts.Client()
	body, _ := json.Marshal(map[string]any{
		"title": "Backend engineer", "description": "Go, SQLite, WebRTC",
		"questions": []string{"Tell me about yourself.", "What did you build last?"},
		"rubric":    []map[string]any{{"name": "Go", "description": "idiomatic Go", "weight": 2}},
	})
	call := func(method, url string, body []byte, want int) []byte {
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+a.Key)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			b.Fatalf("%s %s: %d %s", method, url, res.StatusCode, out)
		}
		return out
	}
	lat := make([]time.Duration, 0, 2*b.N)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		t0 := time.Now()
		out := call("POST", e.ts.URL+"/api/v1/positions", body, 201)
		t1 := time.Now()
		var p idJSON
		if err := json.Unmarshal(out, &p); err != nil {
			b.Fatal(err)
		}
		call("GET", e.ts.URL+"/api/v1/positions/"+p.ID, nil, 200)
		lat = append(lat, t1.Sub(t0), time.Since(t1))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
