package realtime_test

import (
	"testing"

	"candor/realtime"
)

func BenchmarkIdleMemory(b *testing.B) {
	per, err := realtime.BenchIdleMemory(b.Context(), 1000)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(per, "B/viewer")
}

func TestBenchFunctionsMeasureWhatTheyClaim(t *testing.T) {
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
		if _, err := realtime.BenchIdleMemory(t.Context(), -1); err == nil {
			t.Fatal("negative connections accepted")
		}
	})
}
