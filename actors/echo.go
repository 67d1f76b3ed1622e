package actors

import (
	"bytes"
	"log/slog"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// echo is the seed's minimal WebSocket actor: every frame its client sends,
// text or binary, goes straight back. It joins no room. It is also the
// example to copy for a new actor type (see the README): an actor that
// serves a socket receives ClientMessage from the transport, writes through
// its socket.Conn, and keeps the connection alive with a heartbeat.
type echo struct {
	conn socket.Conn
	hb   socket.Heartbeat
	log  *slog.Logger
}

func (e *echo) Receive(ctx actor.Context) {
	defer socket.CloseOnPanic(ctx, e.conn, e.log)
	switch m := ctx.Message().(type) {
	case *messages.ClientMessage:
		if m.RateLimited {
			e.conn.Close(socket.ClosePolicyViolation, socket.ReasonRateLimit)
			return
		}
		data := m.Data
		if !m.Binary && !utf8.Valid(data) {
			// A text frame Lobby writes is valid UTF-8 whatever it was sent.
			data = bytes.ToValidUTF8(data, []byte("\uFFFD"))
		}
		e.conn.Send(data, m.Binary)
	case *socket.HeartbeatTick:
		e.hb.Tick(e.conn)
	case *messages.Close:
		e.conn.Close(m.Code, m.Reason)
	case *actor.Started:
		e.hb.Start(ctx)
	case *actor.Stopping:
		e.hb.Stop()
	}
}
