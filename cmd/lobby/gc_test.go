package main

import (
	"runtime"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live, minHeap uint64
		want          int
	}{
		{0, 64 << 20, maxGCPercent},
		{1 << 20, 64 << 20, maxGCPercent},  // 6 300 % wanted, capped
		{16 << 20, 64 << 20, 300},          // a goal of 64 MiB
		{40 << 20, 64 << 20, minGCPercent}, // 60 % would do: Go's default
		{64 << 20, 64 << 20, minGCPercent},
		{1 << 30, 64 << 20, minGCPercent},
	} {
		if got := gcPercentFor(c.live, c.minHeap); got != c.want {
			t.Errorf("gcPercentFor(%d, %d) = %d, want %d", c.live, c.minHeap, got, c.want)
		}
	}
}

// TestGCTunerRaisesThePercentAndRestoresIt: with a minimum heap far above
// the test's live heap, the collection after the start leaves the
// percent at its bound; stopping puts Go's back.
func TestGCTunerRaisesThePercentAndRestoresIt(t *testing.T) {
	t.Setenv("GOGC", "") // set by the environment, it would stand
	before := readGCPercent()
	stop := startGCTuner(1 << 40)
	deadline := time.Now().Add(10 * time.Second)
	for readGCPercent() != maxGCPercent {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("GC percent %d after collections, want %d", readGCPercent(), maxGCPercent)
		}
		runtime.GC()
		runtime.Gosched() // the cleanup runs on a goroutine of its own
	}
	stop()
	if got := readGCPercent(); got != before {
		t.Fatalf("GC percent %d after stop, want %d", got, before)
	}
}
