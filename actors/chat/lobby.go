package chat

import (
	"log/slog"
	"math"
	"slices"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/btree"
	"github.com/google/uuid"

	"github.com/lobby/lobby/actors/broker"
	"github.com/lobby/lobby/actors/socket"
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
	log *slog.Logger
	// keepsHistory is set when the rooms' broker keeps history: a
	// publish to a room nobody is in is then kept for who joins.
	keepsHistory bool
	maxRooms     int
	rooms        map[string]*roomEntry
	// names holds the room names in order, so that a page of GET /rooms
	// costs the lobby O(log rooms + page), not a sort of every room:
	// listing must not stall the joins that wait behind it.
	names    *btree.BTreeG[string]
	sessions map[uuid.UUID]sessionEntry
	// holding are the rooms that reported they live only for their
	// history, oldest first; an entry no longer holding is skipped.
	holding []string
	// draining is set by BeginDrain; joins are then refused.
	draining bool
	// roomOpts are the props options of the rooms it spawns.
	roomOpts []actor.PropsOption
	// policy and residents are every room's (extension.go).
	policy      Policy
	residents   []Resident
	publishOnly func(room string) bool
	// replay bounds a recovering member's replay (Config.Replay).
	replay broker.ReplayLimit
	// broker keeps the rooms' streams; their history is read from it.
	broker broker.Broker
	stats  *Stats
	// bridge is the node's bridge to other nodes (bridge.go), nil on a
	// node alone; remote are other nodes' members by room, in the order
	// the bridge told them (remoteJoin, remoteLeave), so that room lists
	// and member lists are the cluster's.
	bridge *actor.PID
	remote map[string][]uuid.UUID
}

type roomEntry struct {
	pid *actor.PID
	// members counts the Connects forwarded minus the Disconnects.
	members int
	// published counts the publishes forwarded; see roomIdle.
	published uint64
	// holding is set when the room reported that it lives only for its
	// history (roomHolding), and cleared by any join or publish: such a
	// room gives its place up to a new one when the node is full.
	holding bool
}

// sessionEntry is a session the lobby knows: one that has joined a room
// or registered (GET /ws), with the rooms it is a member of or on its way
// into, in the order it asked for them.
type sessionEntry struct {
	pid   *actor.PID
	rooms []string
	// registered is set for a session that registered: it stays known
	// with no room, until its Disconnect.
	registered bool
}

// lobbyConfig is what a lobby is made with.
type lobbyConfig struct {
	log          *slog.Logger
	keepsHistory bool
	maxRooms     int
	broker       broker.Broker
	stats        *Stats
	// roomOpts are the props options of the rooms it spawns.
	roomOpts []actor.PropsOption
	// bridge is the node's bridge, nil on a node alone.
	bridge      *actor.PID
	policy      Policy
	residents   []Resident
	publishOnly func(room string) bool
	replay      broker.ReplayLimit
}

func newLobby(c lobbyConfig) *lobby {
	if c.stats == nil {
		c.stats = &Stats{}
	}
	return &lobby{
		log:          c.log,
		keepsHistory: c.keepsHistory,
		maxRooms:     c.maxRooms,
		broker:       c.broker,
		bridge:       c.bridge,
		policy:       c.policy,
		residents:    c.residents,
		publishOnly:  c.publishOnly,
		replay:       c.replay,
		remote:       make(map[string][]uuid.UUID),
		stats:        c.stats,
		roomOpts:     c.roomOpts,
		rooms:        make(map[string]*roomEntry),
		names:        btree.NewOrderedG[string](32),
		sessions:     make(map[uuid.UUID]sessionEntry),
	}
}

