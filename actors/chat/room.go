package chat

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/actors/broker"
	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// room is the actor for one room name on this node: it owns the room's
// members here, knows those of other nodes (from the lobby, from the
// bridge's presence), and fans messages out. It orders nothing itself:
// every broadcast and publish is appended to the room's stream in the
// node's Broker, and the members here get the stream's messages as the
// room follows it, so that every member on every node sees the same
// messages in the same order. On a node alone the Broker is a
// MemoryBroker and all of that happens in this actor's turn; with NATS
// it takes a round trip. A message's seq is its seq in the room's
// stream: 1 more than the one before, in every Broker. History is the
// stream's.
//
// Every frame is encoded once per protocol its members speak, and the same
// bytes are handed to every member's session; handing over is a mailbox
// push, so a room never waits on a socket and one slow member cannot slow
// the others.
//
// A sender's ack (and an HTTP publish's answer) waits until the stream has
// acknowledged the message and it has been delivered here: the sender sees
// its message, then the ack; a message whose store failed is answered
// unavailable.
//
// The lobby creates a room on the first Connect or publish to its name.
// The room lives while it has members or work in flight, and for
// EmptyRoomLinger after that, and while its broker holds its history on
// this node (a MemoryBroker: so that the node lists the room until its
// history expires); then it tells the lobby (roomIdle), and the lobby,
// which knows of any join or publish still on its way, stops it or lets
// it live. A cluster's history stays in the stream.
type room struct {
	name   string
	broker broker.Broker
	stats  *Stats
	policy Policy // nil takes every message
	// publishOnly rooms take messages from HTTP publishers and residents
	// only: a statistics room whose members would otherwise each be able
	// to send what every dashboard must draw (issue 21, finding 4).
	publishOnly bool
	log         *slog.Logger
	// replay bounds a recovering member's replay (Config.Replay).
	replay broker.ReplayLimit

	// residentKinds are the node's; residents are this room's, spawned
	// once its stream's end is known.
	residentKinds []Resident
	residents     []*actor.PID
	residentIDs   []uuid.UUID

	epoch string
	// follow is the room's current follow of its stream; nil until
	// Started, and made anew when the stream is.
	follow *follow
	// following is set once the stream's last seq is known; joins wait in
	// waiting until then, since a welcome must say where the member's
	// messages start.
	following bool
	waiting   []*messages.Connect
	// seq is the last stream message delivered here.
	seq uint64

	// members are this node's, in join order (see joinOrder).
	members  joinOrder[member]
	speakers speakers
	// remote are the members on other nodes, in the order learnt.
	remote joinOrder[remoteMember]
	// names are the display names of the members here that have one;
	// nil until one has (most members have none, and a member is kept
	// small: a room may have tens of thousands).
	names map[uuid.UUID]string

	// inflight counts appends and reads not yet answered; acks holds the
	// stored messages waiting to be delivered here, by seq.
	inflight int
	acks     []*pendingPublish
	// published counts the publishes the lobby forwarded; roomIdle
	// carries it so that the lobby can tell whether one is still on its way.
	published uint64
	// linger wakes an empty room EmptyRoomLinger after it emptied.
	linger *time.Timer

	// presence coalesces the lobby.v1 joined and left frames of a burst
	// (see announce).
	presence presenceWindow
}

// presenceWindow counts the lobby.v1 presence frames a room sent in its
// current window of presenceWindowLength, and holds those it has not.
type presenceWindow struct {
	// length is presenceWindowLength but in tests.
	length time.Duration
	timer  *time.Timer
	open   bool
	sent   int
	// held are the lobby.v1 joined and left frames past the window's
	// burst, in order, until the room flushes them (flushPresence).
	held []*messages.WsMessage
	// snapshot says that the joins and leaves held were too many (see
	// presenceSnapshotAt), and dropped: the lobby.v1 members are owed a
	// members frame instead.
	snapshot bool
}

// A room sends each lobby.v1 member at most presenceBurst joined or left
// frames at once per presenceWindowLength; past that, it holds them until
// the window ends or its next message, whichever is first, and then sends
// them, or, when they are more than presenceSnapshotAt, one members frame
// instead. A reconnect storm (500 clients moving to this node, the roster
// expiring the node they left) was otherwise ~1 000 presence frames to
// every member at once, more than a healthy client's send queue holds
// (--send-queue, 256 by default), and it was closed as a slow consumer
// mid-replay (issue 21, finding 13).
const (
	presenceBurst        = 16
	presenceWindowLength = 250 * time.Millisecond
)

// presenceSnapshotAt is how many held joins and leaves a members frame
// replaces in a room of n members: half of n, where the members frame
// (~38 bytes an id) is no bigger than the frames it replaces (~80 bytes
// each); never more than 128, so that what a member gets at once stays
// well within its send queue. A big room with a steady churn gets its
// joins and leaves one by one; a storm, one members frame a window.
func presenceSnapshotAt(n int) int { return max(1, min(n/2, 128)) }

