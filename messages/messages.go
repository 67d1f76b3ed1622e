package messages

import (
	"encoding/json"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
)

// Protocol is the wire format a session speaks to its client.
type Protocol uint8

const (
	// ProtocolText is the seed's text protocol, spoken when the client asks
	// for no subprotocol.
	ProtocolText Protocol = iota
	// ProtocolJSON is the typed JSON protocol, subprotocol "lobby.v1".
	ProtocolJSON
)

// Connect asks to add a session to a room. Session → Lobby, then Lobby → Room.
// The room answers the session with Joined.
type Connect struct {
	ID       uuid.UUID
	Room     string
	Session  *actor.PID
	Protocol Protocol
}

// Joined tells a session that it is a member of its room. Room → Session.
type Joined struct {
	// Room is the room actor; the session sends its broadcasts straight
	// there, so per-sender order needs no hop through the lobby.
	Room *actor.PID
}

// Disconnect removes a session from its room. Session → Lobby (from the
// session's Stopping), then Lobby → Room.
type Disconnect struct {
	ID   uuid.UUID
	Room string
}

// WsMessage is one frame for a session to write to its client.
// Room → Session, Lobby → Session.
//
// Data is encoded once by the sender and shared by every recipient: it must
// not be modified once sent.
type WsMessage struct {
	Data   []byte
	Binary bool
}

// BroadcastMessage is a message for every member of a room, the sender
// included. Session → Room for a text frame, Lobby → Room for an HTTP publish
// (which the transport asks of the lobby with a request; the room answers
// Published).
//
// Msg is the message as JSON: a client's text frame arrives as a JSON string,
// an HTTP publish as the posted JSON unchanged.
type BroadcastMessage struct {
	ID     uuid.UUID       `json:"id"`
	Msg    json.RawMessage `json:"msg"`
	RoomID string          `json:"room_id"`
}

// Published answers a BroadcastMessage that was sent as a request.
// Room → requester, or Lobby → requester when the room does not exist.
type Published struct {
	// Delivered is the number of members the message was handed to.
	Delivered int
	// Seq is the message's sequence number in its room; 0 when no room
	// received it.
	Seq uint64
}

// ClientMessage is one data frame read from a client's socket.
// Transport → Session (or Echo, or any actor serving a socket).
type ClientMessage struct {
	Data   []byte
	Binary bool
}

// ListRooms asks for every room with its member count. Transport → Lobby;
// answered with RoomList.
type ListRooms struct{}

// RoomSummary is one room in a RoomList.
type RoomSummary struct {
	Room    string `json:"room"`
	Members int    `json:"members"`
}

// RoomList answers ListRooms, sorted by room name.
type RoomList struct {
	Rooms []RoomSummary
}

// GetRoom asks for one room's state. Transport → Lobby → Room; answered with
// RoomInfo (Found false when the room does not exist).
type GetRoom struct {
	Room string
}

// RoomInfo answers GetRoom.
type RoomInfo struct {
	Found   bool
	Room    string
	Members []uuid.UUID
	// Seq is the room's last sequence number: how many messages it has
	// broadcast since it was created.
	Seq uint64
	// Epoch names this incarnation of the room; it changes whenever the room
	// is created anew, which resets Seq.
	Epoch string
}

// Close asks an actor serving a socket to close it after the frames already
// queued. Lobby → Session (a join refused while shutting down), or any
// actor → itself.
type Close struct {
	Code   int
	Reason string
}
