package transport

import (
	"context"
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/transport/wsconn"
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
	ws      *websocket.Conn
	batch   *wsconn.Conn
	limits  connLimits
	metrics *metrics

	// lastSeen is the UnixNano time the client last proved alive: the
	// last read that brought its bytes (wsconn.Conn sets it).
	lastSeen atomic.Int64

	// actorDone is closed when the connection's actor has stopped.
	actorDone chan struct{}

	// goroutines counts the writer, ping and close goroutines; the
	// connection's reader (Server.serveConn) waits for it in shutdown. Add
	// is only called with mu held and closing false, and shutdown sets
	// closing before it waits.
	goroutines sync.WaitGroup

	mu sync.Mutex // guards the fields below
	// queue holds frames not yet taken by the writer; spare is the writer's
	// last batch, reused so that a steady stream allocates no slices.
	queue, spare []wsconn.Frame
	queuedBytes  int
	writing      bool // a writer goroutine is running, or Flush is writing
	held         bool // the actor is in a turn: Flush writes what it sends
	tail         bool // wsconn.Conn holds bytes Flush could not write
	pingDue      bool // a ping is to go with the next write
	// wroteAt is when frames were last written (Unix nanoseconds): a
	// client sent frames lately is likely sent more soon, and its ping
	// waits for them (pingRide).
	wroteAt int64
	closing bool          // no more frames are accepted
	why     socket.Reason // the server's close, if it closed
	drained drainWait     // called once the queue is next empty
}

// connLimits bounds one connection.
type connLimits struct {
	maxFrames    int
	maxBytes     int
	writeTimeout time.Duration
}

// idleQueueCap is the largest queue capacity an idle connection keeps.
const idleQueueCap = 4

// The reasons the transport closes sockets with, besides the actors'
// (socket.Reason; transport/PROTOCOL.md, "Close codes").
var (
	slowConsumer = socket.SlowConsumer
	// writeFailed is a write that failed rather than timed out: it met a
	// peer that is gone (reset, broken pipe); the client did not fall
	// behind.
	writeFailed  = socket.Reason{Code: socket.ClosePolicyViolation, Text: "write failed", Label: "connection_lost"}
	controlFlood = socket.Reason{Code: socket.ClosePolicyViolation, Text: "too many control frames", Label: "rate_limit"}
	// fragmentFlood is a message in more than wsconn.MaxFragments frames.
	fragmentFlood = socket.Reason{Code: socket.ClosePolicyViolation, Text: "too many fragments", Label: "rate_limit"}
)

func newWSConn(limits connLimits, m *metrics) *wsConn {
	c := &wsConn{limits: limits, metrics: m, actorDone: make(chan struct{})}
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
		c.metrics.queueDropped.Inc()
		return false
	}
	if len(c.queue) >= c.limits.maxFrames || c.queuedBytes+len(data) > c.limits.maxBytes {
		c.metrics.queueDropped.Inc()
		c.abortLocked(slowConsumer)
		return false
	}
	c.queue = append(c.queue, wsconn.Frame{Data: data, Binary: binary})
	c.queuedBytes += len(data)
	if !c.held {
		c.startWriterLocked()
	} else if !c.writing && len(c.queue) >= max(1, c.limits.maxFrames/4) {
		// One message may carry many frames (a room's batch): write
		// them before they fill the queue, whatever the turn's end.
		c.mu.Unlock()
		c.flush(true)
		c.mu.Lock()
		return true
	}
	// A producer that finds the queue a quarter full gives its CPU to the
	// writer: on a busy machine the writer (just woken) may otherwise not
	// run before a burst fills the queue, and a client that reads fine
	// would be closed as slow. Yielding is not blocking: the caller goes
	// on at once if nothing else is runnable.
	if len(c.queue) > c.limits.maxFrames/4 {
		c.mu.Unlock()
		runtime.Gosched()
		c.mu.Lock()
	}
	return true
}