// EmptyRoomLinger is how long a room with nothing left to do waits before
// it asks to be stopped. A member who leaves and comes back (a page
// reload, a reconnect) finds the room still there instead of paying for a
// room actor stopped and spawned anew.
const EmptyRoomLinger = time.Second

type member struct {
	id       uuid.UUID
	pid      *actor.PID
	protocol messages.Protocol
	// skip: messages with a seq up to it are not sent to this member; it
	// recovered up to there from another node ahead of this one.
	skip uint64
	// rec is set while the member's replay is being read.
	rec *recovery
}

func (m member) key() uuid.UUID { return m.id }

// remoteMember is a member on another node: all a room knows of it is its id.
type remoteMember uuid.UUID

func (m remoteMember) key() uuid.UUID { return uuid.UUID(m) }

// recovery is a lobby.v1 member's join with since, while its replay is
// read from the stream: frames for it wait in held.
type recovery struct {
	since, upto uint64
	members     []uuid.UUID
	names       []memberName
	ref         json.RawMessage
	held        []heldFrame
	// closed is set once the member was closed for holding too much.
	closed bool
}

type heldFrame struct {
	seq   uint64 // 0 for presence frames
	frame *messages.WsMessage
}

// maxHeldFrames bounds what a recovering member holds; a stream read that
// slow closes it, to reconnect and try again.
const maxHeldFrames = 4096

// pendingPublish is a broadcast or publish on its way to the stream.
type pendingPublish struct {
	seq uint64
	// f is the follow it was appended under: an append answered after
	// the stream was made anew has a seq of the lost stream.
	f *follow
	// requester is an HTTP publish's request, answered Published.
	requester *actor.PID
	// from is the sending lobby.v1 session, acked if it gave a ref.
	from *actor.PID
	ref  json.RawMessage
	// dup is set when the broker had the message's idempotency key: it
	// was not stored again, and seq is the first one's. keyed says the
	// message had a key.
	dup, keyed bool
}

// Messages of a room's own: from its broker's callbacks, its timer, the
// lobby.
type (
	// roomIdle tells the lobby that a room has nothing left to do.
	// Room → lobby.
	roomIdle struct {
		room      string
		pid       *actor.PID
		published uint64
	}
	// roomHolding tells the lobby that an idle room lives on only for
	// its history: it may be stopped for a new room. Room → lobby.
	roomHolding struct {
		room      string
		pid       *actor.PID
		published uint64
	}
	// roomFailed tells the lobby that a room panicked and stops.
	// Room → lobby.
	roomFailed struct {
		room string
		pid  *actor.PID
	}
	// lingerOver tells an empty room that it has lingered. Its timer → room.
	lingerOver struct{}
	// presenceOver ends a room's presence window. Its timer → room.
	presenceOver struct{}
	// heldRead says what the broker holds for an idle room. Broker → room.
	heldRead struct{ res broker.ReadResult }
	// followStarted gives a room its stream's last seq and epoch, before
	// any streamMessage of that follow. Broker → room.
	followStarted struct {
		f     *follow
		last  uint64
		epoch string
	}
	// followWake tells a room that messages of its stream wait in the
	// follow's box. Broker → room.
	followWake struct{ f *follow }
	// followLost tells a room that its stream was made anew (its epoch
	// changed): what it delivered is gone. Bridge → lobby → room.
	followLost struct{}
	// appended says whether a message was stored, and its seq.
	// Broker → room.
	appended struct {
		seq uint64
		dup bool
		err error
		p   *pendingPublish
	}
	// roomRead is the stream's answer to a recovering member's read.
	// Broker → room.
	roomRead struct {
		member uuid.UUID
		res    broker.ReadResult
	}
)

// follow is one follow of the room's stream. Its messages carry it, so
// that those of a follow the room has stopped are known and dropped.
//
// The broker's deliveries wait in box. One that comes while the room is
// in a call to its broker (a MemoryBroker delivers a room's own append
// inside the append) is handled in the same turn, when the call returns:
// a single node's broadcast costs no mailbox hop more than a direct
// fan-out would. One that comes from the broker's own goroutine (NATS)
// wakes the room with one followWake for all that arrive before it
// drains them.
//
// The box is bounded (maxFollowBox, maxFollowBoxBytes): past its bound
// put tells the broker to wait until the room has taken it, and the
// broker stops reading the stream meanwhile (broker.Broker.Follow). A
// node too slow for its stream (starved of CPU) then falls behind in the
// stream, which keeps every message and shows the lag, instead of in
// its heap; no member is closed or misses a message for it.
type follow struct {
	stop func()

	mu       sync.Mutex
	box      []broker.StreamMessage
	spare    []broker.StreamMessage
	boxBytes int
	// taken, while the box is full, is closed by the next take.
	taken    chan struct{}
	inCall   bool // the room drains box when its call returns
	notified bool // a followWake is on its way
}

// A follow's box holds at most maxFollowBox messages or maxFollowBoxBytes
// of them (and the one that passes the bound) before its broker waits:
// a turn's worth for a busy room, which drains its box whole each turn.
const (
	maxFollowBox      = 1024
	maxFollowBoxBytes = 4 << 20
)

