// Package shout is an actor type of one's own in one package: GET /shout
// sends every text frame back in capitals. Register it in one line,
//
//	cfg.Sockets = append(cfg.Sockets, shout.Kind)
//
// and the transport serves its route with the checks, limits and metrics
// of its own routes. socket.Base keeps the connection alive and closes it
// over the rate limit or when asked; a panic closes this client alone
// (every socket actor is guarded); the actor handles the client's frames.
// socket.Env.Request has the route's wildcards and query, for a Path such
// as "/shout/{name}".
package shout

import (
	"bytes"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// Kind serves GET /shout.
var Kind = socket.Kind{Path: "/shout", Name: "shout", New: New}

// New makes the actor of one /shout connection.
func New(env socket.Env) actor.Actor {
	return &shout{Base: socket.NewBase(env)}
}

type shout struct {
	socket.Base
}

func (s *shout) Receive(ctx actor.Context) {
	if s.Base.Receive(ctx) {
		return
	}
	m, ok := ctx.Message().(*messages.ClientMessage)
	if !ok {
		return
	}
	if m.Binary {
		// Bytes have no capitals: a binary frame comes back as it was.
		s.Conn.Send(m.Data, true)
		return
	}
	// A text frame Lobby writes is valid UTF-8 whatever the client sent.
	s.Conn.Send(bytes.ToUpper(bytes.ToValidUTF8(m.Data, []byte("\uFFFD"))), false)
}