// Hold implements socket.Batcher: the frames sent from now on wait for
// Flush, which the actor's mailbox calls when its turn ends.
func (c *wsConn) Hold() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// Flush implements socket.Batcher. It writes the frames queued in the
// calling goroutine (the actor's worker) as far as the socket takes them
// without waiting: in a run of deliveries, most clients take their frames
// at once, and no writer goroutine is started for them. What the socket
// does not take, and frames it cannot write now, go to a writer.
func (c *wsConn) Flush() { c.flush(false) }

// flush writes what is queued, as Flush, and leaves the connection held
// if hold is set.
func (c *wsConn) flush(hold bool) {
	c.mu.Lock()
	c.held = hold
	if c.writing || c.closing || len(c.queue) == 0 {
		c.mu.Unlock()
		return
	}
	batch, ping := c.queue, c.pingDue
	c.queue, c.spare, c.queuedBytes = c.spare[:0], nil, 0
	c.pingDue = false
	c.writing = true
	// Counted like a writer, so that shutdown waits for it and a writer
	// it starts is counted before shutdown can stop waiting.
	c.goroutines.Add(1)
	defer c.goroutines.Done()
	c.mu.Unlock()

	taken, err := c.batch.TryWriteFrames(batch, ping)
	if err != nil {
		// The failure closes the connection, which may wait: not in an
		// actor's turn.
		c.mu.Lock()
		c.goroutines.Add(1)
		c.mu.Unlock()
		go func() {
			defer c.goroutines.Done()
			c.writeFailed(err)
		}()
		return
	}
	// Only this call leaves bytes held; asked before c.mu, which is
	// never held while wsconn.Conn's lock is taken.
	tail := taken && c.batch.Pending()
	var drained func()
	// Called once c.mu is released (deferred calls run last first).
	defer func() {
		if drained != nil {
			drained()
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !taken {
		// Back in front of what was sent meanwhile, for the writer.
		c.queue = append(batch, c.queue...)
		for _, f := range batch {
			c.queuedBytes += len(f.Data)
		}
		c.pingDue = c.pingDue || ping
		c.goroutines.Add(1)
		go c.writeLoop()
		return
	}
	c.metrics.delivered.Add(float64(len(batch)))
	c.wroteAt = time.Now().UnixNano()
	clear(batch)
	if c.spare == nil && cap(batch) <= c.limits.maxFrames {
		c.spare = batch[:0]
	}
	c.tail = tail
	if c.tail || len(c.queue) > 0 || c.pingDue || c.closing {
		// Still to write, or a close asked for meanwhile: the writer
		// does it, and the close frame after it.
		c.goroutines.Add(1)
		go c.writeLoop()
		return
	}
	c.writing = false
	drained = c.drained.take(c.closing)
}

// Room implements socket.Pacer.
func (c *wsConn) Room() (frames, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limits.room(len(c.queue), c.queuedBytes)
}

// Bound implements socket.Pacer.
func (c *wsConn) Bound() (frames, bytes int) { return c.limits.maxFrames, c.limits.maxBytes }

// WhenDrained implements socket.Pacer.
func (c *wsConn) WhenDrained(drained func()) {
	c.mu.Lock()
	now := c.drained.wait(drained, c.writing || c.tail || len(c.queue) > 0, c.closing)
	c.mu.Unlock()
	if now != nil {
		now()
	}
}

// drainWait holds a queue's WhenDrained callback (socket.Pacer); its
// owner's mutex guards it. The callback is called once that mutex is
// released: it sends an actor a message, and must not meet the lock.
type drainWait struct{ drained func() }

// wait keeps drained for when the queue is next empty (busy: it is not
// now), or returns it to be called now; it drops it while closing.
func (w *drainWait) wait(drained func(), busy, closing bool) (now func()) {
	switch {
	case closing:
		w.drained = nil
		return nil
	case busy:
		w.drained = drained
		return nil
	}
	return drained
}

// take is the callback due now that the queue is empty, if any.
func (w *drainWait) take(closing bool) func() {
	drained := w.drained
	w.drained = nil
	if closing {
		return nil
	}
	return drained
}

// room is what a queue of frames frames and bytes bytes has room for.
func (l connLimits) room(frames, bytes int) (int, int) {
	return l.maxFrames - frames, l.maxBytes - bytes
}

// Close implements socket.Conn.
func (c *wsConn) Close(r socket.Reason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.closing = true
	c.why = r
	// The writer writes the close frame after the queue; start one if the
	// queue is empty.
	c.startWriterLocked()
}

// Ping implements actors.Conn; the pong, whenever it comes, moves
// lastSeen. A client sent frames in the last pingRide gets its ping with
// its next frames, in their write; any other client is pinged now, by a
// writer.
func (c *wsConn) Ping() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	rides := !c.pingDue && time.Now().UnixNano()-c.wroteAt < int64(pingRide)
	c.pingDue = true
	if !rides {
		c.startWriterLocked()
	}
}

// PingOwed implements socket.PingOwer.
func (c *wsConn) PingOwed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pingDue && !c.writing
}