// put is the broker's side: deliver. It returns a channel, closed once
// the room has taken its box, when the box is full.
func (f *follow) put(root *actor.RootContext, self *actor.PID, sm broker.StreamMessage) <-chan struct{} {
	f.mu.Lock()
	f.box = append(f.box, sm)
	f.boxBytes += len(sm.Msg)
	wake := !f.inCall && !f.notified
	f.notified = f.notified || wake
	var full chan struct{}
	if len(f.box) >= maxFollowBox || f.boxBytes >= maxFollowBoxBytes {
		if f.taken == nil {
			f.taken = make(chan struct{})
		}
		full = f.taken
	}
	f.mu.Unlock()
	if wake {
		root.Send(self, &followWake{f: f})
	}
	return full
}

// take is the room's side: what waits in box, in stream order. The slice
// is the room's until its next take.
func (f *follow) take() []broker.StreamMessage {
	f.mu.Lock()
	box := f.box
	f.box, f.spare, f.boxBytes = f.spare[:0], box, 0
	f.notified = false
	if f.taken != nil {
		close(f.taken)
		f.taken = nil
	}
	f.mu.Unlock()
	return box
}

func (f *follow) calling(on bool) {
	f.mu.Lock()
	f.inCall = on
	f.mu.Unlock()
}

// inline takes a broker callback's message: when the broker calls it
// before the call that caused it returns (a MemoryBroker does, on the
// room's own goroutine) the room handles it in the same turn, instead of
// a mailbox hop later; when it calls later, from its own goroutine (NATS),
// the message goes to the room's mailbox.
type inline struct {
	state atomic.Int32 // 0 calling, 1 answered inline, 2 returned
	msg   any
}

// answer is the callback's side.
func (in *inline) answer(root *actor.RootContext, self *actor.PID, msg any) {
	in.msg = msg
	if in.state.CompareAndSwap(0, 1) {
		return
	}
	root.Send(self, msg)
}

// returned is the caller's side, once the call has returned: the message
// to handle now, or nil when it will come through the mailbox.
func (in *inline) returned() any {
	if in.state.CompareAndSwap(0, 2) {
		return nil
	}
	return in.msg
}

// roomConfig is what a room is made with.
type roomConfig struct {
	name   string
	broker broker.Broker
	// remote are the room's members on other nodes, as the lobby knows
	// them.
	remote    []uuid.UUID
	stats     *Stats
	policy    Policy
	residents []Resident
	// publishOnly: only publishers and residents may send (Config.PublishOnly).
	publishOnly bool
	log         *slog.Logger
	// presenceWindow is presenceWindowLength when 0 (tests set it).
	presenceWindow time.Duration
	replay         broker.ReplayLimit
}

func newRoom(c roomConfig) *room {
	r := &room{name: c.name, broker: c.broker, stats: c.stats, policy: c.policy, residentKinds: c.residents,
		publishOnly: c.publishOnly, log: c.log, replay: c.replay}
	r.presence.length = cmp.Or(c.presenceWindow, presenceWindowLength)
	for _, id := range c.remote {
		r.remote.add(remoteMember(id))
	}
	return r
}

func (r *room) Receive(ctx actor.Context) {
	defer r.guard(ctx)
	switch m := ctx.Message().(type) {
	case *followWake:
		if m.f == r.follow {
			r.drain(ctx)
		}
	case *messages.BroadcastMessage:
		r.broadcast(ctx, m)
	case *appended:
		r.appended(ctx, m)
	case *messages.Connect:
		if !r.following {
			r.waiting = append(r.waiting, m)
			return
		}
		r.join(ctx, m)
	case *messages.Disconnect:
		r.leave(ctx, m.ID)
	case *unsubscribe:
		// The leave, then its answer: nothing of this room reaches the
		// session after the answer, which it passes on as unsubscribed.
		r.leave(ctx, m.id)
		ctx.Send(m.session, &unsubscribed{room: r.name, ref: m.ref})
	case *followStarted:
		if m.f == r.follow {
			r.started(ctx, m)
		}
	case *followLost:
		r.followLost(ctx)
	case *roomRead:
		r.recovered(ctx, m)
	case *remoteJoin:
		if m.id == uuid.Nil || r.remote.get(m.id) != nil {
			return // a malformed presence message, or known already
		}
		r.announce(ctx, "joined", m.id, "")
		r.remote.add(remoteMember(m.id))
	case *remoteLeave:
		if _, ok := r.remote.remove(m.id); !ok {
			return
		}
		r.announce(ctx, "left", m.id, "")
	case *messages.GetMembers:
		ctx.Send(ctx.Sender(), &messages.WsMessage{JSON: appendV1Members(nil, m.Ref, r.name, r.memberIDs(), r.memberNames())})
	case *messages.GetRoom:
		ctx.Respond(&messages.RoomInfo{Found: true, Room: r.name, Seq: r.seq, Epoch: r.epoch, Members: r.memberIDs()})
	case *lingerOver:
		r.lingerOver(ctx)
	case *presenceOver:
		r.presence.open, r.presence.sent = false, 0
		r.flushPresence(ctx)
	case *heldRead:
		r.held(ctx, m.res)
	case *actor.Started:
		r.startFollow(ctx)
	case *actor.Stopping:
		if r.follow != nil {
			r.follow.stop()
		}
		if r.linger != nil {
			r.linger.Stop()
		}
		if r.presence.timer != nil {
			r.presence.timer.Stop()
		}
	}
}

