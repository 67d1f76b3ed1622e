package actors

import (
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/messages"
)

// clusterRoom is a room on a clustered node (Config.Broker set): the room
// actor of this node for a room whose members may sit on any node. It
// keeps this node's members and knows the others' (from the lobby, from
// the bridge's presence), and it orders nothing itself: every broadcast
// and publish is appended to the room's stream through the bridge, and
// members here get the stream's messages as the room follows it, so that
// every member on every node sees the same messages in the same order.
// A message's seq is its stream sequence: strictly increasing, not
// contiguous. History is the stream's, read through the bridge.
//
// A sender's ack (and an HTTP publish's answer) waits until the stream
// has acknowledged the message and it has been delivered here: the sender
// sees its message, then the ack, as on a single node; a message whose
// store failed is answered unavailable.
type clusterRoom struct {
	name   string
	epoch  string
	bridge *actor.PID
	stats  *Stats

	// following is set once the stream's last seq is known; joins wait in
	// waiting until then, since a welcome must say where the member's
	// messages start.
	following bool
	waiting   []*messages.Connect
	// seq is the last stream message delivered here.
	seq uint64

	// members are this node's, in join order (see joinOrder).
	members  joinOrder[clusterMember]
	speakers speakers
	// remote are the members on other nodes, in the order learnt.
	remote joinOrder[remoteMember]

	// inflight counts appends not yet answered; acks holds the stored
	// ones waiting to be delivered here, by seq.
	inflight int
	acks     []*pendingPublish
	// published counts the publishes the lobby forwarded (see roomIdle).
	published uint64
	linger    *time.Timer
}

type clusterMember struct {
	id       uuid.UUID
	pid      *actor.PID
	protocol messages.Protocol
	// skip: messages with a seq up to it are not sent to this member; it
	// recovered up to there from another node ahead of this one.
	skip uint64
	// rec is set while the member's replay is being read.
	rec *recovery
}

func (m clusterMember) key() uuid.UUID { return m.id }

// remoteMember is a member on another node: all a room knows of it is its id.
type remoteMember uuid.UUID

func (m remoteMember) key() uuid.UUID { return uuid.UUID(m) }

// recovery is a lobby.v1 member's join with since, while its replay is
// read from the stream: frames for it wait in held.
type recovery struct {
	since, upto uint64
	members     []uuid.UUID
	held        []heldFrame
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
	// requester is an HTTP publish's request, answered Published.
	requester *actor.PID
	// from is the sending lobby.v1 session, acked if it gave a ref.
	from *actor.PID
	ref  json.RawMessage
}

func newClusterRoom(name, epoch string, bridge *actor.PID, remote []uuid.UUID, stats *Stats) *clusterRoom {
	r := &clusterRoom{name: name, epoch: epoch, bridge: bridge, stats: stats}
	for _, id := range remote {
		r.remote.add(remoteMember(id))
	}
	return r
}

func (r *clusterRoom) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *streamMessage:
		r.deliver(ctx, &m.StreamMessage)
	case *messages.BroadcastMessage:
		p := &pendingPublish{from: m.From, ref: m.Ref}
		if ctx.Sender() != nil {
			p.requester = ctx.Sender()
			r.published++
		}
		r.inflight++
		ctx.Request(r.bridge, &appendMessage{room: r.name, from: m.ID, msg: m.Msg, p: p})
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
	case *followStarted:
		if m.epoch != "" && m.epoch != r.epoch {
			// The stream was made anew: its seqs start again.
			r.epoch, r.seq = m.epoch, m.last
		}
		r.following, r.seq = true, max(r.seq, m.last)
		r.resolveAcks(ctx)
		waiting := r.waiting
		r.waiting = nil
		for _, c := range waiting {
			r.join(ctx, c)
		}
		r.checkIdle(ctx)
	case *followLost:
		r.followLost(ctx)
	case *roomRead:
		r.recovered(ctx, m)
	case *remoteJoin:
		if m.id == uuid.Nil || r.remote.get(m.id) != nil {
			return // a malformed presence message, or known already
		}
		r.presence(ctx, "joined", m.id)
		r.remote.add(remoteMember(m.id))
	case *remoteLeave:
		if _, ok := r.remote.remove(m.id); !ok {
			return
		}
		r.presence(ctx, "left", m.id)
	case *messages.GetMembers:
		ctx.Send(ctx.Sender(), &messages.WsMessage{JSON: appendV1Members(nil, m.Ref, r.memberIDs())})
	case *messages.GetRoom:
		ctx.Respond(&messages.RoomInfo{Found: true, Room: r.name, Seq: r.seq, Epoch: r.epoch, Members: r.memberIDs()})
	case *lingerOver:
		if r.idle() {
			ctx.Send(ctx.Parent(), &roomIdle{room: r.name, pid: ctx.Self(), published: r.published})
		}
	case *actor.Started:
		ctx.Send(r.bridge, &followRoom{room: r.name, pid: ctx.Self()})
	case *actor.Stopping:
		ctx.Send(r.bridge, &unfollowRoom{pid: ctx.Self()})
		if r.linger != nil {
			r.linger.Stop()
		}
	}
}

