package socket

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lobby/lobby/messages"
)

// Env is what a node gives each socket actor it spawns.
type Env struct {
	// Conn is the actor's client.
	Conn Conn
	// Heartbeat has the node's interval and client timeout, not started.
	Heartbeat Heartbeat
	// Log is the node's logger.
	Log *slog.Logger
	// Lobby is the node's lobby: an actor that joins or publishes to rooms
	// sends it messages.Connect, Disconnect and BroadcastMessage, as a
	// session does.
	Lobby *actor.PID
}

// Kind is an actor type that serves a WebSocket route: the transport
// upgrades a GET of Path and spawns New's actor for the connection, as
// it does for its own routes (the same checks, limits and metrics).
type Kind struct {
	// Path is the route, a net/http ServeMux path such as "/shout".
	Path string
	// Name labels the kind's connections in logs.
	Name string
	// New makes the actor for one connection.
	New func(Env) actor.Actor
}

// Base is what every socket actor does alike, for an actor type of one's
// own to embed: it keeps the connection alive (Heartbeat), closes it when
// asked (messages.Close), closes a client over its rate limit, and, with
// Guard deferred, closes the client of an actor that panics. The actor's
// Receive calls Base.Receive first and handles what it leaves.
type Base struct {
	Conn      Conn
	Log       *slog.Logger
	Heartbeat Heartbeat
	strikes   Strikes
}

// NewBase is the Base of an actor spawned with env.
func NewBase(env Env) Base {
	return Base{Conn: env.Conn, Log: env.Log, Heartbeat: env.Heartbeat}
}

// Receive handles the heartbeat, messages.Close and frames over the rate
// limit, and reports whether it handled the message. It starts and stops
// the heartbeat on actor.Started and actor.Stopping, and leaves those to
// the actor too (it reports false).
func (b *Base) Receive(ctx actor.Context) bool {
	switch m := ctx.Message().(type) {
	case *HeartbeatTick:
		b.Heartbeat.Tick(b.Conn)
	case *messages.Close:
		b.Conn.Close(m.Reason)
	case *messages.ClientMessage:
		// An actor with an error frame to warn with counts its own
		// strikes (Strikes) before it calls Receive.
		return b.strikes.Count(b.Conn, m, 0) != Pass
	case *actor.Started:
		b.Heartbeat.Start(ctx)
		return false
	case *actor.Stopping:
		b.Heartbeat.Stop()
		return false
	default:
		return false
	}
	return true
}

// Guard, deferred in Receive, closes the client with 1011 and stops the
// actor if Receive panics (CloseOnPanic).
func (b *Base) Guard(ctx actor.Context) {
	if r := recover(); r != nil {
		closeAfterPanic(ctx, b.Conn, b.Log, r)
	}
}
