package chat

import (
	"encoding/json"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/messages"
)

// Policy decides whether a room takes a message: a member's broadcast, a
// resident's, or an HTTP publish. A refused message is sent to nobody and
// stored nowhere; its sender is answered in its protocol (a lobby.v1
// error frame with the refusal's code, a text frame for the text
// protocol, an HTTP 403 with the code as its error). The room calls
// Accept in its turn, before the message goes to the broker: it must not
// block, and it is called from many rooms at once. In a cluster the
// sender's node decides: give every node the same Policy.
type Policy interface {
	// Accept returns nil to take msg, sent by from, into room, or why not.
	Accept(room string, from uuid.UUID, msg json.RawMessage) *messages.Refusal
}

// Resident is a kind of bot that lives in rooms: an actor the room spawns
// as its child when it starts (and so again whenever the room is spawned
// anew), that gets the room's typed events (messages.RoomWelcome first,
// then RoomMessage, MemberJoined, MemberLeft) and may send the room a
// BroadcastMessage with its ID. A resident is not a member: it does not
// keep its room alive, is not listed and joins no presence. It stops with
// its room, and is stopped if it panics.
//
// In a cluster each node that has the room spawns its residents, and each
// hears every message: answer only RoomMessage.Local ones (sent through
// this node) to answer once.
type Resident struct {
	// Name labels the resident in logs and its actor's name.
	Name string
	// In reports whether the resident lives in room; nil means every room.
	In func(room string) bool
	// New makes the resident of one room.
	New func(ResidentEnv) actor.Actor
}

// ResidentEnv is what a room gives a resident it spawns.
type ResidentEnv struct {
	// Room is the room's name; the room itself is the resident's parent.
	Room string
	// ID is the resident's id in the room, as a sender: new each time its
	// room is spawned.
	ID  uuid.UUID
	Log *slog.Logger
}
