package socket

import (
	"log/slog"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// Props makes the props of the actor produce makes, which serves conn,
// with opts (the node's dispatcher and mailbox). produce is called once,
// before Props returns. Every socket actor's props come from
// here, and so every socket actor is guarded: a panic in its Receive
// closes its client alone with 1011 and stops it (CloseOnPanic, logged to
// log), and conn learns when the actor has stopped (Conn.ActorStopped),
// which is how the transport knows it may shut the socket.
func Props(conn Conn, log *slog.Logger, produce func() actor.Actor, opts ...actor.PropsOption) *actor.Props {
	b, _ := conn.(Batcher)
	var flush []actor.MailboxMiddleware
	if b != nil {
		flush = append(flush, &turnEnd{b: b})
	}
	// Props' own mailbox, after the caller's options: a lock-free linked
	// list, the turn's end wired to the Batcher. protoactor's default
	// mailbox is a ring that doubles when a burst outruns its actor and
	// never shrinks: after 1 000 members join a room, each member's ring
	// keeps room for the thousand joined notices it once held (8 KB on
	// average) for the rest of the connection. The linked list costs one
	// small allocation per message and holds nothing once drained. It is
	// unbounded like the ring; the bound is the connection's queue behind
	// it.
	opts = append(opts, actor.WithMailbox(actor.UnboundedLockfree(flush...)))
	// The actor is made here, once, and the producer hands out that one:
	// props live as long as their actor, and a producer that called
	// produce would keep all that produce captured (a session's Join and
	// Env, about 250 bytes) beside the actor that copied it, for every
	// connection. protoactor calls a producer again only to restart an
	// actor after a failure, and a socket actor's Receive never fails that
	// way: CloseOnPanic recovers its panics and stops it. Were it restarted
	// all the same, it would get this actor back, state and all, still
	// serving the one connection it can serve; the props are spawned once.
	a := &socketActor{Actor: produce(), conn: conn, batch: b, log: log}
	return actor.PropsFromProducer(func() actor.Actor { return a }, opts...)
}

// turnEnd flushes a Batcher when its actor's mailbox run ends, and every
// FlushEvery messages. protoactor calls MailboxEmpty after it has marked
// the mailbox idle, so a new run may already be under way on another
// worker: n is shared, and a Flush may meet the next run's Hold (the
// Batcher is safe for that: at worst a frame goes out a turn early).
type turnEnd struct {
	b Batcher
	n atomic.Int32
}

func (t *turnEnd) MailboxStarted()   {}
func (t *turnEnd) MessagePosted(any) {}
func (t *turnEnd) MailboxEmpty()     { t.n.Store(0); t.b.Flush() }
func (t *turnEnd) MessageReceived(any) {
	if t.n.Add(1) >= FlushEvery {
		t.n.Store(0)
		t.b.Flush()
	}
}

// socketActor tells its Conn when the actor it wraps has stopped for good
// (a restart after a panic is not a stop). Waiting for that costs the
// transport a channel; protoactor's PoisonFuture costs a registered
// future process, a 10 s timer, a watch and a Terminated message, about
// a tenth of the allocations of a connect/close cycle.
type socketActor struct {
	actor.Actor
	conn  Conn
	batch Batcher // conn, if it batches; nil if not
	log   *slog.Logger
}

func (a *socketActor) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Stopped); ok {
		defer a.conn.ActorStopped()
		if a.batch != nil {
			// The last turn: nothing flushes after it.
			defer a.batch.Flush()
		}
	} else if a.batch != nil {
		a.batch.Hold()
	}
	defer CloseOnPanic(ctx, a.conn, a.log)
	a.Actor.Receive(ctx)
}