// pingRide is how recently a client must have been sent frames for its
// ping to wait for the next ones. A ping written alone costs a write(),
// and a node's heartbeats tick in groups (socket.Wheel): written at once,
// a group's pings delayed every frame behind them (issue 18: `chat` p99
// 1.39× that of a hub that does not ping, 0.99× with the pings off). A
// client that is sent nothing more after its ping was put off gets it at
// its next heartbeat, one interval late, and that heartbeat does not
// count the client's silence against it (socket.PingOwer).
const pingRide = time.Second

// Abort implements socket.Conn.
func (c *wsConn) Abort(r socket.Reason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.abortLocked(r)
}

// closeNow closes the connection for r from its reader,
// dropping what is queued, and waits for the close handshake (at most
// coder/websocket's 5 s): the client's frames meanwhile are read and
// dropped, so that the TCP close that follows finds nothing unread and
// does not reset the connection under the close frame.
func (c *wsConn) closeNow(r socket.Reason) {
	c.mu.Lock()
	if !c.closing {
		c.closing = true
		c.why = r
		c.queue, c.spare, c.queuedBytes = nil, nil, 0
	}
	c.mu.Unlock()
	_ = c.ws.Close(websocket.StatusCode(r.Code), r.Text)
}

// lostPeerDrain is how long the reader of a connection whose peer is gone
// may go on reading what the peer sent before it went.
const lostPeerDrain = time.Second

// abortGrace is how long an aborted connection's client gets to answer the
// close frame before the TCP connection is closed under it.
const abortGrace = time.Second

