package transport

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
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
	return serverConnDial(tb, limits, nil)
}

// serverConnDial is serverConn with the client dialled with opts.
func serverConnDial(tb testing.TB, limits connLimits, opts *websocket.DialOptions) (*wsConn, *websocket.Conn) {
	tb.Helper()
	m := newMetrics(&actors.Stats{}, &bodyBudget{})
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
	client, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), opts)
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

// TestFlushWritesATurnWithoutAWriter: frames sent in one held turn are
// written by Flush itself, in order, and no writer is left running.
func TestFlushWritesATurnWithoutAWriter(t *testing.T) {
	c, client := serverConn(t, connLimits{maxFrames: 64, maxBytes: 1 << 20, writeTimeout: time.Second})
	c.Hold()
	for i := range 5 {
		if !c.Send([]byte{'a' + byte(i)}, false) {
			t.Fatalf("frame %d refused", i)
		}
	}
	c.mu.Lock()
	writing := c.writing
	c.mu.Unlock()
	if writing {
		t.Fatal("a held Send started a writer")
	}
	c.Flush()
	c.mu.Lock()
	writing, queued := c.writing, len(c.queue)
	c.mu.Unlock()
	if writing || queued != 0 {
		t.Fatalf("after Flush to a socket with room: writing %v, %d queued; want it all written", writing, queued)
	}
	for i := range 5 {
		_, p, err := client.Read(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if string(p) != string(rune('a'+i)) {
			t.Fatalf("frame %d is %q", i, p)
		}
	}
}

// TestFlushHandsTheRestToTheWriter: turns flushed to a client that reads
// nothing fill the kernel's buffers part way through a frame; the rest of
// that frame, and every later frame, still arrive whole and in order once
// the client reads.
func TestFlushHandsTheRestToTheWriter(t *testing.T) {
	c, client := serverConn(t, connLimits{maxFrames: 1024, maxBytes: 64 << 20, writeTimeout: 10 * time.Second})
	const n, size = 200, 40 << 10 // 8 MB: more than loopback buffers hold
	frame := func(i int) []byte {
		p := []byte(strings.Repeat(string(rune('a'+i%26)), size))
		copy(p, strconv.Itoa(i)+":")
		return p
	}
	sawTail := false
	for i := range n {
		c.Hold()
		if !c.Send(frame(i), false) {
			t.Fatalf("frame %d refused", i)
		}
		c.Flush()
		c.mu.Lock()
		sawTail = sawTail || c.writing
		c.mu.Unlock()
	}
	if !sawTail {
		t.Fatal("the socket took 8 MB unread: the test did not reach a partial write")
	}
	for i := range n {
		_, p, err := client.Read(t.Context())
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(p, frame(i)) {
			t.Fatalf("frame %d arrived as %q…", i, p[:min(len(p), 16)])
		}
	}
}

// TestHeldSendsWriteBeforeTheQueueFills: one turn that sends more frames
// than the queue holds (a room's batch of a backlog) writes them as they
// come instead of holding them all to its end, and a client that reads
// gets every one.
func TestHeldSendsWriteBeforeTheQueueFills(t *testing.T) {
	c, client := serverConn(t, connLimits{maxFrames: 64, maxBytes: 1 << 20, writeTimeout: 10 * time.Second})
	const n = 1000
	done := make(chan error, 1)
	go func() {
		for i := range n {
			_, p, err := client.Read(t.Context())
			if err != nil {
				done <- err
				return
			}
			if string(p) != strconv.Itoa(i) {
				done <- fmt.Errorf("frame %d is %q", i, p)
				return
			}
		}
		done <- nil
	}()
	c.Hold()
	for i := range n {
		if !c.Send([]byte(strconv.Itoa(i)), false) {
			t.Fatalf("frame %d of one turn refused: the turn held more than the queue takes", i)
		}
	}
	c.Flush()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestPingRidesWithTheNextFrames: a client sent frames a moment ago gets
// its ping in front of its next frames, with no writer started for it; a
// client sent nothing lately, or still owed a ping, is pinged at once.
func TestPingRidesWithTheNextFrames(t *testing.T) {
	events := make(chan string, 16)
	c, client := serverConnDial(t, connLimits{maxFrames: 64, maxBytes: 1 << 20, writeTimeout: time.Second},
		&websocket.DialOptions{OnPingReceived: func(context.Context, []byte) bool {
			events <- "ping"
			return true
		}})
	go func() {
		for {
			_, p, err := client.Read(context.Background())
			if err != nil {
				return
			}
			events <- string(p)
		}
	}()
	turn := func(frame string) {
		t.Helper()
		c.Hold()
		if !c.Send([]byte(frame), false) {
			t.Fatalf("frame %q refused", frame)
		}
		c.Flush()
	}
	writing := func() (writing, pingDue bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.writing, c.pingDue
	}
	expect := func(want ...string) {
		t.Helper()
		for _, w := range want {
			select {
			case e := <-events:
				if e != w {
					t.Fatalf("got %q, want %q", e, w)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no %q after 10 s", w)
			}
		}
	}

	turn("a")
	c.Ping()
	if w, due := writing(); w || !due {
		t.Fatalf("ping to a client just sent a frame: writing %v, due %v; want it held for the next frames", w, due)
	}
	turn("b")
	if w, due := writing(); w || due {
		t.Fatalf("after the next turn: writing %v, ping still due %v; want the ping written with the frame", w, due)
	}
	expect("a", "ping", "b")

	// Owed: put off, then no frame until the next heartbeat.
	c.Ping()
	c.Ping()
	expect("ping")

	// Sent nothing lately.
	c.mu.Lock()
	c.wroteAt = time.Now().Add(-2 * pingRide).UnixNano()
	c.mu.Unlock()
	c.Ping()
	expect("ping")
}
