package chat

import (
	"bytes"
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
)

// roster is the bridge's view of who is where: the members of this
// node, which it announces, and those of every other node, which it
// learns. It is part of the bridge actor's state.
//
// The protocol, on plain NATS subjects (nothing stored):
//
//   - A node publishes its members' joins and leaves on lobby.presence
//     in batches (at most one per flush interval), each batch numbered
//     with the node's next presence seq.
//   - Every interval it publishes a heartbeat with its last seq. A node
//     that starts, or gets its connection back, says hello, and every
//     node answers with a heartbeat at once.
//   - A node that sees another's batch out of order, a heartbeat whose
//     seq is not the last it applied, or a node it does not know, asks
//     that node for a snapshot (lobby.sync.<node>, answered in parts on
//     lobby.snap.<asker>), applies the difference, then the batches it
//     held meanwhile.
//   - A node that has not been heard for the timeout is gone: its
//     members have left. A node that stops cleanly says bye. While this
//     node's own connection is down it judges nobody, and after it
//     comes back it gives every node a full timeout again.
//   - Every probe interval a node sends each other node an empty message
//     on its direct subject, which a node ignores, with a reply subject
//     of its own: when nobody subscribes to it, the NATS server answers
//     at once that there are no responders. A node whose subject has had
//     no subscriber, probe after probe, for the absence time (its process
//     killed, its NATS connection gone, 1.5 s) is gone too, without
//     waiting out the timeout: the clients it had, which reconnect to
//     other nodes as new sessions, are not listed twice for that long.
type roster struct {
	node string
	cfg  rosterConfig

	// local are this node's members, session id → rooms (a lobby.v1
	// session may be in many).
	local memberRooms
	// seq numbers this node's batches; ops wait for the next flush.
	seq        uint64
	ops        []rosterOp
	flushTimer *time.Timer
	tickTimer  *time.Timer
	probeTimer *time.Timer

	nodes map[string]*remoteNode
	// where is the node of every member of another node.
	where map[uuid.UUID]string
}

type rosterConfig struct {
	// interval is how often a node heartbeats; timeout is how long a
	// node may stay silent before its members count as gone; flush is
	// how long joins and leaves wait to be batched; probe is how often
	// the other nodes' subjects are probed, and absent how long one may
	// have no subscriber before its node counts as gone.
	interval, timeout, flush, probe, absent time.Duration
}

func (c rosterConfig) withDefaults() rosterConfig {
	if c.interval <= 0 {
		c.interval = 2 * time.Second
	}
	if c.timeout <= 0 {
		c.timeout = 4 * c.interval
	}
	if c.flush <= 0 {
		c.flush = 10 * time.Millisecond
	}
	if c.probe <= 0 {
		c.probe = c.interval / 4
	}
	if c.absent <= 0 {
		// Longer than nats.go takes to move a connection to another
		// server of a NATS cluster when one dies (about a second),
		// during which a live node's subject has no subscriber either.
		c.absent = 3 * c.probe
	}
	return c
}

// rosterEnv is what presence may do besides changing its own state.
type rosterEnv struct {
	publish func(subject, reply string, data []byte) error
	// tell sends the lobby remoteJoin and remoteLeave.
	tell func(msg any)
	// after sends msg to the bridge after d.
	after func(d time.Duration, msg any) *time.Timer
	up    func() bool
}

// rosterMsg is every presence message between nodes.
type rosterMsg struct {
	Node string `json:"node"`
	Kind string `json:"kind"`
	// Seq is a batch's number, or for a heartbeat or snapshot the last
	// batch that its sender's state includes.
	Seq uint64     `json:"seq"`
	Ops []rosterOp `json:"ops,omitempty"`
	// Part (from 1) and Parts number a snapshot's parts; Rooms is a part's
	// members by room.
	Part  int                    `json:"part,omitempty"`
	Parts int                    `json:"parts,omitempty"`
	Rooms map[string][]uuid.UUID `json:"rooms,omitempty"`
}

// Kinds of rosterMsg.
const (
	kindOps       = "ops"
	kindHeartbeat = "hb"
	kindHello     = "hello"
	kindBye       = "bye"
	kindSnapshot  = "snap"
)

