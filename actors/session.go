package actors

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/messages"
)

// maxPending bounds the frames a session holds between its start and the
// room's Joined answer (normally microseconds). A client that sends more
// than this before it has even joined is closed.
const maxPending = 256

// session is the actor behind one room member's socket: the seed's
// WebSocketSession. It joins its room through the lobby, turns the client's
// text frames into BroadcastMessages for the room, echoes binary frames, and
// hands every frame addressed to the client to its Conn.
type session struct {
	id       uuid.UUID
	room     string
	protocol messages.Protocol
	lobby    *actor.PID
	conn     Conn
	hb       heartbeat
	log      *slog.Logger

	// roomPID is nil until the room answers Joined; frames the client sends
	// before that wait in pending, so that none overtakes another.
	roomPID *actor.PID
	pending []*messages.ClientMessage
}

func (s *session) Receive(ctx actor.Context) {
	defer closeOnPanic(ctx, s.conn, s.log)
	switch m := ctx.Message().(type) {
	case *messages.ClientMessage:
		s.fromClient(ctx, m)
	case *messages.WsMessage:
		s.conn.Send(m.Data, m.Binary)
	case *messages.Joined:
		s.roomPID = m.Room
		for _, p := range s.pending {
			s.fromClient(ctx, p)
		}
		s.pending = nil
	case *heartbeatTick:
		s.hb.tick(s.conn)
	case *messages.Close:
		s.conn.Close(m.Code, m.Reason)
	case *actor.Started:
		s.conn.Send(appendWelcome(nil, s.id), false)
		ctx.Send(s.lobby, &messages.Connect{ID: s.id, Room: s.room, Session: ctx.Self(), Protocol: s.protocol})
		s.hb.start(ctx)
	case *actor.Stopping:
		s.hb.stop()
		ctx.Send(s.lobby, &messages.Disconnect{ID: s.id, Room: s.room})
	}
}

func (s *session) fromClient(ctx actor.Context, m *messages.ClientMessage) {
	if m.Binary {
		s.conn.Send(m.Data, true)
		return
	}
	if s.roomPID == nil {
		if len(s.pending) >= maxPending {
			s.conn.Close(ClosePolicyViolation, "too many messages before join")
			return
		}
		s.pending = append(s.pending, m)
		return
	}
	ctx.Send(s.roomPID, &messages.BroadcastMessage{
		ID:     s.id,
		Msg:    appendJSONString(nil, string(m.Data)),
		RoomID: s.room,
	})
}
