package actors

import (
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// heartbeatTick asks a socket actor to check its client's liveness.
// It is sent by the actor's own timer.
type heartbeatTick struct{}

// heartbeat is the seed's liveness check, owned by one socket actor: every
// interval it closes a connection whose client has been silent for longer
// than timeout, and pings it otherwise.
//
// The timer is a time.AfterFunc, so an idle connection costs no goroutine.
type heartbeat struct {
	every   time.Duration
	timeout time.Duration
	timer   *time.Timer
}

func (h *heartbeat) start(ctx actor.Context) {
	root, self := ctx.ActorSystem().Root, ctx.Self()
	tick := &heartbeatTick{}
	// The first tick comes at a random point of the second half of the
	// interval. Clients connect in crowds (a room filling up, a reconnect
	// after a restart); with a fixed first tick their pings would go on
	// coming in one burst every interval, a burst of a write and a read
	// per client that every frame sent meanwhile waits behind.
	h.timer = time.AfterFunc(firstTick(h.every), func() { root.Send(self, tick) })
}

// firstTick is a random point of the second half of the interval.
func firstTick(every time.Duration) time.Duration {
	return every/2 + rand.N(every/2+1)
}

// tick reports false when it closed the connection.
func (h *heartbeat) tick(conn Conn) bool {
	if time.Since(conn.LastSeen()) > h.timeout {
		conn.Abort(ClosePolicyViolation, ReasonHeartbeatTimeout)
		return false
	}
	conn.Ping()
	h.timer.Reset(h.every)
	return true
}

func (h *heartbeat) stop() {
	if h.timer != nil {
		h.timer.Stop()
	}
}
