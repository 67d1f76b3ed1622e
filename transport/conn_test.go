package transport

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/transport/wsconn"
)

// serverConn upgrades one connection the way serveSocket does and hands
// the server side's wsConn and the client to the caller.
func serverConn(tb testing.TB, limits connLimits) (*wsConn, *websocket.Conn) {
	tb.Helper()
	m := newMetrics(&actors.Stats{})
	conns := make(chan *wsConn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := newWSConn(limits, m)
		bw := &wsconn.Writer{ResponseWriter: w, Timeout: limits.writeTimeout}
		ws, err := websocket.Accept(bw, r, nil)
		if err != nil {
			tb.Error(err)
			return
		}
		c.ws, c.batch = ws, bw.Conn()
		conns <- c
	}))
	tb.Cleanup(srv.Close)
	client, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	client.SetReadLimit(-1)
	c := <-conns
	tb.Cleanup(func() {
		client.CloseNow()
		c.shutdown()
	})
	return c, client
}

func TestSlowConsumerOverflowClosesWith1008(t *testing.T) {
	c, client := serverConn(t, connLimits{maxFrames: 4, maxBytes: 1 << 20, writeTimeout: time.Second})
	// The client reads nothing; the writer may take one batch into the
	// socket buffers, and the queue then fills. Frames big enough to fill
	// the kernel buffers quickly.
	frame := []byte(strings.Repeat("x", 256<<10))
	sent := 0
	for c.Send(frame, false) {
		sent++
		if sent > 10_000 {
			t.Fatal("the queue never overflowed")
		}
	}
	if c.Send([]byte("after"), false) {
		t.Fatal("a frame was queued after the overflow")
	}
	if r := c.reason(); r != slowConsumer || r.Code != int(websocket.StatusPolicyViolation) || r.Text != "slow consumer" {
		t.Fatalf("closing for %+v, want 1008 slow consumer", r)
	}
	_ = client
}

func TestIdleConnKeepsNoBurstQueue(t *testing.T) {
	c, client := serverConn(t, connLimits{maxFrames: 1024, maxBytes: 1 << 20, writeTimeout: time.Second})
	// A burst large enough that the queue and the writer's spare batch grow.
	const burst = 500
	for i := range burst {
		if !c.Send([]byte("frame"), false) {
			t.Fatalf("frame %d refused", i)
		}
	}
	for i := range burst {
		if _, _, err := client.Read(t.Context()); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	// The writer has written the last frame; wait for it to go idle.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		writing, queueCap, spareCap := c.writing, cap(c.queue), cap(c.spare)
		c.mu.Unlock()
		if !writing {
			if queueCap > idleQueueCap || spareCap != 0 {
				t.Fatalf("idle connection keeps a queue of capacity %d and a spare of %d; want at most %d and 0", queueCap, spareCap, idleQueueCap)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer never went idle")
		}
		runtime.Gosched() // the writer is between its last write and its exit: nothing to wait on
	}
}

// BenchmarkConnSend measures the session queue and its batching writer:
// frames handed to Send, written to a real loopback WebSocket, read by a
// client. ns/op is per frame.
func BenchmarkConnSend(b *testing.B) {
	c, client := serverConn(b, connLimits{maxFrames: 1 << 20, maxBytes: 1 << 30, writeTimeout: 10 * time.Second})
	frame := []byte(`{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","msg":"a typical chat line","room_id":"room"}`)
	done := make(chan error, 1)
	go func() {
		for range b.N {
			if _, _, err := client.Read(context.Background()); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if !c.Send(frame, false) {
			b.Fatal("Send refused a frame")
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
