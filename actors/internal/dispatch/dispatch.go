package dispatch

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
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
//
// Runs scheduled through First go before the others (see First), and a
// worker busy for yieldEvery yields.
type Workers struct {
	runs    chan func()
	first   chan func()
	stopped atomic.Bool
	// idle counts the workers waiting on runs: First pokes runs only
	// when one may be asleep there. Poked on every run, runs filled with
	// pokes while rooms kept the workers busy, and from then on every
	// member's run got a goroutine of its own.
	idle       atomic.Int32
	n          int
	done       sync.WaitGroup
	throughput int
}

// workerQueue bounds the runs waiting for a worker, in each queue.
const workerQueue = 4096

// yieldEvery: a worker that has run mailboxes for yieldEvery without
// waiting yields its P (runtime.Gosched) to the goroutines that are
// ready: the HTTP handlers of publishes, which the network poller or a
// room's answer readied, and the goroutines writing what a socket did not
// take. Otherwise they wait for the runtime to preempt the worker, every
// 10 ms, and with one P (a server pinned to a core) a busy worker held
// every publish back by as much: its fan-out then left the members'
// queues before the next publish arrived, and each write carried one
// frame. Measured in cmd/lobbybench/README.md ("The lobby and rooms
// first").
const yieldEvery = 300 * time.Microsecond

func Start(n, throughput int) *Workers {
	w := &Workers{runs: make(chan func(), workerQueue), first: make(chan func(), workerQueue), n: n, throughput: throughput}
	for range n {
		w.done.Go(w.work)
	}
	return w
}

// work runs what it is given until it is given nil. It takes a run of
// First's whenever there is one, without waiting (a receive from an empty
// channel without waiting takes no lock), and otherwise waits on runs
// alone: a select over two channels locks both for every run, an eighth
// of the workers' instructions in connect/close churn. First pokes runs
// so that a waiting worker wakes up for its run.
func (w *Workers) work() {
	busy := time.Now() // since when this worker has not waited
	firsts := 0        // First's runs in a row
	var held func()    // one of First's, put off for one of the others
	for {
		var run func()
		if held != nil {
			run, held = held, nil
		} else {
			select {
			case run = <-w.first:
				firsts++
				if firsts > firstInARow {
					// Rooms that always have work must not starve their
					// members: one of theirs, then this.
					select {
					case other := <-w.runs:
						held, run, firsts = run, other, 0
					default:
					}
				}
			default:
				firsts = 0
				run = w.next(&busy)
			}
		}
		if run == nil {
			if held != nil {
				go held()
			}
			return
		}
		run()
		if time.Since(busy) >= yieldEvery {
			runtime.Gosched()
			busy = time.Now()
		}
	}
}

// next takes one of the runs scheduled on w, waiting for it if need be;
// a wait resets busy.
func (w *Workers) next(busy *time.Time) func() {
	if len(w.runs) > 0 {
		return <-w.runs
	}
	w.idle.Add(1)
	// A First run scheduled before idle said so found no worker to poke:
	// take it now rather than sleep beside it.
	select {
	case run := <-w.first:
		w.idle.Add(-1)
		return run
	default:
	}
	run := <-w.runs
	w.idle.Add(-1)
	*busy = time.Now()
	return run
}

// firstInARow bounds how many of First's runs a worker takes before one
// of the others, when both wait.
const firstInARow = 8

// poke is what First puts on runs to wake a waiting worker.
func poke() {}

// Schedule implements actor.Dispatcher.
func (w *Workers) Schedule(run func()) { w.schedule(w.runs, run) }

func (w *Workers) schedule(q chan func(), run func()) {
	if !w.stopped.Load() {
		select {
		case q <- run:
			return
		default:
		}
	}
	go run()
}

// Throughput implements actor.Dispatcher.
func (w *Workers) Throughput() int { return w.throughput }

// First is a dispatcher on the same workers whose runs go before those
// scheduled on w: the lobby's and the rooms'. A publish crosses the lobby
// and its room before it reaches a member; queued behind the members'
// runs, each hop waited for a whole round of them (1 000 runs in a room
// of 1 000) once the workers were busy.
func (w *Workers) First() Dispatcher { return first{w} }

// Dispatcher is protoactor's actor.Dispatcher, which this package does
// not import.
type Dispatcher interface {
	Schedule(func())
	Throughput() int
}

type first struct{ w *Workers }

func (f first) Schedule(run func()) {
	w := f.w
	w.schedule(w.first, run)
	if w.idle.Load() == 0 {
		return // every worker looks at first before it next waits
	}
	select {
	case w.runs <- poke:
	default: // runs is full: no worker is waiting, and each looks at first before it takes a run
	}
}

func (f first) Throughput() int { return f.w.throughput }

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
	// run behind the nils, or among First's runs.
	for _, q := range []chan func(){w.runs, w.first} {
		for len(q) > 0 {
			if run := <-q; run != nil {
				go run()
			}
		}
	}
}

// Default is one worker per CPU Go may use.
func Default() int { return runtime.GOMAXPROCS(0) }