// guard stops a room whose Receive panicked: a bug, here or in a Policy.
// Restarted in place (protoactor's default) it would come back empty
// under the same PID, its members still sending to it and told nothing.
// Instead the publishes waiting on it are answered unavailable, and the
// lobby forgets it and closes its members with 1011 (roomFailed), to
// reconnect (a lobby.v1 client recovers what it missed from the stream,
// which the room's failure does not touch): the next join makes the room
// anew.
func (r *room) guard(ctx actor.Context) {
	p := recover()
	if p == nil {
		return
	}
	r.log.Error("room panicked; its members are closed to reconnect",
		slog.String("room", r.name), slog.String("message", fmt.Sprintf("%T", ctx.Message())), slog.Any("panic", p))
	// Its members, and the joins on their way, are the lobby's to close
	// (roomFailed): it knows them all.
	for _, a := range r.acks {
		if a.requester != nil {
			ctx.Send(a.requester, &messages.Published{Unavailable: true})
		}
	}
	if _, ok := ctx.Message().(*messages.BroadcastMessage); ok && ctx.Sender() != nil {
		// The publish that made it panic (in a Policy, say) is answered
		// too. Requests still in the mailbox get protoactor's dead-letter
		// answer once the room has stopped.
		ctx.Respond(&messages.Published{Unavailable: true})
	}
	ctx.Send(ctx.Parent(), &roomFailed{room: r.name, pid: ctx.Self()})
	ctx.Stop(ctx.Self())
}

// startFollow follows the room's stream from its end.
func (r *room) startFollow(ctx actor.Context) {
	f := &follow{}
	r.follow = f
	root, self := ctx.ActorSystem().Root, ctx.Self()
	in := &inline{}
	f.stop = r.broker.Follow(r.name,
		func(sm broker.StreamMessage) <-chan struct{} { return f.put(root, self, sm) },
		func(last uint64, epoch string) { in.answer(root, self, &followStarted{f: f, last: last, epoch: epoch}) })
	if m, ok := in.returned().(*followStarted); ok {
		r.started(ctx, m)
	}
}

// started lets the joins that waited for the stream's end in.
func (r *room) started(ctx actor.Context, m *followStarted) {
	renewed := false
	if m.epoch != r.epoch {
		// The first follow, or a stream made anew: its seqs start again.
		renewed = r.epoch != ""
		r.epoch, r.seq = m.epoch, m.last
	}
	r.following, r.seq = true, max(r.seq, m.last)
	switch {
	case r.residents == nil:
		r.spawnResidents(ctx)
	case renewed:
		r.tellResidents(ctx, &messages.RoomWelcome{Room: r.name, Epoch: r.epoch, Seq: r.seq, Members: r.memberIDs()})
	}
	r.resolveAcks(ctx)
	waiting := r.waiting
	r.waiting = nil
	for _, c := range waiting {
		r.join(ctx, c)
	}
	r.checkIdle(ctx)
}

func (r *room) broadcast(ctx actor.Context, m *messages.BroadcastMessage) {
	p := &pendingPublish{from: m.From, ref: m.Ref, f: r.follow, keyed: m.Key != ""}
	if ctx.Sender() != nil {
		// Only a publish is a request (the lobby forwards it, keeping its
		// requester); sessions send.
		p.requester = ctx.Sender()
		r.published++
	}
	if r.publishOnly && p.requester == nil && !slices.Contains(r.residentIDs, m.ID) {
		r.refuse(ctx, p, m.ID, publishOnlyRefusal)
		return
	}
	if r.policy != nil {
		if no := r.policy.Accept(r.name, m.ID, m.Msg); no != nil {
			r.refuse(ctx, p, m.ID, no)
			return
		}
	}
	r.inflight++
	root, self := ctx.ActorSystem().Root, ctx.Self()
	in := &inline{}
	r.follow.calling(true)
	r.broker.Append(r.name, m.ID, m.Msg, m.Key, func(seq uint64, dup bool, err error) {
		in.answer(root, self, &appended{seq: seq, dup: dup, err: err, p: p})
	})
	r.follow.calling(false)
	// The message first, then its ack: the sender sees them in that order.
	r.drain(ctx)
	if a, ok := in.returned().(*appended); ok {
		r.appended(ctx, a)
	}
}

// publishOnlyRefusal answers a member of a publishOnly room who sends.
var publishOnlyRefusal = &messages.Refusal{Code: "publish_only", Message: "this room takes messages from its publishers only; its members read"}

