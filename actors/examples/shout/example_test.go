package shout_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/actors/examples/shout"
	"github.com/lobby/lobby/transport"
)

// Example registers shout in one line and talks to it.
func Example() {
	cfg := transport.Config{Config: actors.Config{Logger: slog.New(slog.DiscardHandler)}}
	cfg.Sockets = append(cfg.Sockets, shout.Kind) // the one registration line

	srv, err := transport.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = srv.Serve(ln) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer func() { _ = srv.Shutdown(ctx) }()

	c, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/shout", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	_ = c.Write(ctx, websocket.MessageText, []byte("hello, lobby"))
	_, data, err := c.Read(ctx)
	fmt.Println(string(data), err)
	// Output: HELLO, LOBBY <nil>
}
