package dispatch

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// TestFirstRunsGoBeforeTheOthers: with the worker busy, a run scheduled
// through First overtakes the runs queued before it.
func TestFirstRunsGoBeforeTheOthers(t *testing.T) {
	w := Start(1, 16)
	defer w.Stop()
	release := make(chan struct{})
	order := make(chan string, 3)
	w.Schedule(func() { <-release }) // the worker is busy
	w.Schedule(func() { order <- "a" })
	w.Schedule(func() { order <- "b" })
	w.First().Schedule(func() { order <- "first" })
	close(release)
	var got []string
	for range 3 {
		got = append(got, <-order)
	}
	if want := []string{"first", "a", "b"}; !slices.Equal(got, want) {
		t.Fatalf("ran %v, want %v", got, want)
	}
}

// TestFirstDoesNotStarveTheOthers: a room that always has work (its run
// schedules the next) still lets a member's run through.
func TestFirstDoesNotStarveTheOthers(t *testing.T) {
	w := Start(1, 16)
	var stop atomic.Bool
	var busy func()
	busy = func() {
		if !stop.Load() {
			w.First().Schedule(busy)
		}
	}
	w.First().Schedule(busy)
	ran := make(chan struct{})
	w.Schedule(func() { close(ran) })
	<-ran // the test's deadline fails it otherwise
	stop.Store(true)
	w.Stop()
}

// TestStopRunsFirstsRunsToo: runs scheduled through First before and
// after Stop all run.
func TestStopRunsFirstsRunsToo(t *testing.T) {
	w := Start(2, 16)
	var wg sync.WaitGroup
	var ran atomic.Int64
	run := func() { ran.Add(1); wg.Done() }
	const n = 2 * workerQueue
	wg.Add(n + 1)
	for range n {
		w.First().Schedule(run)
	}
	w.Stop()
	w.First().Schedule(run)
	wg.Wait()
	if ran.Load() != n+1 {
		t.Fatalf("%d runs, want %d", ran.Load(), n+1)
	}
}

// TestFirstDoesNotFillRunsWithPokes: First's runs scheduled while every
// worker is busy put nothing on runs, which would otherwise fill, and
// then every socket actor's run would get a goroutine of its own.
func TestFirstDoesNotFillRunsWithPokes(t *testing.T) {
	w := Start(1, 16)
	defer w.Stop()
	busy, release := make(chan struct{}), make(chan struct{})
	w.Schedule(func() { close(busy); <-release })
	// Until the worker is in the run, it may still count as waiting, and
	// a poke for it would be right.
	select {
	case <-busy:
	case <-time.After(5 * time.Second):
		t.Fatal("the worker did not start the blocking run in 5 s")
	}
	var wg sync.WaitGroup
	const n = workerQueue
	wg.Add(n)
	for range n {
		w.First().Schedule(wg.Done)
	}
	if got := len(w.runs); got != 0 {
		t.Errorf("%d runs queued behind a busy worker by First, want none", got)
	}
	close(release)
	wg.Wait()
}

// TestFirstWakesAWaitingWorker: a First run scheduled while the worker
// waits is run.
func TestFirstWakesAWaitingWorker(t *testing.T) {
	w := Start(1, 16)
	defer w.Stop()
	for range 1000 {
		done := make(chan struct{})
		w.First().Schedule(func() { close(done) })
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("a First run scheduled while the worker waited did not run in 5 s")
		}
	}
}