// refuse answers a message the room's policy refused, in its sender's
// protocol.
func (r *room) refuse(ctx actor.Context, p *pendingPublish, id uuid.UUID, no *messages.Refusal) {
	switch {
	case p.requester != nil:
		ctx.Send(p.requester, &messages.Published{Refused: no})
	case p.from != nil:
		ctx.Send(p.from, &messages.WsMessage{JSON: socket.AppendErrorFrame(nil, p.ref, no.Code, no.Message)})
	default:
		// A text-protocol member, whose protocol has no error frame: it
		// is told in a text frame of its own. A resident is told nothing.
		if mb := r.members.get(id); mb != nil {
			ctx.Send(mb.pid, &messages.WsMessage{Data: []byte("message refused: " + no.Message)})
		}
	}
	r.checkIdle(ctx)
}

// drain delivers what waits in the follow's box. Several messages go to
// each member as one WsMessage (its Batch): a member's session handles
// one message for all of them, and writes them in one go.
func (r *room) drain(ctx actor.Context) {
	box := r.follow.take()
	if len(box) == 1 {
		r.deliver(ctx, &box[0])
	} else if len(box) > 1 {
		r.deliverAll(ctx, box)
	}
	clear(box)
}

// deliverAll is deliver for several stream messages at once.
func (r *room) deliverAll(ctx actor.Context, box []broker.StreamMessage) {
	r.flushPresence(ctx)
	var seqs []uint64
	var frames []*messages.WsMessage
	for i := range box {
		sm := &box[i]
		if !r.following || sm.Seq <= r.seq {
			continue
		}
		r.seq = sm.Seq
		e := &entry{seq: sm.Seq, at: sm.At, id: sm.From, msg: sm.Msg}
		seqs = append(seqs, sm.Seq)
		frames = append(frames, r.speakers.messageFrame(e, r.name))
		if len(r.residents) > 0 {
			local := r.members.get(sm.From) != nil || slices.Contains(r.residentIDs, sm.From)
			r.tellResidents(ctx, &messages.RoomMessage{Room: r.name, Seq: sm.Seq, From: sm.From, Msg: sm.Msg, At: sm.At, Local: local})
		}
	}
	switch len(frames) {
	case 0:
		return
	case 1:
		r.sendAll(ctx, seqs[0], frames[0])
	default:
		batch := &messages.WsMessage{Batch: frames}
		for mb := range r.members.all() {
			if mb.rec != nil || seqs[0] <= mb.skip {
				for i, f := range frames {
					r.sendTo(ctx, mb, seqs[i], f)
				}
				continue
			}
			ctx.Send(mb.pid, batch)
		}
	}
	r.resolveAcks(ctx)
}

// deliver hands one stream message to every member here, once.
func (r *room) deliver(ctx actor.Context, sm *broker.StreamMessage) {
	if !r.following || sm.Seq <= r.seq {
		return // a follow that resumed may deliver a message again
	}
	r.seq = sm.Seq
	// The joins and leaves before the message, then the message: its
	// sender is in the members list a client holds when it reads it.
	r.flushPresence(ctx)
	e := &entry{seq: sm.Seq, at: sm.At, id: sm.From, msg: sm.Msg}
	r.sendAll(ctx, sm.Seq, r.speakers.messageFrame(e, r.name))
	if len(r.residents) > 0 {
		local := r.members.get(sm.From) != nil || slices.Contains(r.residentIDs, sm.From)
		r.tellResidents(ctx, &messages.RoomMessage{Room: r.name, Seq: sm.Seq, From: sm.From, Msg: sm.Msg, At: sm.At, Local: local})
	}
	r.resolveAcks(ctx)
}

// followLost starts the room again in a stream made anew: what it
// delivered is gone, and its seqs start again under a new epoch (in the
// followStarted of the new follow). Publishes waiting for their delivery
// are answered unavailable, and lobby.v1 members are closed, to
// reconnect: their seqs and epoch are of the lost stream, and they get
// recovered:false and the new epoch in their new welcome. Text members,
// who see no seq, stay.
func (r *room) followLost(ctx actor.Context) {
	if r.follow != nil {
		r.follow.stop()
	}
	r.following = false
	for _, p := range r.acks {
		r.failed(ctx, p, broker.ErrUnavailable)
	}
	clear(r.acks)
	r.acks = r.acks[:0]
	for mb := range r.members.all() {
		if mb.protocol == messages.ProtocolJSON {
			mb.rec = nil
			ctx.Send(mb.pid, &messages.Close{Reason: streamMadeAnew})
		}
	}
	r.startFollow(ctx)
	r.checkIdle(ctx)
}

