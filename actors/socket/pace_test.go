package socket

import (
	"slices"
	"strconv"
	"testing"
	"time"
)

// queueConn is a Pacer whose queue the test drains, as a client reading
// would.
type queueConn struct {
	frames, bytes int
	queue         []string
	queued        int
	drained       func()
	aborted       *Reason
}

func (c *queueConn) Send(data []byte, _ bool) bool {
	if c.aborted != nil {
		return false
	}
	if len(c.queue) >= c.frames || c.queued+len(data) > c.bytes {
		c.aborted = &SlowConsumer // past the bound, as the transport's queue
		return false
	}
	c.queue = append(c.queue, string(data))
	c.queued += len(data)
	return true
}
func (c *queueConn) Close(r Reason)      { c.aborted = &r }
func (c *queueConn) Abort(r Reason)      { c.aborted = &r }
func (c *queueConn) Ping()               {}
func (c *queueConn) LastSeen() time.Time { return time.Now() }
func (c *queueConn) ActorStopped()       {}
func (c *queueConn) Room() (int, int)    { return c.frames - len(c.queue), c.bytes - c.queued }
func (c *queueConn) Bound() (int, int)   { return c.frames, c.bytes }
func (c *queueConn) WhenDrained(fn func()) {
	if len(c.queue) == 0 {
		fn()
		return
	}
	c.drained = fn
}

// read takes what is queued, as the client's socket would, and calls the
// drained callback.
func (c *queueConn) read() []string {
	got := c.queue
	c.queue, c.queued = nil, 0
	if fn := c.drained; fn != nil {
		c.drained = nil
		fn()
	}
	return got
}

func frame(s string) []byte { return []byte(s) }

// TestPaced: a burst longer than the queue goes out a queue at a time, in
// order, with what is sent meanwhile behind it; a client that falls more
// than a queue behind is closed as a slow consumer.
func TestPaced(t *testing.T) {
	tests := []struct {
		name string
		// burst frames are added, then live frames are sent after each
		// read, reads times.
		burst, live, reads int
		want               []string // what the client reads, in order; nil: all
		closed             bool
	}{
		{name: "a burst of three queues", burst: 12, reads: 3},
		{name: "live frames wait behind the burst", burst: 8, live: 2, reads: 4},
		{name: "a client more than a queue behind", burst: 8, live: 5, reads: 1, closed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &queueConn{frames: 4, bytes: 1 << 20}
			wakes := 0
			p := NewPaced(c, func() { wakes++ })
			var want []string
			for i := range tt.burst {
				s := "b" + strconv.Itoa(i)
				p.Add(frame(s), false)
				want = append(want, s)
			}
			done := p.Push()
			var got []string
			for r := 0; r < tt.reads && !done; r++ {
				for j := range tt.live {
					s := "l" + strconv.Itoa(r) + "." + strconv.Itoa(j)
					if !p.Send(frame(s), false) {
						break
					}
					want = append(want, s)
				}
				if len(c.queue) > c.frames {
					t.Fatalf("queue holds %d frames, bound %d", len(c.queue), c.frames)
				}
				before := wakes
				got = append(got, c.read()...)
				if c.aborted == nil && wakes != before+1 {
					t.Fatalf("read %d: woken %d times, want once", r, wakes-before)
				}
				done = p.Push()
			}
			if tt.closed {
				if c.aborted == nil || *c.aborted != SlowConsumer {
					t.Fatalf("closed %v, want %v", c.aborted, SlowConsumer)
				}
				if p.Send(frame("after"), false) {
					t.Fatal("Send after the close reported true")
				}
				return
			}
			got = append(got, c.read()...)
			if !done || p.Len() != 0 || c.aborted != nil {
				t.Fatalf("done %v, %d held, closed %v: want all sent, none closed", done, p.Len(), c.aborted)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("the client read %v, want %v", got, want)
			}
			// Done: frames go straight to the queue again.
			if !p.Send(frame("direct"), false) || !slices.Equal(c.queue, []string{"direct"}) {
				t.Fatalf("after the burst the queue holds %v, want the frame sent", c.queue)
			}
		})
	}
}
