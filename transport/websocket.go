package transport

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"
	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
	"github.com/lobby/lobby/transport/wsconn"
)

// SubprotocolJSON is the subprotocol a client asks for to speak lobby.v1,
// the typed JSON protocol; a client that asks for none speaks the seed's
// text protocol.
const SubprotocolJSON = "lobby.v1"

// maxEpochLen bounds the epoch a client may send back.
const maxEpochLen = 64

// propsFunc makes the actor that will serve one upgraded connection, and
// says the session id it will have (uuid.Nil for an actor without one), for
// the connection's log lines.
type propsFunc func(conn socket.Conn, protocol messages.Protocol) (*actor.Props, uuid.UUID)

// serveRoom is GET /ws/{room}, GET /ws/ and GET /{room} with an Upgrade
// header (serveRoomOrPage): a session in the room.
func (s *Server) serveRoom(w http.ResponseWriter, r *http.Request) {
	room := r.PathValue("room")
	if room == "" && r.URL.EscapedPath() == "/ws/" {
		room = DefaultRoom
	}
	// ServeMux matches /ws/%2F to /ws/{$}, with an empty room: an encoded
	// slash is not a name, so it is refused like %2F inside a name.
	if !messages.ValidRoom(room) {
		s.refuse(w, r, refusedBadRequest, http.StatusBadRequest, codeInvalidRoom, messages.InvalidRoomText)
		return
	}
	join := actors.Join{Room: room}
	if err := parseRecovery(r.URL.RawQuery, &join); err != nil {
		s.refuse(w, r, refusedBadRequest, http.StatusBadRequest, err.code, err.message)
		return
	}
	s.serveSession(w, r, join)
}

// serveSubscriptions is GET /ws: a lobby.v1 session in no room, which
// subscribes to the rooms it wants. A client that does not ask for
// lobby.v1 is refused before the upgrade: the text protocol has no
// subscribe, so such a connection could do nothing.
func (s *Server) serveSubscriptions(w http.ResponseWriter, r *http.Request) {
	if !offersSubprotocol(r, SubprotocolJSON) {
		s.refuse(w, r, refusedBadRequest, http.StatusBadRequest, codeSubprotocolRequired,
			"GET /ws is the lobby.v1 protocol's: ask for Sec-WebSocket-Protocol: lobby.v1, or join one room at /ws/{room}")
		return
	}
	s.serveSession(w, r, actors.Join{})
}

// serveSession serves a chat session: join's room, if any, and its
// subscriptions. The client's ?name= and token say its name and the
// rooms it may subscribe to.
func (s *Server) serveSession(w http.ResponseWriter, r *http.Request, join actors.Join) {
	name, ok := messages.CleanName(r.URL.Query().Get("name"))
	if !ok {
		s.refuse(w, r, refusedBadRequest, http.StatusBadRequest, codeInvalidName, "?name= is at most 32 characters, none of them a control character")
		return
	}
	join.Name = name
	route := socketRoute{kind: "room", room: join.Room, speaksJSON: true, claims: func(c *clientClaims) {
		join.Allow = func(room string) bool { return roomAllowed(c.Rooms, room) }
		if n, ok := messages.CleanName(c.Name); ok && n != "" {
			join.Name, join.FixedName = n, true
		}
	}}
	s.serveSocket(w, r, route, func(conn socket.Conn, p messages.Protocol) (*actor.Props, uuid.UUID) {
		join.ID, join.Protocol = uuid.New(), p
		return s.node.SessionProps(conn, join), join.ID
	})
}

// offersSubprotocol reports whether r's Sec-WebSocket-Protocol lists p.
func offersSubprotocol(r *http.Request, p string) bool {
	return headerHasToken(r.Header, "Sec-WebSocket-Protocol", p)
}