// abortLocked closes the connection without writing what is queued: the
// client is not reading, or not there, so the queue would never drain. The
// close frame is tried, and the client's reply awaited, for abortGrace.
func (c *wsConn) abortLocked(r socket.Reason) {
	c.closing = true
	c.why = r
	c.queue, c.spare, c.queuedBytes = nil, nil, 0
	closed := make(chan struct{})
	c.goroutines.Add(2)
	go func() {
		defer c.goroutines.Done()
		defer close(closed)
		_ = c.ws.Close(websocket.StatusCode(r.Code), r.Text)
	}()
	go func() {
		defer c.goroutines.Done()
		grace := time.NewTimer(abortGrace)
		defer grace.Stop()
		select {
		case <-closed:
		case <-grace.C:
			// Also unblocks a writer stuck in a write, and the Close above.
			c.closeTCP()
		}
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
	// The write path through coder/websocket is deep (see growStack).
	_ = growStack()
	for {
		c.mu.Lock()
		batch, ping, tail := c.queue, c.pingDue, c.tail
		c.pingDue, c.tail = false, false
		if len(batch) == 0 && !ping && !tail {
			// Idle again: a burst's grown slices are not kept for the life
			// of the connection, only a small queue for the next frames.
			c.spare = nil
			if cap(batch) > idleQueueCap {
				c.queue = nil
			}
			c.writing = false
			closeNow := c.closing && c.why.Code != 0
			why := c.why
			drained := c.drained.take(c.closing)
			c.mu.Unlock()
			if closeNow {
				_ = c.ws.Close(websocket.StatusCode(why.Code), why.Text)
			}
			if drained != nil {
				drained()
			}
			return
		}
		c.queue, c.spare, c.queuedBytes = c.spare[:0], nil, 0
		c.mu.Unlock()

		if err := c.writeBatch(batch, ping); err != nil {
			c.writeFailed(err)
			return
		}
		c.metrics.delivered.Add(float64(len(batch)))
		clear(batch)

		c.mu.Lock()
		if len(batch) > 0 {
			c.wroteAt = time.Now().UnixNano()
		}
		if c.spare == nil && cap(batch) <= c.limits.maxFrames {
			c.spare = batch[:0]
		}
		c.mu.Unlock()
	}
}

// writeFailed ends the writing after a write failed with err.
func (c *wsConn) writeFailed(err error) {
	c.mu.Lock()
	if !c.closing {
		c.closing = true
		c.why = slowConsumer
		if !isTimeout(err) {
			c.why = writeFailed
		}
	}
	c.writing = false
	c.queue, c.spare = nil, nil
	c.mu.Unlock()
	// A failed or timed-out write leaves the stream broken mid-frame:
	// nothing more can be written. A client that is not reading is closed
	// now. A peer that is gone (a reset, a broken pipe) may have sent
	// frames before it went, which the kernel still holds for the reader:
	// it gets lostPeerDrain to read them, and then its read fails and the
	// connection ends.
	if isTimeout(err) {
		c.closeTCP()
	} else {
		_ = c.batch.Conn.SetReadDeadline(time.Now().Add(lostPeerDrain))
	}
}

// writeBatch writes frames in one socket write (see wsconn.Conn.WriteFrames).
// The write timeout bounds each socket write of the batch.
func (c *wsConn) writeBatch(frames []wsconn.Frame, ping bool) error {
	return c.batch.WriteFrames(frames, ping)
}

func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)
}

// ActorStopped implements actors.Conn.
func (c *wsConn) ActorStopped() { close(c.actorDone) }

// actorStopTimeout is how long a connection's reader waits for its actor
// to stop: long enough for any mailbox to drain, and a bound for an actor
// stuck in Receive (a bug) so that its connection still ends.
const actorStopTimeout = 10 * time.Second

// waitActor waits until the connection's actor has stopped, or for
// actorStopTimeout.
func (c *wsConn) waitActor() {
	// The stop is a message or two on the node's workers: once they have
	// run, usually as soon as this goroutine gives way, it is done, and
	// no timer is needed.
	for range 2 {
		select {
		case <-c.actorDone:
			return
		default:
		}
		runtime.Gosched()
	}
	t := time.NewTimer(actorStopTimeout)
	defer t.Stop()
	select {
	case <-c.actorDone:
	case <-t.C:
	}
}

// shutdown stops the connection's goroutines and waits for them: called
// once by Server.serveConn, after the read loop has returned.
func (c *wsConn) shutdown() {
	c.mu.Lock()
	if !c.closing {
		c.closing = true
	}
	c.mu.Unlock()
	c.batch.Release(wsconn.CloseFlushTimeout)
	c.closeTCP()
	c.goroutines.Wait()
}

// closeTCP closes the connection under the WebSocket at once. Unlike
// websocket.Conn.CloseNow it works while a close handshake is under way,
// which then ends with an error instead of waiting for the client.
func (c *wsConn) closeTCP() {
	// In this order: CloseNow waits for a close handshake under way, which
	// the TCP close ends.
	_ = c.batch.Conn.Close()
	_ = c.ws.CloseNow()
}

// reason says why the connection closed, for the log and the metrics: the
// close the server asked for, if any (a zero Code if none).
func (c *wsConn) reason() socket.Reason {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.why
}
