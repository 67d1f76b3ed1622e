package actors

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/btree"
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
	maxRooms int
	rooms    map[string]*roomEntry
	// names holds the room names in order, so that a page of GET /rooms
	// costs the lobby O(log rooms + page), not a sort of every room:
	// listing must not stall the joins that wait behind it.
	names    *btree.BTreeG[string]
	sessions map[uuid.UUID]sessionEntry
	// draining is set by beginDrain; joins are then refused.
	draining bool
	// roomOpts are the props options of the rooms it spawns.
	roomOpts []actor.PropsOption
	// budget is the history budget actor its rooms report to; nil for none.
	budget *actor.PID
	stats  *Stats
	// cluster is the lobby's part in a cluster (lobby_cluster.go); nil on
	// a single node.
	cluster *lobbyCluster
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

// lobbyConfig is what a lobby is made with.
type lobbyConfig struct {
	log      *slog.Logger
	limits   historyLimits
	maxRooms int
	// budget is the history budget actor, nil for none.
	budget *actor.PID
	stats  *Stats
	// roomOpts are the props options of the rooms it spawns.
	roomOpts []actor.PropsOption
	// bridge is the node's bridge, nil on a single node; epoch is its
	// stream's.
	bridge *actor.PID
	epoch  string
}

func newLobby(c lobbyConfig) *lobby {
	if c.stats == nil {
		c.stats = &Stats{}
	}
	var cluster *lobbyCluster
	if c.bridge != nil {
		cluster = newLobbyCluster(c.bridge, c.epoch)
	}
	return &lobby{
		cluster:  cluster,
		log:      c.log,
		limits:   c.limits,
		maxRooms: c.maxRooms,
		budget:   c.budget,
		stats:    c.stats,
		roomOpts: c.roomOpts,
		rooms:    make(map[string]*roomEntry),
		names:    btree.NewOrderedG[string](32),
		sessions: make(map[uuid.UUID]sessionEntry),
	}
}

// roomLimitReason is the close reason of a member refused because the node
// has as many rooms as it may; the code is CloseTryAgainLater.
const roomLimitReason = "too many rooms"

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
			if !l.cluster.hasRemote(m.room) {
				l.names.Delete(m.room)
			}
			l.stats.Rooms.Store(int64(len(l.rooms)))
		}
	case *messages.GetRoom:
		if r, ok := l.rooms[m.Room]; ok {
			ctx.Forward(r.pid)
			return
		}
		if l.cluster != nil {
			l.cluster.roomQuery(ctx, m.Room)
			return
		}
		ctx.Respond(&messages.RoomInfo{Room: m.Room})
	case *messages.GetHistory:
		if l.cluster != nil {
			_, local := l.rooms[m.Room]
			l.cluster.history(ctx, m, local)
			return
		}
		if r, ok := l.rooms[m.Room]; ok {
			ctx.Forward(r.pid)
			return
		}
		ctx.Respond(&messages.History{})
	case *messages.ListRooms:
		ctx.Respond(l.list(m))
	case *beginDrain:
		l.draining = true
		ctx.Respond(struct{}{})
	default:
		if l.cluster != nil {
			l.clusterReceive(ctx)
		}
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
	if r == nil {
		ctx.Send(m.Session, &messages.Close{Code: CloseTryAgainLater, Reason: roomLimitReason})
		return
	}
	r.members++
	l.sessions[m.ID] = sessionEntry{room: m.Room, pid: m.Session}
	ctx.Send(r.pid, m)
	if l.cluster != nil {
		ctx.Send(l.cluster.bridge, &localJoin{room: m.Room, id: m.ID})
	}
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
	if l.cluster != nil {
		ctx.Send(l.cluster.bridge, &localLeave{room: s.room, id: m.ID})
	}
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
	if !ok && l.limits.count <= 0 && l.cluster == nil {
		ctx.Respond(&messages.Published{})
		return
	}
	if !ok {
		if r = l.room(ctx, m.RoomID); r == nil {
			ctx.Respond(&messages.Published{RoomLimit: true})
			return
		}
	}
	r.published++
	ctx.Forward(r.pid)
}

// direct hands a direct message to its session and tells the sender (a
// session, or an HTTP request) whether there was one.
func (l *lobby) direct(ctx actor.Context, m *messages.DirectMessage) {
	s, ok := l.sessions[m.To]
	if !ok && l.cluster != nil {
		// Maybe on another node: the bridge answers the sender.
		ctx.Forward(l.cluster.bridge)
		return
	}
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

// room returns the room called name, spawning it if need be; nil when it
// does not exist and the node has maxRooms rooms already.
func (l *lobby) room(ctx actor.Context, name string) *roomEntry {
	if r, ok := l.rooms[name]; ok {
		return r
	}
	if len(l.rooms) >= l.maxRooms {
		l.stats.RoomsRefused.Add(1)
		l.log.Debug("room refused: the node has as many rooms as it may", slog.String("room", name), slog.Int("max_rooms", l.maxRooms))
		return nil
	}
	limits, budget := l.limits, l.budget
	props := actor.PropsFromProducer(func() actor.Actor { return newRoom(name, limits, budget) }, l.roomOpts...)
	if l.cluster != nil {
		props = l.cluster.roomProps(name, l.stats, l.roomOpts)
	}
	r := &roomEntry{pid: ctx.SpawnPrefix(props, "room-"+name)}
	l.rooms[name] = r
	l.names.ReplaceOrInsert(name)
	l.stats.Rooms.Store(int64(len(l.rooms)))
	return r
}

// list answers one page of ListRooms: the rooms after m.After, in name
// order, at most m.Limit of them.
func (l *lobby) list(m *messages.ListRooms) *messages.RoomList {
	list := &messages.RoomList{Rooms: make([]messages.RoomSummary, 0, min(m.Limit, len(l.rooms)))}
	l.names.AscendGreaterOrEqual(m.After, func(name string) bool {
		if name == m.After {
			return true
		}
		if len(list.Rooms) == m.Limit {
			list.More = true
			return false
		}
		members := l.cluster.remoteCount(name)
		if r, ok := l.rooms[name]; ok {
			members += r.members
		}
		list.Rooms = append(list.Rooms, messages.RoomSummary{Room: name, Members: members})
		return true
	})
	return list
}
