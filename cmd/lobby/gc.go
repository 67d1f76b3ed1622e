package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// defaultGCMinHeap is --gc-min-heap's default.
const defaultGCMinHeap = 64 << 20

// maxGCMinHeap bounds --gc-min-heap (1 TiB), so that gcPercentFor's
// (minHeap-live)*100 cannot overflow.
const maxGCMinHeap = 1 << 40

// Bounds of the GC percent the tuner sets: Go's default at the low end,
// so a large heap is collected as Go would; at most a goal of 11× the
// live heap at the high end.
const (
	minGCPercent = 100
	maxGCPercent = 1000
)

// gcTuner keeps the collector's heap goal at least minHeap while the live
// heap is small. With Go's default (GOGC=100, a goal of twice the live
// heap and at least 4 MiB) a server of a few MiB live under chat traffic
// collects every second, and on a core of its own each collection's mark
// phase shares the P with the sessions. Measured (cmd/lobbybench/README.md,
// "The collector"): 10 % less server CPU per delivery at 20 000
// deliveries/s in rooms of 20, 7 % more connect/close cycles. A flat
// GOGC=400 raised idle memory by half (16 KB a connection instead of 11),
// since 20 000 connections are a large live heap; scaling the percent
// with the live heap keeps Go's default there.
type gcTuner struct {
	minHeap uint64
	before  int // the percent to restore on stop
	mu      sync.Mutex
	stopped bool // under mu, so that no tune sets the percent after stop restored it
	sample  []metrics.Sample
}

// gcPercentFor is the GC percent whose goal, live×(1+p/100), is at least
// minHeap, within the bounds.
func gcPercentFor(live, minHeap uint64) int {
	if live == 0 {
		return maxGCPercent
	}
	if live >= minHeap {
		return minGCPercent
	}
	p := (minHeap - live) * 100 / live
	return int(min(max(p, minGCPercent), maxGCPercent))
}

// startGCTuner tunes the collector after every collection, until stop is
// called. It does nothing when minHeap is 0 or when GOGC is set: the
// operator's choice stands.
func startGCTuner(minHeap uint64) (stop func()) {
	if minHeap == 0 || os.Getenv("GOGC") != "" {
		return func() {}
	}
	t := &gcTuner{minHeap: minHeap, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.before = readGCPercent()
	t.arm()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.stopped = true
		debug.SetGCPercent(t.before)
	}
}

// gcMark is garbage whose cleanup runs once a collection has found it
// unreachable: the tuner's hook into every cycle. The pointer keeps it
// out of the tiny allocator, whose blocks are freed together.
type gcMark struct{ _ *int }

// readGCPercent is the collector's percent now, as GOGC or
// debug.SetGCPercent last set it.
func readGCPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return minGCPercent
	}
	return int(s[0].Value.Uint64())
}

func (t *gcTuner) arm() {
	runtime.AddCleanup(&gcMark{}, func(t *gcTuner) { t.tune() }, t)
}

func (t *gcTuner) tune() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		debug.SetGCPercent(gcPercentFor(t.sample[0].Value.Uint64(), t.minHeap))
	}
	t.arm()
}
