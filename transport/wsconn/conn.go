package wsconn

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Frame is one data frame to write: a message, text or binary.
type Frame struct {
	Data   []byte
	Binary bool
}

// maxBatchBytes is the most a Conn holds before it writes anyway. 64 KiB
// is a few TCP segments' worth: larger batches save no further syscalls.
const maxBatchBytes = 64 << 10

// batchBuffers recycles batch buffers, so that an idle connection holds none.
// A new one starts small (most batches are a few small frames; a 64 KiB
// one would cost a 64 KiB clear for each) and grows by append up to
// maxBatchBytes.
var batchBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// Conn is the hijacked TCP connection under a WebSocket. coder/websocket
// flushes every frame it writes with one write() of its own; one syscall per
// frame is what limits fan-out (5–8 µs each). While the connection's writer
// holds a batch, Conn collects what coder/websocket writes and sends it
// with one write() when the writer releases the batch, so every frame that
// was queued for the client goes out in one syscall.
//
// Frames written while no batch is held (pongs, close frames) go straight
// through. A frame written by another goroutine while a batch is held waits
// for the release, which follows at once.
//
// Conn also keeps the heartbeat's frames (see wire.go): the writer puts
// pings into a batch, and reads take the client's pongs out.
type Conn struct {
	net.Conn

	mu   sync.Mutex // guards the fields below; held while writing
	hold bool
	buf  *[]byte
	// timeout bounds the writes a batch makes (SetWriteDeadline).
	timeout time.Duration
	out     outScanner

	// rmu guards the read side: the connection's reader goroutine waits
	// for data outside coder/websocket (WaitData) while coder/websocket
	// may read on another goroutine, during a close handshake.
	rmu sync.Mutex
	// in follows the frames read from the socket, to take out the pongs;
	// handed follows those given to coder/websocket.
	in     inScanner
	handed frameScanner
	// pending holds bytes read from the socket, pongs taken out, that
	// coder/websocket has not read yet; nil when there are none, so that
	// an idle connection holds no read buffer.
	pending *[]byte
	off     int
	readErr error
	raw     syscall.RawConn // nil if the connection has no file descriptor
	// lastSeen, if not nil, is set to the time (UnixNano) of every read
	// that brings the client's bytes: any byte proves the client alive,
	// be it a frame, a ping or a pong.
	lastSeen *atomic.Int64
}

// ErrControlFlood is the read error of a client over its control frame
// budget, returned once; the reader then closes it 1008 while Conn
// drops its pings and pongs.
var ErrControlFlood = errors.New("wsconn: too many control frames")

// ErrFragmentFlood is the read error of a client that sent a message in
// more than MaxFragments frames, returned once; the reader then closes
// it 1008.
var ErrFragmentFlood = errors.New("wsconn: too many fragments")

// readBufSize is the most read from the socket at once.
const readBufSize = 4 << 10

// readBuffers recycles read buffers: a connection holds one only while
// the client's bytes wait in it.
var readBuffers = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

func newConn(nc net.Conn, timeout time.Duration, lastSeen *atomic.Int64) *Conn {
	b := &Conn{Conn: nc, timeout: timeout, lastSeen: lastSeen}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			b.raw = raw
		}
	}
	return b
}

// Read gives coder/websocket the client's bytes, pongs taken out, and
// never more than the rest of one frame: coder/websocket's read buffer
// then holds nothing of the frame after a message it has returned, and
// WaitData, which cannot see into that buffer, knows that an empty
// pending means nothing is waiting.
func (b *Conn) Read(p []byte) (int, error) {
	b.rmu.Lock()
	defer b.rmu.Unlock()
	for {
		if b.pending != nil {
			src := (*b.pending)[b.off:]
			n := b.handed.take(src[:min(len(p), len(src))])
			copy(p, src[:n])
			b.off += n
			if b.off == len(*b.pending) {
				b.releasePending()
			}
			return n, nil
		}
		if b.readErr != nil {
			err := b.readErr
			if err == ErrControlFlood || err == ErrFragmentFlood {
				// Said once, to the connection's reader, which then
				// closes 1008; the close handshake reads on, and the
				// client's control frames are dropped from now on.
				b.readErr = nil
			}
			return 0, err
		}
		// Nothing pending: the rest of a message coder/websocket has begun
		// to read.
		n, err := b.Conn.Read(p)
		k, ferr := b.filter(p[:n])
		if ferr != nil {
			b.readErr = ferr
		} else if err != nil {
			b.readErr = err
		}
		if k == 0 {
			continue // only pongs, or an error
		}
		n = b.handed.take(p[:k])
		if n < k {
			b.keep(p[n:k])
		}
		return n, nil
	}
}

