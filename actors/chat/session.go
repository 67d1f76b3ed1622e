package chat

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// session is the actor behind one client's socket: the seed's
// WebSocketSession. It joins its rooms through the lobby, turns the
// client's frames into messages for a room or the lobby, and hands every
// frame addressed to the client to its socket.Conn, in the protocol the
// client speaks.
//
// A text-protocol session is a member of the one room of its connect path.
// A lobby.v1 session may be a member of many (subscriptions): it is one
// member of each room, under its one id, and each room hands it the
// frames it encodes once for all its members. Its limits (the rate
// strikes, the hold, the connection's queue) are the connection's, over
// all its rooms.
//
// Its fields are few and small on purpose: an idle connection's session
// lives as long as the connection, and a node holds one per client.
type session struct {
	id uuid.UUID
	// home is the room of the connect path, "" for GET /ws.
	home string
	// start is the Connect to home, sent on Started and then dropped:
	// the client's recovery request is needed only there.
	start *messages.Connect
	// name is the display name given on connect; fixedName says it came
	// from the client's token, and a subscribe's name does not replace it.
	name string
	// allow says whether the client may subscribe to a room (its token's
	// rooms claim); nil allows any.
	allow func(room string) bool
	lobby *actor.PID
	// conn is the client's socket; while a replay is paced, the
	// socket.Paced in front of it, which every frame then goes through.
	conn  socket.Conn
	hb    socket.Heartbeat
	stats *Stats

	// subs are the rooms the session is a member of, or on its way into
	// (pid nil until the room answers Joined).
	subs []subscription
	// pending, made on first use, holds the frames the client sends while
	// transit counts joins and leaves not yet answered, so that none
	// overtakes another: a broadcast right after a subscribe reaches the
	// room it subscribed to, and nothing of a room reaches the client
	// after its unsubscribed.
	pending *socket.Hold
	// held is the node's budget for what pending holds (socket.HoldBudget).
	held    *socket.HoldBudget
	strikes socket.Strikes
	transit int32
	maxSubs int32
	// protocol and fixedName close the struct, packed with the counts.
	protocol  messages.Protocol
	fixedName bool
}

// subscription is one room of a session's.
type subscription struct {
	room string
	pid  *actor.PID
}

// Messages between sessions, the lobby and rooms about subscriptions.
type (
	// register makes a session that starts in no room (GET /ws) known
	// to the lobby, for direct messages. Session → lobby.
	register struct {
		id      uuid.UUID
		session *actor.PID
	}
	// unsubscribe takes a session out of one room; the room answers
	// unsubscribed. Session → lobby → room.
	unsubscribe struct {
		id      uuid.UUID
		room    string
		ref     json.RawMessage
		session *actor.PID
	}
	// unsubscribed says the room has let the session go: nothing more
	// of it follows. Room → session (the lobby's when the room is gone).
	unsubscribed struct {
		room string
		ref  json.RawMessage
	}
	// subscribeRefused says the lobby did not let a session into a room.
	// Lobby → session.
	subscribeRefused struct {
		room, code, message string
		ref                 json.RawMessage
	}
	// replay is a recovering member's welcome, the messages it missed
	// and those that came meanwhile, in order: more, maybe, than its
	// client's queue takes at once. Room → session.
	replay struct {
		frames []*messages.WsMessage
	}
	// paceDrained says the client's queue has drained: the session sends
	// more of a paced replay. Its socket's writer → session.
	paceDrained struct{}
)

