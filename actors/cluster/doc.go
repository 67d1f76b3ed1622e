// Package cluster implements broker.Broker on NATS: room messages in a
// JetStream stream, presence and direct messages on plain NATS subjects.
// A node started with it (cmd/lobby --nats-url, or --durable) is one of a
// cluster, maybe of one: its rooms append to and follow their streams
// here, its lobby reads them, and its bridge actor (actors/chat/bridge.go)
// carries presence and direct messages over it.
//
// The stream (Config.Stream, "LOBBY" by default) holds subjects
// lobby.room.<room>, a room name with its dots written as "~" so that it
// stays one subject token; it keeps Config.StreamPerRoom messages per room
// for Config.HistoryTTL (the rooms of Config.Latest keep their last one
// for LatestTTL), and is created or updated when a Broker connects.
//
// A room's seq is its own: each message carries it (header Lobby-Seq),
// one more than the room's last, appended on the condition that the last
// is still the last (Nats-Expected-Last-Subject-Sequence), so that seqs
// are contiguous per room whichever node appends; a node appends one
// record of a room at a time, rooms in parallel, and what queues for
// the room meanwhile goes in the next record together, each message
// numbered in its turn (record.go). Every room a node
// follows is fed by one ordered consumer of the whole stream, the tail:
// a node holds one consumer however many rooms it follows, and one per
// read in progress (at most 32).
//
// The tail reads no further ahead than its rooms take: a room's follow
// that holds as much as it may makes the tail wait (backpressure), so a
// node too slow for its stream falls behind in the stream, not in its
// heap. How far behind it is, the stream is asked every second (lag.go):
// past Config.MaxLag the broker is not Ready (broker.ErrBehind).
//
// Embedded is a NATS server run in the node's process (--durable): its
// JetStream store under the data directory, reached in process, and with
// peers (--peers) one of a NATS cluster of such nodes.
//
// Every Broker method returns without waiting on the network: a room's
// appends queue for a goroutine of the room's own, which stores them one
// record after the other (an attempt that gets no answer, a stream leader lost,
// is made again with the same Nats-Msg-Id until Config.PublishTimeout),
// plain messages go through one bounded queue to one writer goroutine
// (which keeps their order), and reads and follows run on goroutines of
// their own, which Close cancels and waits for. At most 8 192 publishes
// are queued or in flight. All methods are safe for concurrent use.
//
// It may import actors/broker and messages of Lobby's, and NATS (it is the
// only package that does); not another actor package, net/http or the
// WebSocket library.
package cluster