// serveKind serves a socket kind of the node's (GET /echo, and any
// actor type of one's own: Config.Sockets).
func (s *Server) serveKind(k socket.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.serveSocket(w, r, socketRoute{kind: k.Name}, func(conn socket.Conn, _ messages.Protocol) (*actor.Props, uuid.UUID) {
			return s.node.SocketProps(k, conn, socket.Request{PathValue: r.PathValue, Query: r.URL.Query()}), uuid.Nil
		})
	}
}

// queryError is a bad query string, answered 400.
type queryError struct{ code, message string }

// parseRecovery reads a lobby.v1 client's ?since=<seq>&epoch=<epoch>.
func parseRecovery(rawQuery string, j *actors.Join) *queryError {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return &queryError{codeInvalidQuery, "the query string is malformed"}
	}
	if !q.Has("since") {
		return nil
	}
	since, err := strconv.ParseUint(q.Get("since"), 10, 64)
	if err != nil {
		return &queryError{codeInvalidSince, "since must be a message sequence number (0 or more)"}
	}
	epoch := q.Get("epoch")
	if len(epoch) > maxEpochLen {
		return &queryError{codeInvalidEpoch, "epoch is too long"}
	}
	j.Recover, j.Since, j.Epoch = true, since, epoch
	return nil
}

// isUpgrade reports whether r asks for a WebSocket.
func isUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// refuse answers a WebSocket connect with a JSON error before the upgrade,
// counts it, and logs it (rate-limited: a flood of bad clients must not
// flood the log).
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, reason string, status int, code, message string) {
	s.metrics.upgradesRefused.WithLabelValues(reason).Inc()
	s.warn("websocket connect refused", slog.String("reason", reason), slog.Int("status", status),
		slog.String("remote", r.RemoteAddr), slog.String("path", r.URL.Path))
	writeError(w, status, code, message)
}

// acceptOptions are every upgrade's (Accept copies them). The origin is
// checked before the upgrade, with a JSON answer. A client's pings, like
// its pongs and frames, move its lastSeen as wsconn.Conn reads them.
var acceptOptions = &websocket.AcceptOptions{
	Subprotocols:       []string{SubprotocolJSON},
	InsecureSkipVerify: true,
}

// plainAcceptOptions are those of the routes that speak no subprotocol.
var plainAcceptOptions = &websocket.AcceptOptions{InsecureSkipVerify: true}

// socketRoute says what serveSocket checks on one kind of socket, and how
// its log lines name it.
type socketRoute struct {
	// kind names the socket in logs: "room", "echo", "presenter", ...
	kind string
	// room is the room a session joins, "" for other kinds. With
	// --jwt-secret, the client's token must allow it ("" allows any
	// valid token).
	room string
	// authorize, when set, replaces the --jwt-secret check with the
	// route's own: it checks the client's credentials (a questionnaire's
	// presenter token, say) and, when it refuses, has answered the
	// request and returns false.
	authorize func(w http.ResponseWriter, r *http.Request) bool
	// claims, when set, is given the client's token claims once they
	// are checked (with --jwt-secret).
	claims func(*clientClaims)
	// speaksJSON offers the lobby.v1 subprotocol; a route that does not
	// speak it answers a client asking for it with no subprotocol.
	speaksJSON bool
	// sharedAddress exempts the route from the per-address connect rate:
	// a questionnaire's audience joins all at once, often from behind one
	// venue's address, and its sockets send a handful of small frames.
	sharedAddress bool
}

