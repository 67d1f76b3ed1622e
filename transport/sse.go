package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// serveEvents is GET /rooms/{room}/events: the room as server-sent
// events, for read-only consumers (dashboards, curl, networks that block
// WebSocket). The stream is served by a session like any other, a
// lobby.v1 member of the room, whose socket.Conn (sseConn) writes each
// frame as an event: the room hands it the frames it encodes once for all
// its members, and the stream meets the same limits as a WebSocket (the
// connection count, the connect rate, the client token, the bounded
// queue, the drain).
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	room, ok := roomFromPath(w, r)
	if !ok {
		return
	}
	if err := s.checkOrigin(r); err != nil {
		s.refuse(w, r, refusedOrigin, http.StatusForbidden, codeForbiddenOrigin, err.Error())
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		// checkOrigin allowed it: same origin, or --allowed-origins.
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
	}
	join := actors.Join{Room: room, Protocol: messages.ProtocolJSON}
	if err := parseRecovery(r.URL.RawQuery, &join); err != nil {
		s.refuse(w, r, refusedBadRequest, http.StatusBadRequest, err.code, err.message)
		return
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		// What the stream last gave this EventSource wins over the query
		// of its first connect, which it sends again.
		if err := parseLastEventID(id, &join); err != nil {
			s.refuse(w, r, refusedBadRequest, http.StatusBadRequest, err.code, err.message)
			return
		}
	}
	if ok, wait, _ := s.connects.allow(remoteAddr(r, s.cfg.TrustProxy), time.Now()); !ok {
		s.refuseConnectRate(w, r, wait)
		return
	}
	if s.draining.Load() {
		s.refuse(w, r, refusedDraining, http.StatusServiceUnavailable, codeDraining, "the server is shutting down")
		return
	}
	if _, err := s.clientToken(r, room); err != nil {
		s.refuseToken(w, r, room, err)
		return
	}
	if s.open.Add(1) > int64(s.cfg.MaxConnections) {
		s.open.Add(-1)
		w.Header().Set("Retry-After", "5")
		s.refuse(w, r, refusedOverCapacity, http.StatusServiceUnavailable, codeOverCapacity, "the server has as many connections as it takes; retry later")
		return
	}
	defer s.open.Add(-1)

	conn := newSSEConn(w, connLimits{maxFrames: s.cfg.SendQueue, maxBytes: s.cfg.SendQueueBytes, writeTimeout: s.cfg.WriteTimeout}, s.metrics)
	if !s.track(conn) {
		writeError(w, http.StatusServiceUnavailable, codeDraining, "the server is shutting down")
		return
	}
	defer s.untrack(conn)
	// The stream outlives the server's read and write timeouts, which are
	// for requests: each write has its own deadline (sseConn.write). With
	// the read deadline left, net/http would end the stream at it.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx would hold the events back
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	// An EventSource reconnects after this many milliseconds when the
	// stream ends (its default is a few seconds).
	if err := conn.write(func(b *bufio.Writer) { b.WriteString("retry: 1000\n\n") }); err != nil {
		return
	}

	s.metrics.sseStreams.Inc()
	defer s.metrics.sseStreams.Dec()
	join.ID = uuid.New()
	pid := s.node.Spawn(s.node.SessionProps(conn, join))
	info := connInfo{kind: "events", remote: r.RemoteAddr, id: join.ID, room: room, protocol: messages.ProtocolJSON, start: time.Now()}
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		s.log.Info("connection open", info.attrs(slog.String("protocol", "sse"))...)
	}
	why := conn.run(r.Context())
	s.node.Poison(pid)
	conn.waitActor()
	s.metrics.disconnects.WithLabelValues(why).Inc()
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		s.log.Info("connection closed", info.attrs(slog.String("why", why), slog.Duration("duration", time.Since(info.start)))...)
	}
}

// eventsPreflight answers a browser's CORS preflight of
// GET /rooms/{room}/events: a page's own reader (fetch with an
// Authorization header, say) asks first; an EventSource does not.
// Origins are those the stream itself answers.
func (s *Server) eventsPreflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		writeError(w, http.StatusBadRequest, codeInvalidQuery, "a preflight names its Origin")
		return
	}
	if err := s.checkOrigin(r); err != nil {
		writeError(w, http.StatusForbidden, codeForbiddenOrigin, err.Error())
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Allow-Methods", "GET")
	h.Set("Access-Control-Allow-Headers", "Authorization, Last-Event-ID")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// parseLastEventID reads an EventSource's Last-Event-ID, <epoch>-<seq>
// as the stream's message events name themselves.
func parseLastEventID(id string, j *actors.Join) *queryError {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return &queryError{codeInvalidSince, "Last-Event-ID is <epoch>-<seq>, as the stream's events name themselves"}
	}
	since, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil || i > maxEpochLen {
		return &queryError{codeInvalidSince, "Last-Event-ID is <epoch>-<seq>, as the stream's events name themselves"}
	}
	j.Recover, j.Since, j.Epoch = true, since, id[:i]
	return nil
}

