package test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
	"github.com/lobby/lobby/transport"
)

// greeter is a socket kind's actor (its Kind's New greets): it panics on
// "boom".
type greeter struct{ socket.Base }

func (g *greeter) Receive(ctx actor.Context) {
	if g.Base.Receive(ctx) {
		return
	}
	if m, ok := ctx.Message().(*messages.ClientMessage); ok && string(m.Data) == "boom" {
		panic("a bug in the kind")
	}
}

// TestSocketKinds: a kind of one's own is served at its path with its
// route's values; one that asks for a path of Lobby's, or a malformed
// one, is not served and takes nothing of Lobby's; a kind's panic closes
// its client alone with 1011, counted as internal_error.
func TestSocketKinds(t *testing.T) {
	hello := socket.Kind{Path: "/hello/{name}", Name: "hello", New: func(env socket.Env) actor.Actor {
		env.Conn.Send([]byte(env.Request.Query.Get("greeting")+", "+env.Request.PathValue("name")), false)
		return &greeter{Base: socket.NewBase(env)}
	}}
	taken := socket.Kind{Path: "/metrics", Name: "taken", New: hello.New}
	malformed := socket.Kind{Path: "shout", Name: "malformed", New: hello.New}
	ts := startServer(t, transport.Config{Config: actors.Config{Sockets: []socket.Kind{taken, malformed, hello}, Logger: quietLogger(t)}})

	c := dial(t, ts, "/hello/ada?greeting=hi")
	c.expect("hi, ada")
	if status, body := httpDo(t, "GET", ts.url("/metrics"), nil, nil); status != http.StatusOK || !strings.Contains(string(body), "lobby_connections") {
		t.Fatalf("GET /metrics: %d, want Lobby's metrics: a kind may not take its path", status)
	}
	// "shout" is not a path: GET /shout is still the seed's room route.
	join(t, ts, "/shout")

	c.send("boom")
	c.expectClose(websocket.StatusInternalError, "internal error")
	waitMetric(t, ts, `lobby_disconnects_total{reason="internal_error"}`, 1)
}