// serveSocket checks a WebSocket connect (draining, capacity, origin,
// token), upgrades it, spawns the actor newProps makes for it, and reads the
// socket into that actor until the connection ends. It is the one place
// where a connection's goroutines and actor start and stop: the handler's
// goroutine is the reader, and it returns only once the actor has stopped
// and the connection's other goroutines have ended.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request, route socketRoute, newProps propsFunc) {
	// Before the handshake's checks, whose header look-ups would
	// otherwise double the stack on their own, deeper down.
	_ = growStackForUpgrade()
	kind, room := route.kind, route.room
	if !isUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		writeError(w, http.StatusUpgradeRequired, codeUpgradeRequired, "this route is a WebSocket; connect with a WebSocket client")
		return
	}
	if herr := checkHandshake(w, r); herr != nil {
		s.refuse(w, r, refusedBadRequest, herr.status, herr.code, herr.message)
		return
	}
	ok, wait, share := true, time.Duration(0), 1.0
	if !route.sharedAddress {
		ok, wait, share = s.connects.allow(remoteAddr(r, s.cfg.TrustProxy), time.Now())
	}
	if !ok {
		s.refuseConnectRate(w, r, wait)
		return
	}
	if s.draining.Load() {
		s.refuse(w, r, refusedDraining, http.StatusServiceUnavailable, codeDraining, "the server is shutting down")
		return
	}
	if err := s.checkOrigin(r); err != nil {
		s.refuse(w, r, refusedOrigin, http.StatusForbidden, codeForbiddenOrigin, err.Error())
		return
	}
	if route.authorize != nil {
		if !route.authorize(w, r) {
			return
		}
	} else if claims, err := s.clientToken(r, room); err != nil {
		s.refuseToken(w, r, room, err)
		return
	} else if claims != nil && route.claims != nil {
		route.claims(claims)
	}
	if s.open.Add(1) > int64(s.cfg.MaxConnections) {
		s.open.Add(-1)
		w.Header().Set("Retry-After", "5")
		s.refuse(w, r, refusedOverCapacity, http.StatusServiceUnavailable, codeOverCapacity, "the server has as many connections as it takes; retry later")
		return
	}
	handedOff := false
	defer func() {
		if !handedOff {
			s.open.Add(-1)
		}
	}()

	conn := newWSConn(connLimits{
		maxFrames:    s.cfg.SendQueue,
		maxBytes:     s.cfg.SendQueueBytes,
		writeTimeout: s.cfg.WriteTimeout,
	}, s.metrics)
	bw := &wsconn.Writer{ResponseWriter: w, Timeout: s.cfg.WriteTimeout, LastSeen: &conn.lastSeen,
		ControlRate: s.cfg.ControlRate, ControlBurst: float64(s.cfg.ControlBurst)}
	opts := plainAcceptOptions
	if route.speaksJSON {
		opts = acceptOptions
	}
	ws, err := websocket.Accept(bw, r, opts)
	if err != nil {
		// Accept has answered the client already.
		s.metrics.upgradesRefused.WithLabelValues(refusedBadRequest).Inc()
		s.log.Debug("websocket upgrade failed", slog.String("remote", r.RemoteAddr), slog.Any("err", err))
		return
	}
	conn.ws, conn.batch = ws, bw.Conn()
	ws.SetReadLimit(s.cfg.MaxMessageBytes)
	if !s.track(conn) {
		_ = ws.Close(websocket.StatusCode(socket.ShuttingDown.Code), socket.ShuttingDown.Text)
		return
	}
	s.metrics.connections.Inc()

	protocol := messages.ProtocolText
	if ws.Subprotocol() == SubprotocolJSON {
		protocol = messages.ProtocolJSON
	}
	props, id := newProps(conn, protocol)
	pid := s.node.Spawn(props)
	info := connInfo{kind: kind, remote: r.RemoteAddr, id: id, room: room, protocol: protocol, start: time.Now(), burstShare: share}
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		s.log.Info("connection open", info.attrs(slog.String("protocol", protocolName(protocol)))...)
	}

	// The connection is read on a goroutine of its own and this handler
	// returns: serving the HTTP request has grown the handler goroutine's
	// stack to 16 KiB, which an idle connection would otherwise keep for
	// its whole life. track counted the new goroutine for Shutdown.
	handedOff = true
	go s.serveConn(conn, pid, info)
}

// connInfo is what a connection's open and close log lines say about it.
// The lines' attributes are built only when info is logged: a server
// under connect/close churn would otherwise allocate a dozen objects per
// connection for lines nobody sees.
type connInfo struct {
	kind, remote, room string
	id                 uuid.UUID
	protocol           messages.Protocol
	start              time.Time
	// burstShare is how much of its frame and byte bursts the connection
	// starts with (connectLimiter.allow).
	burstShare float64
}

