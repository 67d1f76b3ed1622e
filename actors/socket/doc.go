// Package socket is the toolkit of every actor that serves a WebSocket:
// the Conn it writes through, the close reasons it closes with (values
// with a code, a text and a metric label), the heartbeat that keeps the
// connection alive, the panic guard, the props wrapper that tells the
// transport when the actor has stopped and has a Batcher Conn write what
// the actor sent in a turn when the turn ends, the hold of a client's frames
// until the actor has joined, the pacing of a burst longer than the
// client's queue (Paced, on a Conn that is a Pacer), the rate-limit
// strikes, and the frame
// errors and JSON string encoding its protocols share. Base puts them
// together for an actor type of one's own, and Kind registers one
// (actors.Config.Sockets); package echo is the smallest actor built on
// them, actors/examples/shout a new one. Package sockettest has a Conn
// for tests.
//
// It may import messages and protoactor-go, and nothing else of Lobby's;
// not net/http, the WebSocket library or NATS: the transport implements
// Conn.
package socket
