package socket

import "github.com/asynkron/protoactor-go/actor"

// Props makes the props of an actor that serves conn, with opts (the
// node's dispatcher and mailbox): conn learns when the actor has stopped
// (Conn.ActorStopped), which is how the transport knows it may shut the
// socket. Every socket actor's props come from here.
func Props(conn Conn, produce func() actor.Actor, opts ...actor.PropsOption) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &socketActor{Actor: produce(), conn: conn}
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
}

func (a *socketActor) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Stopped); ok {
		defer a.conn.ActorStopped()
	}
	a.Actor.Receive(ctx)
}