func (c *connInfo) attrs(more ...any) []any {
	attrs := make([]any, 0, 4+len(more))
	attrs = append(attrs, slog.String("kind", c.kind), slog.String("remote", c.remote))
	if c.id != uuid.Nil {
		attrs = append(attrs, slog.String("id", c.id.String()))
	}
	if c.room != "" {
		attrs = append(attrs, slog.String("room", c.room))
	}
	return append(attrs, more...)
}

// serveConn is a connection's reader, from the upgrade to the end: it
// hands every frame to the connection's actor, then stops the actor and
// the connection's goroutines, and only then returns.
func (s *Server) serveConn(conn *wsConn, pid *actor.PID, info connInfo) {
	readErr := s.readLoop(conn, pid, info.protocol, info.burstShare)
	s.endConn(conn, pid, &info, readErr)
}

// endConn stops the connection's actor and goroutines, and counts and logs
// the close. It is kept out of serveConn so that its frame (slog attributes
// and all) is not on the reader's stack while the reader waits: the stack
// then fits in the 2 KiB a goroutine starts with.
//
//go:noinline
func (s *Server) endConn(conn *wsConn, pid *actor.PID, info *connInfo, readErr error) {
	defer s.open.Add(-1)
	defer s.untrack(conn)
	defer s.metrics.connections.Dec()

	// The actor stops after the frames already in its mailbox, and tells
	// its room; its last sends reach the queue before shutdown flushes it.
	s.node.Poison(pid)
	conn.waitActor()
	conn.shutdown()
	c := closeReason(conn, readErr)
	s.metrics.disconnects.WithLabelValues(c.why).Inc()
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		s.log.Info("connection closed", info.attrs(c.attrs(time.Since(info.start))...)...)
	}
}

func protocolName(p messages.Protocol) string {
	if p == messages.ProtocolJSON {
		return SubprotocolJSON
	}
	return "text"
}

// readLoop hands every data frame to the connection's actor until the read
// fails: the client closed, the connection broke, a frame was too large
// (coder/websocket then closes with 1009), or the server is closing.
// Frames over the rate limit are handed on marked, for the actor to answer.
func (s *Server) readLoop(conn *wsConn, pid *actor.PID, protocol messages.Protocol, burstShare float64) error {
	var limiter, bytesLimiter *rate.Limiter
	now := time.Now()
	if s.cfg.Rate > 0 {
		// A connection starts with burstShare of its burst, and never less
		// than a tenth of it: a client behind an address that has just
		// connected many others (a venue's NAT) can still say something.
		limiter = rate.NewLimiter(rate.Limit(s.cfg.Rate), s.cfg.RateBurst)
		limiter.AllowN(now, int(math.Round(float64(s.cfg.RateBurst)*min(1-burstShare, 0.9))))
	}
	if s.cfg.RateBytes > 0 {
		// Likewise, and never less than one frame of the largest size.
		bytesLimiter = rate.NewLimiter(rate.Limit(s.cfg.RateBytes), s.cfg.RateBytesBurst)
		taken := int(math.Round(float64(s.cfg.RateBytesBurst) * (1 - burstShare)))
		bytesLimiter.AllowN(now, min(taken, s.cfg.RateBytesBurst-int(s.cfg.MaxMessageBytes)))
	}
	grown := false
	for {
		// Wait for the client's next frame here rather than deep inside
		// coder/websocket's read, with pongs taken care of meanwhile.
		conn.batch.WaitData()
		if !grown {
			// coder/websocket is about to read a frame, deep down (see
			// growStack).
			_ = growStack()
			grown = true
		}
		typ, data, err := conn.ws.Read(context.Background())
		if err != nil {
			switch {
			case errors.Is(err, wsconn.ErrControlFlood):
				conn.closeNow(controlFlood)
			case errors.Is(err, wsconn.ErrFragmentFlood):
				conn.closeNow(fragmentFlood)
			}
			return err
		}
		cost := len(data)
		if protocol == messages.ProtocolText && typ == websocket.MessageText {
			cost = min(escapedLen(data), s.cfg.RateBytesBurst)
		}
		limited := limiter != nil && !limiter.Allow() ||
			bytesLimiter != nil && !bytesLimiter.AllowN(time.Now(), cost)
		if limited {
			s.metrics.rateLimited.Inc()
		} else {
			s.metrics.received.Inc()
		}
		s.node.Send(pid, &messages.ClientMessage{Data: data, Binary: typ == websocket.MessageBinary, RateLimited: limited})
		// A client's frames already in the socket buffer can be read far
		// faster than their fan-out is written. Yielding here lets the
		// actors and writers downstream run before the next read, so a
		// burst from one sender paces itself instead of filling every
		// member's queue.
		runtime.Gosched()
	}
}

