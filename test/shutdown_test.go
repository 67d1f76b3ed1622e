package test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/transport"
)

func TestShutdownFlushesThenClosesEverySocketWith1001(t *testing.T) {
	ts := startServer(t, transport.Config{})
	a := join(t, ts, "/ws/room")
	b := join(t, ts, "/ws/room")
	a.expect(b.id + " just joined!")
	e := dial(t, ts, "/echo")

	// A message published just before the shutdown is still delivered.
	if status, body := httpDo(t, "POST", ts.url("/rooms/room/broadcast"), []byte(`{"last":true}`), nil); status != http.StatusOK {
		t.Fatalf("publish: %d %s", status, body)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		ts.stop(t)
	}()
	for _, c := range []*client{a, b} {
		_, data := c.read()
		if want := `{"last":true}`; !strings.Contains(string(data), want) {
			t.Errorf("got %q before the close, want the publish %s", data, want)
		}
		c.expectClose(websocket.StatusGoingAway, "server shutting down")
	}
	e.expectClose(websocket.StatusGoingAway, "server shutting down")

	select {
	case <-stopped: // ts.stop checked Shutdown's and Serve's results
	case <-time.After(waitFor):
		t.Fatal("Shutdown did not return")
	}
}

func TestReadinessTurnsFalseWhenDraining(t *testing.T) {
	srv, err := transport.New(transport.Config{Config: actors.Config{Logger: testLogger(t)}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/readyz before shutdown: %d", rec.Code)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz after shutdown: %d, want 503", rec.Code)
	}
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/healthz after shutdown: %d, want 200 (alive, just not ready)", rec.Code)
	}
	// Shutdown is idempotent.
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestShutdownDeadlineClosesClientsThatDoNotAnswer(t *testing.T) {
	ts := startServer(t, transport.Config{})
	// This client never reads again, so it never answers the close frame.
	join(t, ts, "/ws/room")

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := ts.srv.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the deadline's error", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Shutdown took %v with a 300ms deadline", took)
	}
	if err := <-ts.served; !errors.Is(err, transport.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	ts.once.Do(func() {}) // stopped already
}

func TestStoppedServerLeavesNoGoroutines(t *testing.T) {
	// What earlier tests left winding down is theirs, not this server's.
	earlier := goleak.IgnoreCurrent()
	ts := startServer(t, transport.Config{Config: actors.Config{Heartbeat: 20 * time.Millisecond}})
	var clients []*client
	for range 5 {
		clients = append(clients, join(t, ts, "/ws/leak"))
	}
	clients[0].send("hello")
	e := dial(t, ts, "/echo")
	e.send("x")
	e.expect("x")
	if status, body := httpDo(t, "POST", ts.url("/rooms/leak/broadcast"), []byte(`1`), nil); status != http.StatusOK {
		t.Fatalf("publish: %d %s", status, body)
	}
	// One client leaves on its own, the rest are closed by the shutdown;
	// they keep reading so that they answer its close frames.
	_ = clients[1].ws.Close(websocket.StatusNormalClosure, "")
	var readers sync.WaitGroup
	for _, c := range append(slices.Delete(clients, 1, 2), e) {
		readers.Go(func() {
			for {
				if _, _, err := c.ws.Read(context.Background()); err != nil {
					return
				}
			}
		})
	}
	ts.stop(t)
	readers.Wait()
	http.DefaultClient.CloseIdleConnections()
	goleak.VerifyNone(t, append(natsStoreLeftovers, earlier)...)
}

// TestStalledRequestDoesNotHoldUpTheSockets: a POST that declared 10 bytes
// and sent one is still being read when the server shuts down. The
// WebSockets are closed 1001 at once all the same, while Shutdown waits
// for that request, which then completes.
func TestStalledRequestDoesNotHoldUpTheSockets(t *testing.T) {
	ts := startServer(t, transport.Config{Config: actors.Config{Logger: quietLogger(t)}})
	var clients []*client
	for range 10 {
		clients = append(clients, join(t, ts, "/ws/stall"))
	}
	stalled, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	// With Expect: 100-continue the server says when its handler has
	// begun to read the body: the request is then under way for sure.
	if _, err := io.WriteString(stalled, "POST /rooms/stall/broadcast HTTP/1.1\r\nHost: "+ts.addr+
		"\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	answers := bufio.NewReader(stalled)
	if resp, err := http.ReadResponse(answers, nil); err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("got %v, %v; want 100 Continue", resp, err)
	}
	if _, err := io.WriteString(stalled, `"`); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*waitFor)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- ts.srv.Shutdown(ctx) }()
	for _, c := range clients {
		// Each read waits at most waitFor, far less than the drain's
		// deadline: before the change they were closed only at it.
		c.expectClose(websocket.StatusGoingAway, "server shutting down")
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v while a request was under way", err)
	default:
	}
	// The request's last bytes arrive: it is answered, and Shutdown ends.
	if _, err := io.WriteString(stalled, `12345678"`); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(answers, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stalled publish answered %d, want 200", resp.StatusCode)
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
