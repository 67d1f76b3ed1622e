package main

import (
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
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

func TestQuietTickAndWorthReleasing(t *testing.T) {
	for _, c := range []struct {
		name      string
		allocated uint64
		heap      heapUse
		want      bool
	}{
		{"quiet after a burst", 1 << 20, heapUse{live: 80 << 20, objects: 150 << 20}, true},
		{"still busy", 2 << 20, heapUse{live: 80 << 20, objects: 150 << 20}, false},
		{"little live, next to nothing allocated", 60 << 10, heapUse{live: 1 << 20, objects: 40 << 20}, true},
		{"little live, busy", 200 << 10, heapUse{live: 1 << 20, objects: 40 << 20}, false},
		{"too little garbage", 0, heapUse{live: 8 << 20, objects: 30 << 20}, false},
		{"garbage under a quarter of a large live heap", 0, heapUse{live: 400 << 20, objects: 480 << 20}, false},
		{"garbage over a quarter of it", 0, heapUse{live: 400 << 20, objects: 520 << 20}, true},
		{"collected, its pages kept", 0, heapUse{live: 100 << 20, objects: 100 << 20, free: 40 << 20}, true},
		{"garbage and free pages together", 0, heapUse{live: 100 << 20, objects: 120 << 20, free: 20 << 20}, true},
		{"a collection since: objects under live", 0, heapUse{live: 80 << 20, objects: 60 << 20, free: 4 << 20}, false},
	} {
		if got := quietTick(c.allocated, c.heap.live) && worthReleasing(c.heap); got != c.want {
			t.Errorf("%s: quiet and worth releasing (%d, %+v) = %v, want %v", c.name, c.allocated, c.heap, got, c.want)
		}
	}
}

// TestReleaserReleasesOnceABurst: garbage found while quiet is released
// only after a busy tick, once; a node quiet since is left alone.
func TestReleaserReleasesOnceABurst(t *testing.T) {
	garbage := heapUse{live: 80 << 20, objects: 150 << 20}
	var r releaser
	for i, c := range []struct {
		allocated uint64
		want      bool
	}{
		{0, false},        // quiet since the start: nothing of ours to give back
		{10 << 20, false}, // the burst
		{20 << 20, false},
		{0, true},         // quiet again: once
		{0, false},        // and not again while quiet
		{10 << 20, false}, // another burst
		{0, true},
	} {
		if got := r.tick(c.allocated, garbage); got != c.want {
			t.Fatalf("tick %d (allocated %d): release %v, want %v", i, c.allocated, got, c.want)
		}
	}
}

// TestQuietReleaseCollectsAfterABurst: with the collector off, garbage
// left by a burst stays until the release, once the process is quiet,
// collects it and gives it back.
func TestQuietReleaseCollectsAfterABurst(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	s := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	forced := s[0].Value.Uint64()
	stop := startQuietRelease(slog.New(slog.DiscardHandler), 20*time.Millisecond)
	defer stop()
	if n := leaveGarbage(64 << 10); n != 64<<20 {
		t.Fatalf("the burst allocated %d bytes", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		metrics.Read(s)
		if s[0].Value.Uint64() > forced && s[1].Value.Uint64() < 32<<20 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %d forced collections, %d bytes of heap objects; want a release of the burst's 64 MiB",
				s[0].Value.Uint64()-forced, s[1].Value.Uint64())
		}
		runtime.Gosched()
	}
}

// leaveGarbage allocates n KiB, dropped on return.
func leaveGarbage(n int) (bytes int) {
	burst := make([][]byte, 0, n)
	for range n {
		burst = append(burst, make([]byte, 1<<10))
	}
	for _, b := range burst {
		bytes += len(b)
	}
	return bytes
}
