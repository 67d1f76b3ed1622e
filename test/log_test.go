package test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/transport"
)

// logLines is a slog JSON sink the test can wait on.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
	added chan struct{}
}

func newLogLines() *logLines { return &logLines{added: make(chan struct{}, 1)} }

func (l *logLines) Write(p []byte) (int, error) {
	var line map[string]any
	if err := json.Unmarshal(p, &line); err != nil {
		return 0, err
	}
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	select {
	case l.added <- struct{}{}:
	default:
	}
	return len(p), nil
}

// find returns the first line with msg whose attributes include match.
func (l *logLines) find(msg string, match map[string]any) map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, line := range l.lines {
		if line["msg"] != msg {
			continue
		}
		for k, v := range match {
			if line[k] != v {
				continue next
			}
		}
		return line
	}
	return nil
}

func (l *logLines) wait(t *testing.T, msg string, match map[string]any) map[string]any {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		if line := l.find(msg, match); line != nil {
			return line
		}
		select {
		case <-l.added:
		case <-deadline:
			t.Fatalf("no %q log line with %v", msg, match)
		}
	}
}

// TestConnectionLogLines: one line when a connection opens and one when
// it closes, saying who it was and why it ended.
func TestConnectionLogLines(t *testing.T) {
	logs := newLogLines()
	ts := startServer(t, transport.Config{Config: actors.Config{Logger: slog.New(slog.NewJSONHandler(logs, nil))}})

	c := join(t, ts, "/ws/logs")
	open := logs.wait(t, "connection open", map[string]any{"id": c.id})
	for k, want := range map[string]any{"kind": "room", "room": "logs", "protocol": "text"} {
		if open[k] != want {
			t.Errorf("open line %s = %v, want %v", k, open[k], want)
		}
	}
	if remote, _ := open["remote"].(string); !strings.HasPrefix(remote, "127.0.0.1:") {
		t.Errorf("open line remote = %v, want the client's address", open["remote"])
	}
	if err := c.ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	closed := logs.wait(t, "connection closed", map[string]any{"id": c.id})
	for k, want := range map[string]any{"room": "logs", "code": float64(1000), "reason": "bye", "by": "client", "why": "client_closed", "remote": open["remote"]} {
		if closed[k] != want {
			t.Errorf("close line %s = %v, want %v", k, closed[k], want)
		}
	}
	if _, ok := closed["duration"]; !ok {
		t.Error("close line has no duration")
	}

	big := join(t, ts, "/ws/logs")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := big.ws.Write(ctx, websocket.MessageText, make([]byte, 65<<10)); err != nil {
		t.Fatal(err)
	}
	closed = logs.wait(t, "connection closed", map[string]any{"id": big.id})
	for k, want := range map[string]any{"code": float64(1009), "by": "server", "why": "message_too_big"} {
		if closed[k] != want {
			t.Errorf("too-big close line %s = %v, want %v", k, closed[k], want)
		}
	}
	if e, _ := closed["err"].(string); e == "" {
		t.Error("too-big close line has no err")
	}
}

// TestNoConnectionLinesAboveInfo: at warn, opening and closing logs nothing.
func TestNoConnectionLinesAboveInfo(t *testing.T) {
	logs := newLogLines()
	ts := startServer(t, transport.Config{Config: actors.Config{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}})
	c := join(t, ts, "/ws/quiet")
	c.ws.Close(websocket.StatusNormalClosure, "")
	waitMetric(t, ts, `lobby_disconnects_total{reason="client_closed"}`, 1)
	ts.stop(t) // returns once every connection's goroutines have ended
	for _, msg := range []string{"connection open", "connection closed"} {
		if line := logs.find(msg, nil); line != nil {
			t.Fatalf("logged %v at warn", line)
		}
	}
}
