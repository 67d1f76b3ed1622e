package chat

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/actors/broker"
	"github.com/lobby/lobby/messages"
)

// bridge is a clustered node's actor for what passes between nodes other
// than room messages (which rooms append to and follow in the Broker
// themselves): it tells the other nodes who joins and leaves here and
// keeps the lobby told of who is where else (roster.go), carries direct
// messages to sessions on other nodes, and tells the rooms, through the
// lobby, when the room stream was made anew.
//
// Whatever needs the network, the broker does on its own goroutines; the
// bridge only queues work and passes answers on as messages.
type bridge struct {
	broker broker.Broker
	node   string // this node's id in presence and subjects
	lobby  *actor.PID
	log    *slog.Logger
	epoch  string
	root   *actor.RootContext
	self   *actor.PID

	unsubs []func()

	roster roster

	// directs are the direct messages sent to other nodes and not yet
	// answered, by reply number.
	directs   map[uint64]*directWait
	nextReply uint64
}

// Subjects of the messages between bridges. Room messages go through the
// broker's stream, whose subjects are the broker's business.
const (
	subjectRoster   = "lobby.presence"
	subjectSync     = "lobby.sync."   // + node: snapshot requests
	subjectSnapshot = "lobby.snap."   // + node: snapshot parts, the replies
	subjectDirect   = "lobby.direct." // + node: direct messages
	subjectReply    = "lobby.reply."  // + node + "." + n: their answers
	// subjectProbe + node + "." + other node is the reply subject of
	// node's probes of the other's direct subject: only the NATS server
	// answers there, when nobody subscribes to it (roster.probe).
	subjectProbe = "lobby.probe."
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

	// epochChanged tells the bridge that the stream was made anew.
	// Broker → bridge.
	epochChanged struct{ epoch string }

	// Inside the bridge.
	brokerState struct{ up bool }
	rosterTick  struct{}
	rosterFlush struct{}
	rosterProbe struct{}
	// probeAbsent says that nobody took a probe of node's subject.
	probeAbsent     struct{ node string }
	rosterIn        struct{ msg *rosterMsg }
	snapshotRequest struct{ reply string }
	directReply     struct {
		n         uint64
		delivered bool
	}
	directExpired struct{ n uint64 }
)

// directWait is a direct message waiting for the other node's answer.
type directWait struct {
	sender, from *actor.PID
	ref          json.RawMessage
	timer        *time.Timer
}

func newBridge(broker broker.Broker, lobby *actor.PID, log *slog.Logger, cfg rosterConfig) *bridge {
	node := uuid.NewString()
	return &bridge{
		broker:  broker,
		node:    node,
		lobby:   lobby,
		log:     log,
		epoch:   broker.Epoch(),
		directs: make(map[uint64]*directWait),
		roster:  newRoster(node, cfg),
	}
}

func (b *bridge) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *epochChanged:
		b.epochChanged(ctx, m)
	case *messages.DirectMessage:
		b.direct(ctx, m)
	case *directReply:
		b.answerDirect(m.n, &messages.DirectResult{Delivered: m.delivered})
	case *directExpired:
		b.answerDirect(m.n, &messages.DirectResult{Unavailable: true})
	case *localJoin, *localLeave, *rosterIn, *snapshotRequest, *rosterTick, *rosterFlush, *rosterProbe, *probeAbsent:
		b.roster.receive(b.env(ctx), m)
	case *brokerState:
		b.roster.receive(b.env(ctx), m)
	case *actor.Started:
		b.root, b.self = ctx.ActorSystem().Root, ctx.Self()
		b.start(ctx)
	case *actor.Stopping:
		b.roster.stop(b.env(ctx))
		for _, unsub := range b.unsubs {
			unsub()
		}
		for n := range b.directs {
			b.answerDirect(n, &messages.DirectResult{Unavailable: true})
		}
	}
}

// env is what the roster logic may do: publish through the broker and
// tell the lobby.
func (b *bridge) env(ctx actor.Context) rosterEnv {
	return rosterEnv{
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
	rosterHandler := func(_, _ string, data []byte) {
		var m rosterMsg
		if err := json.Unmarshal(data, &m); err != nil || m.Node == "" {
			return
		}
		root.Send(self, &rosterIn{msg: &m})
	}
	subscribe(subjectRoster, rosterHandler)
	subscribe(subjectSnapshot+b.node, rosterHandler)
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
	subscribe(subjectProbe+b.node+".*", func(subject, _ string, _ []byte) {
		root.Send(self, &probeAbsent{node: subject[strings.LastIndexByte(subject, '.')+1:]})
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
	b.roster.start(b.env(ctx))
}

// epochChanged tells the rooms, through the lobby, that the stream was
// made anew: each stops following the lost one and follows the new one
// from its start (room.followLost).
func (b *bridge) epochChanged(ctx actor.Context, m *epochChanged) {
	if m.epoch == b.epoch {
		return
	}
	first := b.epoch == ""
	b.epoch = m.epoch
	if first {
		// The node started without NATS: its rooms' follows were still
		// trying to start, and start in this epoch.
		return
	}
	b.log.Warn("the room stream was made anew: rooms restart under the new epoch",
		slog.String("epoch", m.epoch))
	ctx.Send(b.lobby, &followLost{})
}

// direct sends a direct message to the node that has its session, as the
// lobby forwarded it: the session is not on this node.
func (b *bridge) direct(ctx actor.Context, m *messages.DirectMessage) {
	w := &directWait{sender: ctx.Sender(), from: m.From, ref: m.Ref}
	node, ok := b.roster.where[m.To]
	b.nextReply++
	n := b.nextReply
	b.directs[n] = w
	if !ok {
		b.answerDirect(n, &messages.DirectResult{})
		return
	}
	err := b.broker.Publish(subjectDirect+node, subjectReply+b.node+"."+strconv.FormatUint(n, 10), encodeDirect(m))
	if err != nil {
		tooBig := errors.Is(err, broker.ErrTooBig)
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
