package main

import (
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
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

// Quiet release: a burst (a join or reconnect storm) leaves its garbage
// in the heap and the pages of the garbage already collected in the
// process, and neither goes back while the node is quiet: the collector
// runs only as the heap grows (and forces a cycle every two minutes), the
// scavenger keeps the free pages under the heap goal. Measured (`idle` on
// the outside harness, 19 900 connections, 3 s after their join storm):
// 126 MB of heap objects for 100 MB live and about 40 MB of free pages
// kept, 10.3 KB of RSS a connection where the live heap and the stacks
// are 7.2.
const (
	// releaseEvery is how often the node looks for quiet: short, so that
	// the release follows the storm by less than a second.
	releaseEvery = 250 * time.Millisecond
	// A node is quiet for a tick when it allocated no more than
	// 1/quietShare of its live heap in it (and at least quietFloor, for
	// a node with next to nothing live). Measured: 19 900 idle clients'
	// heartbeats allocate 0.5 MB/s on 100 MB live (1/800 of it a tick),
	// their join storm 14 MB/s; chat, 1 000 clients each sending a frame
	// a second, 2.4 MB/s on 7 MB live (1/12 a tick). A busy node
	// collects as its heap grows; a forced collection there would only
	// come before the one due.
	quietShare = 64
	quietFloor = 64 << 10
	// minReleased is the least memory worth a release: a forced
	// collection marks the whole live heap.
	minReleased = 32 << 20
)

// startQuietRelease collects and returns memory to the system when a
// node that holds memory it does not use is quiet again after a burst,
// until stop is called.
func startQuietRelease(log *slog.Logger, every time.Duration) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(every)
		defer tick.Stop()
		s := []metrics.Sample{
			{Name: "/gc/heap/allocs:bytes"},
			{Name: "/gc/heap/live:bytes"},
			{Name: "/memory/classes/heap/objects:bytes"},
			{Name: "/memory/classes/heap/free:bytes"},
		}
		metrics.Read(s)
		last := s[0].Value.Uint64()
		var r releaser
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			metrics.Read(s)
			allocs := s[0].Value.Uint64()
			u := heapUse{live: s[1].Value.Uint64(), objects: s[2].Value.Uint64(), free: s[3].Value.Uint64()}
			release := r.tick(allocs-last, u)
			last = allocs
			if release {
				began := time.Now()
				debug.FreeOSMemory()
				metrics.Read(s)
				last = s[0].Value.Uint64()
				log.Debug("quiet: memory released", "objects_before", u.objects, "free_before", u.free,
					"objects_after", s[2].Value.Uint64(), "took", time.Since(began))
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// heapUse is the heap as runtime/metrics tells it: live bytes at the last
// collection, bytes of objects now (live or garbage), free pages not yet
// returned to the system.
type heapUse struct{ live, objects, free uint64 }

// releaser releases once after each burst: a node quiet since its last
// release (or since it started) has nothing new to give back, and a
// forced collection every few seconds on a steady node would only come
// before the ones due.
type releaser struct{ burst bool }

// tick says whether to release after a tick in which the node allocated
// allocated bytes, its heap now u.
func (r *releaser) tick(allocated uint64, u heapUse) bool {
	if !quietTick(allocated, u.live) {
		r.burst = true
		return false
	}
	if !r.burst || !worthReleasing(u) {
		return false
	}
	r.burst = false
	return true
}

// quietTick says whether a tick in which the node allocated allocated
// bytes, with live bytes live, was quiet.
func quietTick(allocated, live uint64) bool {
	return allocated <= max(quietFloor, live/quietShare)
}

// worthReleasing says whether a heap holds enough it does not use
// (garbage and free pages) to be worth a release: at least minReleased,
// and a quarter of the live heap, so that a forced collection, which
// marks all of it, is not made for little.
func worthReleasing(u heapUse) bool {
	unused := u.free
	if u.objects > u.live {
		unused += u.objects - u.live
	}
	return unused >= max(minReleased, u.live/4)
}