// WaitData returns once the client has sent something other than pongs,
// or the connection has failed. It waits in a shallow frame of the
// reader goroutine and holds no buffer meanwhile: the goroutine's stack
// can shrink to its 2 KiB minimum while the client is idle, and a pong
// is taken care of here, without waking coder/websocket, whose read path
// is deep.
func (b *Conn) WaitData() {
	if b.raw == nil {
		return // coder/websocket's read waits instead
	}
	// RawConn.Read calls the function again each time the socket turns
	// readable, and holds the descriptor's read lock throughout.
	err := b.raw.Read(func(fd uintptr) bool {
		// coder/websocket reading on another goroutine (a close
		// handshake) holds rmu and may be waiting for the descriptor's
		// read lock, which RawConn.Read holds: give way to it, or both
		// would wait for ever.
		if !b.rmu.TryLock() {
			return true
		}
		defer b.rmu.Unlock()
		return b.pending != nil || b.readErr != nil || b.readNowLocked(fd)
	})
	if err != nil {
		b.rmu.Lock()
		if b.readErr == nil {
			b.readErr = err
		}
		b.rmu.Unlock()
	}
}

// readNowLocked reads what the socket holds, without waiting, and reports
// whether there is now something for coder/websocket to read, or an error
// to return. It holds a read buffer only while there are bytes to keep.
func (b *Conn) readNowLocked(fd uintptr) bool {
	buf := readBuffers.Get().(*[]byte)
	for {
		n, err := syscall.Read(int(fd), (*buf)[:readBufSize])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			readBuffers.Put(buf)
			return false
		case err != nil:
			readBuffers.Put(buf)
			b.readErr = err
			return true
		case n == 0:
			readBuffers.Put(buf)
			b.readErr = io.EOF
			return true
		}
		k, ferr := b.filter((*buf)[:n])
		if k == 0 && ferr == nil {
			// Only pongs: read on until the socket is drained (the poller
			// reports edges, not levels).
			continue
		}
		// A bad pong after data: coder/websocket reads the data first.
		b.readErr = ferr
		if k == 0 {
			readBuffers.Put(buf)
			return true
		}
		*buf = (*buf)[:k]
		b.pending, b.off = buf, 0
		return true
	}
}

// filter takes the pongs out of p, bytes just read from the socket, in
// place, and notes that the client was seen.
func (b *Conn) filter(p []byte) (int, error) {
	n, _, err := b.in.filter(p)
	if len(p) == 0 {
		return n, err
	}
	now := time.Now().UnixNano()
	if b.lastSeen != nil {
		b.lastSeen.Store(now)
	}
	if b.in.flooded && err == nil {
		b.in.flooded = false // said once
		err = ErrControlFlood
	}
	if b.in.fragFlood == 1 && err == nil {
		b.in.fragFlood = 2 // said once
		err = ErrFragmentFlood
	}
	return n, err
}

// keep puts bytes read but not yet handed to coder/websocket in pending,
// which is empty.
func (b *Conn) keep(p []byte) {
	buf := readBuffers.Get().(*[]byte)
	*buf = append((*buf)[:0], p...)
	b.pending, b.off = buf, 0
}

func (b *Conn) releasePending() {
	*b.pending = (*b.pending)[:0]
	readBuffers.Put(b.pending)
	b.pending = nil
}

func (b *Conn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.out.scan(p)
	switch {
	case b.hold:
		return b.appendLocked(p)
	case b.buf != nil:
		// What TryWriteFrames could not write goes first.
		n, err := b.appendLocked(p)
		if err == nil {
			err = b.flushLocked()
		}
		b.releaseBufLocked()
		return n, err
	default:
		return b.writeLocked(p)
	}
}

