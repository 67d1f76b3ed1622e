package timebot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/actors/examples/timebot"
	"github.com/lobby/lobby/transport"
)

// Example registers the bot in one line: a member who says !time in a
// room hears the time, from the bot.
func Example() {
	noon := func() time.Time { return time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC) }
	cfg := transport.Config{Config: actors.Config{Logger: slog.New(slog.DiscardHandler)}}
	cfg.Residents = append(cfg.Residents, timebot.New(noon, nil)) // the one registration line

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

	c, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/ws/lunch", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	_, _, _ = c.Read(ctx) // your id is ...
	_ = c.Write(ctx, websocket.MessageText, []byte("!time"))
	for range 2 { // our !time, then the bot's answer
		_, data, err := c.Read(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		var frame struct{ Msg string }
		_ = json.Unmarshal(data, &frame)
		fmt.Println(frame.Msg)
	}
	// Output:
	// !time
	// it is 12:00:00 UTC
}