// Reasons the rooms close sockets with (transport/PROTOCOL.md, "Close
// codes").
var (
	// RoomLimit closes a member refused because the node has as many
	// rooms as it may.
	RoomLimit = socket.Reason{Code: socket.CloseTryAgainLater, Text: "too many rooms", Label: "room_limit"}
	// duplicateSession closes a session whose id is taken.
	duplicateSession = socket.Reason{Code: socket.ClosePolicyViolation, Text: "duplicate session", Label: "policy"}
	// streamMadeAnew closes the lobby.v1 members of a room whose stream
	// was made anew: their seqs and epoch are of the lost one.
	streamMadeAnew = socket.Reason{Code: socket.CloseTryAgainLater, Text: "room stream made anew", Label: "policy"}
	// recoveryTooSlow closes a member whose replay took so long that the
	// frames held for it reached maxHeldFrames.
	recoveryTooSlow = socket.Reason{Code: socket.CloseTryAgainLater, Text: "recovery too slow", Label: "policy"}
	// FollowRefused closes a member refused because the node can follow
	// no room: NATS refuses it a consumer (broker.Broker.FollowRefused).
	// Its join would wait for as long as that lasts; another node may
	// take it now.
	FollowRefused = socket.Reason{Code: socket.CloseTryAgainLater, Text: "cluster refused this node a consumer: try another node or later", Label: "follow_refused"}
)

func (l *lobby) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.Connect:
		l.connect(ctx, m)
	case *messages.Disconnect:
		l.disconnect(ctx, m)
	case *register:
		l.register(ctx, m)
	case *unsubscribe:
		l.unsubscribe(ctx, m)
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
			if len(l.remote[m.room]) == 0 {
				l.names.Delete(m.room)
			}
			l.stats.Rooms.Store(int64(len(l.rooms)))
		}
	case *roomFailed:
		l.roomFailed(ctx, m)
	case *roomHolding:
		if r, ok := l.rooms[m.room]; ok && r.pid.Equal(m.pid) && r.members == 0 && r.published == m.published && !r.holding {
			r.holding = true
			l.holding = append(l.holding, m.room)
			if len(l.holding) > 2*len(l.rooms)+16 {
				// Mostly rooms joined or stopped since: keep the others,
				// in their order, so that the queue stays the rooms' size.
				seen := make(map[string]bool, len(l.rooms))
				l.holding = slices.DeleteFunc(l.holding, func(name string) bool {
					r, ok := l.rooms[name]
					drop := !ok || !r.holding || seen[name]
					seen[name] = true
					return drop
				})
			}
		}
	case *messages.GetRoom:
		if r, ok := l.rooms[m.Room]; ok {
			ctx.Forward(r.pid)
			return
		}
		l.roomQuery(ctx, m.Room)
	case *messages.GetHistory:
		l.history(ctx, m)
	case *messages.ListRooms:
		ctx.Respond(l.list(m))
	case *BeginDrain:
		l.draining = true
		ctx.Respond(struct{}{})
	case *remoteJoin:
		l.remoteJoin(ctx, m)
	case *remoteLeave:
		l.remoteLeave(ctx, m)
	case *followLost:
		for _, r := range l.rooms {
			ctx.Send(r.pid, m)
		}
	case *localDirect:
		s, ok := l.sessions[m.msg.To]
		if ok {
			ctx.Send(s.pid, m.msg)
		}
		ctx.Respond(&messages.DirectResult{Delivered: ok})
	}
}

// evictHolding stops the room that has lived longest only for its
// history, to make room for a new one, and reports whether there was one.
// Its history stays in the broker, where a member who joins the room
// again finds it; the room is only no longer listed. Without this, a
// client making rooms of one message each would fill the node's room
// table for the history's lifetime, and every new room would be refused.
func (l *lobby) evictHolding(ctx actor.Context) bool {
	for len(l.holding) > 0 {
		name := l.holding[0]
		l.holding = l.holding[1:]
		r, ok := l.rooms[name]
		if !ok || !r.holding || r.members != 0 {
			continue // joined or published to since, or gone
		}
		ctx.Poison(r.pid)
		delete(l.rooms, name)
		if len(l.remote[name]) == 0 {
			l.names.Delete(name)
		}
		l.stats.Rooms.Store(int64(len(l.rooms)))
		l.stats.RoomsEvicted.Add(1)
		l.log.Debug("room with only history stopped for a new one", slog.String("room", name))
		return true
	}
	return false
}

