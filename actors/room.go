package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/messages"
)

// room is the actor for one room name: it owns the room's members, its
// sequence numbers and its history, and fans messages out. Every frame is
// encoded once per protocol its members speak, and the same bytes are
// handed to every member's session; handing over is a mailbox push, so a
// room never waits on a socket and one slow member cannot slow the others.
//
// The lobby creates a room on the first Connect or publish to its name. The
// room lives while it has members or unexpired history, and for
// emptyRoomLinger after that; then it tells the lobby (roomIdle), and the
// lobby, which knows of any join or publish still on its way, stops it or
// lets it live.
type room struct {
	name  string
	epoch string

	// seq is the last message's sequence number in this incarnation (epoch).
	seq uint64
	// members is in join order (see joinOrder).
	members  joinOrder[member]
	speakers speakers

	history history
	// budget is the node's history budget, told what history holds after
	// every change; nil for none. reported is what it was last told.
	budget   *actor.PID
	reported int
	// published counts the publishes the lobby forwarded here; roomIdle
	// carries it so that the lobby can tell whether one is still on its way.
	published uint64
	// expiry wakes the room when its oldest history entry expires.
	expiry *time.Timer
	// linger wakes an empty room emptyRoomLinger after it emptied.
	linger *time.Timer
}

// emptyRoomLinger is how long a room with no members and no history waits
// before it asks to be stopped. A member who leaves and comes back (a page
// reload, a reconnect) finds the room still there instead of paying for a
// room actor stopped and spawned anew, with a new epoch.
const emptyRoomLinger = time.Second

type member struct {
	id       uuid.UUID
	pid      *actor.PID
	protocol messages.Protocol
}

func (m member) key() uuid.UUID { return m.id }

// roomIdle tells the lobby that a room has no members and no history left.
// Room → Lobby.
type roomIdle struct {
	room      string
	pid       *actor.PID
	published uint64
}

// expireHistory asks a room to drop expired history. Sent by its timer.
type expireHistory struct{}

// lingerOver tells an empty room that it has lingered. Sent by its timer.
type lingerOver struct{}

func newRoom(name string, limits historyLimits, budget *actor.PID) *room {
	return &room{
		name:    name,
		epoch:   uuid.NewString()[:8],
		history: history{limits: limits},
		budget:  budget,
	}
}

func (r *room) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.BroadcastMessage:
		r.broadcast(ctx, m)
	case *messages.Connect:
		r.join(ctx, m)
	case *messages.Disconnect:
		r.leave(ctx, m.ID)
	case *messages.GetMembers:
		ctx.Send(ctx.Sender(), &messages.WsMessage{JSON: appendV1Members(nil, m.Ref, r.memberIDs())})
	case *messages.GetRoom:
		ctx.Respond(&messages.RoomInfo{Found: true, Room: r.name, Seq: r.seq, Epoch: r.epoch, Members: r.memberIDs()})
	case *messages.GetHistory:
		r.history.expire(time.Now())
		r.reportHistory(ctx, 0)
		entries, complete := r.history.since(m.Since, r.seq)
		h := &messages.History{Found: true, Epoch: r.epoch, Seq: r.seq, Complete: complete,
			Entries: make([]messages.HistoryEntry, len(entries))}
		for i, e := range entries {
			h.Entries[i] = messages.HistoryEntry{Seq: e.seq, ID: e.id, Msg: e.msg}
		}
		ctx.Respond(h)
	case *expireHistory:
		r.history.expire(time.Now())
		r.reportHistory(ctx, 0)
		r.armExpiry(ctx)
		r.checkIdle(ctx)
	case *trimHistory:
		n := r.history.trim(m.bytes, time.Unix(0, m.notAfter))
		r.reported = -1 // the budget waits for an answer, even if nothing changed
		r.reportHistory(ctx, n)
		r.checkIdle(ctx)
	case *lingerOver:
		if r.idle() {
			ctx.Send(ctx.Parent(), &roomIdle{room: r.name, pid: ctx.Self(), published: r.published})
		}
	case *actor.Stopping:
		if r.expiry != nil {
			r.expiry.Stop()
		}
		if r.linger != nil {
			r.linger.Stop()
		}
	}
}

