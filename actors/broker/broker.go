package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// ErrUnavailable is a Broker's answer while it cannot reach the other
// nodes, or when they did not acknowledge a message in time: a room
// message may not have been stored, a direct message not delivered (or
// they were, their acknowledgement lost).
var ErrUnavailable = errors.New("broker: cluster unavailable")

// ErrOutcomeUnknown is a Broker's answer when the store was sent a
// message and did not answer in time: it may have stored it, and then
// delivers it to every member. It wraps ErrUnavailable. Sending the
// message again with the same idempotency key (Append's key) stores it
// at most once.
var ErrOutcomeUnknown = fmt.Errorf("%w: the store did not answer in time: the message may have been stored", ErrUnavailable)

// DefaultIdempotencyWindow is how long a broker remembers an idempotency
// key when its configuration says nothing: JetStream's default window of
// duplicates.
const DefaultIdempotencyWindow = 2 * time.Minute

// ErrTooBig is a Broker's answer to a message larger than the other
// nodes can be sent (NATS's max_payload, less room for headers): it was
// not sent, and never will be; the cluster is not unavailable.
var ErrTooBig = errors.New("broker: message too big for the cluster")

// ErrBehind is a Broker's readiness while its node has fallen further
// behind the stream than it may (it delivers messages that are older
// than its limit): the node works, but its members see the others'
// messages late, and a load balancer should send new clients elsewhere.
var ErrBehind = errors.New("broker: this node is behind the stream")

// ErrStoreFull is a Broker's answer to a message its store has no room
// for: the disk under the node's data directory is full, or the store's
// own limit is met. It was not stored; it may be sent again once there is
// room.
var ErrStoreFull = errors.New("broker: the store is full")