// sseConn is an event stream as its session sees it (socket.Conn): a
// bounded queue in front of the request's goroutine, which writes it
// (run). It has the overflow policy of a WebSocket's queue (wsConn):
// a frame past the bound closes the stream as a slow consumer.
type sseConn struct {
	// Static after construction.
	w       http.ResponseWriter
	rc      *http.ResponseController
	bw      *bufio.Writer
	limits  connLimits
	metrics *metrics
	// wake has room for one signal: there is something to do.
	wake      chan struct{}
	actorDone chan struct{}

	// epoch is the room's, from its welcome; the writer's alone.
	epoch string

	mu          sync.Mutex // guards the fields below
	queue       [][]byte
	queuedBytes int
	pingDue     bool
	closing     bool
	// aborted drops what is queued; why is the server's close, if any.
	aborted bool
	why     socket.Reason
	// writing is set while run writes a batch; drained is called once
	// the queue is next empty.
	writing bool
	drained drainWait
}

func newSSEConn(w http.ResponseWriter, limits connLimits, m *metrics) *sseConn {
	return &sseConn{w: w, rc: http.NewResponseController(w), bw: bufio.NewWriterSize(w, 4<<10), limits: limits, metrics: m,
		wake: make(chan struct{}, 1), actorDone: make(chan struct{})}
}

func (c *sseConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Send implements socket.Conn.
func (c *sseConn) Send(data []byte, binary bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		c.metrics.queueDropped.Inc()
		return false
	}
	if binary {
		return true // a stream has no binary event; sessions send none to lobby.v1 clients
	}
	if len(c.queue) >= c.limits.maxFrames || c.queuedBytes+len(data) > c.limits.maxBytes {
		c.metrics.queueDropped.Inc()
		c.closing, c.aborted, c.why = true, true, slowConsumer
		c.queue, c.queuedBytes = nil, 0
		c.signal()
		return false
	}
	c.queue = append(c.queue, data)
	c.queuedBytes += len(data)
	c.signal()
	return true
}

// Close implements socket.Conn: the stream ends after what is queued.
func (c *sseConn) Close(r socket.Reason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.closing, c.why = true, r
	c.signal()
}

// Abort implements socket.Conn.
func (c *sseConn) Abort(r socket.Reason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.closing, c.aborted, c.why = true, true, r
	c.queue, c.queuedBytes = nil, 0
	c.signal()
}

// closeTCP ends the stream at once (the drain's deadline).
func (c *sseConn) closeTCP() { c.Abort(socket.ShuttingDown) }

// Ping implements socket.Conn: a comment line, which keeps proxies from
// closing a quiet stream.
func (c *sseConn) Ping() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closing {
		c.pingDue = true
		c.signal()
	}
}

// LastSeen implements socket.Conn. A stream's client never speaks: it is
// alive while its writes go through (a dead one fails a write, or ends
// the request's context), so the heartbeat never judges it silent.
func (c *sseConn) LastSeen() time.Time { return time.Now() }

// ActorStopped implements socket.Conn.
func (c *sseConn) ActorStopped() { close(c.actorDone) }

// waitActor waits until the stream's session has stopped.
func (c *sseConn) waitActor() {
	t := time.NewTimer(actorStopTimeout)
	defer t.Stop()
	select {
	case <-c.actorDone:
	case <-t.C:
	}
}

