package actors

import (
	"runtime"
	"sync"
)

// workers runs the mailboxes of the node's actors (the lobby, rooms and
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
type workers struct {
	runs       chan func()
	quit       chan struct{}
	done       sync.WaitGroup
	throughput int
}

// workerQueue bounds the runs waiting for a worker.
const workerQueue = 4096

func startWorkers(n, throughput int) *workers {
	w := &workers{runs: make(chan func(), workerQueue), quit: make(chan struct{}), throughput: throughput}
	for range n {
		w.done.Go(w.work)
	}
	return w
}

func (w *workers) work() {
	for {
		select {
		case run := <-w.runs:
			run()
		case <-w.quit:
			// Runs scheduled before the stop still happen.
			for {
				select {
				case run := <-w.runs:
					run()
				default:
					return
				}
			}
		}
	}
}

// Schedule implements actor.Dispatcher.
func (w *workers) Schedule(run func()) {
	select {
	case <-w.quit:
		go run()
		return
	default:
	}
	select {
	case w.runs <- run:
	default:
		go run()
	}
}

// Throughput implements actor.Dispatcher.
func (w *workers) Throughput() int { return w.throughput }

// stop ends the workers once the runs already queued are done.
func (w *workers) stop() {
	close(w.quit)
	w.done.Wait()
}

// defaultWorkers is one worker per CPU Go may use.
func defaultWorkers() int { return runtime.GOMAXPROCS(0) }