// Broker is where a node's rooms keep their messages, and its way to the
// other nodes of a cluster: a store of room messages in one order for
// every node, with their history, and plain messages between nodes for
// presence and direct messages. Every room appends to its room's stream
// and delivers what it follows, in one node or many; only the Broker
// differs. MemoryBroker (memory.go) is a single node's, the default;
// package actors/cluster implements it on NATS JetStream for --nats-url,
// so that no actor depends on NATS. A Node given a Broker (Config.Broker)
// also runs a bridge actor (actors/chat/bridge.go) for presence and direct
// messages between nodes.
//
// Every method may be called from any goroutine and returns without
// waiting on the network: what needs the network is queued, or fails at
// once with ErrUnavailable when the broker is disconnected or its queue is
// full. Callbacks are called on the broker's goroutines and must not block.
type Broker interface {
	// Epoch names the room stream: it is the same on every node that uses
	// the same stream, and changes only if the stream is made anew. A
	// broker whose rooms each have their own epoch (MemoryBroker) says ""
	// and gives a room's epoch in Follow and Read.
	Epoch() string

	// Up reports whether the broker is connected.
	Up() bool

	// Ready reports nil while the broker is connected, its stream is set
	// up and this node keeps up with it; otherwise why not: an error
	// wrapping ErrUnavailable (disconnected, a lost stream being made
	// anew) or ErrBehind (the node has fallen too far behind the stream).
	Ready() error

	// FollowRefused reports whether the store refuses the node what it
	// needs to follow rooms (NATS's limit of consumers is reached): no
	// follow starts, and none delivers, until it no longer does. A join
	// or publish, which would wait for its room's follow, is refused at
	// once meanwhile.
	FollowRefused() bool

	// Watch calls f with every change of Up, for the node's lifetime.
	// It is called once, before any other method but Epoch and Up.
	Watch(f func(up bool))

	// WatchEpoch calls f with the new epoch whenever the stream has been
	// made anew (it was lost: deleted, or a NATS server came back
	// without it), for the node's lifetime. The rooms' follows then
	// deliver the new stream, whose sequence numbers start again. It is
	// called once, like Watch.
	WatchEpoch(f func(epoch string))

	// Append stores msg (valid JSON) as the next message of room, sent
	// by from. done is called once, maybe before Append returns, with
	// the message's seq in its room (1 more than the one before) once
	// the store has acknowledged it, or with an error: only then is the
	// message stored for sure. A message whose done saw an error may
	// still have been stored (its acknowledgement lost), except ErrTooBig
	// and ErrStoreFull: it was not; ErrOutcomeUnknown says that it may
	// well have been.
	//
	// key, when not "", is the publisher's idempotency key (an HTTP
	// Idempotency-Key): a message of room with the same key appended
	// within the broker's window of duplicates (IdempotencyWindow) is
	// stored and delivered once. An Append whose key was seen is stored
	// and delivered nothing: done gets the first one's seq and duplicate
	// true.
	Append(room string, from uuid.UUID, msg json.RawMessage, key string, done func(seq uint64, duplicate bool, err error))

	// Follow calls started once with the room's last sequence number
	// (0 for none) and its epoch, then deliver with every message of room
	// stored after it, in order, from one goroutine, until stop is
	// called. deliver returns nil while the follower has room for more;
	// when it holds as much as it may, it returns a channel it closes
	// once it has taken what it holds: the broker then delivers nothing
	// more, to this follow or another, before the channel is closed or
	// stop is called (backpressure: the node reads the stream no faster
	// than its rooms hand it on). A MemoryBroker, which delivers in its
	// caller's turn, ignores it. A MemoryBroker calls neither once stop has returned; the
	// NATS broker may still call deliver briefly after, so a follower
	// tells its follows apart (as a room does) rather than count on that.
	// While the broker is disconnected Follow keeps trying, and resumes
	// after the last message delivered once it is back: a message may
	// then be delivered twice, never skipped (the stream's limits aside;
	// a gap the stream can no longer fill is logged and given up).
	// deliver and started run under the broker's locks: they hand the
	// message on (a room sends itself an actor message) and must not call
	// the Broker, stop included.
	Follow(room string, deliver func(StreamMessage) (full <-chan struct{}), started func(last uint64, epoch string)) (stop func())

	// Read calls done once with the room's last sequence number and its
	// stored messages after after, up to upto (0: to the last): its
	// history, the last History of them at most.
	Read(room string, after, upto uint64, done func(ReadResult))

	// Replay is Read for a member's recovery: every message the store
	// still keeps after after, up to upto, however many History is (a
	// cluster's stream keeps more than its history), unless they are
	// more than limit: then done is given no messages and Complete
	// false, since no more may be held for the member.
	Replay(room string, after, upto uint64, limit ReplayLimit, done func(ReadResult))

	// Publish sends data on subject, with reply as its reply subject
	// ("" for none), at most once. It fails with ErrTooBig, at once, when
	// data is too big to be sent.
	Publish(subject, reply string, data []byte) error

	// Subscribe calls handle with each message on subject (NATS
	// wildcards allowed), from one goroutine, until unsubscribe.
	Subscribe(subject string, handle func(subject, reply string, data []byte)) (unsubscribe func(), err error)
}

// StreamMessage is one stored room message.
type StreamMessage struct {
	// Seq is the message's seq in its room: 1 more than the one before,
	// in every Broker.
	Seq  uint64
	From uuid.UUID
	Msg  json.RawMessage
	// At is when the store took it.
	At time.Time
}

// ReplayLimit bounds a Replay: what a room may hold for a recovering
// member while its client reads it.
type ReplayLimit struct {
	// Messages is the most messages replayed; zero means no limit.
	Messages int
	// Bytes is the most bytes of messages replayed; zero means no limit.
	Bytes int
}

// Over reports whether n messages of bytes bytes are more than l.
func (l ReplayLimit) Over(n, bytes int) bool {
	return l.Messages > 0 && n > l.Messages || l.Bytes > 0 && bytes > l.Bytes
}

// ReadResult answers Broker.Read.
type ReadResult struct {
	// Last is the room's last sequence number, 0 when it has none stored.
	Last uint64
	// Complete is true when Messages are every message of the room after
	// `after` up to `upto`: the message `after` itself is still stored
	// (or after is 0), so none between was dropped by the stream's
	// limits.
	Complete bool
	Messages []StreamMessage
	// Epoch is the epoch of the room's stream that Last counts in.
	Epoch string
	// Held is how many messages the broker holds for the room, and
	// HeldUntil when it holds none any more, if nothing is appended. A
	// room whose broker holds its history on this node (MemoryBroker)
	// lives while it does, so that the node lists it; a broker whose
	// history is the cluster's says 0.
	Held      int
	HeldUntil time.Time
	Err       error
}
