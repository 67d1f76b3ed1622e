package socket

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// batchConn is a Batcher that records what was written at each Flush.
type batchConn struct {
	mu      sync.Mutex
	held    bool
	queue   []string
	flushes [][]string    // what each Flush wrote
	wrote   chan struct{} // signalled on each write
	stopped chan struct{}
}

func (c *batchConn) Send(data []byte, _ bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.held {
		c.flushes = append(c.flushes, []string{string(data)}) // written at once
		c.signal()
		return true
	}
	c.queue = append(c.queue, string(data))
	return true
}
func (c *batchConn) Hold() { c.mu.Lock(); c.held = true; c.mu.Unlock() }
func (c *batchConn) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	if len(c.queue) > 0 {
		c.flushes = append(c.flushes, c.queue)
		c.queue = nil
		c.signal()
	}
}
func (c *batchConn) signal() {
	select {
	case c.wrote <- struct{}{}:
	default:
	}
}
func (c *batchConn) Close(Reason)        {}
func (c *batchConn) Abort(Reason)        {}
func (c *batchConn) Ping()               {}
func (c *batchConn) LastSeen() time.Time { return time.Now() }
func (c *batchConn) ActorStopped()       { close(c.stopped) }
func (c *batchConn) written() [][]string { c.mu.Lock(); defer c.mu.Unlock(); return c.flushes }

// sender sends each string it is given; the first waits for gate, so that
// the rest queue up in its mailbox behind it.
type sender struct {
	conn Conn
	gate chan struct{}
}

func (s *sender) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(string); ok {
		if m == "first" {
			<-s.gate // a test's actor only: the messages after it pile up
		}
		s.conn.Send([]byte(m), false)
	}
}

// TestPropsFlushesAtTheEndOfATurn: what a socket actor sends in one run
// of its mailbox is written together, in order, at most FlushEvery
// messages at a time, and nothing is left unwritten when the run ends.
func TestPropsFlushesAtTheEndOfATurn(t *testing.T) {
	system := actor.NewActorSystem()
	defer system.Shutdown()
	conn := &batchConn{wrote: make(chan struct{}, 1), stopped: make(chan struct{})}
	gate := make(chan struct{})
	pid := system.Root.Spawn(Props(conn, slog.New(slog.DiscardHandler), func() actor.Actor { return &sender{conn: conn, gate: gate} }))
	system.Root.Send(pid, "first")
	const more = 2*FlushEvery + 3
	for i := range more {
		system.Root.Send(pid, string(rune('a'+i)))
	}
	close(gate)
	deadline := time.After(10 * time.Second)
	total := 0
	var w [][]string
	for total < more+1 {
		select {
		case <-conn.wrote:
		case <-deadline:
			t.Fatalf("written %d of %d frames: %v", total, more+1, w)
		}
		w = conn.written()
		total = 0
		for _, f := range w {
			total += len(f)
		}
	}
	var order []string
	for _, f := range w {
		if len(f) > FlushEvery {
			t.Fatalf("one flush wrote %d frames, more than FlushEvery", len(f))
		}
		order = append(order, f...)
	}
	if order[0] != "first" {
		t.Fatalf("first frame %q", order[0])
	}
	for i := range more {
		if order[i+1] != string(rune('a'+i)) {
			t.Fatalf("frame %d is %q: out of order %v", i+1, order[i+1], order)
		}
	}
	if len(w) > 4 {
		t.Fatalf("%d writes for one run of %d messages; want them batched (at most 4)", len(w), more+1)
	}
	if err := system.Root.PoisonFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	<-conn.stopped
}