// run writes the queue as events until the stream ends, and says why:
// a lobby_disconnects_total reason.
func (c *sseConn) run(ctx context.Context) string {
	var batch [][]byte
	for {
		select {
		case <-ctx.Done():
			c.mu.Lock()
			c.closing = true
			c.mu.Unlock()
			return dcClientClosed
		case <-c.wake:
		}
		c.mu.Lock()
		batch, c.queue = c.queue, batch[:0]
		c.queuedBytes = 0
		ping, closing, aborted, why := c.pingDue, c.closing, c.aborted, c.why
		c.pingDue = false
		c.writing = true
		c.mu.Unlock()
		if aborted {
			return why.Label
		}
		err := c.write(func(b *bufio.Writer) {
			for _, data := range batch {
				c.event(b, data)
			}
			if ping {
				b.WriteString(": ping\n\n")
			}
			if closing {
				b.WriteString(": closed, ")
				b.WriteString(why.Text)
				b.WriteString("\n\n")
			}
		})
		c.metrics.delivered.Add(float64(len(batch)))
		clear(batch)
		if err != nil {
			c.mu.Lock()
			c.closing = true
			c.mu.Unlock()
			if isTimeout(err) {
				return slowConsumer.Label
			}
			return dcConnectionLost
		}
		if closing {
			return why.Label
		}
		c.mu.Lock()
		c.writing = false
		var drained func()
		if len(c.queue) == 0 {
			drained = c.drained.take(c.closing)
		}
		c.mu.Unlock()
		if drained != nil {
			drained()
		}
	}
}

// Room implements socket.Pacer.
func (c *sseConn) Room() (frames, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limits.room(len(c.queue), c.queuedBytes)
}

// Bound implements socket.Pacer.
func (c *sseConn) Bound() (frames, bytes int) { return c.limits.maxFrames, c.limits.maxBytes }

// WhenDrained implements socket.Pacer.
func (c *sseConn) WhenDrained(drained func()) {
	c.mu.Lock()
	now := c.drained.wait(drained, c.writing || len(c.queue) > 0, c.closing)
	c.mu.Unlock()
	if now != nil {
		now()
	}
}

// write writes what fill puts in the buffer, and flushes it to the
// client within the write timeout.
func (c *sseConn) write(fill func(*bufio.Writer)) error {
	_ = c.rc.SetWriteDeadline(time.Now().Add(c.limits.writeTimeout))
	fill(c.bw)
	if err := c.bw.Flush(); err != nil {
		return err
	}
	return c.rc.Flush()
}

// event writes one lobby.v1 frame as an event named by its type: a
// message's id is <epoch>-<seq>, which a reconnecting EventSource sends
// back as Last-Event-ID; a welcome that starts the live stream (not a
// recovery, whose replay follows) has the id of where it starts.
func (c *sseConn) event(b *bufio.Writer, data []byte) {
	typ := frameType(data)
	if typ == "" {
		return
	}
	b.WriteString("event: ")
	b.WriteString(typ)
	b.WriteByte('\n')
	switch typ {
	case "welcome":
		var w struct {
			Epoch     string `json:"epoch"`
			Seq       uint64 `json:"seq"`
			Recovered bool   `json:"recovered"`
		}
		if json.Unmarshal(data, &w) == nil {
			c.epoch = w.Epoch
			if !w.Recovered {
				writeEventID(b, c.epoch, w.Seq)
			}
		}
	case "message":
		if seq, ok := frameSeq(data); ok {
			writeEventID(b, c.epoch, seq)
		}
	}
	b.WriteString("data: ")
	// JSON holds a line break only as whitespace between tokens (a
	// published body may): a space there means the same, and keeps the
	// event's data one line.
	for len(data) > 0 {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			b.Write(data)
			break
		}
		b.Write(data[:i])
		b.WriteByte(' ')
		data = data[i+1:]
	}
	b.WriteString("\n\n")
}

func writeEventID(b *bufio.Writer, epoch string, seq uint64) {
	b.WriteString("id: ")
	b.WriteString(epoch)
	b.WriteByte('-')
	b.WriteString(strconv.FormatUint(seq, 10))
	b.WriteByte('\n')
}

// frameType is a lobby.v1 server frame's type: every one starts
// {"type":"<type>" (actors/chat/json.go writes them so).
func frameType(data []byte) string {
	const prefix = `{"type":"`
	if !bytes.HasPrefix(data, []byte(prefix)) {
		return ""
	}
	rest := data[len(prefix):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || end > 32 {
		return ""
	}
	return string(rest[:end])
}

// frameSeq is a message frame's seq: its first "seq" key, which comes
// before the msg (actors/chat/json.go), after an id and a room name that
// cannot hold one.
func frameSeq(data []byte) (uint64, bool) {
	const key = `,"seq":`
	i := bytes.Index(data, []byte(key))
	if m := bytes.Index(data, []byte(`,"msg":`)); i < 0 || m >= 0 && m < i {
		return 0, false
	}
	rest := data[i+len(key):]
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	n, err := strconv.ParseUint(string(rest[:end]), 10, 64)
	return n, err == nil
}
