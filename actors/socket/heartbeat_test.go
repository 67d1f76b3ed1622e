package socket

import (
	"testing"
	"time"
)

// TestFirstHeartbeatsAreSpread: sockets that connect together must not
// ping together. Their first ticks fall in the second half of the
// interval, and not all at one point of it.
func TestFirstHeartbeatsAreSpread(t *testing.T) {
	const every = 5 * time.Second
	lo, hi := every, time.Duration(0)
	for range 1000 {
		d := firstTick(every)
		if d < every/2 || d > every {
			t.Fatalf("first tick after %v, want within [%v, %v]", d, every/2, every)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	// 1 000 uniform draws over 2.5 s leave a 250 ms gap at either end
	// with odds of 0.9^1000, about 1e-46.
	if lo > every/2+every/20 || hi < every-every/20 {
		t.Fatalf("first ticks span only [%v, %v] of [%v, %v]", lo, hi, every/2, every)
	}
}

// silentConn is a client last seen at seen, which records an abort.
type silentConn struct {
	Conn
	seen    time.Time
	aborted bool
	pings   int
}

func (c *silentConn) LastSeen() time.Time { return c.seen }
func (c *silentConn) Abort(Reason)        { c.aborted = true }
func (c *silentConn) Ping()               { c.pings++ }

// TestHeartbeatForgivesTheNodesOwnLateness: a client is closed for its
// own silence, never for the time its node did not run (a process
// stopped, or starved: its ticks come late, and the client's pongs wait
// unread in the kernel's buffers). A tick that came late gives the client
// a fresh Timeout from then; silence past it is the client's.
func TestHeartbeatForgivesTheNodesOwnLateness(t *testing.T) {
	const every, timeout = time.Second, 3 * time.Second
	t0 := time.Unix(1_000_000, 0)
	type tick struct {
		at        time.Duration // after t0
		wantAlive bool
	}
	tests := []struct {
		name  string
		seen  time.Duration // after t0: the client's last pong
		first time.Duration // after t0: when the first tick is due
		ticks []tick
	}{
		{name: "a silent client, ticks on time, is closed", seen: 0, first: every,
			ticks: []tick{{every, true}, {2 * every, true}, {3 * every, true}, {4 * every, false}}},
		{name: "a tick 10 s late (the node stopped) gives a fresh timeout", seen: 0, first: every,
			ticks: []tick{{11 * time.Second, true}, {12 * time.Second, true}, {14 * time.Second, true}, {15 * time.Second, false}}},
		{name: "a late tick forgives its lateness only", seen: 0, first: 4 * every,
			ticks: []tick{{5 * time.Second, false}}},
		{name: "a client heard of is judged from its pong", seen: 10 * time.Second, first: every,
			ticks: []tick{{11 * time.Second, true}, {13 * time.Second, true}, {14 * time.Second, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := &silentConn{seen: t0.Add(tt.seen)}
			h := &Heartbeat{Every: every, Timeout: timeout, timer: time.NewTimer(time.Hour), due: t0.Add(tt.first)}
			defer h.Stop()
			for i, tk := range tt.ticks {
				alive := h.tick(conn, t0.Add(tk.at))
				if alive != tk.wantAlive || conn.aborted == alive {
					t.Fatalf("tick %d at +%v: alive %v (aborted %v), want alive %v", i, tk.at, alive, conn.aborted, tk.wantAlive)
				}
				if !alive {
					return
				}
				// The next tick is due Every after this one: a tick of
				// the table that comes later is late.
			}
			t.Fatal("the table ends with the client alive")
		})
	}
}

// owingConn is a silentConn whose pings may be owed (socket.PingOwer).
type owingConn struct {
	silentConn
	owed bool
}

func (c *owingConn) PingOwed() bool { return c.owed }

// TestHeartbeatForgivesAnOwedPingOnce: a client whose last ping was put
// off and never written is not closed for failing to answer it; its
// silence counts from then. A second owed ping is forgiven only if the
// client answered since, so a dead one is still closed.
func TestHeartbeatForgivesAnOwedPingOnce(t *testing.T) {
	const every, timeout = time.Second, 3 * time.Second
	t0 := time.Unix(1_000_000, 0)
	conn := &owingConn{silentConn: silentConn{seen: t0}, owed: true}
	h := &Heartbeat{Every: every, Timeout: timeout, timer: time.NewTimer(time.Hour), due: t0.Add(every)}
	defer h.Stop()
	tick := func(at time.Duration, wantAlive bool) {
		t.Helper()
		if alive := h.tick(conn, t0.Add(at)); alive != wantAlive || conn.aborted == alive {
			t.Fatalf("tick at +%v: alive %v (aborted %v), want alive %v", at, alive, conn.aborted, wantAlive)
		}
	}
	// At +4 it has been silent 4 s, owed a ping: forgiven.
	for s := 1; s <= 7; s++ {
		tick(time.Duration(s)*time.Second, true)
	}
	conn.seen = t0.Add(7500 * time.Millisecond) // it answers
	// At +11 silent 4 s again: forgiven, since it answered.
	for s := 8; s <= 11; s++ {
		tick(time.Duration(s)*time.Second, true)
	}
	for s := 12; s <= 14; s++ {
		tick(time.Duration(s)*time.Second, true)
	}
	tick(15*time.Second, false) // silent 4 s since the grace at +11, not answered since
}
