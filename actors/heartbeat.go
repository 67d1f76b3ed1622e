package actors

import (
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
	h.timer = time.AfterFunc(h.every, func() { root.Send(self, tick) })
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
