package transport

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// wsConn is one client's socket as its actor sees it (actors.Conn): a
// bounded queue in front of a single writer. The writer goroutine exists
// only while there is something to write, so an idle connection holds no
// goroutine but its reader.
//
// Overflow policy: a frame that would take the queue past its frame or byte
// bound is not queued; the connection is closed 1008 "slow consumer"
// instead. Nothing is dropped quietly: a frame refused after the close has
// begun belongs to a connection that is going away.
type wsConn struct {
	// Static after construction.
	ws     *websocket.Conn
	limits connLimits
	remote string

	// lastSeen is the UnixNano time the client last proved alive.
	lastSeen atomic.Int64

	// goroutines counts the writer, ping and close goroutines; the
	// connection's handler waits for it. Add is only called with mu held
	// and closing false, and the handler sets closing before it waits.
	goroutines sync.WaitGroup

	mu sync.Mutex // guards the fields below
	// queue holds frames not yet taken by the writer; spare is the writer's
	// last batch, reused so that a steady stream allocates no slices.
	queue, spare []outFrame
	queuedBytes  int
	writing      bool // a writer goroutine is running
	pinging      bool // a ping goroutine is running
	closing      bool // no more frames are accepted
	closeCode    websocket.StatusCode
	closeReason  string
}

// connLimits bounds one connection.
type connLimits struct {
	maxFrames    int
	maxBytes     int
	writeTimeout time.Duration
	pingTimeout  time.Duration
}

type outFrame struct {
	data   []byte
	binary bool
}

// Close reasons the server gives.
const (
	reasonSlowConsumer = "slow consumer"
	reasonShutdown     = "server shutting down"
)

func newWSConn(limits connLimits, remote string) *wsConn {
	c := &wsConn{limits: limits, remote: remote}
	c.seen()
	return c
}

func (c *wsConn) seen() { c.lastSeen.Store(time.Now().UnixNano()) }

// LastSeen implements actors.Conn.
func (c *wsConn) LastSeen() time.Time { return time.Unix(0, c.lastSeen.Load()) }

// Send implements actors.Conn.
func (c *wsConn) Send(data []byte, binary bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	if len(c.queue) >= c.limits.maxFrames || c.queuedBytes+len(data) > c.limits.maxBytes {
		c.abortLocked(websocket.StatusPolicyViolation, reasonSlowConsumer)
		return false
	}
	c.queue = append(c.queue, outFrame{data: data, binary: binary})
	c.queuedBytes += len(data)
	c.startWriterLocked()
	return true
}

// Close implements actors.Conn.
func (c *wsConn) Close(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.closing = true
	c.closeCode, c.closeReason = websocket.StatusCode(code), reason
	// The writer writes the close frame after the queue; start one if the
	// queue is empty.
	c.startWriterLocked()
}

// Ping implements actors.Conn.
func (c *wsConn) Ping() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.pinging {
		return
	}
	c.pinging = true
	c.goroutines.Add(1)
	go func() {
		defer c.goroutines.Done()
		// coder/websocket's Ping waits for its pong; the pong moves lastSeen
		// through OnPongReceived whenever it comes, so the error is of no use.
		ctx, cancel := context.WithTimeout(context.Background(), c.limits.pingTimeout)
		_ = c.ws.Ping(ctx)
		cancel()
		c.mu.Lock()
		c.pinging = false
		c.mu.Unlock()
	}()
}

// abortLocked closes the connection now, without writing what is queued:
// the client is not reading, so the queue would never drain.
func (c *wsConn) abortLocked(code websocket.StatusCode, reason string) {
	c.closing = true
	c.closeCode, c.closeReason = code, reason
	c.queue, c.spare, c.queuedBytes = nil, nil, 0
	c.goroutines.Add(1)
	go func() {
		defer c.goroutines.Done()
		// Close tries the close frame for up to 5 s, then closes the TCP
		// connection, which also unblocks a writer stuck in Write.
		_ = c.ws.Close(code, reason)
	}()
}

func (c *wsConn) startWriterLocked() {
	if c.writing {
		return
	}
	c.writing = true
	c.goroutines.Add(1)
	go c.writeLoop()
}

// writeLoop writes queued frames in order until the queue is empty, then
// the close frame if one was asked for, and exits.
func (c *wsConn) writeLoop() {
	defer c.goroutines.Done()
	for {
		c.mu.Lock()
		batch := c.queue
		c.queue, c.spare, c.queuedBytes = c.spare[:0], nil, 0
		if len(batch) == 0 {
			c.writing = false
			closeNow := c.closing && c.closeCode != 0
			code, reason := c.closeCode, c.closeReason
			c.mu.Unlock()
			if closeNow {
				_ = c.ws.Close(code, reason)
			}
			return
		}
		c.mu.Unlock()

		for i := range batch {
			if err := c.write(batch[i]); err != nil {
				c.mu.Lock()
				if !c.closing {
					c.closing = true
					c.closeCode, c.closeReason = websocket.StatusPolicyViolation, reasonSlowConsumer
					if !errors.Is(err, context.DeadlineExceeded) {
						c.closeReason = "write failed"
					}
				}
				c.writing = false
				c.queue, c.spare = nil, nil
				c.mu.Unlock()
				// A failed or timed-out write leaves the stream broken
				// mid-frame; all that is left is to close.
				_ = c.ws.CloseNow()
				return
			}
			batch[i] = outFrame{}
		}

		c.mu.Lock()
		if c.spare == nil && cap(batch) <= c.limits.maxFrames {
			c.spare = batch[:0]
		}
		c.mu.Unlock()
	}
}

func (c *wsConn) write(f outFrame) error {
	typ := websocket.MessageText
	if f.binary {
		typ = websocket.MessageBinary
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.limits.writeTimeout)
	defer cancel()
	return c.ws.Write(ctx, typ, f.data)
}

// shutdown stops the connection's goroutines and waits for them: called
// once by the connection's handler, after the reader has returned.
func (c *wsConn) shutdown() {
	c.mu.Lock()
	if !c.closing {
		c.closing = true
	}
	c.mu.Unlock()
	_ = c.ws.CloseNow()
	c.goroutines.Wait()
}

// reason says why the connection closed, for the log: the close the server
// asked for, if any.
func (c *wsConn) reason() (websocket.StatusCode, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode, c.closeReason
}
