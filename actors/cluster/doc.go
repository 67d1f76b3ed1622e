// Package cluster implements broker.Broker on NATS: room messages in a
// JetStream stream, presence and direct messages on plain NATS subjects.
// A node started with it (cmd/lobby --nats-url) is one of a cluster: its
// rooms append to and follow their streams here, its lobby reads them, and
// its bridge actor (actors/chat/bridge.go) carries presence and direct
// messages over it.
//
// The stream (Config.Stream, "LOBBY" by default) holds subjects
// lobby.room.<room>, a room name with its dots written as "~" so that it
// stays one subject token; it keeps Config.History messages per room for
// Config.HistoryTTL, and is created or updated when a Broker connects.
// A room's follower is an ordered consumer filtered to the room's subject,
// which nats.go recreates after a reconnect from the last message it
// delivered.
//
// Every Broker method returns without waiting on the network: publishes
// go through one bounded queue to one writer goroutine (which keeps their
// order), their acknowledgements are awaited by one more, in order, and
// reads and follows run on goroutines of their own, which Close cancels
// and waits for. All methods are safe for concurrent use.
//
// It may import actors/broker and messages of Lobby's, and NATS (it is the
// only package that does); not another actor package, net/http or the
// WebSocket library.
package cluster
