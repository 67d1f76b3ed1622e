package moderated_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

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

func TestPolicyLooksInDecodedStrings(t *testing.T) {
	p := moderated.Policy{Prefix: "kids-", Words: []string{"Darn"}}
	tests := []struct {
		name, room, msg string
		refused         bool
	}{
		{name: "plain", room: "kids-a", msg: `"darn it"`, refused: true},
		{name: "escaped", room: "kids-a", msg: `"d\u0061rn"`, refused: true},
		{name: "nested", room: "kids-a", msg: `{"a":[1,{"b":"DARN"}]}`, refused: true},
		{name: "in a key", room: "kids-a", msg: `{"darn":1}`, refused: true},
		{name: "clean", room: "kids-a", msg: `{"a":"hello"}`},
		{name: "unmoderated room", room: "adults", msg: `"darn"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Accept(tt.room, uuid.Nil, json.RawMessage(tt.msg))
			if (got != nil) != tt.refused || got != nil && got.Code != moderated.Code {
				t.Fatalf("Accept(%s, %s) = %+v, want refused %v", tt.room, tt.msg, got, tt.refused)
			}
		})
	}
}
