package actors

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/messages"
)

// bridge is a clustered node's one actor that talks to its Broker: it
// connects the node's rooms to their streams (follow, append, read),
// tells the other nodes who joins and leaves here and keeps the lobby
// told of who is where else (presence.go), and carries direct messages to
// sessions on other nodes.
//
// Whatever needs the network, the broker does on its own goroutines; the
// bridge only queues work and passes answers on as messages. Stream
// deliveries go from the broker's goroutine straight to the room that
// follows the stream, without a hop through the bridge's mailbox.
type bridge struct {
	broker Broker
	node   string // this node's id in presence and subjects
	lobby  *actor.PID
	log    *slog.Logger
	epoch  string
	root   *actor.RootContext
	self   *actor.PID

	// follows are the rooms' follows, by room PID id.
	follows map[string]*followed
	unsubs  []func()

	presence presence

	// directs are the direct messages sent to other nodes and not yet
	// answered, by reply number.
	directs   map[uint64]*directWait
	nextReply uint64
}

// Subjects of the messages between bridges. Room messages go through the
// broker's stream, whose subjects are the broker's business.
const (
	subjectPresence = "lobby.presence"
	subjectSync     = "lobby.sync."   // + node: snapshot requests
	subjectSnapshot = "lobby.snap."   // + node: snapshot parts, the replies
	subjectDirect   = "lobby.direct." // + node: direct messages
	subjectReply    = "lobby.reply."  // + node + "." + n: their answers
)

// directTimeout bounds the wait for another node's answer to a direct
// message; past it the sender is told the cluster is unavailable.
const directTimeout = 3 * time.Second

// Messages between the bridge, the lobby and the rooms.
type (
	// localJoin and localLeave tell the bridge of a member joining or
	// leaving a room on this node. Lobby → bridge.
	localJoin struct {
		room string
		id   uuid.UUID
	}
	localLeave struct {
		room string
		id   uuid.UUID
	}
	// remoteJoin and remoteLeave tell the lobby, and the lobby the room,
	// of a member joining or leaving a room on another node.
	// Bridge → lobby → room.
	remoteJoin struct {
		room string
		id   uuid.UUID
	}
	remoteLeave struct {
		room string
		id   uuid.UUID
	}
	// localDirect is a direct message from another node, for a session
	// of this node only. Bridge → lobby, answered with DirectResult.
	localDirect struct{ msg *messages.DirectMessage }

	// followRoom asks the bridge to deliver room's stream to pid, a
	// clusterRoom, as followStarted then streamMessage; unfollowRoom
	// stops that. Room → bridge.
	followRoom struct {
		room string
		pid  *actor.PID
	}
	unfollowRoom struct{ pid *actor.PID }
	// followStarted gives a room its stream's last seq and epoch, before
	// any streamMessage. Broker → room.
	followStarted struct {
		last  uint64
		epoch string
	}
	// followLost tells a room that its stream was made anew (its epoch
	// changed): what it delivered is gone, and a new follow starts.
	// Bridge → room.
	followLost struct{}
	// epochChanged tells the bridge, and the bridge the lobby, that the
	// stream was made anew. Broker → bridge → lobby.
	epochChanged struct{ epoch string }
	// streamMessage is one message of a room's stream. Broker → room.
	streamMessage struct{ StreamMessage }

	// appendMessage asks the bridge to store a room message; the room
	// gets appended back with p. Room → bridge.
	appendMessage struct {
		room string
		from uuid.UUID
		msg  json.RawMessage
		p    *pendingPublish
	}
	// appended says whether a message was stored, and its seq.
	// Broker → room.
	appended struct {
		seq uint64
		err error
		p   *pendingPublish
	}
	// readRoom asks for a room's messages after since, up to upto, for a
	// recovering member. Room → bridge; answered roomRead.
	readRoom struct {
		room        string
		after, upto uint64
		member      uuid.UUID
	}
	roomRead struct {
		member uuid.UUID
		res    ReadResult
	}
	// roomQuery asks the bridge for a room this node does not follow,
	// answered RoomInfo to the sender; historyQuery for any room's
	// history, answered History. Lobby → bridge (the sender is the
	// transport's request).
	roomQuery struct {
		room    string
		members []uuid.UUID
	}
	historyQuery struct {
		room  string
		since uint64
		// known is true when the room has members somewhere: it exists
		// even with no message stored.
		known bool
	}

	// Inside the bridge.
	brokerState     struct{ up bool }
	presenceTick    struct{}
	presenceFlush   struct{}
	presenceIn      struct{ msg *presenceMsg }
	snapshotRequest struct{ reply string }
	directReply     struct {
		n         uint64
		delivered bool
	}
	directExpired struct{ n uint64 }
)

// followed is one room's follow of its stream.
type followed struct {
	room string
	pid  *actor.PID
	stop func()
}

// directWait is a direct message waiting for the other node's answer.
type directWait struct {
	sender, from *actor.PID
	ref          json.RawMessage
	timer        *time.Timer
}

