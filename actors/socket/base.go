package socket

import (
	"log/slog"
	"net/url"

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
	// Lobby is the node's lobby, for an actor that takes part in rooms as
	// a session does (chat/session.go is the model): it sends the lobby
	// messages.Connect with its Session PID, waits for messages.Joined,
	// sends its BroadcastMessages to Joined.Room, and sends the lobby
	// messages.Disconnect on actor.Stopping, or it stays a member, and its
	// room alive, for good.
	Lobby *actor.PID
	// Request is the upgraded HTTP request's route values and query.
	Request Request
	// Held is the node's budget for frames held before a join: the
	// Budget of the actor's Hold, if it keeps one.
	Held *HoldBudget
}

// Request is what a socket actor may know of the request that opened its
// connection.
type Request struct {
	// PathValue returns the value of a wildcard of Kind.Path, such as
	// {name} in "/shout/{name}" (net/http's Request.PathValue); "" for a
	// name the path does not have.
	PathValue func(name string) string
	// Query is the URL's query, parsed.
	Query url.Values
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
// asked (messages.Close), and closes a client over its rate limit. The
// actor's Receive calls Base.Receive first and handles what it leaves. (A
// panic in Receive needs nothing of it: Props guards every socket actor.)
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
