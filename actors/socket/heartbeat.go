package socket

import (
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// HeartbeatTick asks a socket actor to check its client's liveness
// (Heartbeat.Tick). It is sent by the actor's own timer.
type HeartbeatTick struct{}

// Heartbeat is the seed's liveness check, owned by one socket actor: every
// Every it closes a connection whose client has been silent for longer
// than Timeout, and pings it otherwise.
//
// The timer is a time.AfterFunc, so an idle connection costs no goroutine.
type Heartbeat struct {
	Every   time.Duration
	Timeout time.Duration
	timer   *time.Timer
}

// Start arms the first tick; call it on actor.Started.
func (h *Heartbeat) Start(ctx actor.Context) {
	root, self := ctx.ActorSystem().Root, ctx.Self()
	tick := &HeartbeatTick{}
	// The first tick comes at a random point of the second half of the
	// interval. Clients connect in crowds (a room filling up, a reconnect
	// after a restart); with a fixed first tick their pings would go on
	// coming in one burst every interval, a burst of a write and a read
	// per client that every frame sent meanwhile waits behind.
	h.timer = time.AfterFunc(firstTick(h.Every), func() { root.Send(self, tick) })
}

// firstTick is a random point of the second half of the interval.
func firstTick(every time.Duration) time.Duration {
	return every/2 + rand.N(every/2+1)
}

// Tick checks the client on HeartbeatTick; it reports false when it
// closed the connection.
func (h *Heartbeat) Tick(conn Conn) bool {
	if time.Since(conn.LastSeen()) > h.Timeout {
		conn.Abort(HeartbeatTimeout)
		return false
	}
	conn.Ping()
	h.timer.Reset(h.Every)
	return true
}

// Stop stops the timer; call it on actor.Stopping.
func (h *Heartbeat) Stop() {
	if h.timer != nil {
		h.timer.Stop()
	}
}