func newBridge(broker Broker, lobby *actor.PID, log *slog.Logger, cfg presenceConfig) *bridge {
	node := uuid.NewString()
	return &bridge{
		broker:   broker,
		node:     node,
		lobby:    lobby,
		log:      log,
		epoch:    broker.Epoch(),
		follows:  make(map[string]*followed),
		directs:  make(map[uint64]*directWait),
		presence: newPresence(node, cfg),
	}
}

func (b *bridge) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *followRoom:
		f := &followed{room: m.room, pid: m.pid}
		b.follow(f)
		b.follows[m.pid.Id] = f
	case *unfollowRoom:
		if f, ok := b.follows[m.pid.Id]; ok {
			delete(b.follows, m.pid.Id)
			f.stop()
		}
	case *epochChanged:
		b.epochChanged(ctx, m)
	case *appendMessage:
		root, pid, p := b.root, ctx.Sender(), m.p
		b.broker.Append(m.room, m.from, m.msg, func(seq uint64, err error) {
			root.Send(pid, &appended{seq: seq, err: err, p: p})
		})
	case *readRoom:
		root, pid, member := b.root, ctx.Sender(), m.member
		b.broker.Read(m.room, m.after, m.upto, func(res ReadResult) {
			root.Send(pid, &roomRead{member: member, res: res})
		})
	case *roomQuery:
		root, sender, broker := b.root, ctx.Sender(), b.broker
		b.broker.Read(m.room, math.MaxUint64, 0, func(res ReadResult) {
			epoch := broker.Epoch()
			if res.Err != nil && len(m.members) == 0 {
				root.Send(sender, res.Err)
				return
			}
			root.Send(sender, &messages.RoomInfo{Found: res.Last > 0 || len(m.members) > 0, Room: m.room,
				Members: m.members, Seq: res.Last, Epoch: epoch})
		})
	case *historyQuery:
		b.history(ctx, m)
	case *messages.DirectMessage:
		b.direct(ctx, m)
	case *directReply:
		b.answerDirect(m.n, &messages.DirectResult{Delivered: m.delivered})
	case *directExpired:
		b.answerDirect(m.n, &messages.DirectResult{Unavailable: true})
	case *localJoin, *localLeave, *presenceIn, *snapshotRequest, *presenceTick, *presenceFlush:
		b.presence.receive(b.env(ctx), m)
	case *brokerState:
		b.presence.receive(b.env(ctx), m)
	case *actor.Started:
		b.root, b.self = ctx.ActorSystem().Root, ctx.Self()
		b.start(ctx)
	case *actor.Stopping:
		b.presence.stop(b.env(ctx))
		for _, f := range b.follows {
			f.stop()
		}
		clear(b.follows)
		for _, unsub := range b.unsubs {
			unsub()
		}
		for n := range b.directs {
			b.answerDirect(n, &messages.DirectResult{Unavailable: true})
		}
	}
}

// env is what the presence logic may do: publish through the broker and
// tell the lobby.
func (b *bridge) env(ctx actor.Context) presenceEnv {
	return presenceEnv{
		publish: b.broker.Publish,
		tell:    func(msg any) { ctx.Send(b.lobby, msg) },
		after: func(d time.Duration, msg any) *time.Timer {
			root, self := b.root, b.self
			return time.AfterFunc(d, func() { root.Send(self, msg) })
		},
		up: b.broker.Up,
	}
}

// start subscribes to what other nodes send this one, and says hello.
func (b *bridge) start(ctx actor.Context) {
	root, self, lobby := b.root, b.self, b.lobby
	subscribe := func(subject string, handle func(subject, reply string, data []byte)) {
		unsub, err := b.broker.Subscribe(subject, handle)
		if err != nil {
			// The broker keeps subscriptions across reconnects; an error
			// here is a bad subject, a bug.
			b.log.Error("cluster subscription failed", slog.String("subject", subject), slog.Any("err", err))
			return
		}
		b.unsubs = append(b.unsubs, unsub)
	}
	presenceHandler := func(_, _ string, data []byte) {
		var m presenceMsg
		if err := json.Unmarshal(data, &m); err != nil || m.Node == "" {
			return
		}
		root.Send(self, &presenceIn{msg: &m})
	}
	subscribe(subjectPresence, presenceHandler)
	subscribe(subjectSnapshot+b.node, presenceHandler)
	subscribe(subjectSync+b.node, func(_, reply string, _ []byte) {
		if reply != "" {
			root.Send(self, &snapshotRequest{reply: reply})
		}
	})
	// A direct message from another node: handed to the lobby, and the
	// sender told whether the session was here. This runs on the
	// subscription's goroutine, one message at a time (so that one
	// sender's direct messages keep their order), never in an actor.
	broker := b.broker
	subscribe(subjectDirect+b.node, func(_, reply string, data []byte) {
		dm, ok := decodeDirect(data)
		if !ok {
			return
		}
		delivered := false
		res, err := root.RequestFuture(lobby, &localDirect{msg: dm}, directTimeout).Result()
		if r, ok := res.(*messages.DirectResult); err == nil && ok {
			delivered = r.Delivered
		}
		if reply != "" {
			answer := []byte{'0'}
			if delivered {
				answer[0] = '1'
			}
			_ = broker.Publish(reply, "", answer)
		}
	})
	subscribe(subjectReply+b.node+".*", func(subject, _ string, data []byte) {
		n, err := strconv.ParseUint(subject[strings.LastIndexByte(subject, '.')+1:], 10, 64)
		if err != nil {
			return
		}
		root.Send(self, &directReply{n: n, delivered: len(data) == 1 && data[0] == '1'})
	})
	b.broker.Watch(func(up bool) { root.Send(self, &brokerState{up: up}) })
	b.broker.WatchEpoch(func(epoch string) { root.Send(self, &epochChanged{epoch: epoch}) })
	if epoch := b.broker.Epoch(); epoch != b.epoch {
		root.Send(self, &epochChanged{epoch: epoch}) // made anew before the watch
	}
	b.presence.start(b.env(ctx))
}