// appendLocked adds p to the batch held.
func (b *Conn) appendLocked(p []byte) (int, error) {
	if b.buf == nil {
		b.buf = batchBuffers.Get().(*[]byte)
	}
	if len(*b.buf)+len(p) > maxBatchBytes {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > maxBatchBytes {
			return b.writeLocked(p)
		}
	}
	*b.buf = append(*b.buf, p...)
	return len(p), nil
}

// WriteFrames writes frames as server data frames, after a ping if ping
// is set, in one write (more only past maxBatchBytes). It frames them
// itself: a server frame is not masked, so framing is a header of 2 to 10
// bytes, where a frame written through coder/websocket costs its write
// mutex, its message writer's reset and a copy through its bufio.Writer.
//
// coder/websocket still writes the control frames it owes the client (a
// pong, a close) through Write. Frames are appended here only at a frame
// boundary of what it has written, and under mu, which it needs to write:
// no frame of either is ever split by the other. After a close frame, no
// data frame may follow.
func (b *Conn) WriteFrames(frames []Frame, ping bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := 0; !b.out.atBoundary(); i++ {
		// coder/websocket is between two writes of one frame (its
		// bufio.Writer flushes a frame larger than itself in parts):
		// let it finish. A frame it never finishes (its write failed
		// half way) leaves the stream broken: give up, as after any
		// failed write.
		if i == maxBoundaryWaits {
			return errBrokenFrame
		}
		b.mu.Unlock()
		runtime.Gosched()
		b.mu.Lock()
	}
	if b.out.closed {
		return net.ErrClosed
	}
	b.hold = true
	var err error
	if ping {
		_, err = b.appendLocked(pingFrame)
	}
	var hdr [10]byte
	for _, f := range frames {
		if err != nil {
			break
		}
		if _, err = b.appendLocked(appendFrameHeader(hdr[:0], f.Binary, len(f.Data))); err == nil {
			_, err = b.appendLocked(f.Data)
		}
	}
	b.hold = false
	if err == nil {
		err = b.flushLocked()
	}
	b.releaseBufLocked()
	return err
}

// TryWriteFrames writes frames (after a ping if ping is set) as
// WriteFrames does, but only what the socket takes at once: it never
// waits. It lets an actor write its client's frames itself, in its own
// turn on a worker, where handing them to a writer goroutine would cost a
// goroutine start, a deadline and a trip through the scheduler for every
// frame (most of a delivery's CPU outside the write itself).
//
// It reports taken if Conn now has every frame, written or held: whatever
// the socket did not take stays in Conn, and the next WriteFrames (or a
// control frame coder/websocket writes) writes it first, so the caller
// must see that one follows. It reports !taken, having done nothing, when
// it cannot write now without waiting: coder/websocket is part way
// through a frame, or the connection has no file descriptor; the caller
// then writes the frames with WriteFrames.
func (b *Conn) TryWriteFrames(frames []Frame, ping bool) (taken bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.raw == nil || !b.out.atBoundary() || b.buf != nil {
		return false, nil
	}
	size := 0
	if ping {
		size = len(pingFrame)
	}
	for _, f := range frames {
		size += maxFrameHeader + len(f.Data)
	}
	if size > maxBatchBytes {
		// More than one write's worth: writing it would mean waiting.
		return false, nil
	}
	if b.out.closed {
		return true, net.ErrClosed
	}
	b.buf = batchBuffers.Get().(*[]byte)
	if ping {
		*b.buf = append(*b.buf, pingFrame...)
	}
	for _, f := range frames {
		*b.buf = appendFrameHeader(*b.buf, f.Binary, len(f.Data))
		*b.buf = append(*b.buf, f.Data...)
	}
	if err = b.tryFlushLocked(); err != nil {
		b.releaseBufLocked()
	}
	return true, err
}

// maxFrameHeader is the longest header of a server frame.
const maxFrameHeader = 10

// Pending reports whether Conn holds bytes that TryWriteFrames could not
// write yet.
func (b *Conn) Pending() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf != nil && len(*b.buf) > 0
}

