package actors

import (
	"log/slog"
	"slices"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/messages"
)

// lobby is the seed's Lobby: it owns the map of room name → room actor and
// session id → session, spawns a room (as its child) on the first Connect
// or publish to its name, and stops it when the room reports itself idle
// and nothing is on its way to it.
//
// Only membership, publishes, direct messages and lookups pass through the
// lobby; room traffic goes from sessions straight to their room, so the
// lobby is not on the hot path of a busy room.
type lobby struct {
	log      *slog.Logger
	limits   historyLimits
	rooms    map[string]*roomEntry
	sessions map[uuid.UUID]sessionEntry
	// draining is set by beginDrain; joins are then refused.
	draining bool
	// roomOpts are the props options of the rooms it spawns.
	roomOpts []actor.PropsOption
}

type roomEntry struct {
	pid *actor.PID
	// members counts the Connects forwarded minus the Disconnects.
	members int
	// published counts the publishes forwarded; see roomIdle.
	published uint64
}

type sessionEntry struct {
	room string
	pid  *actor.PID
}

// beginDrain tells the lobby that the node is shutting down.
// Node → Lobby.
type beginDrain struct{}

func newLobby(log *slog.Logger, limits historyLimits, roomOpts ...actor.PropsOption) *lobby {
	return &lobby{
		log:      log,
		limits:   limits,
		roomOpts: roomOpts,
		rooms:    make(map[string]*roomEntry),
		sessions: make(map[uuid.UUID]sessionEntry),
	}
}

func (l *lobby) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.Connect:
		l.connect(ctx, m)
	case *messages.Disconnect:
		l.disconnect(ctx, m)
	case *messages.BroadcastMessage:
		l.publish(ctx, m)
	case *messages.DirectMessage:
		l.direct(ctx, m)
	case *roomIdle:
		// The room is idle unless a join or a publish reached the lobby
		// after the room sent this: then it is on its way to the room, which
		// will report again once that is done.
		if r, ok := l.rooms[m.room]; ok && r.pid.Equal(m.pid) && r.members == 0 && r.published == m.published {
			ctx.Poison(r.pid)
			delete(l.rooms, m.room)
		}
	case *messages.GetRoom:
		if r, ok := l.rooms[m.Room]; ok {
			ctx.Forward(r.pid)
			return
		}
		ctx.Respond(&messages.RoomInfo{Room: m.Room})
	case *messages.GetHistory:
		if r, ok := l.rooms[m.Room]; ok {
			ctx.Forward(r.pid)
			return
		}
		ctx.Respond(&messages.History{})
	case *messages.ListRooms:
		list := &messages.RoomList{Rooms: make([]messages.RoomSummary, 0, len(l.rooms))}
		for name, r := range l.rooms {
			list.Rooms = append(list.Rooms, messages.RoomSummary{Room: name, Members: r.members})
		}
		slices.SortFunc(list.Rooms, func(a, b messages.RoomSummary) int { return strings.Compare(a.Room, b.Room) })
		ctx.Respond(list)
	case *beginDrain:
		l.draining = true
		ctx.Respond(struct{}{})
	}
}

func (l *lobby) connect(ctx actor.Context, m *messages.Connect) {
	if l.draining {
		ctx.Send(m.Session, &messages.Close{Code: CloseGoingAway, Reason: "server shutting down"})
		return
	}
	if _, dup := l.sessions[m.ID]; dup {
		l.log.Warn("duplicate session id refused", slog.String("id", m.ID.String()))
		ctx.Send(m.Session, &messages.Close{Code: ClosePolicyViolation, Reason: "duplicate session"})
		return
	}
	r := l.room(ctx, m.Room)
	r.members++
	l.sessions[m.ID] = sessionEntry{room: m.Room, pid: m.Session}
	ctx.Send(r.pid, m)
}

func (l *lobby) disconnect(ctx actor.Context, m *messages.Disconnect) {
	s, ok := l.sessions[m.ID]
	if !ok {
		return
	}
	delete(l.sessions, m.ID)
	r := l.rooms[s.room]
	r.members--
	ctx.Send(r.pid, m)
}

// publish forwards an HTTP publish to its room, creating the room when it
// keeps history: the message then waits there for members who recover it.
// Forward keeps the requester as sender, so the room answers it directly.
//
// A BroadcastMessage sent without a requester is a member's, from a session
// that stopped before its join completed (session.flushPending): it goes to
// the member's room, which has the member's Connect and not yet its
// Disconnect.
func (l *lobby) publish(ctx actor.Context, m *messages.BroadcastMessage) {
	if ctx.Sender() == nil {
		if s, ok := l.sessions[m.ID]; ok && s.room == m.RoomID {
			ctx.Send(l.rooms[s.room].pid, m)
		}
		return
	}
	r, ok := l.rooms[m.RoomID]
	if !ok && l.limits.count <= 0 {
		ctx.Respond(&messages.Published{})
		return
	}
	if !ok {
		r = l.room(ctx, m.RoomID)
	}
	r.published++
	ctx.Forward(r.pid)
}

// direct hands a direct message to its session and tells the sender (a
// session, or an HTTP request) whether there was one.
func (l *lobby) direct(ctx actor.Context, m *messages.DirectMessage) {
	s, ok := l.sessions[m.To]
	if ok {
		ctx.Send(s.pid, m)
	}
	res := &messages.DirectResult{Ref: m.Ref, Delivered: ok}
	switch {
	case ctx.Sender() != nil:
		ctx.Respond(res)
	case m.From != nil:
		ctx.Send(m.From, res)
	}
}

func (l *lobby) room(ctx actor.Context, name string) *roomEntry {
	if r, ok := l.rooms[name]; ok {
		return r
	}
	limits := l.limits
	props := actor.PropsFromProducer(func() actor.Actor { return newRoom(name, limits) }, l.roomOpts...)
	r := &roomEntry{pid: ctx.SpawnPrefix(props, "room-"+name)}
	l.rooms[name] = r
	return r
}
