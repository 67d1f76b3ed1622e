// Package sockettest gives the tests of socket actors a socket.Conn that
// hands the test what the actor writes, with no network.
package sockettest

import (
	"fmt"

	"sync"
	"testing"
	"time"

	"github.com/lobby/lobby/actors/socket"
)

// Conn is a socket.Conn for tests: the frames an actor sends arrive on
// Frames, its first close on Closed, and Stopped is closed when the actor
// has stopped.
type Conn struct {
	// Frames receives every frame sent, up to 64 unread; past that Send
	// reports false, as a full queue does.
	Frames chan string
	// Closed receives the first Close or Abort as "<code> <reason>".
	Closed    chan string
	closeOnce sync.Once
	// Stopped is closed when the actor serving the conn has stopped.
	Stopped chan struct{}
}

// NewConn makes a Conn.
func NewConn() *Conn {
	return &Conn{Frames: make(chan string, 64), Closed: make(chan string, 1), Stopped: make(chan struct{})}
}

// Send implements socket.Conn.
func (c *Conn) Send(data []byte, _ bool) bool {
	select {
	case c.Frames <- string(data):
		return true
	default:
		return false
	}
}

// Close implements socket.Conn.
func (c *Conn) Close(r socket.Reason) {
	c.closeOnce.Do(func() { c.Closed <- fmt.Sprintf("%d %s", r.Code, r.Text) })
}

// Abort implements socket.Conn.
func (c *Conn) Abort(r socket.Reason) { c.Close(r) }

// Ping implements socket.Conn.
func (c *Conn) Ping() {}

// LastSeen implements socket.Conn: the client is always there.
func (c *Conn) LastSeen() time.Time { return time.Now() }

// ActorStopped implements socket.Conn.
func (c *Conn) ActorStopped() { close(c.Stopped) }

// Next returns the next frame sent, failing t after 10 s.
func (c *Conn) Next(t testing.TB) string {
	t.Helper()
	select {
	case f := <-c.Frames:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no frame within 10s")
		return ""
	}
}

// NextClose returns the close, failing t after 10 s.
func (c *Conn) NextClose(t testing.TB) string {
	t.Helper()
	select {
	case f := <-c.Closed:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no close within 10s")
		return ""
	}
}

// WaitStopped waits until the actor serving the conn has stopped,
// failing t after 10 s.
func (c *Conn) WaitStopped(t testing.TB) {
	t.Helper()
	select {
	case <-c.Stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the actor serving the conn did not report its stop within 10s")
	}
}
