package chat

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// session is the actor behind one room member's socket: the seed's
// WebSocketSession. It joins its room through the lobby, turns the client's
// frames into messages for the room or the lobby, and hands every frame
// addressed to the client to its socket.Conn, in the protocol the client speaks.
type session struct {
	id       uuid.UUID
	room     string
	protocol messages.Protocol
	// recover, since and epoch are the client's recovery request (lobby.v1).
	recover bool
	since   uint64
	epoch   string
	lobby   *actor.PID
	conn    socket.Conn
	hb      socket.Heartbeat
	log     *slog.Logger

	// roomPID is nil until the room answers Joined; frames the client sends
	// before that wait in pending, so that none overtakes another.
	roomPID *actor.PID
	pending socket.Hold
	strikes socket.Strikes
}

func (s *session) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.WsMessage:
		data := m.Data
		if s.protocol == messages.ProtocolJSON {
			data = m.JSON
		}
		if data != nil {
			s.conn.Send(data, m.Binary)
		}
	case *messages.ClientMessage:
		if s.roomPID == nil {
			s.pending.Add(s.conn, m)
			return
		}
		s.fromClient(ctx, m)
	case *messages.DirectMessage:
		if s.protocol == messages.ProtocolJSON {
			s.conn.Send(appendV1Direct(nil, m.ID, m.Msg), false)
			return
		}
		// The seed's clients read a direct message in the broadcast shape.
		s.conn.Send(appendBroadcast(nil, m.ID, m.Msg, s.room), false)
	case *messages.DirectResult:
		switch {
		case m.TooBig:
			s.sendError(m.Ref, codeTooBig, "the message is too big for the cluster: this direct message was not sent")
		case m.Unavailable:
			s.sendError(m.Ref, codeUnavailable, "the cluster is unavailable: this direct message may not have been delivered")
		case !m.Delivered:
			s.sendError(m.Ref, codeUnknownSession, "no session has that id")
		case m.Ref != nil:
			s.conn.Send(appendV1Ack(nil, m.Ref, 0), false)
		}
	case *messages.Joined:
		s.roomPID = m.Room
		if s.protocol == messages.ProtocolText {
			// Sent once the room has the client, not at start: "your id is"
			// then means "you are in", and a client that reads it and makes
			// another join cannot find its own join notice missing.
			s.conn.Send(appendWelcome(nil, s.id), false)
		}
		for _, p := range s.pending.Take() {
			s.fromClient(ctx, p)
		}
	case *socket.HeartbeatTick:
		s.hb.Tick(s.conn)
	case *messages.Close:
		s.conn.Close(m.Reason)
	case *actor.Started:
		ctx.Send(s.lobby, &messages.Connect{ID: s.id, Room: s.room, Session: ctx.Self(), Protocol: s.protocol,
			Recover: s.recover, Since: s.since, Epoch: s.epoch})
		s.hb.Start(ctx)
	case *actor.Stopping:
		s.hb.Stop()
		s.flushPending(ctx)
		ctx.Send(s.lobby, &messages.Disconnect{ID: s.id, Room: s.room})
	}
}

// flushPending hands the frames the client sent before its join completed
// to the lobby, which passes them to the room ahead of the Disconnect that
// follows them: a client that sends a frame and closes at once (the room's
// Joined then arrives after the stop) still has its frame delivered. Only
// what reaches other members is kept; there is nobody left to answer.
func (s *session) flushPending(ctx actor.Context) {
	for _, m := range s.pending.Take() {
		if m.RateLimited || m.Binary {
			continue
		}
		if s.protocol != messages.ProtocolJSON {
			ctx.Send(s.lobby, &messages.BroadcastMessage{ID: s.id, Msg: socket.AppendJSONString(nil, string(m.Data)), RoomID: s.room})
			continue
		}
		f, ferr := decodeClientFrame(m.Data)
		if ferr != nil {
			continue
		}
		switch f.Type {
		case frameTypeBroadcast:
			ctx.Send(s.lobby, &messages.BroadcastMessage{ID: s.id, Msg: f.Msg, RoomID: s.room})
		case frameTypeDirect:
			ctx.Send(s.lobby, &messages.DirectMessage{ID: s.id, To: f.to, Msg: f.Msg})
		}
	}
}

func (s *session) fromClient(ctx actor.Context, m *messages.ClientMessage) {
	// A lobby.v1 client is told of a frame over the rate limit, frame by
	// frame, and closed if it goes on; a text-protocol client has no way
	// to be told, so it is closed at once rather than have frames vanish.
	limit := 0
	if s.protocol == messages.ProtocolJSON {
		limit = socket.MaxRateStrikes
	}
	switch s.strikes.Count(s.conn, m, limit) {
	case socket.Closed:
		return
	case socket.Warn:
		s.warnRate(m)
		return
	}
	if s.protocol == messages.ProtocolJSON {
		s.fromJSONClient(ctx, m)
		return
	}
	if m.Binary {
		s.conn.Send(m.Data, true)
		return
	}
	ctx.Send(s.roomPID, &messages.BroadcastMessage{
		ID:     s.id,
		Msg:    socket.AppendJSONString(nil, string(m.Data)),
		RoomID: s.room,
	})
}

func (s *session) fromJSONClient(ctx actor.Context, m *messages.ClientMessage) {
	if m.Binary {
		s.sendError(nil, socket.CodeBinary, "lobby.v1 frames are JSON text frames")
		return
	}
	f, ferr := decodeClientFrame(m.Data)
	if ferr != nil {
		s.sendError(f.Ref, ferr.Code, ferr.Message)
		return
	}
	switch f.Type {
	case frameTypeBroadcast:
		ctx.Send(s.roomPID, &messages.BroadcastMessage{ID: s.id, Msg: f.Msg, RoomID: s.room, Ref: f.Ref, From: ctx.Self()})
	case frameTypeDirect:
		ctx.Send(s.lobby, &messages.DirectMessage{ID: s.id, To: f.to, Msg: f.Msg, Ref: f.Ref, From: ctx.Self()})
	case frameTypeMembers:
		ctx.Request(s.roomPID, &messages.GetMembers{Ref: f.Ref})
	}
}

// warnRate answers a lobby.v1 frame over the rate limit, with its ref.
func (s *session) warnRate(m *messages.ClientMessage) {
	var ref []byte
	if !m.Binary {
		f, _ := decodeClientFrame(m.Data)
		ref = f.Ref
	}
	s.sendError(ref, socket.CodeRateLimited, "too many frames: slow down, this frame was not sent")
}

func (s *session) sendError(ref []byte, code, message string) {
	s.conn.Send(socket.AppendErrorFrame(nil, ref, code, message), false)
}
