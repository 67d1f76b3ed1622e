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
// talks to it through the Conn interface, whose methods return at once;
// the transport package implements Conn with a bounded queue in front of
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
// This package may import messages, its store subpackage and protoactor-go;
// it may not import net/http, the WebSocket library or transport.
package actors
