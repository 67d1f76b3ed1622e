// Package chat is Lobby's rooms: the lobby (rooms and sessions by name),
// one room actor per room name, one session actor per client's socket (a
// lobby.v1 session may be a member of many rooms: subscriptions,
// session.go), and, on a clustered node, the bridge that carries presence
// and direct messages between nodes (bridge.go, roster.go: who is where).
// Its codecs are the seed's text protocol (text.go) and lobby.v1 (json.go,
// frames.go), described for clients in transport/PROTOCOL.md.
//
// A room appends every message to its stream in a broker.Broker and
// delivers what it follows; one node or many differ only in the Broker
// (broker.MemoryBroker, or actors/cluster's on NATS). Each actor's state
// lives inside it and is touched only from its Receive; the one lock is a
// follow's box (room.go), where the broker's goroutine hands a room its
// messages. Actors never block on the network.
//
// Mailboxes are unbounded on purpose: no Receive here ever waits, so
// mailboxes drain as fast as messages arrive, while a bounded mailbox
// would block its senders (one slow socket would stall its room). Memory
// is bounded where a client can make it grow: the frames a session holds
// before it has joined, or while a subscribe or unsubscribe is on its
// way (socket.Hold), the rooms one session is in (Join.MaxSubscriptions),
// what a recovering member holds (maxHeldFrames) and is replayed
// (Config.Replay; the session hands it on as its client reads it, and
// what comes meanwhile waits behind it, a queue's bound at most:
// socket.Paced), what a room's follow box
// holds before its broker waits (maxFollowBox, maxFollowBoxBytes), the
// rooms (Config.MaxRooms), and their histories (the Broker's limits); each
// connection's outbound queue is the transport's.
//
// It may import actors/broker, actors/socket, messages and protoactor-go;
// not another feature package, net/http, the WebSocket library or NATS.
package chat
