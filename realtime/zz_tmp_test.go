package realtime

import (
	"runtime"
	"testing"
)

func TestTmpSplit(t *testing.T) {
	var a, b runtime.MemStats
	runtime.GC(); runtime.ReadMemStats(&a)
	per, err := BenchIdleMemory(t.Context(), 1000)
	runtime.ReadMemStats(&b)
	t.Log(per, err)
}