// roomFailed forgets a room that panicked (room.guard), and closes, 1011,
// the sessions that had joined it or were on their way to it.
func (l *lobby) roomFailed(ctx actor.Context, m *roomFailed) {
	r, ok := l.rooms[m.room]
	if !ok || !r.pid.Equal(m.pid) {
		return
	}
	delete(l.rooms, m.room)
	if len(l.remote[m.room]) == 0 {
		l.names.Delete(m.room)
	}
	l.stats.Rooms.Store(int64(len(l.rooms)))
	closing := &messages.Close{Reason: socket.InternalError}
	for id, s := range l.sessions {
		if i := slices.Index(s.rooms, m.room); i >= 0 {
			ctx.Send(s.pid, closing)
			s.rooms = slices.Delete(s.rooms, i, i+1)
			l.sessions[id] = s
			l.stats.Subscriptions.Add(-1)
			l.tellBridge(ctx, &localLeave{room: m.room, id: id})
		}
	}
}

// tellBridge tells the node's bridge, if it has one, of msg.
func (l *lobby) tellBridge(ctx actor.Context, msg any) {
	if l.bridge != nil {
		ctx.Send(l.bridge, msg)
	}
}

// connect lets a session into a room: its first (the connect path's), or
// one more (a lobby.v1 subscribe), for a session the lobby knows under the
// same PID.
func (l *lobby) connect(ctx actor.Context, m *messages.Connect) {
	if l.draining {
		ctx.Send(m.Session, &messages.Close{Reason: socket.ShuttingDown})
		return
	}
	s, known := l.sessions[m.ID]
	if known && !s.pid.Equal(m.Session) {
		l.log.Warn("duplicate session id refused", slog.String("id", m.ID.String()))
		ctx.Send(m.Session, &messages.Close{Reason: duplicateSession})
		return
	}
	if slices.Contains(s.rooms, m.Room) {
		// A session asks once per room (it answers already_subscribed
		// itself); this one must not wait for a join that never comes.
		ctx.Send(m.Session, &subscribeRefused{room: m.Room, ref: m.Ref, code: codeAlreadySubscribed,
			message: "already subscribed to room " + m.Room})
		return
	}
	if l.broker.FollowRefused() {
		l.stats.JoinsFollowRefused.Add(1)
		refuseJoin(ctx, m, known, codeUnavailable, FollowRefused,
			"the cluster refuses this node a consumer (NATS's limit of consumers): room "+m.Room+" cannot be followed here now; try another node or later")
		return
	}
	r := l.room(ctx, m.Room)
	if r == nil {
		refuseJoin(ctx, m, known, codeRoomLimit, RoomLimit,
			"the server has as many rooms as it may: room "+m.Room+" was not made")
		return
	}
	r.members++
	s.pid = m.Session
	s.rooms = append(s.rooms, m.Room)
	l.sessions[m.ID] = s
	l.stats.Subscriptions.Add(1)
	ctx.Send(r.pid, m)
	l.tellBridge(ctx, &localJoin{room: m.Room, id: m.ID})
}

// register makes known a session that starts in no room.
func (l *lobby) register(ctx actor.Context, m *register) {
	if _, dup := l.sessions[m.id]; dup {
		l.log.Warn("duplicate session id refused", slog.String("id", m.id.String()))
		ctx.Send(m.session, &messages.Close{Reason: duplicateSession})
		return
	}
	l.sessions[m.id] = sessionEntry{pid: m.session, registered: true}
	l.tellBridge(ctx, &localJoin{room: noRoom, id: m.id})
}

