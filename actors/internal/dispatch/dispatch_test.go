package dispatch

import (
	"sync"
	"testing"
)

func TestWorkersRunEveryRunScheduledBeforeAndAfterStop(t *testing.T) {
	w := Start(2, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex // the test's own counter, not an actor's state
	ran := 0
	run := func() {
		defer wg.Done()
		mu.Lock()
		ran++
		mu.Unlock()
	}
	// More than the queue holds: the overflow gets goroutines of its own.
	const n = 3 * workerQueue
	wg.Add(n)
	for range n {
		w.Schedule(run)
	}
	w.Stop()
	wg.Add(1)
	w.Schedule(run) // after the stop: still runs, on a goroutine of its own
	wg.Wait()
	if ran != n+1 {
		t.Fatalf("%d runs, want %d", ran, n+1)
	}
}