// escapedLen is what a text-protocol client's text frame comes to in the
// JSON string every member is sent: a control character is six bytes
// there, a quote or a backslash two. The byte rate charges that, so that
// a burst of control characters cannot overflow the readers' queues six
// times faster than the limit says.
func escapedLen(data []byte) int {
	n := len(data)
	for _, c := range data {
		switch {
		case c < 0x20:
			n += 5
		case c == '"' || c == '\\':
			n++
		}
	}
	return n
}

// connClose is why a connection ended.
type connClose struct {
	// why is the lobby_disconnects_total reason.
	why string
	// code and reason are the close frame's, 0 if none was seen; by says
	// who sent it.
	code   websocket.StatusCode
	reason string
	by     string
	// err is the read error when the connection ended without a close.
	err error
}

func (c connClose) attrs(lived time.Duration) []any {
	attrs := make([]any, 0, 6)
	if c.err != nil {
		attrs = append(attrs, slog.String("err", c.err.Error()))
	}
	if c.code != 0 {
		attrs = append(attrs, slog.Int("code", int(c.code)), slog.String("reason", c.reason), slog.String("by", c.by))
	}
	return append(attrs, slog.String("why", c.why), slog.Duration("duration", lived))
}

// closeReason says why a connection ended: the close the server asked
// for, else the client's close, else the read error.
func closeReason(conn *wsConn, readErr error) connClose {
	if r := conn.reason(); r.Code != 0 {
		why := r.Label
		if why == "" {
			why = dcPolicy
		}
		return connClose{why: why, code: websocket.StatusCode(r.Code), reason: r.Text, by: "server"}
	}
	var ce websocket.CloseError
	if errors.As(readErr, &ce) {
		return connClose{why: dcClientClosed, code: ce.Code, reason: ce.Reason, by: "client"}
	}
	// coder/websocket has closed with 1009 itself.
	if errors.Is(readErr, websocket.ErrMessageTooBig) {
		return connClose{why: dcTooBig, code: websocket.StatusMessageTooBig, by: "server", err: readErr}
	}
	return connClose{why: dcConnectionLost, err: readErr}
}

// refuseConnectRate answers a connect over its address's connect rate,
// a WebSocket's or an event stream's alike.
func (s *Server) refuseConnectRate(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	s.refuse(w, r, refusedConnectRate, http.StatusTooManyRequests, codeRateLimited, "too many connects from this address; retry later")
}

// refuseToken answers a connect to room whose client token (clientToken)
// failed with err: 403 for a room the token does not allow, else 401.
func (s *Server) refuseToken(w http.ResponseWriter, r *http.Request, room string, err error) {
	if errors.Is(err, errForbiddenRoom) {
		s.refuse(w, r, refusedForbidden, http.StatusForbidden, codeForbidden, "the token does not allow room "+room)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="lobby"`)
	s.refuse(w, r, refusedUnauthorized, http.StatusUnauthorized, codeUnauthorized, err.Error())
}
