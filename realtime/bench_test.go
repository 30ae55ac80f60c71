package realtime_test

import (
	"context"
	"testing"

	"candor/realtime"
)

const benchClients = 100

func reportFanout(b *testing.B, run func(ctx context.Context, clients, msgs int) (realtime.FloorResult, error)) {
	b.Helper()
	res, err := run(b.Context(), benchClients, max(b.N, 100))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(0, "ns/op") // includes setup; the figures below are the measurement
	b.ReportMetric(res.PerSecond, "deliveries/s")
	b.ReportMetric(float64(res.P50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
}

// BenchmarkFloor is bare gorilla/websocket fan-out: the floor the hub is
// measured against.
func BenchmarkFloor(b *testing.B) { reportFanout(b, realtime.BenchFloor) }

// BenchmarkHub is the same load through Hub.Publish.
func BenchmarkHub(b *testing.B) { reportFanout(b, realtime.BenchHub) }

func BenchmarkIdleMemory(b *testing.B) {
	per, err := realtime.BenchIdleMemory(b.Context(), 1000)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(per, "B/viewer")
}

func TestBenchFunctionsMeasureWhatTheyClaim(t *testing.T) {
	for name, run := range map[string]func(context.Context, int, int) (realtime.FloorResult, error){
		"floor": realtime.BenchFloor,
		"hub":   realtime.BenchHub,
	} {
		t.Run(name+" delivers every message to every client", func(t *testing.T) {
			res, err := run(t.Context(), 5, 50)
			if err != nil {
				t.Fatal(err)
			}
			if res.Deliveries != 250 || res.PerSecond <= 0 || res.P50 <= 0 || res.P99 < res.P50 || res.MessageBytes != realtime.BenchMessageBytes {
				t.Fatalf("implausible result %+v", res)
			}
			t.Log(res)
		})
	}
	t.Run("idle memory is measured per viewer", func(t *testing.T) {
		per, err := realtime.BenchIdleMemory(t.Context(), 20)
		if err != nil {
			t.Fatal(err)
		}
		if per <= 0 {
			t.Fatalf("bytes per viewer = %v", per)
		}
		t.Logf("%.0f B per idle viewer", per)
	})
	t.Run("bad arguments are refused", func(t *testing.T) {
		if _, err := realtime.BenchFloor(t.Context(), 0, 10); err == nil {
			t.Fatal("zero clients accepted")
		}
		if _, err := realtime.BenchIdleMemory(t.Context(), -1); err == nil {
			t.Fatal("negative connections accepted")
		}
	})
}
