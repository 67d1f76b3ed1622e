package moderated_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/actors/examples/moderated"
	"github.com/lobby/lobby/transport"
)

// Example registers the policy in one line: a moderated room refuses a
// word, over a WebSocket and over HTTP.
func Example() {
	cfg := transport.Config{Config: actors.Config{Logger: slog.New(slog.DiscardHandler)}}
	cfg.Policy = moderated.Policy{Prefix: "kids-", Words: []string{"darn"}} // the one registration line

	srv := transport.New(cfg)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = srv.Serve(ln) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer func() { _ = srv.Shutdown(ctx) }()
	base := ln.Addr().String()

	c, _, err := websocket.Dial(ctx, "ws://"+base+"/ws/kids-chat", &websocket.DialOptions{Subprotocols: []string{"lobby.v1"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	_, _, _ = c.Read(ctx) // the welcome
	_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"broadcast","msg":"Darn it","ref":1}`))
	_, data, _ := c.Read(ctx)
	fmt.Println(string(data))

	res, err := http.Post("http://"+base+"/rooms/kids-chat/broadcast", "application/json", bytes.NewBufferString(`"darn"`))
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	fmt.Println(res.StatusCode, string(bytes.TrimSpace(body)))
	// Output:
	// {"type":"error","ref":1,"code":"moderated","message":"this room is moderated: the message was not sent"}
	// 403 {"error":"moderated","message":"this room is moderated: the message was not sent"}
}
