package messages

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// What a room tells its residents (bots that live in the room, not behind
// a socket; see chat.Resident). A resident answers by sending its room
// (its parent) a BroadcastMessage with its own ID.

// RoomWelcome tells a resident the room it lives in, before any other
// event: the room's epoch, the seq of its last message, and its members
// then. Room → resident.
type RoomWelcome struct {
	Room    string
	Epoch   string
	Seq     uint64
	Members []uuid.UUID
}

// RoomMessage is one message of the room, as every member gets it, the
// resident's own included. Room → resident.
type RoomMessage struct {
	Room string
	Seq  uint64
	// From is the sender's id: a member's, a resident's, or an HTTP
	// publisher's.
	From uuid.UUID
	Msg  json.RawMessage
	At   time.Time
	// Local is set when the sender is a member of this node's room or one
	// of its residents. In a cluster every node's residents hear every
	// message: a bot that answers only Local messages answers once.
	Local bool
}

// MemberJoined and MemberLeft tell a resident that a member (of this node
// or another) joined or left its room. Room → resident.
type MemberJoined struct {
	Room string
	ID   uuid.UUID
}

type MemberLeft struct {
	Room string
	ID   uuid.UUID
}