// tryFlushLocked writes what the batch holds without waiting, and keeps
// what the socket does not take.
func (b *Conn) tryFlushLocked() error {
	if b.buf == nil {
		return nil
	}
	p := *b.buf
	var n int
	var werr error
	err := b.raw.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), p)
			if werr != syscall.EINTR {
				return true // done, whatever came of it: never wait here
			}
		}
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The deadline of an earlier blocking write has passed: the
		// writer's write sets a new one.
		n, err = 0, nil
	case err != nil:
		return err
	case werr == syscall.EAGAIN:
		n = 0
	case werr != nil:
		return werr
	}
	if n == len(p) {
		b.releaseBufLocked()
		return nil
	}
	*b.buf = p[:copy(p, p[n:])]
	return nil
}

func (b *Conn) releaseBufLocked() {
	if b.buf == nil {
		return
	}
	*b.buf = (*b.buf)[:0]
	batchBuffers.Put(b.buf)
	b.buf = nil
}

// maxBoundaryWaits bounds how many times WriteFrames gives way to a frame
// coder/websocket is writing in parts: far more than finishing one takes.
const maxBoundaryWaits = 10_000

// errBrokenFrame is WriteFrames' error when coder/websocket left a frame
// half written.
var errBrokenFrame = errors.New("wsconn: a control frame was left half written")

// Close writes what is held, then closes the connection. coder/websocket
// closes the connection right after answering a client's close frame, and
// that answer may be held in a batch.
func (b *Conn) Close() error {
	b.Release(CloseFlushTimeout)
	return b.Conn.Close()
}

// CloseFlushTimeout bounds the last write before a close.
const CloseFlushTimeout = time.Second

// Release stops holding and writes what is held, giving it at most timeout:
// called when the connection ends, so that a frame coder/websocket wrote
// while the writer held a batch (the answer to the client's close frame,
// say) is not lost when the TCP connection is closed.
func (b *Conn) Release(timeout time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hold = false
	b.timeout = min(b.timeout, timeout)
	// The connection is ending; a write error changes nothing.
	_ = b.flushLocked()
	b.releaseBufLocked()
}

func (b *Conn) flushLocked() error {
	if b.buf == nil || len(*b.buf) == 0 {
		return nil
	}
	_, err := b.writeLocked(*b.buf)
	*b.buf = (*b.buf)[:0]
	return err
}

// writeLocked writes p with the write timeout. Every write to the
// connection comes through here and sets its own deadline, so a deadline
// left from an earlier write never needs clearing (that cost a second
// timer update per write).
func (b *Conn) writeLocked(p []byte) (int, error) {
	if err := b.Conn.SetWriteDeadline(time.Now().Add(b.timeout)); err != nil {
		return 0, err
	}
	return b.Conn.Write(p)
}

// Writer is the http.ResponseWriter handed to websocket.Accept:
// its Hijack gives coder/websocket a Conn, and a small bufio.Writer
// since Conn does the buffering (a 4 KiB one per connection would be
// held for the connection's life).
type Writer struct {
	http.ResponseWriter
	// Timeout bounds every write to the connection.
	Timeout time.Duration
	// LastSeen, if not nil, is set to the time (UnixNano) of every read
	// that brings the client's bytes.
	LastSeen *atomic.Int64
	// ControlRate (per second) and ControlBurst are the client's control
	// frame budget; a zero rate is no limit.
	ControlRate, ControlBurst float64

	conn *Conn // set by Hijack
}

// Conn is the connection Hijack made, nil before.
func (w *Writer) Conn() *Conn { return w.conn }

func (w *Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = newConn(nc, w.Timeout, w.LastSeen)
	w.conn.in.budget.rate, w.conn.in.budget.burst = w.ControlRate, w.ControlBurst
	// Bytes the client sent right after its handshake, which net/http has
	// read already, are the first to read.
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		c := w.conn
		c.keep(early)
		k, ferr := c.filter(*c.pending)
		*c.pending, c.readErr = (*c.pending)[:k], ferr
		if k == 0 {
			c.releasePending()
		}
	}
	// The smallest read buffer bufio allows, instead of net/http's 4 KiB
	// one, which the connection would hold for its life: Conn holds
	// the bytes read from the socket, and only while they wait.
	return w.conn, bufio.NewReadWriter(bufio.NewReaderSize(w.conn, 16), bufio.NewWriterSize(w.conn, 64)), nil
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