// deliver hands one stream message to every member here, once.
func (r *clusterRoom) deliver(ctx actor.Context, sm *StreamMessage) {
	if !r.following || sm.Seq <= r.seq {
		return // a follow that resumed may deliver a message again
	}
	r.seq = sm.Seq
	e := &entry{seq: sm.Seq, at: sm.At, id: sm.From, msg: sm.Msg}
	r.sendAll(ctx, sm.Seq, r.speakers.messageFrame(e, r.name))
	r.resolveAcks(ctx)
}

// followLost starts the room again in a stream made anew: what it
// delivered is gone, and its seqs start again under a new epoch (in the
// followStarted to come). Publishes waiting for their delivery are
// answered unavailable, and lobby.v1 members are closed, to reconnect:
// their seqs and epoch are of the lost stream, and they get
// recovered:false and the new epoch in their new welcome. Text members,
// who see no seq, stay.
func (r *clusterRoom) followLost(ctx actor.Context) {
	r.following = false
	for _, p := range r.acks {
		r.failed(ctx, p, ErrUnavailable)
	}
	clear(r.acks)
	r.acks = r.acks[:0]
	for mb := range r.members.all() {
		if mb.protocol == messages.ProtocolJSON {
			mb.rec = nil
			ctx.Send(mb.pid, &messages.Close{Code: CloseTryAgainLater, Reason: "room stream made anew"})
		}
	}
	r.checkIdle(ctx)
}

