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
// session id → room, spawns a room (as its child) on the first Connect to
// it and stops it after the last Disconnect.
//
// Only membership and lookups pass through the lobby; room traffic goes
// from sessions straight to their room, so the lobby is not on the hot path.
type lobby struct {
	log      *slog.Logger
	rooms    map[string]*roomEntry
	sessions map[uuid.UUID]string
	// draining is set by beginDrain; joins are then refused.
	draining bool
}

type roomEntry struct {
	pid     *actor.PID
	members int
}

// beginDrain tells the lobby that the node is shutting down.
// Node → Lobby.
type beginDrain struct{}

func newLobby(log *slog.Logger) *lobby {
	return &lobby{log: log, rooms: make(map[string]*roomEntry), sessions: make(map[uuid.UUID]string)}
}

func (l *lobby) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.Connect:
		l.connect(ctx, m)
	case *messages.Disconnect:
		l.disconnect(ctx, m)
	case *messages.BroadcastMessage:
		// An HTTP publish. Forward keeps the requester as sender, so the
		// room answers it directly.
		if r, ok := l.rooms[m.RoomID]; ok {
			ctx.Forward(r.pid)
			return
		}
		ctx.Respond(&messages.Published{})
	case *messages.GetRoom:
		if r, ok := l.rooms[m.Room]; ok {
			ctx.Forward(r.pid)
			return
		}
		ctx.Respond(&messages.RoomInfo{Room: m.Room})
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
	r, ok := l.rooms[m.Room]
	if !ok {
		name := m.Room
		r = &roomEntry{pid: ctx.SpawnPrefix(actor.PropsFromProducer(func() actor.Actor { return newRoom(name) }), "room-"+name)}
		l.rooms[name] = r
	}
	r.members++
	l.sessions[m.ID] = m.Room
	ctx.Send(r.pid, m)
}

func (l *lobby) disconnect(ctx actor.Context, m *messages.Disconnect) {
	name, ok := l.sessions[m.ID]
	if !ok {
		return
	}
	delete(l.sessions, m.ID)
	r := l.rooms[name]
	ctx.Send(r.pid, m)
	r.members--
	if r.members == 0 {
		// Poison is queued behind the Disconnect, so the room handles it
		// first; the next Connect to this name spawns a new room (a new
		// epoch).
		ctx.Poison(r.pid)
		delete(l.rooms, name)
	}
}
