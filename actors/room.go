package actors

import (
	"slices"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/messages"
)

// room is the actor for one room name: it owns the room's members and fans
// messages out to them. Every frame is encoded once and the same bytes are
// handed to every member's session; handing over is a mailbox push, so a
// room never waits on a socket and one slow member cannot slow the others.
//
// The lobby creates a room on its first Connect and stops it (Poison, after
// the last Disconnect) when the lobby's own count says it is empty: the
// lobby decides, so a join racing the last leave cannot reach a stopped
// room.
type room struct {
	name  string
	epoch string
	// seq counts the messages broadcast in this incarnation of the room.
	seq uint64
	// members is in join order; index finds a member in it.
	members []member
	index   map[uuid.UUID]int
}

type member struct {
	id       uuid.UUID
	pid      *actor.PID
	protocol messages.Protocol
}

func newRoom(name string) *room {
	return &room{name: name, epoch: uuid.NewString(), index: make(map[uuid.UUID]int)}
}

func (r *room) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.BroadcastMessage:
		r.broadcast(ctx, m)
	case *messages.Connect:
		r.join(ctx, m)
	case *messages.Disconnect:
		r.leave(ctx, m.ID)
	case *messages.GetRoom:
		info := &messages.RoomInfo{Found: true, Room: r.name, Seq: r.seq, Epoch: r.epoch,
			Members: make([]uuid.UUID, len(r.members))}
		for i, mb := range r.members {
			info.Members[i] = mb.id
		}
		ctx.Respond(info)
	}
}

func (r *room) broadcast(ctx actor.Context, m *messages.BroadcastMessage) {
	r.seq++
	frame := &messages.WsMessage{Data: appendBroadcast(nil, m.ID, m.Msg, r.name)}
	r.sendAll(ctx, frame)
	if ctx.Sender() != nil {
		ctx.Respond(&messages.Published{Delivered: len(r.members), Seq: r.seq})
	}
}

func (r *room) join(ctx actor.Context, m *messages.Connect) {
	if _, ok := r.index[m.ID]; ok {
		return
	}
	if len(r.members) > 0 {
		r.sendAll(ctx, &messages.WsMessage{Data: appendJoined(nil, m.ID)})
	}
	r.index[m.ID] = len(r.members)
	r.members = append(r.members, member{id: m.ID, pid: m.Session, protocol: m.Protocol})
	ctx.Send(m.Session, &messages.Joined{Room: ctx.Self()})
}

func (r *room) leave(ctx actor.Context, id uuid.UUID) {
	i, ok := r.index[id]
	if !ok {
		return
	}
	r.members = slices.Delete(r.members, i, i+1)
	delete(r.index, id)
	for j := i; j < len(r.members); j++ {
		r.index[r.members[j].id] = j
	}
	if len(r.members) > 0 {
		r.sendAll(ctx, &messages.WsMessage{Data: appendDisconnected(nil, id)})
	}
}

// sendAll hands frame to every member.
func (r *room) sendAll(ctx actor.Context, frame *messages.WsMessage) {
	for _, mb := range r.members {
		ctx.Send(mb.pid, frame)
	}
}