// appended is the stream's answer to one of this room's appends.
func (r *clusterRoom) appended(ctx actor.Context, m *appended) {
	r.inflight--
	p := m.p
	if m.err != nil {
		r.failed(ctx, p, m.err)
		r.checkIdle(ctx)
		return
	}
	p.seq = m.seq
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
func (r *clusterRoom) failed(ctx actor.Context, p *pendingPublish, err error) {
	tooBig := errors.Is(err, ErrTooBig)
	switch {
	case p.requester != nil:
		ctx.Send(p.requester, &messages.Published{Unavailable: !tooBig, TooBig: tooBig})
	case p.from != nil && tooBig:
		ctx.Send(p.from, &messages.WsMessage{JSON: appendV1Error(nil, p.ref, codeTooBig,
			"the message is too big for the cluster: it was not sent")})
	case p.from != nil:
		ctx.Send(p.from, &messages.WsMessage{JSON: appendV1Error(nil, p.ref, codeUnavailable,
			"the cluster is unavailable: this message may not have been stored (if it was, every member gets it); send it again later")})
	default:
		// The text protocol has no error frame: the frame is dropped,
		// and counted.
		r.stats.ClusterDropped.Add(1)
	}
}

// resolveAcks answers the stored messages that have been delivered here.
func (r *clusterRoom) resolveAcks(ctx actor.Context) {
	if !r.following {
		return
	}
	n := 0
	for _, p := range r.acks {
		if p.seq > r.seq {
			break
		}
		n++
		switch {
		case p.requester != nil:
			ctx.Send(p.requester, &messages.Published{Delivered: r.members.len(), Seq: p.seq})
		case p.from != nil && p.ref != nil:
			ctx.Send(p.from, &messages.WsMessage{JSON: appendV1Ack(nil, p.ref, p.seq)})
		}
	}
	if n > 0 {
		clear(r.acks[:n])
		r.acks = slices.Delete(r.acks, 0, n)
		r.checkIdle(ctx)
	}
}

// join adds a member. A lobby.v1 member asking to recover gets, in
// order, its welcome, the messages after since (read from the stream up
// to the last one delivered here when it joined) and then every later
// one, which wait for it meanwhile: no gap, no duplicate.
func (r *clusterRoom) join(ctx actor.Context, m *messages.Connect) {
	if r.members.get(m.ID) != nil {
		return
	}
	r.presence(ctx, "joined", m.ID)
	r.members.add(clusterMember{id: m.ID, pid: m.Session, protocol: m.Protocol})
	r.speakers.count(m.Protocol, 1)
	ctx.Send(m.Session, &messages.Joined{Room: ctx.Self()})
	if m.Protocol != messages.ProtocolJSON {
		return
	}
	switch {
	case !m.Recover || m.Epoch != r.epoch:
		ctx.Send(m.Session, &messages.WsMessage{JSON: appendV1Welcome(nil, m.ID, r.name, r.epoch, r.seq, r.memberIDs(), false)})
	case m.Since == r.seq:
		ctx.Send(m.Session, &messages.WsMessage{JSON: appendV1Welcome(nil, m.ID, r.name, r.epoch, r.seq, r.memberIDs(), true)})
	default:
		r.members.get(m.ID).rec = &recovery{since: m.Since, upto: r.seq, members: r.memberIDs()}
		ctx.Request(r.bridge, &readRoom{room: r.name, after: m.Since, upto: r.seq, member: m.ID})
	}
}

// recovered completes a recovering member's join with what was read.
func (r *clusterRoom) recovered(ctx actor.Context, m *roomRead) {
	mb := r.members.get(m.member)
	if mb == nil || mb.rec == nil {
		return
	}
	rec := mb.rec
	mb.rec = nil
	res := m.res
	ok := res.Err == nil && res.Complete && rec.since <= res.Last
	seq := rec.upto
	if ok && rec.since > seq {
		// The member saw messages that this node has yet to deliver.
		seq, mb.skip = rec.since, rec.since
	}
	ctx.Send(mb.pid, &messages.WsMessage{JSON: appendV1Welcome(nil, mb.id, r.name, r.epoch, seq, rec.members, ok)})
	if ok {
		for _, sm := range res.Messages {
			if sm.Seq > rec.since && sm.Seq <= rec.upto {
				e := entry{seq: sm.Seq, id: sm.From, msg: sm.Msg}
				ctx.Send(mb.pid, &messages.WsMessage{JSON: e.jsonFrame(r.name)})
			}
		}
	}
	for _, h := range rec.held {
		if h.seq == 0 || h.seq > mb.skip {
			ctx.Send(mb.pid, h.frame)
		}
	}
}

func (r *clusterRoom) leave(ctx actor.Context, id uuid.UUID) {
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
	r.presence(ctx, "left", id)
	r.checkIdle(ctx)
}

// presence tells the members here that id joined or left.
func (r *clusterRoom) presence(ctx actor.Context, kind string, id uuid.UUID) {
	if r.members.len() == 0 {
		return
	}
	r.sendAll(ctx, 0, r.speakers.presenceFrame(kind, id, r.name))
}

// sendAll hands frame (a message's, with its seq, or 0) to every member.
func (r *clusterRoom) sendAll(ctx actor.Context, seq uint64, frame *messages.WsMessage) {
	for mb := range r.members.all() {
		switch {
		case mb.rec != nil:
			if len(mb.rec.held) == maxHeldFrames {
				ctx.Send(mb.pid, &messages.Close{Code: CloseTryAgainLater, Reason: "recovery too slow"})
				continue
			}
			mb.rec.held = append(mb.rec.held, heldFrame{seq: seq, frame: frame})
		case seq != 0 && seq <= mb.skip:
		default:
			ctx.Send(mb.pid, frame)
		}
	}
}

func (r *clusterRoom) memberIDs() []uuid.UUID {
	ids := make([]uuid.UUID, 0, r.members.len()+r.remote.len())
	return r.remote.appendIDs(r.members.appendIDs(ids))
}

func (r *clusterRoom) idle() bool {
	return r.members.len() == 0 && len(r.waiting) == 0 && r.inflight == 0 && len(r.acks) == 0
}

// checkIdle starts the linger of a room with nothing left to do here; see
// room.checkIdle.
func (r *clusterRoom) checkIdle(ctx actor.Context) {
	if !r.idle() {
		return
	}
	wakeAfter(ctx, &r.linger, emptyRoomLinger, &lingerOver{})
}