func (s *session) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.WsMessage:
		if m.Batch != nil {
			for _, f := range m.Batch {
				s.sendFrame(f)
			}
			return
		}
		s.sendFrame(m)
	case *messages.ClientMessage:
		if s.transit > 0 {
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
		s.conn.Send(appendBroadcast(nil, m.ID, m.Msg, s.home), false)
	case *messages.DirectResult:
		switch {
		case m.TooBig:
			s.sendError(m.Ref, codeTooBig, "the message is too big for the cluster: this direct message was not sent")
		case m.Unavailable:
			s.sendError(m.Ref, codeUnavailable, "the cluster is unavailable: this direct message may not have been delivered")
		case !m.Delivered:
			s.sendError(m.Ref, codeUnknownSession, "no session has that id")
		case m.Ref != nil:
			s.conn.Send(appendV1Ack(nil, m.Ref, "", 0, false), false)
		}
	case *replay:
		s.replay(ctx, m.frames)
	case *paceDrained:
		s.pace()
	case *messages.Joined:
		s.joined(ctx, m)
	case *unsubscribed:
		if i := s.find(m.room); i >= 0 {
			s.subs = slices.Delete(s.subs, i, i+1)
		}
		s.conn.Send(appendV1Unsubscribed(nil, m.ref, m.room), false)
		s.settled(ctx)
	case *subscribeRefused:
		if i := s.find(m.room); i >= 0 {
			s.subs = slices.Delete(s.subs, i, i+1)
		}
		s.refused(m.code)
		s.sendError(m.ref, m.code, m.message)
		s.settled(ctx)
	case *socket.HeartbeatTick:
		s.hb.Tick(s.conn)
	case *messages.Close:
		s.conn.Close(m.Reason)
	case *actor.Started:
		if s.home == "" {
			// Known to the lobby before the client knows its id.
			ctx.Send(s.lobby, &register{id: s.id, session: ctx.Self()})
			s.conn.Send(appendV1Connected(nil, s.id), false)
		} else {
			c := s.start
			s.start = nil
			c.Session = ctx.Self()
			s.join(ctx, c)
		}
		s.hb.Start(ctx)
	case *actor.Stopping:
		s.hb.Stop()
		s.flushPending(ctx)
		// Room "" is every room: the lobby knows them all, including
		// those whose join is still on its way.
		ctx.Send(s.lobby, &messages.Disconnect{ID: s.id})
	}
}

// join asks the lobby for a room.
func (s *session) join(ctx actor.Context, c *messages.Connect) {
	s.subs = append(s.subs, subscription{room: c.Room})
	s.transit++
	ctx.Send(s.lobby, c)
}

func (s *session) joined(ctx actor.Context, m *messages.Joined) {
	i := s.find(m.Name)
	if i < 0 || s.subs[i].pid != nil {
		return
	}
	s.subs[i].pid = m.Room
	if s.protocol == messages.ProtocolText {
		// Sent once the room has the client, not at start: "your id is"
		// then means "you are in", and a client that reads it and makes
		// another join cannot find its own join notice missing.
		s.conn.Send(appendWelcome(nil, s.id), false)
	}
	s.settled(ctx)
}

// settled counts one join or leave answered and, once none is left on
// its way, handles the frames that waited for it, in order; one of them
// may start another join, and the rest wait again.
func (s *session) settled(ctx actor.Context) {
	s.transit--
	if s.transit > 0 {
		return
	}
	if s.pending == nil {
		return
	}
	held := s.pending.Take()
	for i, p := range held {
		if s.transit > 0 {
			for _, q := range held[i:] {
				s.hold(q)
			}
			return
		}
		s.fromClient(ctx, p)
	}
}

// hold keeps a client frame until the joins and leaves on their way are
// answered.
func (s *session) hold(m *messages.ClientMessage) {
	if s.pending == nil {
		s.pending = &socket.Hold{Budget: s.held}
	}
	s.pending.Add(s.conn, m)
}

// find is the index of room in subs, or -1.
func (s *session) find(room string) int {
	for i := range s.subs {
		if s.subs[i].room == room {
			return i
		}
	}
	return -1
}

