package socket

import (
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// HeartbeatTick asks a socket actor to check its client's liveness
// (Heartbeat.Tick). It is sent by the node's Wheel, or by the actor's
// own timer outside a node.
type HeartbeatTick struct{}

// Heartbeat is the seed's liveness check, owned by one socket actor: every
// Every it closes a connection whose client has been silent for longer
// than Timeout, and pings it otherwise.
//
// A client is judged only on the time its node was running: a tick that
// comes late (the process stopped, or starved of CPU: its timers, its
// mailboxes and its socket reads all late together) does not count its
// own lateness as the client's silence. The client's pongs may then sit
// unread in the kernel's buffers; it is given a fresh Timeout from the
// late tick instead of being closed for what the node failed to read.
//
// The ticks come from the node's Wheel; a Heartbeat without one (an
// actor run outside a node, as in a test) keeps a time.AfterFunc of its
// own. Either way an idle connection costs no goroutine.
type Heartbeat struct {
	Every   time.Duration
	Timeout time.Duration
	// Wheel, if set, ticks the heartbeat (its interval is Every).
	Wheel *Wheel
	timer *time.Timer
	// slot and self are the heartbeat's place on Wheel.
	slot int
	self *actor.PID
	// due is when the tick on its way was meant to come.
	due time.Time
	// grace, once set, is when a client silent only for the node's own
	// lateness, or for a ping it was owed, was given a fresh Timeout: its
	// silence counts from there.
	grace time.Time
	// owedGrace is when the last grace for an owed ping was given: one
	// more needs a sign of life since, so that a dead client is closed
	// however its pings were put off.
	owedGrace time.Time
}

// Start arms the first tick; call it on actor.Started.
func (h *Heartbeat) Start(ctx actor.Context) {
	root, self := ctx.ActorSystem().Root, ctx.Self()
	if h.Wheel != nil {
		h.self = self
		h.slot, h.due = h.Wheel.add(self)
		return
	}
	tick := &HeartbeatTick{}
	// The first tick comes at a random point of the second half of the
	// interval. Clients connect in crowds (a room filling up, a reconnect
	// after a restart); with a fixed first tick their pings would go on
	// coming in one burst every interval, a burst of a write and a read
	// per client that every frame sent meanwhile waits behind.
	first := firstTick(h.Every)
	h.due = time.Now().Add(first)
	h.timer = time.AfterFunc(first, func() { root.Send(self, tick) })
}

// firstTick is a random point of the second half of the interval.
func firstTick(every time.Duration) time.Duration {
	return every/2 + rand.N(every/2+1)
}

// Tick checks the client on HeartbeatTick; it reports false when it
// closed the connection.
func (h *Heartbeat) Tick(conn Conn) bool {
	return h.tick(conn, time.Now())
}

func (h *Heartbeat) tick(conn Conn, now time.Time) bool {
	seen := conn.LastSeen()
	if h.grace.After(seen) {
		seen = h.grace
	}
	if silent := now.Sub(seen); silent > h.Timeout {
		// late is how long after its time this tick came: time the node
		// did not run, and could not read the client either.
		late := max(now.Sub(h.due), 0)
		if silent-late > h.Timeout && !h.owed(conn, now) {
			conn.Abort(HeartbeatTimeout)
			return false
		}
		h.grace = now
	}
	conn.Ping()
	if h.Wheel != nil {
		h.due = nextDue(h.due, h.Wheel.period, now)
		return true
	}
	h.due = now.Add(h.Every)
	h.timer.Reset(h.Every)
	return true
}

// owed reports whether the client's last ping is still unwritten (a
// PingOwer put it off and no frame came to carry it) and no grace was
// given for an owed ping since the client last answered; it then marks
// the grace given.
func (h *Heartbeat) owed(conn Conn, now time.Time) bool {
	o, ok := conn.(PingOwer)
	if !ok || !o.PingOwed() || !h.owedGrace.Before(conn.LastSeen()) {
		return false
	}
	h.owedGrace = now
	return true
}

// nextDue is when the wheel next comes to a slot it came to at due, as
// seen at now: a turn later, or, after a tick more than a turn late, the
// first time past now the slot comes round (the wheel skips what it
// missed).
func nextDue(due time.Time, period time.Duration, now time.Time) time.Time {
	due = due.Add(period)
	if late := now.Sub(due); late >= 0 {
		due = due.Add((late/period + 1) * period)
	}
	return due
}

// Stop stops the ticks; call it on actor.Stopping.
func (h *Heartbeat) Stop() {
	if h.self != nil {
		h.Wheel.remove(h.slot, h.self)
		h.self = nil
	}
	if h.timer != nil {
		h.timer.Stop()
	}
}