// noRoom is the roster's room of the registered sessions, so that other
// nodes know where to send them direct messages while they are in no
// room; the rooms are never told of it.
const noRoom = ""

// disconnect takes a session out of m.Room, or, when m.Room is "", out of
// every room, and forgets it once it is in none (a registered session:
// only for m.Room "").
func (l *lobby) disconnect(ctx actor.Context, m *messages.Disconnect) {
	s, ok := l.sessions[m.ID]
	if !ok {
		return
	}
	if m.Room == "" {
		for _, room := range s.rooms {
			l.leave(ctx, room, m.ID, &messages.Disconnect{ID: m.ID, Room: room})
		}
		if s.registered {
			l.tellBridge(ctx, &localLeave{room: noRoom, id: m.ID})
		}
		delete(l.sessions, m.ID)
		return
	}
	i := slices.Index(s.rooms, m.Room)
	if i < 0 {
		return
	}
	s.rooms = slices.Delete(s.rooms, i, i+1)
	l.leave(ctx, m.Room, m.ID, m)
	if len(s.rooms) == 0 && !s.registered {
		delete(l.sessions, m.ID)
		return
	}
	l.sessions[m.ID] = s
}

// unsubscribe takes a session out of one room; the room answers it. The
// session stays known, in no room if need be.
func (l *lobby) unsubscribe(ctx actor.Context, m *unsubscribe) {
	s, ok := l.sessions[m.id]
	i := -1
	if ok {
		i = slices.Index(s.rooms, m.room)
	}
	if i < 0 {
		ctx.Send(m.session, &unsubscribed{room: m.room, ref: m.ref})
		return
	}
	s.rooms = slices.Delete(s.rooms, i, i+1)
	if !s.registered {
		// Known from now on with no room too, as a GET /ws session is.
		s.registered = true
		l.tellBridge(ctx, &localJoin{room: noRoom, id: m.id})
	}
	l.sessions[m.id] = s
	l.leave(ctx, m.room, m.id, m)
}

// leave tells room, with msg, that member id has left it.
func (l *lobby) leave(ctx actor.Context, room string, id uuid.UUID, msg any) {
	l.stats.Subscriptions.Add(-1)
	r, ok := l.rooms[room]
	if !ok {
		// The room failed (roomFailed) and took its members with it.
		if u, ok := msg.(*unsubscribe); ok {
			ctx.Send(u.session, &unsubscribed{room: u.room, ref: u.ref})
		}
		return
	}
	r.members--
	ctx.Send(r.pid, msg)
	l.tellBridge(ctx, &localLeave{room: room, id: id})
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
		if s, ok := l.sessions[m.ID]; ok && slices.Contains(s.rooms, m.RoomID) {
			if r, ok := l.rooms[m.RoomID]; ok {
				ctx.Send(r.pid, m)
			}
		}
		return
	}
	if l.broker.FollowRefused() {
		// Its room would store it and never hear it back: not sent.
		l.stats.PublishesFollowRefused.Add(1)
		ctx.Respond(&messages.Published{Unavailable: true, FollowRefused: true})
		return
	}
	r, ok := l.rooms[m.RoomID]
	if !ok && !l.keepsHistory && l.bridge == nil {
		// Nothing keeps it and nobody here or elsewhere gets it.
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
	if !ok && l.bridge != nil {
		// Maybe on another node: the bridge answers the sender.
		ctx.Forward(l.bridge)
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
		r.holding = false // a join or a publish is on its way
		return r
	}
	if len(l.rooms) >= l.maxRooms && !l.evictHolding(ctx) {
		l.stats.RoomsRefused.Add(1)
		l.log.Debug("room refused: the node has as many rooms as it may", slog.String("room", name), slog.Int("max_rooms", l.maxRooms))
		return nil
	}
	c := roomConfig{name: name, broker: l.broker, remote: slices.Clone(l.remote[name]), stats: l.stats,
		policy: l.policy, residents: l.residents, publishOnly: l.publishOnly != nil && l.publishOnly(name), log: l.log,
		replay: l.replay}
	// A room's props decide what becomes of its children, the residents,
	// when one fails: it is stopped (protoactor asks the parent).
	opts := append(slices.Clone(l.roomOpts), actor.WithSupervisor(stopResident))
	props := actor.PropsFromProducer(func() actor.Actor { return newRoom(c) }, opts...)
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
		members := len(l.remote[name])
		if r, ok := l.rooms[name]; ok {
			members += r.members
		}
		list.Rooms = append(list.Rooms, messages.RoomSummary{Room: name, Members: members})
		return true
	})
	return list
}

