package transport

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// maxBatchBytes is the most a batchConn holds before it writes anyway. 64 KiB
// is a few TCP segments' worth: larger batches save no further syscalls.
const maxBatchBytes = 64 << 10

// batchBuffers recycles batch buffers, so that an idle connection holds none.
// A new one starts small (most batches are a few small frames; a 64 KiB
// one would cost a 64 KiB clear for each) and grows by append up to
// maxBatchBytes.
var batchBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// batchConn is the hijacked TCP connection under a WebSocket. coder/websocket
// flushes every frame it writes with one write() of its own; one syscall per
// frame is what limits fan-out (5–8 µs each). While the connection's writer
// holds a batch, batchConn collects what coder/websocket writes and sends it
// with one write() when the writer releases the batch, so every frame that
// was queued for the client goes out in one syscall.
//
// Frames written while no batch is held (pongs, close frames) go straight
// through. A frame written by another goroutine while a batch is held waits
// for the release, which follows at once.
type batchConn struct {
	net.Conn

	mu   sync.Mutex // guards the fields below; held while writing
	hold bool
	buf  *[]byte
	// timeout bounds the writes a batch makes (SetWriteDeadline).
	timeout time.Duration
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.hold {
		return b.Conn.Write(p)
	}
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

// begin starts holding writes.
func (b *batchConn) begin() {
	b.mu.Lock()
	b.hold = true
	b.mu.Unlock()
}

// end writes what was held, in one write(), and stops holding.
func (b *batchConn) end() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hold = false
	err := b.flushLocked()
	if b.buf != nil {
		*b.buf = (*b.buf)[:0]
		batchBuffers.Put(b.buf)
		b.buf = nil
	}
	return err
}

// Close writes what is held, then closes the connection. coder/websocket
// closes the connection right after answering a client's close frame, and
// that answer may be held in a batch.
func (b *batchConn) Close() error {
	b.release(closeFlushTimeout)
	return b.Conn.Close()
}

// closeFlushTimeout bounds the last write before a close.
const closeFlushTimeout = time.Second

// release stops holding and writes what is held, giving it at most timeout:
// called when the connection ends, so that a frame coder/websocket wrote
// while the writer held a batch (the answer to the client's close frame,
// say) is not lost when the TCP connection is closed.
func (b *batchConn) release(timeout time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hold = false
	b.timeout = min(b.timeout, timeout)
	// The connection is ending; a write error changes nothing.
	_ = b.flushLocked()
}

func (b *batchConn) flushLocked() error {
	if b.buf == nil || len(*b.buf) == 0 {
		return nil
	}
	_, err := b.writeLocked(*b.buf)
	*b.buf = (*b.buf)[:0]
	return err
}

func (b *batchConn) writeLocked(p []byte) (int, error) {
	if err := b.Conn.SetWriteDeadline(time.Now().Add(b.timeout)); err != nil {
		return 0, err
	}
	n, err := b.Conn.Write(p)
	// Clearing the deadline cannot fail where setting it did not.
	_ = b.Conn.SetWriteDeadline(time.Time{})
	return n, err
}

// batchingWriter is the http.ResponseWriter handed to websocket.Accept:
// its Hijack gives coder/websocket a batchConn, and a small bufio.Writer
// since batchConn does the buffering (a 4 KiB one per connection would be
// held for the connection's life).
type batchingWriter struct {
	http.ResponseWriter
	timeout time.Duration
	conn    *batchConn
}

func (w *batchingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &batchConn{Conn: nc, timeout: w.timeout}
	// A 512-byte read buffer instead of net/http's 4 KiB one, which the
	// connection would hold for its life: a small frame still arrives in
	// one read, and a large payload is read past the buffer, straight into
	// the message.
	var src io.Reader = w.conn
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(early)), w.conn)
	}
	return w.conn, bufio.NewReadWriter(bufio.NewReaderSize(src, 512), bufio.NewWriterSize(w.conn, 64)), nil
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *batchingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