// appended is the stream's answer to one of this room's appends.
func (r *room) appended(ctx actor.Context, m *appended) {
	r.inflight--
	p := m.p
	if m.err == nil && p.f != r.follow {
		m.err = broker.ErrUnavailable // stored, if at all, in the lost stream
	}
	if m.err != nil {
		r.failed(ctx, p, m.err)
		r.checkIdle(ctx)
		return
	}
	p.seq, p.dup = m.seq, m.dup
	if p.dup {
		// Delivered, if at all, when it was first stored: nothing is
		// left to wait for. Its seq may be past this room's, in a room
		// made anew since (a MemoryBroker's keys outlive a stream that
		// lost its history).
		r.answerStored(ctx, p)
		r.checkIdle(ctx)
		return
	}
	i, _ := slices.BinarySearchFunc(r.acks, p.seq, func(a *pendingPublish, seq uint64) int {
		switch {
		case a.seq < seq:
			return -1
		case a.seq > seq:
			return 1
		}
		return 0
	})
	r.acks = slices.Insert(r.acks, i, p)
	r.resolveAcks(ctx)
}

// failed tells a publish's sender that it failed with err.
func (r *room) failed(ctx actor.Context, p *pendingPublish, err error) {
	tooBig, full := errors.Is(err, broker.ErrTooBig), errors.Is(err, broker.ErrStoreFull)
	switch {
	case p.requester != nil:
		ctx.Send(p.requester, &messages.Published{Unavailable: !tooBig && !full, TooBig: tooBig, StoreFull: full,
			OutcomeUnknown: errors.Is(err, broker.ErrOutcomeUnknown)})
	case p.from != nil && full:
		ctx.Send(p.from, &messages.WsMessage{JSON: socket.AppendErrorFrame(nil, p.ref, codeStoreFull,
			"the message store is full: this message was not stored; send it again later")})
	case p.from != nil && p.keyed && errors.Is(err, broker.ErrOutcomeUnknown):
		ctx.Send(p.from, &messages.WsMessage{JSON: socket.AppendErrorFrame(nil, p.ref, codeOutcomeUnknown,
			"no answer in time: the message may have been stored (and is then delivered); send it again with the same key, which stores it at most once")})
	case p.from != nil && tooBig:
		ctx.Send(p.from, &messages.WsMessage{JSON: socket.AppendErrorFrame(nil, p.ref, codeTooBig,
			"the message is too big for the cluster: it was not sent")})
	case p.from != nil:
		ctx.Send(p.from, &messages.WsMessage{JSON: socket.AppendErrorFrame(nil, p.ref, codeUnavailable,
			"the cluster is unavailable: this message may not have been stored (if it was, every member gets it); send it again later")})
	default:
		// The text protocol has no error frame: the frame is dropped,
		// and counted.
		r.stats.ClusterDropped.Add(1)
	}
}

// resolveAcks answers the stored messages that have been delivered here.
func (r *room) resolveAcks(ctx actor.Context) {
	if !r.following {
		return
	}
	n := 0
	for _, p := range r.acks {
		if p.seq > r.seq {
			break
		}
		n++
		r.answerStored(ctx, p)
	}
	if n > 0 {
		clear(r.acks[:n])
		r.acks = slices.Delete(r.acks, 0, n)
		r.checkIdle(ctx)
	}
}

// answerStored tells a publish's sender that its message is stored.
func (r *room) answerStored(ctx actor.Context, p *pendingPublish) {
	switch {
	case p.requester != nil && p.dup:
		ctx.Send(p.requester, &messages.Published{Seq: p.seq, Duplicate: true})
	case p.requester != nil:
		ctx.Send(p.requester, &messages.Published{Delivered: r.members.len(), Seq: p.seq})
	case p.from != nil && p.ref != nil:
		ctx.Send(p.from, &messages.WsMessage{JSON: appendV1Ack(nil, p.ref, r.name, p.seq, p.dup)})
	}
}

// join adds a member. A lobby.v1 member asking to recover gets, in
// order, its welcome, the messages after since (read from the stream up
// to the last one delivered here when it joined) and then every later
// one, which wait for it meanwhile: no gap, no duplicate.
func (r *room) join(ctx actor.Context, m *messages.Connect) {
	if r.members.get(m.ID) != nil {
		return
	}
	r.announce(ctx, "joined", m.ID, m.Name)
	r.members.add(member{id: m.ID, pid: m.Session, protocol: m.Protocol})
	if m.Name != "" {
		if r.names == nil {
			r.names = make(map[uuid.UUID]string)
		}
		r.names[m.ID] = m.Name
	}
	r.speakers.count(m.Protocol, 1)
	ctx.Send(m.Session, &messages.Joined{Room: ctx.Self(), Name: r.name})
	if m.Protocol != messages.ProtocolJSON {
		return
	}
	switch {
	case !m.Recover || m.Epoch != r.epoch:
		ctx.Send(m.Session, &messages.WsMessage{JSON: appendV1Welcome(nil, m.Ref, m.ID, r.name, r.epoch, r.seq, r.memberIDs(), r.memberNames(), false)})
	case m.Since == r.seq:
		ctx.Send(m.Session, &messages.WsMessage{JSON: appendV1Welcome(nil, m.Ref, m.ID, r.name, r.epoch, r.seq, r.memberIDs(), r.memberNames(), true)})
	case m.Since < r.seq && r.replay.Over(int(min(r.seq-m.Since, math.MaxInt32)), 0):
		// More than a replay may hold while its client reads it: it
		// refetches instead.
		r.stats.ReplaysTooLong.Add(1)
		ctx.Send(m.Session, &messages.WsMessage{JSON: appendV1Welcome(nil, m.Ref, m.ID, r.name, r.epoch, r.seq, r.memberIDs(), r.memberNames(), false)})
	default:
		r.members.get(m.ID).rec = &recovery{since: m.Since, upto: r.seq, members: r.memberIDs(), names: r.memberNames(), ref: m.Ref}
		r.inflight++
		root, self, id := ctx.ActorSystem().Root, ctx.Self(), m.ID
		in := &inline{}
		r.broker.Replay(r.name, m.Since, r.seq, r.replay, func(res broker.ReadResult) {
			in.answer(root, self, &roomRead{member: id, res: res})
		})
		if rr, ok := in.returned().(*roomRead); ok {
			r.recovered(ctx, rr)
		}
	}
}