func (r *room) broadcast(ctx actor.Context, m *messages.BroadcastMessage) {
	if ctx.Sender() != nil {
		// Only a publish is a request (the lobby forwards it, keeping its
		// requester); sessions send.
		r.published++
	}
	r.seq++
	e := &entry{seq: r.seq, at: time.Now(), id: m.ID, msg: m.Msg}
	r.sendAll(ctx, r.speakers.messageFrame(e, r.name))
	r.history.add(e, e.at)
	r.reportHistory(ctx, 0)
	r.armExpiry(ctx)
	if m.Ref != nil && m.From != nil {
		ctx.Send(m.From, &messages.WsMessage{JSON: appendV1Ack(nil, m.Ref, r.seq)})
	}
	if ctx.Sender() != nil {
		ctx.Respond(&messages.Published{Delivered: r.members.len(), Seq: r.seq})
	}
	if r.members.len() == 0 {
		r.checkIdle(ctx)
	}
}

// join adds a member. For a lobby.v1 member it also sends, in this order,
// the welcome frame and the history it recovers. The replay is correct by
// construction: the room is one actor, so no broadcast can run between
// reading the history and adding the member; every message up to r.seq is
// in the replay, and every later one reaches the member live, after it in
// the session's mailbox.
func (r *room) join(ctx actor.Context, m *messages.Connect) {
	if r.members.get(m.ID) != nil {
		return
	}
	if r.members.len() > 0 {
		r.sendAll(ctx, r.speakers.presenceFrame("joined", m.ID, r.name))
	}
	r.members.add(member{id: m.ID, pid: m.Session, protocol: m.Protocol})
	r.speakers.count(m.Protocol, 1)
	ctx.Send(m.Session, &messages.Joined{Room: ctx.Self()})
	if m.Protocol != messages.ProtocolJSON {
		return
	}

	var replay []*entry
	recovered := false
	if m.Recover && m.Epoch == r.epoch && m.Since <= r.seq {
		r.history.expire(time.Now())
		r.reportHistory(ctx, 0)
		replay, recovered = r.history.since(m.Since, r.seq)
	}
	ctx.Send(m.Session, &messages.WsMessage{JSON: appendV1Welcome(nil, m.ID, r.name, r.epoch, r.seq, r.memberIDs(), recovered)})
	if recovered {
		for _, e := range replay {
			ctx.Send(m.Session, &messages.WsMessage{JSON: e.jsonFrame(r.name)})
		}
	}
}

func (r *room) leave(ctx actor.Context, id uuid.UUID) {
	gone, ok := r.members.remove(id)
	if !ok {
		return
	}
	r.speakers.count(gone.protocol, -1)
	if r.members.len() == 0 {
		r.checkIdle(ctx)
		return
	}
	r.sendAll(ctx, r.speakers.presenceFrame("left", id, r.name))
}

func (r *room) idle() bool { return r.members.len() == 0 && r.history.len() == 0 }

// checkIdle starts the room's linger when it has nothing left to keep; the
// lobby (its parent) is told when the linger is over and the room still
// idle. A timer that fires early, after a join and a leave, only shortens
// the linger: the lobby's check makes stopping safe at any time.
func (r *room) checkIdle(ctx actor.Context) {
	if !r.idle() {
		return
	}
	wakeAfter(ctx, &r.linger, emptyRoomLinger, &lingerOver{})
}

// reportHistory tells the node's history budget what the room's history
// holds, when that has changed; evicted is how many entries a trim dropped.
func (r *room) reportHistory(ctx actor.Context, evicted int) {
	if r.budget == nil || r.history.bytes == r.reported {
		return
	}
	r.reported = r.history.bytes
	var oldest int64
	if t := r.history.oldest(); !t.IsZero() {
		oldest = t.UnixNano()
	}
	ctx.Send(r.budget, &historyUsage{room: ctx.Self(), bytes: r.history.bytes, oldest: oldest, evicted: evicted})
}

// armExpiry makes sure the room wakes when its oldest entry expires.
func (r *room) armExpiry(ctx actor.Context) {
	next, ok := r.history.nextExpiry()
	if !ok {
		return
	}
	wakeAfter(ctx, &r.expiry, max(time.Until(next), 0)+time.Millisecond, &expireHistory{})
}

func (r *room) memberIDs() []uuid.UUID {
	return r.members.appendIDs(make([]uuid.UUID, 0, r.members.len()))
}

// sendAll hands frame to every member.
func (r *room) sendAll(ctx actor.Context, frame *messages.WsMessage) {
	for mb := range r.members.all() {
		ctx.Send(mb.pid, frame)
	}
}