type rosterOp struct {
	Left bool      `json:"left,omitempty"`
	Room string    `json:"room"`
	ID   uuid.UUID `json:"id"`
}

// snapshotPart bounds the members of one snapshot part, to stay well
// under NATS's default 1 MiB payload.
const snapshotPart = 4000

// maxHeldBatches bounds the batches a node holds while it waits for a
// snapshot; past it they are dropped and the next heartbeat asks again.
const maxHeldBatches = 1000

// remoteNode is what this node knows of another.
type remoteNode struct {
	id      string
	seq     uint64
	seen    time.Time
	members memberRooms

	// absentSince is when a probe first found nobody subscribed to the
	// node's subject, since it was last heard; zero when none did.
	// lastAbsent is the latest such answer: answers more than two probe
	// intervals apart had a probe between them that found the node
	// there, so its absence counts again from the later one.
	absentSince, lastAbsent time.Time

	// syncing is set from a snapshot request until its last part.
	syncing   bool
	syncAsked time.Time
	held      []*rosterMsg
	snapSeq   uint64
	snapParts map[int]bool
	snap      memberRooms
}

// memberRooms are members by id, each with the rooms it is in, in the
// order it joined them.
type memberRooms map[uuid.UUID][]string

// add puts id in room, and reports whether it was not in it.
func (m memberRooms) add(id uuid.UUID, room string) bool {
	rooms := m[id]
	if slices.Contains(rooms, room) {
		return false
	}
	m[id] = append(rooms, room)
	return true
}

// remove takes id out of room, and reports whether it was in it.
func (m memberRooms) remove(id uuid.UUID, room string) bool {
	rooms := m[id]
	i := slices.Index(rooms, room)
	if i < 0 {
		return false
	}
	if len(rooms) == 1 {
		delete(m, id)
		return true
	}
	m[id] = slices.Delete(rooms, i, i+1)
	return true
}

// has reports whether id is in room.
func (m memberRooms) has(id uuid.UUID, room string) bool {
	return slices.Contains(m[id], room)
}

func newRoster(node string, cfg rosterConfig) roster {
	return roster{
		node:  node,
		cfg:   cfg.withDefaults(),
		local: make(memberRooms),
		nodes: make(map[string]*remoteNode),
		where: make(map[uuid.UUID]string),
	}
}

func (p *roster) start(env rosterEnv) {
	p.send(env, &rosterMsg{Kind: kindHello})
	p.tickTimer = env.after(p.cfg.interval, &rosterTick{})
	p.probeTimer = env.after(p.cfg.probe, &rosterProbe{})
}

func (p *roster) stop(env rosterEnv) {
	if p.tickTimer != nil {
		p.tickTimer.Stop()
	}
	if p.flushTimer != nil {
		p.flushTimer.Stop()
	}
	if p.probeTimer != nil {
		p.probeTimer.Stop()
	}
	p.send(env, &rosterMsg{Kind: kindBye})
}

func (p *roster) receive(env rosterEnv, msg any) {
	switch m := msg.(type) {
	case *localJoin:
		if p.local.add(m.id, m.room) {
			p.queue(env, rosterOp{Room: m.room, ID: m.id})
		}
	case *localLeave:
		if p.local.remove(m.id, m.room) {
			p.queue(env, rosterOp{Left: true, Room: m.room, ID: m.id})
		}
	case *rosterFlush:
		p.flushTimer = nil
		p.flush(env)
	case *rosterTick:
		p.flush(env)
		p.send(env, &rosterMsg{Kind: kindHeartbeat})
		p.expire(env, time.Now())
		p.tickTimer = env.after(p.cfg.interval, &rosterTick{})
	case *rosterProbe:
		p.probe(env)
		p.probeTimer = env.after(p.cfg.probe, &rosterProbe{})
	case *probeAbsent:
		p.absent(env, m.node, time.Now())
	case *snapshotRequest:
		p.flush(env)
		p.snapshot(env, m.reply)
	case *brokerState:
		if m.up {
			// Nobody could be heard meanwhile: everyone gets a full
			// timeout from now, and is asked to say where they are.
			now := time.Now()
			for _, n := range p.nodes {
				n.seen, n.absentSince = now, time.Time{}
			}
			p.send(env, &rosterMsg{Kind: kindHello})
		}
	case *rosterIn:
		p.heard(env, m.msg)
	}
}

