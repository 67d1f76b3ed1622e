package socket

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
)

// Props makes the props of an actor that serves conn, with opts (the
// node's dispatcher and mailbox). Every socket actor's props come from
// here, and so every socket actor is guarded: a panic in its Receive
// closes its client alone with 1011 and stops it (CloseOnPanic, logged to
// log), and conn learns when the actor has stopped (Conn.ActorStopped),
// which is how the transport knows it may shut the socket.
func Props(conn Conn, log *slog.Logger, produce func() actor.Actor, opts ...actor.PropsOption) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &socketActor{Actor: produce(), conn: conn, log: log}
	}, opts...)
}

// socketActor tells its Conn when the actor it wraps has stopped for good
// (a restart after a panic is not a stop). Waiting for that costs the
// transport a channel; protoactor's PoisonFuture costs a registered
// future process, a 10 s timer, a watch and a Terminated message, about
// a tenth of the allocations of a connect/close cycle.
type socketActor struct {
	actor.Actor
	conn Conn
	log  *slog.Logger
}

func (a *socketActor) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Stopped); ok {
		defer a.conn.ActorStopped()
	}
	defer CloseOnPanic(ctx, a.conn, a.log)
	a.Actor.Receive(ctx)
}
