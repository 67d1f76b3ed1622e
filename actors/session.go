package actors

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/messages"
)

// maxRateStrikes is how many frames over its rate limit in a row a lobby.v1
// client is told about (each with an error frame) before it is closed.
const maxRateStrikes = 20

// maxPending bounds the frames a session holds between its start and the
// room's Joined answer (normally microseconds). A client that sends more
// than this before it has even joined is closed.
const maxPending = 256

// session is the actor behind one room member's socket: the seed's
// WebSocketSession. It joins its room through the lobby, turns the client's
// frames into messages for the room or the lobby, and hands every frame
// addressed to the client to its Conn, in the protocol the client speaks.
type session struct {
	id       uuid.UUID
	room     string
	protocol messages.Protocol
	// recover, since and epoch are the client's recovery request (lobby.v1).
	recover bool
	since   uint64
	epoch   string
	lobby   *actor.PID
	conn    Conn
	hb      heartbeat
	log     *slog.Logger

	// roomPID is nil until the room answers Joined; frames the client sends
	// before that wait in pending, so that none overtakes another.
	roomPID *actor.PID
	pending []*messages.ClientMessage
	// strikes counts the client's frames over its rate limit in a row.
	strikes int
}

func (s *session) Receive(ctx actor.Context) {
	defer closeOnPanic(ctx, s.conn, s.log)
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
			s.hold(m)
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
		for _, p := range s.pending {
			s.fromClient(ctx, p)
		}
		s.pending = nil
	case *heartbeatTick:
		s.hb.tick(s.conn)
	case *messages.Close:
		s.conn.Close(m.Code, m.Reason)
	case *actor.Started:
		ctx.Send(s.lobby, &messages.Connect{ID: s.id, Room: s.room, Session: ctx.Self(), Protocol: s.protocol,
			Recover: s.recover, Since: s.since, Epoch: s.epoch})
		s.hb.start(ctx)
	case *actor.Stopping:
		s.hb.stop()
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
	for _, m := range s.pending {
		if m.RateLimited || m.Binary {
			continue
		}
		if s.protocol != messages.ProtocolJSON {
			ctx.Send(s.lobby, &messages.BroadcastMessage{ID: s.id, Msg: appendJSONString(nil, string(m.Data)), RoomID: s.room})
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
	s.pending = nil
}

func (s *session) hold(m *messages.ClientMessage) {
	if len(s.pending) >= maxPending {
		s.conn.Close(ClosePolicyViolation, "too many messages before join")
		return
	}
	s.pending = append(s.pending, m)
}

func (s *session) fromClient(ctx actor.Context, m *messages.ClientMessage) {
	if m.RateLimited {
		s.overRate(m)
		return
	}
	s.strikes = 0
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
		Msg:    appendJSONString(nil, string(m.Data)),
		RoomID: s.room,
	})
}

func (s *session) fromJSONClient(ctx actor.Context, m *messages.ClientMessage) {
	if m.Binary {
		s.sendError(nil, codeBinary, "lobby.v1 frames are JSON text frames")
		return
	}
	f, ferr := decodeClientFrame(m.Data)
	if ferr != nil {
		s.sendError(f.Ref, ferr.code, ferr.message)
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

// overRate answers a frame over the rate limit. A lobby.v1 client is told,
// frame by frame, and closed if it goes on; a text-protocol client has no
// way to be told, so it is closed at once rather than have frames vanish.
func (s *session) overRate(m *messages.ClientMessage) {
	s.strikes++
	if s.protocol != messages.ProtocolJSON || s.strikes > maxRateStrikes {
		s.conn.Close(ClosePolicyViolation, ReasonRateLimit)
		return
	}
	var ref []byte
	if !m.Binary {
		f, _ := decodeClientFrame(m.Data)
		ref = f.Ref
	}
	s.sendError(ref, codeRateLimited, "too many frames: slow down, this frame was not sent")
}

func (s *session) sendError(ref []byte, code, message string) {
	s.conn.Send(appendV1Error(nil, ref, code, message), false)
}