// send publishes one of this node's messages, with its current seq. A
// failure is left to the heartbeats to repair.
func (p *roster) send(env rosterEnv, m *rosterMsg) {
	m.Node, m.Seq = p.node, p.seq
	data, err := json.Marshal(m)
	if err != nil {
		return
	}
	_ = env.publish(subjectRoster, "", data)
}

func (p *roster) queue(env rosterEnv, op rosterOp) {
	p.ops = append(p.ops, op)
	if p.flushTimer == nil {
		p.flushTimer = env.after(p.cfg.flush, &rosterFlush{})
	}
}

// flush publishes the ops queued as the next batch. If the publish fails
// the seq is spent all the same: the others see the gap at the next
// heartbeat and ask for a snapshot.
func (p *roster) flush(env rosterEnv) {
	if len(p.ops) == 0 {
		return
	}
	p.seq++
	m := &rosterMsg{Node: p.node, Kind: kindOps, Seq: p.seq, Ops: p.ops}
	p.ops = nil
	if data, err := json.Marshal(m); err == nil {
		_ = env.publish(subjectRoster, "", data)
	}
}

// snapshot answers a snapshot request with this node's members, in parts.
func (p *roster) snapshot(env rosterEnv, reply string) {
	var parts []map[string][]uuid.UUID
	cur, n := map[string][]uuid.UUID{}, 0
	// In id order, not the map's: two requests at the same seq get the
	// same parts, so that a node that asked twice and gets parts of both
	// puts together the whole snapshot.
	ids := slices.SortedFunc(maps.Keys(p.local), func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range ids {
		for _, room := range p.local[id] {
			if n == snapshotPart {
				parts, cur, n = append(parts, cur), map[string][]uuid.UUID{}, 0
			}
			cur[room] = append(cur[room], id)
			n++
		}
	}
	parts = append(parts, cur)
	for i, rooms := range parts {
		data, err := json.Marshal(&rosterMsg{Node: p.node, Kind: kindSnapshot, Seq: p.seq, Part: i + 1, Parts: len(parts), Rooms: rooms})
		if err != nil {
			return
		}
		if env.publish(reply, "", data) != nil {
			return
		}
	}
}

// heard handles a message from another node.
func (p *roster) heard(env rosterEnv, m *rosterMsg) {
	if m.Node == p.node {
		return
	}
	n := p.nodes[m.Node]
	if n == nil {
		if m.Kind == kindBye {
			return
		}
		n = &remoteNode{id: m.Node, members: make(memberRooms)}
		p.nodes[m.Node] = n
		p.sync(env, n)
	}
	n.seen, n.absentSince = time.Now(), time.Time{}
	switch m.Kind {
	case kindBye:
		p.drop(env, n)
	case kindHello, kindHeartbeat:
		if m.Kind == kindHello {
			p.send(env, &rosterMsg{Kind: kindHeartbeat})
		}
		if n.syncing && time.Since(n.syncAsked) > p.cfg.interval || !n.syncing && m.Seq != n.seq {
			p.sync(env, n)
		}
	case kindOps:
		switch {
		case n.syncing:
			if len(n.held) < maxHeldBatches {
				n.held = append(n.held, m)
			}
		case m.Seq <= n.seq:
		case m.Seq == n.seq+1:
			p.apply(env, n, m.Ops)
			n.seq = m.Seq
		default:
			n.held = append(n.held, m)
			p.sync(env, n)
		}
	case kindSnapshot:
		p.snapshotPart(env, n, m)
	}
}

func (p *roster) sync(env rosterEnv, n *remoteNode) {
	n.syncing, n.syncAsked = true, time.Now()
	n.snap, n.snapParts = nil, nil
	_ = env.publish(subjectSync+n.id, subjectSnapshot+p.node, nil)
}

func (p *roster) snapshotPart(env rosterEnv, n *remoteNode, m *rosterMsg) {
	if !n.syncing || m.Part < 1 || m.Part > m.Parts {
		return
	}
	if n.snap == nil || m.Seq != n.snapSeq {
		n.snap, n.snapSeq, n.snapParts = make(memberRooms), m.Seq, make(map[int]bool)
	}
	if n.snapParts[m.Part] {
		return
	}
	n.snapParts[m.Part] = true
	for room, ids := range m.Rooms {
		for _, id := range ids {
			n.snap.add(id, room)
		}
	}
	if len(n.snapParts) < m.Parts {
		return
	}
	// The snapshot is whole: tell the lobby the difference, then apply
	// the batches that came after it.
	var gone, came []rosterOp
	for id, rooms := range n.members {
		for _, room := range rooms {
			if !n.snap.has(id, room) {
				gone = append(gone, rosterOp{Left: true, Room: room, ID: id})
			}
		}
	}
	for id, rooms := range n.snap {
		for _, room := range rooms {
			if !n.members.has(id, room) {
				came = append(came, rosterOp{Room: room, ID: id})
			}
		}
	}
	p.apply(env, n, gone)
	p.apply(env, n, came)
	n.seq, n.syncing, n.snap, n.snapParts = n.snapSeq, false, nil, nil
	held := n.held
	n.held = nil
	slices.SortFunc(held, func(a, b *rosterMsg) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, h := range held {
		switch {
		case h.Seq <= n.seq:
		case h.Seq == n.seq+1:
			p.apply(env, n, h.Ops)
			n.seq = h.Seq
		default:
			p.sync(env, n)
			return
		}
	}
}

// apply applies another node's ops and tells the lobby what changed.
func (p *roster) apply(env rosterEnv, n *remoteNode, ops []rosterOp) {
	for _, op := range ops {
		if op.Left {
			if !n.members.remove(op.ID, op.Room) {
				continue
			}
			if _, still := n.members[op.ID]; !still && p.where[op.ID] == n.id {
				delete(p.where, op.ID)
			}
			if op.Room != noRoom {
				env.tell(&remoteLeave{room: op.Room, id: op.ID})
			}
			continue
		}
		if !n.members.add(op.ID, op.Room) {
			continue
		}
		p.where[op.ID] = n.id
		if op.Room != noRoom {
			// A session in no room is only where to send its direct
			// messages: no room has it.
			env.tell(&remoteJoin{room: op.Room, id: op.ID})
		}
	}
}

// probe asks the NATS server whether each other node's direct subject
// has a subscriber: a message it does not answer, with a reply subject
// of this node's, which the server answers (no responders) when nobody
// takes it (probeAbsent).
func (p *roster) probe(env rosterEnv) {
	if !env.up() {
		return
	}
	for id := range p.nodes {
		_ = env.publish(subjectDirect+id, subjectProbe+p.node+"."+id, nil)
	}
}

// absent handles the NATS server's word that nobody took a probe of
// node's subject: a node absent on probes for the absence time, and not
// heard meanwhile, is gone.
func (p *roster) absent(env rosterEnv, node string, now time.Time) {
	n := p.nodes[node]
	if n == nil || !env.up() {
		return
	}
	last := n.lastAbsent
	n.lastAbsent = now
	if n.absentSince.IsZero() || now.Sub(last) > 2*p.cfg.probe {
		// Two short blips (a connection moving twice) are not one
		// absence of their sum.
		n.absentSince = now
		return
	}
	if now.Sub(n.absentSince) >= p.cfg.absent {
		p.drop(env, n)
	}
}

// expire forgets the nodes not heard for the timeout, unless this node
// is itself cut off.
func (p *roster) expire(env rosterEnv, now time.Time) {
	if !env.up() {
		return
	}
	for _, n := range p.nodes {
		if now.Sub(n.seen) > p.cfg.timeout {
			p.drop(env, n)
		}
	}
}

// drop forgets a node: its members have left.
func (p *roster) drop(env rosterEnv, n *remoteNode) {
	var gone []rosterOp
	for id, rooms := range n.members {
		for _, room := range rooms {
			gone = append(gone, rosterOp{Left: true, Room: room, ID: id})
		}
	}
	p.apply(env, n, gone)
	delete(p.nodes, n.id)
}
