package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/transport"
)

// TestResetConnectionsAreCountedAsLost resets clients' TCP connections
// while their room is being published to: the server's writes to them fail,
// and a peer that is gone is a lost connection, not a slow consumer.
func TestResetConnectionsAreCountedAsLost(t *testing.T) {
	ts := startServer(t, transport.Config{Config: actors.Config{Logger: quietLogger(t)}})
	const n = 40
	join(t, ts, "/ws/resets") // a member who stays, so the room lives
	for i := range n {
		_, tcp := dialRaw(t, ts, "/ws/resets")
		// SO_LINGER 0: the close sends a RST, as a crashed peer's kernel does.
		if err := tcp.SetLinger(0); err != nil {
			t.Fatal(err)
		}
		status, body := httpDo(t, "POST", ts.url("/rooms/resets/broadcast"), []byte(fmt.Sprint(i)), nil)
		if status != http.StatusOK {
			t.Fatalf("publish: %d %s", status, body)
		}
		_ = tcp.Close()
		for range 3 {
			// Keep the room writing while the server finds out.
			httpDo(t, "POST", ts.url("/rooms/resets/broadcast"), []byte(`"more"`), nil)
		}
	}
	waitMetric(t, ts, `lobby_disconnects_total{reason="connection_lost"}`, n)
	if v, _ := metricSample(t, ts, `lobby_disconnects_total{reason="slow_consumer"}`); v != 0 {
		t.Fatalf("%v reset connections were counted as slow consumers", v)
	}
}

// TestFrameSentRightBeforeCloseIsDelivered has clients send one frame and
// close at once, before their join has completed, while GET /rooms keeps
// the lobby busy: every frame still reaches the room.
func TestFrameSentRightBeforeCloseIsDelivered(t *testing.T) {
	ts := startServer(t, transport.Config{Config: actors.Config{Logger: quietLogger(t)}})
	watcher := join(t, ts, "/ws/lastwords")
	const n = 150

	busy, stopBusy := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for busy.Err() == nil {
			req, _ := http.NewRequestWithContext(busy, "GET", ts.url("/rooms"), nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}()
	t.Cleanup(func() { stopBusy(); <-done })

	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		ws, _, err := websocket.Dial(ctx, ts.wsURL("/ws/lastwords"), nil)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if err := ws.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "last-%d", i)); err != nil {
			t.Fatal(err)
		}
		_ = ws.CloseNow() // no close handshake: the TCP connection just ends
		cancel()
	}

	got := map[string]bool{}
	for len(got) < n {
		line := watcher.readText()
		var f struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &f) == nil && strings.HasPrefix(f.Msg, "last-") {
			if got[f.Msg] {
				t.Fatalf("%s delivered twice", f.Msg)
			}
			got[f.Msg] = true
		}
	}
}
