// Package actors holds Lobby's actors: the lobby (rooms and sessions by
// name), one room per room name, one session per WebSocket client, the
// echo actor, the smallest actor that serves a socket, and the
// questionnaire's: a registry, one questionnaire actor per questionnaire
// (the model for an actor that keeps its state in a store, see
// questionnaire.go), and its presenter and participant socket actors.
// The questionnaire store is the subpackage store.
//
// Each actor's state lives inside it and is touched only from its Receive,
// one message at a time: there is no mutex in this package. The one thing
// read from outside an actor is Stats, counters each written by one actor
// with atomics for the metrics to read. Actors never
// block on the network; they share a few worker goroutines (dispatch.go),
// which a blocked Receive would hold up. An actor that serves a socket
// talks to it through the socket.Conn interface, whose methods return at once;
// the transport package implements socket.Conn with a bounded queue in front of
// one writer goroutine.
//
// Mailboxes are unbounded on purpose: no Receive here ever waits, so
// mailboxes drain as fast as messages arrive, while a bounded mailbox would
// block its senders (one slow socket would stall its room). The lobby,
// rooms, history budget, questionnaire registry and questionnaires keep
// protoactor's default ring; socket actors use the lock-free linked list,
// which, unlike the ring, keeps no memory once drained.
// Memory is bounded where a client can make it grow: each connection's
// outbound queue (overflow closes that client as a slow consumer), its
// inbound rate, and the frames a session holds before it has joined; the
// rooms, by Config.MaxRooms; their histories, each by its own limits and
// all together by the history budget (budget.go), which evicts the oldest
// entries first, whatever their room.
//
// Node starts the actor system and the lobby, and gives the transport the
// few calls it needs (spawn an actor for a socket, publish, list rooms,
// shut down).
//
// Store calls block, so no actor makes one in Receive: they run on
// goroutines the Node counts (Node.goStore), and their results come back as
// messages.
//
// A node made with Config.Broker is one of a cluster. Its rooms are then
// clusterRooms (cluster_room.go), which take every message from the
// room's stream in the broker and assign no seq themselves, and one more
// actor, the bridge (bridge.go, presence.go), is the only one that calls
// the Broker: it starts and stops rooms' follows, appends and reads their
// messages, tells the other nodes who joins and leaves here and tells the
// lobby who is where else, and carries direct messages between nodes.
// Broker (broker.go) is an interface of this package so that no actor
// depends on NATS: package actors/cluster implements it on NATS
// JetStream, and tests may use a fake. The broker does its network I/O on
// its own goroutines; its answers come back as messages. Without a
// Broker none of this runs and a room works as it always has.
//
// This package may import messages, its store subpackage and protoactor-go;
// it may not import net/http, the WebSocket library, NATS or transport.
package actors
