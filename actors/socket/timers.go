package socket

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// WakeAfter makes *t send msg to the actor of ctx after d: it starts the
// timer the first time and resets it after. The timer is a time.AfterFunc,
// so a waiting actor costs no goroutine; its message comes through the
// mailbox like any other, so the actor needs no lock. Stop it in Stopping.
func WakeAfter(ctx actor.Context, t **time.Timer, d time.Duration, msg any) {
	if *t != nil {
		(*t).Reset(d)
		return
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	*t = time.AfterFunc(d, func() { root.Send(self, msg) })
}
