package dispatch

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Workers runs the mailboxes of the node's actors (the lobby, rooms and
// socket actors) on a few long-lived goroutines. protoactor's default
// dispatcher starts a goroutine for every mailbox run: a publish to a room
// of 1 000 starts 1 000 goroutines, each of which begins with a small
// stack and grows it (a copy) as the session hands its frame on. Workers
// keep their grown stacks, and a run costs a channel send.
//
// A worker runs a mailbox until it is empty or has run throughput
// messages, then takes the next one; protoactor lets only one run of a
// mailbox be scheduled at a time, so an actor's messages keep their order.
// This relies on actors never blocking in Receive (see doc.go): a worker
// blocked there would hold up the mailboxes queued behind it. When
// every worker is busy and the queue is full, a run gets a goroutine of
// its own, as with protoactor's dispatcher, rather than make its sender
// wait.
type Workers struct {
	runs       chan func()
	stopped    atomic.Bool
	n          int
	done       sync.WaitGroup
	throughput int
}

// workerQueue bounds the runs waiting for a worker.
const workerQueue = 4096

func Start(n, throughput int) *Workers {
	w := &Workers{runs: make(chan func(), workerQueue), n: n, throughput: throughput}
	for range n {
		w.done.Go(w.work)
	}
	return w
}

// work runs what it is given until it is given nil. It receives from one
// channel only: a select over a run channel and a quit channel locks
// both for every run, an eighth of the workers' instructions in
// connect/close churn.
func (w *Workers) work() {
	for run := range w.runs {
		if run == nil {
			return
		}
		run()
	}
}

// Schedule implements actor.Dispatcher.
func (w *Workers) Schedule(run func()) {
	if !w.stopped.Load() {
		select {
		case w.runs <- run:
			return
		default:
		}
	}
	go run()
}

// Throughput implements actor.Dispatcher.
func (w *Workers) Throughput() int { return w.throughput }

// Stop ends the workers once the runs already queued are done: one nil
// per worker goes in behind them, and each worker ends at the first nil
// it takes. Runs scheduled from then on get goroutines of their own.
func (w *Workers) Stop() {
	w.stopped.Store(true)
	for range w.n {
		w.runs <- nil
	}
	w.done.Wait()
	// A Schedule that saw the Workers still running may have queued its
	// run behind the nils.
	for {
		select {
		case run := <-w.runs:
			if run != nil {
				go run()
			}
		default:
			return
		}
	}
}

// Default is one worker per CPU Go may use.
func Default() int { return runtime.GOMAXPROCS(0) }