// roomQuery answers GET /rooms/{room} for a room no member of this node
// is in: its last seq is read from its stream.
func (l *lobby) roomQuery(ctx actor.Context, room string) {
	root, sender, members := ctx.ActorSystem().Root, ctx.Sender(), slices.Clone(l.remote[room])
	l.broker.Read(room, math.MaxUint64, 0, func(res broker.ReadResult) {
		if res.Err != nil && len(members) == 0 {
			root.Send(sender, res.Err)
			return
		}
		root.Send(sender, &messages.RoomInfo{Found: res.Last > 0 || len(members) > 0, Room: room,
			Members: members, Seq: res.Last, Epoch: res.Epoch})
	})
}

// history answers GET /rooms/{room}/history from the room's stream: the
// same answer on every node.
func (l *lobby) history(ctx actor.Context, m *messages.GetHistory) {
	_, local := l.rooms[m.Room]
	known := local || len(l.remote[m.Room]) > 0
	root, sender := ctx.ActorSystem().Root, ctx.Sender()
	l.broker.Read(m.Room, m.Since, 0, func(res broker.ReadResult) {
		if res.Err != nil {
			root.Send(sender, res.Err)
			return
		}
		h := &messages.History{Found: res.Last > 0 || known, Epoch: res.Epoch, Seq: res.Last, Complete: res.Complete,
			Entries: make([]messages.HistoryEntry, len(res.Messages))}
		for i, e := range res.Messages {
			h.Entries[i] = messages.HistoryEntry{Seq: e.Seq, ID: e.From, Msg: e.Msg, TS: e.At.UnixMilli()}
		}
		root.Send(sender, h)
	})
}

func (l *lobby) remoteJoin(ctx actor.Context, m *remoteJoin) {
	ids := l.remote[m.room]
	if slices.Contains(ids, m.id) {
		return
	}
	l.remote[m.room] = append(ids, m.id)
	if r, ok := l.rooms[m.room]; ok {
		ctx.Send(r.pid, m)
	} else if len(ids) == 0 {
		l.names.ReplaceOrInsert(m.room)
	}
}

func (l *lobby) remoteLeave(ctx actor.Context, m *remoteLeave) {
	ids := l.remote[m.room]
	i := slices.Index(ids, m.id)
	if i < 0 {
		return
	}
	ids = slices.Delete(ids, i, i+1)
	if len(ids) == 0 {
		delete(l.remote, m.room)
	} else {
		l.remote[m.room] = ids
	}
	if r, ok := l.rooms[m.room]; ok {
		ctx.Send(r.pid, m)
	} else if len(ids) == 0 {
		l.names.Delete(m.room)
	}
}

// refuseJoin answers a join the lobby cannot make: a session already in
// rooms (known) is told by an error frame for its subscribe (code,
// message) and stays; a new one is closed for why.
func refuseJoin(ctx actor.Context, m *messages.Connect, known bool, code string, why socket.Reason, message string) {
	if known {
		ctx.Send(m.Session, &subscribeRefused{room: m.Room, ref: m.Ref, code: code, message: message})
		return
	}
	ctx.Send(m.Session, &messages.Close{Reason: why})
}
