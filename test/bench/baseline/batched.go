package main

// The --batched hub. What made the earlier batched mode (coder/websocket's
// Write per frame into a connection that held the bytes until the batch
// was done) cost twice rawbatch's CPU per delivery is in
// cmd/lobbybench/README.md's performance section; in short, every frame
// paid for a context with a timer, coder/websocket's write path (its
// mutex, its bufio flush, a copy into the holding buffer) and a broadcast
// held the hub's mutex over every member. Here a frame costs one append
// to a member's queue and its share of one write.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

// wsFrame returns payload as one complete, unmasked WebSocket text frame
// (FIN set): a server's frames are not masked, so the header is 2 bytes,
// plus a 2-byte extended length from 126 bytes and an 8-byte one past
// 65 535.
func wsFrame(payload []byte) []byte {
	n := len(payload)
	var f []byte
	switch {
	case n < 126:
		f = make([]byte, 2, 2+n)
		f[1] = byte(n)
	case n <= 0xffff:
		f = make([]byte, 4, 4+n)
		f[1] = 126
		binary.BigEndian.PutUint16(f[2:], uint16(n))
	default:
		f = make([]byte, 10, 10+n)
		f[1] = 127
		binary.BigEndian.PutUint64(f[2:], uint64(n))
	}
	f[0] = 0x80 | 0x1 // FIN, text
	return append(f, payload...)
}

// rawConn is the hijacked connection. coder/websocket writes its control
// frames (pong, close) through Write; the batch writer writes through
// writeBatch; mu keeps the two from interleaving on the wire.
type rawConn struct {
	net.Conn
	mu       sync.Mutex
	deadline time.Time // the write deadline set last, under mu
}

func (c *rawConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.Write(p)
}

// writeBatch writes p in one write, within 9 to 10 s: the deadline is
// moved only when less than 9 s of it is left, since moving it costs a
// timer update per batch otherwise.
func (c *rawConn) writeBatch(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); c.deadline.Sub(now) < 9*time.Second {
		c.deadline = now.Add(10 * time.Second)
		_ = c.Conn.SetWriteDeadline(c.deadline)
	}
	_, err := c.Conn.Write(p)
	return err
}

// hijackWriter hands websocket.Accept a rawConn when it hijacks.
type hijackWriter struct {
	http.ResponseWriter
	conn *rawConn
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &rawConn{Conn: nc}
	return w.conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriter(w.conn)), nil
}

type batchClient struct {
	id   uuid.UUID
	ws   *websocket.Conn
	conn *rawConn
	wake chan struct{} // capacity 1: the queue went from empty to not, or closing was set

	mu      sync.Mutex
	queue   [][]byte // complete frames, shared between members
	spare   [][]byte // the writer's last batch, emptied, for reuse
	closing bool
}