// follow starts f's follow of its room's stream, delivered to its room.
func (b *bridge) follow(f *followed) {
	pid, root, broker := f.pid, b.root, b.broker
	f.stop = b.broker.Follow(f.room,
		func(sm StreamMessage) { root.Send(pid, &streamMessage{sm}) },
		func(last uint64) { root.Send(pid, &followStarted{last: last, epoch: broker.Epoch()}) })
}

// epochChanged switches the node to a stream made anew: the lobby makes
// its new rooms in the new epoch, and every room followed here is told
// that its stream is lost and follows the new one from its start.
func (b *bridge) epochChanged(ctx actor.Context, m *epochChanged) {
	if m.epoch == b.epoch {
		return
	}
	if b.epoch != "" {
		b.log.Warn("the room stream was made anew: rooms restart under the new epoch",
			slog.String("old_epoch", b.epoch), slog.String("epoch", m.epoch), slog.Int("rooms", len(b.follows)))
	}
	first := b.epoch == ""
	b.epoch = m.epoch
	ctx.Send(b.lobby, m)
	if first {
		// The node started without NATS: its follows are still trying
		// to start, and will start in this epoch.
		return
	}
	for _, f := range b.follows {
		f.stop()
		ctx.Send(f.pid, &followLost{})
		b.follow(f)
	}
}

// history answers GET /rooms/{room}/history from the stream, the same on
// every node.
func (b *bridge) history(ctx actor.Context, m *historyQuery) {
	root, sender, broker := b.root, ctx.Sender(), b.broker
	b.broker.Read(m.room, m.since, 0, func(res ReadResult) {
		epoch := broker.Epoch()
		if res.Err != nil {
			root.Send(sender, res.Err)
			return
		}
		h := &messages.History{Found: res.Last > 0 || m.known, Epoch: epoch, Seq: res.Last, Complete: res.Complete,
			Entries: make([]messages.HistoryEntry, len(res.Messages))}
		for i, e := range res.Messages {
			h.Entries[i] = messages.HistoryEntry{Seq: e.Seq, ID: e.From, Msg: e.Msg}
		}
		root.Send(sender, h)
	})
}

// direct sends a direct message to the node that has its session, as the
// lobby forwarded it: the session is not on this node.
func (b *bridge) direct(ctx actor.Context, m *messages.DirectMessage) {
	w := &directWait{sender: ctx.Sender(), from: m.From, ref: m.Ref}
	node, ok := b.presence.where[m.To]
	b.nextReply++
	n := b.nextReply
	b.directs[n] = w
	if !ok {
		b.answerDirect(n, &messages.DirectResult{})
		return
	}
	err := b.broker.Publish(subjectDirect+node, subjectReply+b.node+"."+strconv.FormatUint(n, 10), encodeDirect(m))
	if err != nil {
		tooBig := errors.Is(err, ErrTooBig)
		b.answerDirect(n, &messages.DirectResult{Unavailable: !tooBig, TooBig: tooBig})
		return
	}
	root, self := b.root, b.self
	w.timer = time.AfterFunc(directTimeout, func() { root.Send(self, &directExpired{n: n}) })
}

// answerDirect tells a direct message's sender (an HTTP request, or the
// sending session) what became of it.
func (b *bridge) answerDirect(n uint64, res *messages.DirectResult) {
	w, ok := b.directs[n]
	if !ok {
		return
	}
	delete(b.directs, n)
	if w.timer != nil {
		w.timer.Stop()
	}
	res.Ref = w.ref
	switch {
	case w.sender != nil:
		b.root.Send(w.sender, res)
	case w.from != nil:
		b.root.Send(w.from, res)
	}
}

// encodeDirect is a direct message between nodes: the sender's id, the
// recipient's, then the message.
func encodeDirect(m *messages.DirectMessage) []byte {
	b := make([]byte, 0, 32+len(m.Msg))
	b = append(b, m.ID[:]...)
	b = append(b, m.To[:]...)
	return append(b, m.Msg...)
}

func decodeDirect(data []byte) (*messages.DirectMessage, bool) {
	if len(data) < 33 || !json.Valid(data[32:]) {
		return nil, false
	}
	m := &messages.DirectMessage{Msg: data[32:]}
	copy(m.ID[:], data[:16])
	copy(m.To[:], data[16:32])
	return m, true
}
