package echo

import (
	"bytes"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// Kind serves GET /echo.
var Kind = socket.Kind{Path: "/echo", Name: "echo", New: New}

// New makes the echo actor of one connection.
func New(env socket.Env) actor.Actor {
	return &echo{Base: socket.NewBase(env)}
}

// echo is the seed's minimal WebSocket actor: every frame its client sends,
// text or binary, goes straight back. It joins no room. It is also the
// template for a new actor type (actors/examples/shout): an actor that
// serves a socket embeds socket.Base, which keeps the connection alive and
// closes it when it must, and handles the ClientMessage frames the
// transport hands it, writing through its Conn.
type echo struct {
	socket.Base
}

func (e *echo) Receive(ctx actor.Context) {
	if e.Base.Receive(ctx) {
		return
	}
	if m, ok := ctx.Message().(*messages.ClientMessage); ok {
		data := m.Data
		if !m.Binary && !utf8.Valid(data) {
			// A text frame Lobby writes is valid UTF-8 whatever it was sent.
			data = bytes.ToValidUTF8(data, []byte("\uFFFD"))
		}
		e.Conn.Send(data, m.Binary)
	}
}