// send queues frame for c without blocking; a full queue closes c.
func (c *batchClient) send(frame []byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if len(c.queue) >= maxQueue {
		c.closing = true
		c.mu.Unlock()
		go c.ws.Close(websocket.StatusPolicyViolation, "slow consumer")
		return
	}
	c.queue = append(c.queue, frame)
	first := len(c.queue) == 1
	c.mu.Unlock()
	if first {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// stop tells the writer to stop, and send to queue nothing more.
func (c *batchClient) stop() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// writer is c's one long-lived writer: parked until woken, it then takes
// every frame queued and writes them in one write. It waits on one
// channel, not a select over two: the wake-up is on every batch's path.
func (c *batchClient) writer() {
	var buf []byte
	for range c.wake {
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			return
		}
		batch := c.queue
		c.queue = c.spare
		c.spare = nil
		c.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		buf = buf[:0]
		for i, f := range batch {
			buf = append(buf, f...)
			batch[i] = nil
		}
		if err := c.conn.writeBatch(buf); err != nil {
			c.ws.CloseNow()
			return
		}
		if cap(buf) > 256<<10 {
			buf = nil
		}
		if cap(batch) <= maxQueue {
			c.mu.Lock()
			c.spare = batch[:0]
			c.mu.Unlock()
		}
	}
}

type batchRoom struct {
	name    string
	nameJS  []byte                         // name as a JSON string
	members atomic.Pointer[[]*batchClient] // copy-on-write, under the hub's mutex
}

func (r *batchRoom) broadcast(frame []byte, skip *batchClient) {
	p := r.members.Load()
	if p == nil {
		return
	}
	for _, c := range *p {
		if c != skip {
			c.send(frame)
		}
	}
}

type batchHub struct {
	mu    sync.Mutex
	rooms map[string]*batchRoom
}

func (h *batchHub) join(name string, c *batchClient) *batchRoom {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[name]
	if r == nil {
		js, _ := json.Marshal(name)
		r = &batchRoom{name: name, nameJS: js}
		h.rooms[name] = r
	}
	var old []*batchClient
	if p := r.members.Load(); p != nil {
		old = *p
	}
	m := make([]*batchClient, len(old), len(old)+1)
	copy(m, old)
	m = append(m, c)
	r.members.Store(&m)
	return r
}

func (h *batchHub) leave(r *batchRoom, c *batchClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *r.members.Load()
	m := make([]*batchClient, 0, len(old))
	for _, x := range old {
		if x != c {
			m = append(m, x)
		}
	}
	r.members.Store(&m)
	if len(m) == 0 && h.rooms[r.name] == r {
		delete(h.rooms, r.name)
	}
}

func (h *batchHub) lookup(name string) *batchRoom {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rooms[name]
}

// envelope is the broadcast frame's payload, {"id":..,"msg":..,"room_id":..};
// msg is JSON already.
func envelope(id uuid.UUID, msg []byte, r *batchRoom) []byte {
	b := make([]byte, 0, 56+len(msg)+len(r.nameJS))
	b = append(b, `{"id":"`...)
	b = appendUUID(b, id)
	b = append(b, `","msg":`...)
	b = append(b, msg...)
	b = append(b, `,"room_id":`...)
	b = append(b, r.nameJS...)
	return append(b, '}')
}

// appendUUID appends id's canonical text form (what id.String returns)
// without allocating.
func appendUUID(b []byte, id uuid.UUID) []byte {
	var s [36]byte
	hex.Encode(s[0:8], id[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], id[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], id[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], id[8:10])
	s[23] = '-'
	hex.Encode(s[24:], id[10:])
	return append(b, s[:]...)
}

// jsonString is s as a JSON string, without reflection when it needs no
// escaping.
func jsonString(s []byte) []byte {
	for _, ch := range s {
		if ch < 0x20 || ch == '"' || ch == '\\' || ch >= 0x80 {
			js, _ := json.Marshal(string(s))
			return js
		}
	}
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func (h *batchHub) serveWS(w http.ResponseWriter, r *http.Request) {
	hw := &hijackWriter{ResponseWriter: w}
	ws, err := websocket.Accept(hw, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	if hw.conn == nil { // not hijacked through us: cannot write raw
		ws.CloseNow()
		return
	}
	ws.SetReadLimit(64 << 10)
	c := &batchClient{id: uuid.New(), ws: ws, conn: hw.conn,
		wake: make(chan struct{}, 1)}
	id := c.id.String()
	c.send(wsFrame([]byte("your id is " + id)))
	room := h.join(r.PathValue("room"), c)
	room.broadcast(wsFrame([]byte(id+" just joined!")), c)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writer()
	}()
	for {
		typ, data, err := ws.Read(context.Background())
		if err != nil {
			break
		}
		if typ == websocket.MessageBinary {
			c.send(wsFrame(data))
			continue
		}
		room.broadcast(wsFrame(envelope(c.id, jsonString(data), room)), nil)
	}
	c.stop()
	h.leave(room, c)
	room.broadcast(wsFrame([]byte(id+" disconnected.")), c)
	<-writerDone
	ws.CloseNow()
}

func (h *batchHub) publish(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil || !json.Valid(body) {
		http.Error(w, `{"error":"invalid_json"}`, http.StatusBadRequest)
		return
	}
	if room := h.lookup(r.PathValue("room")); room != nil {
		room.broadcast(wsFrame(envelope(uuid.Nil, body, room)), nil)
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true}`)
}
