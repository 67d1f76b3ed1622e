package transport

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/messages"
)

const closeGoingAway = websocket.StatusGoingAway

// SubprotocolJSON is the subprotocol a client asks for to speak lobby.v1,
// the typed JSON protocol; a client that asks for none speaks the seed's
// text protocol.
const SubprotocolJSON = "lobby.v1"

// maxEpochLen bounds the epoch a client may send back.
const maxEpochLen = 64

// propsFunc makes the actor that will serve one upgraded connection.
type propsFunc func(conn actors.Conn, protocol messages.Protocol) *actor.Props

// serveRoom is GET /ws/{room}, GET /ws/ and GET /{room} with an Upgrade
// header: a session in the room.
func (s *Server) serveRoom(w http.ResponseWriter, r *http.Request) {
	room := r.PathValue("room")
	if !strings.HasPrefix(r.URL.Path, "/ws/") && !isUpgrade(r) {
		// GET /{room} is the seed's route shape and only a WebSocket;
		// any other page under / is simply not there.
		writeError(w, http.StatusNotFound, "not_found", "no such route")
		return
	}
	if room == "" {
		room = DefaultRoom
	}
	if !validRoom(room) {
		writeError(w, http.StatusBadRequest, "invalid_room", "a room name is 1 to 64 characters of A-Z a-z 0-9 _ . -")
		return
	}
	join := actors.Join{Room: room}
	q := r.URL.Query()
	if q.Has("since") {
		since, err := strconv.ParseUint(q.Get("since"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_since", "since must be a message sequence number (0 or more)")
			return
		}
		epoch := q.Get("epoch")
		if len(epoch) > maxEpochLen {
			writeError(w, http.StatusBadRequest, "invalid_epoch", "epoch is too long")
			return
		}
		join.Recover, join.Since, join.Epoch = true, since, epoch
	}
	s.serveSocket(w, r, "room", room, func(conn actors.Conn, p messages.Protocol) *actor.Props {
		join.Protocol = p
		return s.node.SessionProps(conn, join)
	})
}

// serveEcho is GET /echo: the seed's minimal actor.
func (s *Server) serveEcho(w http.ResponseWriter, r *http.Request) {
	s.serveSocket(w, r, "echo", "", func(conn actors.Conn, _ messages.Protocol) *actor.Props {
		return s.node.EchoProps(conn)
	})
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

// serveSocket upgrades r, spawns the actor newProps makes for it, and reads
// the socket into that actor until the connection ends. It is the one
// place where a connection's goroutines and actor start and stop: the
// handler's goroutine is the reader, and it returns only once the actor has
// stopped and the connection's other goroutines have ended.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request, kind, room string, newProps propsFunc) {
	if !isUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		writeError(w, http.StatusUpgradeRequired, "upgrade_required", "this route is a WebSocket; connect with a WebSocket client")
		return
	}
	if s.draining.Load() {
		writeError(w, http.StatusServiceUnavailable, "draining", "the server is shutting down")
		return
	}
	conn := newWSConn(connLimits{
		maxFrames:    s.cfg.SendQueue,
		maxBytes:     s.cfg.SendQueueBytes,
		writeTimeout: s.cfg.WriteTimeout,
		pingTimeout:  s.cfg.ClientTimeout,
	}, r.RemoteAddr)
	bw := &batchingWriter{ResponseWriter: w, timeout: s.cfg.WriteTimeout}
	ws, err := websocket.Accept(bw, r, &websocket.AcceptOptions{
		Subprotocols:   []string{SubprotocolJSON},
		OnPongReceived: func(context.Context, []byte) { conn.seen() },
		OnPingReceived: func(context.Context, []byte) bool { conn.seen(); return true },
	})
	if err != nil {
		// Accept has answered the client already.
		s.log.Debug("websocket upgrade refused", slog.String("remote", r.RemoteAddr), slog.Any("err", err))
		return
	}
	conn.ws, conn.batch = ws, bw.conn
	ws.SetReadLimit(s.cfg.MaxMessageBytes)
	if !s.track(conn) {
		_ = ws.Close(closeGoingAway, reasonShutdown)
		return
	}
	defer s.untrack(conn)

	start := time.Now()
	protocol := messages.ProtocolText
	if ws.Subprotocol() == SubprotocolJSON {
		protocol = messages.ProtocolJSON
	}
	pid := s.node.Spawn(newProps(conn, protocol))
	log := s.log.With(slog.String("kind", kind), slog.String("actor", pid.Id), slog.String("remote", r.RemoteAddr))
	if room != "" {
		log = log.With(slog.String("room", room))
	}
	log.Info("connection open")

	readErr := s.readLoop(conn, pid)

	s.node.Stop(pid)
	conn.shutdown()
	log.Info("connection closed", append(closeAttrs(conn, readErr), slog.Duration("duration", time.Since(start)))...)
}

// readLoop hands every data frame to the connection's actor until the read
// fails: the client closed, the connection broke, a frame was too large
// (coder/websocket then closes with 1009), or the server is closing.
func (s *Server) readLoop(conn *wsConn, pid *actor.PID) error {
	for {
		typ, data, err := conn.ws.Read(s.hardCtx)
		if err != nil {
			return err
		}
		conn.seen()
		s.node.Send(pid, &messages.ClientMessage{Data: data, Binary: typ == websocket.MessageBinary})
		// A client's frames already in the socket buffer can be read far
		// faster than their fan-out is written. Yielding here lets the
		// actors and writers downstream run before the next read, so a
		// burst from one sender paces itself instead of filling every
		// member's queue.
		runtime.Gosched()
	}
}

// closeAttrs says how a connection ended, for its log line: the close the
// server asked for, else the client's close code, else the read error.
func closeAttrs(conn *wsConn, readErr error) []any {
	if code, reason := conn.reason(); code != 0 {
		return []any{slog.Int("code", int(code)), slog.String("reason", reason), slog.String("by", "server")}
	}
	if code := websocket.CloseStatus(readErr); code != -1 {
		var ce websocket.CloseError
		errors.As(readErr, &ce)
		return []any{slog.Int("code", int(code)), slog.String("reason", ce.Reason), slog.String("by", "client")}
	}
	return []any{slog.String("err", readErr.Error())}
}