// flushPending hands the frames the client sent before its joins
// completed to the lobby, which passes them to their rooms ahead of the
// Disconnect that follows them: a client that sends a frame and closes at
// once (the room's Joined then arrives after the stop) still has its
// frame delivered. Only what reaches other members is kept; there is
// nobody left to answer.
func (s *session) flushPending(ctx actor.Context) {
	if s.pending == nil {
		return
	}
	for _, m := range s.pending.Take() {
		if m.RateLimited || m.Binary {
			continue
		}
		if s.protocol != messages.ProtocolJSON {
			ctx.Send(s.lobby, &messages.BroadcastMessage{ID: s.id, Msg: socket.AppendJSONString(nil, string(m.Data)), RoomID: s.home})
			continue
		}
		f, ferr := decodeClientFrame(m.Data)
		if ferr != nil {
			continue
		}
		switch f.Type {
		case frameTypeBroadcast:
			room := f.Room
			if room == "" {
				room = s.home
			}
			if s.find(room) >= 0 {
				ctx.Send(s.lobby, &messages.BroadcastMessage{ID: s.id, Msg: f.Msg, RoomID: room, Key: f.key()})
			}
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
	if len(s.subs) == 0 || s.subs[0].pid == nil {
		return
	}
	ctx.Send(s.subs[0].pid, &messages.BroadcastMessage{
		ID:     s.id,
		Msg:    socket.AppendJSONString(nil, string(m.Data)),
		RoomID: s.home,
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
		if sub := s.roomOf(&f); sub != nil {
			ctx.Send(sub.pid, &messages.BroadcastMessage{ID: s.id, Msg: f.Msg, RoomID: sub.room, Ref: f.Ref, Key: f.key(), From: ctx.Self()})
		}
	case frameTypeDirect:
		ctx.Send(s.lobby, &messages.DirectMessage{ID: s.id, To: f.to, Msg: f.Msg, Ref: f.Ref, From: ctx.Self()})
	case frameTypeMembers:
		if sub := s.roomOf(&f); sub != nil {
			ctx.Request(sub.pid, &messages.GetMembers{Ref: f.Ref})
		}
	case frameTypeSubscribe:
		s.subscribe(ctx, &f)
	case frameTypeUnsubscribe:
		if s.find(f.Room) < 0 {
			s.sendError(f.Ref, codeNotSubscribed, "not subscribed to room "+f.Room)
			return
		}
		s.transit++
		ctx.Send(s.lobby, &unsubscribe{id: s.id, room: f.Room, ref: f.Ref, session: ctx.Self()})
	}
}

// roomOf is the subscription a broadcast or members frame is for: its
// room, or the connect path's. When there is none the client is told why
// and roomOf returns nil.
func (s *session) roomOf(f *clientFrame) *subscription {
	room := f.Room
	if room == "" {
		room = s.home
	}
	if room == "" {
		s.sendError(f.Ref, codeRoomRequired, "this connection has no room of its own: say which room in \"room\"")
		return nil
	}
	i := s.find(room)
	if i < 0 {
		s.sendError(f.Ref, codeNotSubscribed, "not subscribed to room "+room)
		return nil
	}
	return &s.subs[i]
}

func (s *session) subscribe(ctx actor.Context, f *clientFrame) {
	switch {
	case s.find(f.Room) >= 0:
		s.refused(codeAlreadySubscribed)
		s.sendError(f.Ref, codeAlreadySubscribed, "already subscribed to room "+f.Room)
		return
	case len(s.subs) >= int(s.maxSubs):
		s.refused(codeTooManySubscriptions)
		s.sendError(f.Ref, codeTooManySubscriptions, "a connection may be in at most "+strconv.Itoa(int(s.maxSubs))+" rooms: unsubscribe from one first")
		return
	case s.allow != nil && !s.allow(f.Room):
		s.refused(codeForbidden)
		s.sendError(f.Ref, codeForbidden, "the token does not allow room "+f.Room)
		return
	}
	name := s.name
	if f.Name != "" && !s.fixedName {
		name = f.Name
	}
	s.join(ctx, &messages.Connect{ID: s.id, Room: f.Room, Session: ctx.Self(), Protocol: s.protocol,
		Recover: f.recover, Since: f.since, Epoch: f.Epoch, Ref: f.Ref, Name: name})
}

// refused counts a subscribe refused, by its error code.
func (s *session) refused(code string) {
	s.stats.refused(code)
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

// replay sends a recovering member's frames as its client reads them
// (socket.Paced): a replay longer than the client's queue, sent at once,
// closed it as a slow consumer mid-replay. A Conn that cannot pace gets
// them at once.
func (s *session) replay(ctx actor.Context, frames []*messages.WsMessage) {
	p, ok := s.conn.(*socket.Paced)
	if !ok {
		pacer, ok := s.conn.(socket.Pacer)
		if !ok {
			for _, f := range frames {
				s.sendFrame(f)
			}
			return
		}
		root, self := ctx.ActorSystem().Root, ctx.Self()
		p = socket.NewPaced(pacer, func() { root.Send(self, &paceDrained{}) })
		s.conn = p
	}
	for _, f := range frames {
		if f.JSON != nil {
			p.Add(f.JSON, false)
		}
	}
	s.pace()
}

// pace sends what the client's queue has room for of a paced replay, and
// the session writes to its socket directly again once all has gone.
func (s *session) pace() {
	if p, ok := s.conn.(*socket.Paced); ok && p.Push() {
		s.conn = p.Pacer
	}
}

// sendFrame sends the client frame's payload in its protocol, if it has one.
func (s *session) sendFrame(m *messages.WsMessage) {
	data := m.Data
	if s.protocol == messages.ProtocolJSON {
		data = m.JSON
	}
	if data != nil {
		s.conn.Send(data, m.Binary)
	}
}