// recovered completes a recovering member's join with what was read.
func (r *room) recovered(ctx actor.Context, m *roomRead) {
	r.inflight--
	defer r.checkIdle(ctx)
	mb := r.members.get(m.member)
	if mb == nil || mb.rec == nil {
		return
	}
	rec := mb.rec
	mb.rec = nil
	if rec.closed {
		return // closed for holding too much: it reconnects
	}
	res := m.res
	ok := res.Err == nil && res.Complete && rec.since <= res.Last
	seq := rec.upto
	if ok && rec.since > seq {
		// The member saw messages that this node has yet to deliver.
		seq, mb.skip = rec.since, rec.since
	}
	// One message for all of it: the session sends it as its client
	// reads it (replay), not at once past its queue's bound.
	frames := make([]*messages.WsMessage, 0, 1+len(res.Messages)+len(rec.held))
	frames = append(frames, &messages.WsMessage{JSON: appendV1Welcome(nil, rec.ref, mb.id, r.name, r.epoch, seq, rec.members, rec.names, ok)})
	if ok {
		for _, sm := range res.Messages {
			if sm.Seq > rec.since && sm.Seq <= rec.upto {
				e := entry{seq: sm.Seq, at: sm.At, id: sm.From, msg: sm.Msg}
				frames = append(frames, &messages.WsMessage{JSON: e.jsonFrame(r.name)})
			}
		}
	}
	for _, h := range rec.held {
		if h.seq == 0 || h.seq > mb.skip {
			frames = append(frames, h.frame)
		}
	}
	ctx.Send(mb.pid, &replay{frames: frames})
}

func (r *room) leave(ctx actor.Context, id uuid.UUID) {
	gone, ok := r.members.remove(id)
	if !ok {
		for j, c := range r.waiting {
			if c.ID == id {
				r.waiting = slices.Delete(r.waiting, j, j+1)
				break
			}
		}
		r.checkIdle(ctx)
		return
	}
	r.speakers.count(gone.protocol, -1)
	name := r.names[id]
	delete(r.names, id)
	r.announce(ctx, "left", id, name)
	r.checkIdle(ctx)
}

// announce tells the members here, and the residents, that id (called
// name, or "") joined or left.
func (r *room) announce(ctx actor.Context, kind string, id uuid.UUID, name string) {
	if len(r.residents) > 0 {
		if kind == "joined" {
			r.tellResidents(ctx, &messages.MemberJoined{Room: r.name, ID: id})
		} else {
			r.tellResidents(ctx, &messages.MemberLeft{Room: r.name, ID: id})
		}
	}
	if r.members.len() == 0 {
		return
	}
	frame := r.speakers.presenceFrame(kind, id, r.name, name)
	if frame.JSON != nil {
		w := &r.presence
		if !w.open {
			w.open = true
			socket.WakeAfter(ctx, &w.timer, w.length, &presenceOver{})
		}
		w.sent++
		if w.sent > presenceBurst {
			// Held for lobby.v1 members (flushPresence). Text members,
			// whose protocol has no member list, get every notice as the
			// seed sends them.
			if !w.snapshot {
				w.held = append(w.held, &messages.WsMessage{JSON: frame.JSON})
				if len(w.held) >= presenceSnapshotAt(r.members.len()+r.remote.len()) {
					clear(w.held)
					w.held, w.snapshot = w.held[:0], true
				}
			}
			frame.JSON = nil
			if frame.Data == nil {
				return
			}
		}
	}
	r.sendAll(ctx, 0, frame)
}

// flushPresence sends the lobby.v1 members the joins and leaves held in
// the window, or the members frame (without ref) that stands for them:
// the room's list, whatever each member saw.
func (r *room) flushPresence(ctx actor.Context) {
	w := &r.presence
	if w.snapshot {
		w.snapshot = false
		if r.speakers.json > 0 {
			r.sendAll(ctx, 0, &messages.WsMessage{JSON: appendV1Members(nil, nil, r.name, r.memberIDs(), r.memberNames())})
		}
		return
	}
	for i, f := range w.held {
		r.sendAll(ctx, 0, f)
		w.held[i] = nil
	}
	w.held = w.held[:0]
}

// sendAll hands frame (a message's, with its seq, or 0) to every member
// whose protocol it has a payload for.
func (r *room) sendAll(ctx actor.Context, seq uint64, frame *messages.WsMessage) {
	for mb := range r.members.all() {
		r.sendTo(ctx, mb, seq, frame)
	}
}

// sendTo is sendAll for one member.
func (r *room) sendTo(ctx actor.Context, mb *member, seq uint64, frame *messages.WsMessage) {
	if mb.protocol == messages.ProtocolJSON && frame.JSON == nil || mb.protocol != messages.ProtocolJSON && frame.Data == nil {
		return
	}
	switch {
	case mb.rec != nil:
		if mb.rec.closed {
			return
		}
		if len(mb.rec.held) == maxHeldFrames {
			ctx.Send(mb.pid, &messages.Close{Reason: recoveryTooSlow})
			mb.rec.closed, mb.rec.held = true, nil
			return
		}
		mb.rec.held = append(mb.rec.held, heldFrame{seq: seq, frame: frame})
	case seq != 0 && seq <= mb.skip:
	default:
		ctx.Send(mb.pid, frame)
	}
}

// spawnResidents starts the residents that live in this room, each told
// where the room stands.
func (r *room) spawnResidents(ctx actor.Context) {
	r.residents = []*actor.PID{}
	for _, k := range r.residentKinds {
		if k.In != nil && !k.In(r.name) {
			continue
		}
		env := ResidentEnv{Room: r.name, ID: uuid.New(), Log: r.log.With(slog.String("resident", k.Name), slog.String("room", r.name))}
		pid := ctx.SpawnPrefix(actor.PropsFromProducer(func() actor.Actor { return k.New(env) }), "resident-"+k.Name)
		ctx.Send(pid, &messages.RoomWelcome{Room: r.name, Epoch: r.epoch, Seq: r.seq, Members: r.memberIDs()})
		r.residents = append(r.residents, pid)
		r.residentIDs = append(r.residentIDs, env.ID)
	}
}

// stopResident is the rooms' supervisor strategy, which protoactor applies
// to their children: a resident that panics is stopped, and the room goes
// on without it until the room is spawned anew. Restarted, it would come
// back under the same id with no welcome.
var stopResident = actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.StopDirective })

func (r *room) tellResidents(ctx actor.Context, msg any) {
	for _, pid := range r.residents {
		ctx.Send(pid, msg)
	}
}

func (r *room) memberIDs() []uuid.UUID {
	ids := make([]uuid.UUID, 0, r.members.len()+r.remote.len())
	return r.remote.appendIDs(r.members.appendIDs(ids))
}

// memberNames are the names of the members here that have one, in join
// order; nil when none has.
func (r *room) memberNames() []memberName {
	if len(r.names) == 0 {
		return nil
	}
	names := make([]memberName, 0, len(r.names))
	for mb := range r.members.all() {
		if name, ok := r.names[mb.id]; ok {
			names = append(names, memberName{id: mb.id, name: name})
		}
	}
	return names
}

func (r *room) idle() bool {
	return r.members.len() == 0 && len(r.waiting) == 0 && r.inflight == 0 && len(r.acks) == 0
}

// lingerOver asks the broker, once the room has lingered idle, whether it
// holds the room's history: a room lives while its history does.
func (r *room) lingerOver(ctx actor.Context) {
	if !r.idle() {
		return
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	in := &inline{}
	r.broker.Read(r.name, math.MaxUint64, 0, func(res broker.ReadResult) { in.answer(root, self, &heldRead{res: res}) })
	if m, ok := in.returned().(*heldRead); ok {
		r.held(ctx, m.res)
	}
}

// held tells the lobby that the room is idle, or lingers until its
// history expires.
func (r *room) held(ctx actor.Context, res broker.ReadResult) {
	if !r.idle() {
		return
	}
	if res.Err == nil && res.Held > 0 {
		socket.WakeAfter(ctx, &r.linger, max(time.Until(res.HeldUntil), 0)+time.Millisecond, &lingerOver{})
		ctx.Send(ctx.Parent(), &roomHolding{room: r.name, pid: ctx.Self(), published: r.published})
		return
	}
	ctx.Send(ctx.Parent(), &roomIdle{room: r.name, pid: ctx.Self(), published: r.published})
}

// checkIdle starts the room's linger when it has nothing left to do here;
// the lobby (its parent) is told when the linger is over and the room
// still idle. A timer that fires early, after a join and a leave, only
// shortens the linger: the lobby's check makes stopping safe at any time.
func (r *room) checkIdle(ctx actor.Context) {
	if !r.idle() {
		return
	}
	socket.WakeAfter(ctx, &r.linger, EmptyRoomLinger, &lingerOver{})
}
