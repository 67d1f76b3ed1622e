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
// The room answers the session with Joined, and a lobby.v1 session also
// with its welcome frame and any history it recovers. A lobby.v1 session
// may send one Connect per room it subscribes to, all with its one ID.
type Connect struct {
	ID       uuid.UUID
	Room     string
	Session  *actor.PID
	Protocol Protocol
	// Recover asks for the room's messages after Since, in epoch Epoch, to be
	// replayed before the live ones (lobby.v1 only).
	Recover bool
	Since   uint64
	Epoch   string
	// Ref, when set, is the client's subscribe frame's ref, which the
	// welcome carries (lobby.v1 only).
	Ref json.RawMessage
	// Name is the member's display name in this room, "" for none
	// (CleanName has checked it).
	Name string
}

// Joined tells a session that it is a member of a room. Room → Session.
type Joined struct {
	// Room is the room actor; the session sends its broadcasts straight
	// there, so per-sender order needs no hop through the lobby.
	Room *actor.PID
	// Name is the room's name: a session in many rooms tells its joins
	// apart by it.
	Name string
}

// Disconnect removes a session from its room. Session → Lobby (from the
// session's Stopping), then Lobby → Room. Room "" (Session → Lobby only)
// is every room the session is in: a session in many rooms sends one
// Disconnect, and the lobby tells each room.
type Disconnect struct {
	ID   uuid.UUID
	Room string
}

// WsMessage is one frame for a session to write to its client, encoded in
// each protocol its recipients may speak. Room → Session, Lobby → Session.
//
// The frames are encoded once by the sender and shared by every recipient:
// they must not be modified once sent.
type WsMessage struct {
	// Data is the frame for a text-protocol client (or the binary frame);
	// nil when there is nothing for such a client.
	Data []byte
	// JSON is the frame for a lobby.v1 client; nil when there is nothing
	// for such a client.
	JSON   []byte
	Binary bool
	// Batch, when not nil, holds several frames in this one message, in
	// order, and the fields above are unused: a room hands each member
	// the messages it delivers at once in one WsMessage, so that a member
	// costs one mailbox message however many there are.
	Batch []*WsMessage
}

// BroadcastMessage is a message for every member of a room, the sender
// included. Session → Room for a text frame, Lobby → Room for an HTTP publish
// (which the transport asks of the lobby with a request; the room answers
// Published). A session that stops before it has joined sends the frames it
// held to the Lobby, which passes them to the room.
//
// Msg is the message as JSON: a client's text frame arrives as a JSON string,
// an HTTP publish as the posted JSON unchanged.
type BroadcastMessage struct {
	ID     uuid.UUID       `json:"id"`
	Msg    json.RawMessage `json:"msg"`
	RoomID string          `json:"room_id"`
	// Ref, when set, is the sending client's reference: the room acks the
	// message to From with its seq.
	Ref json.RawMessage `json:"-"`
	// Key, when set, is the publisher's idempotency key (an HTTP
	// Idempotency-Key): a message of the room with the same key within
	// the node's IdempotencyWindow is stored and delivered once, and the
	// later one answered Published.Duplicate.
	Key  string     `json:"-"`
	From *actor.PID `json:"-"`
}

// DirectMessage is a message for one session. Session → Lobby → Session for
// a lobby.v1 client's direct frame; Transport → Lobby → Session for
// POST /sessions/{id}/send. The lobby answers the sender with DirectResult
// (a request's sender, or From).
type DirectMessage struct {
	ID  uuid.UUID
	To  uuid.UUID
	Msg json.RawMessage
	Ref json.RawMessage
	// From is the sending session, nil for an HTTP send.
	From *actor.PID
}

// DirectResult answers a DirectMessage. Lobby → sender.
type DirectResult struct {
	Ref json.RawMessage
	// Delivered is false when no session has the id.
	Delivered bool
	// Unavailable is true when the session may be on another node of a
	// cluster that did not answer: the message may or may not have been
	// delivered.
	Unavailable bool
	// TooBig is true when the session may be on another node and the
	// message is too big to be sent there: nothing was sent.
	TooBig bool
}

// GetMembers asks a room for its members on behalf of a lobby.v1 client.
// Session → Room, answered with a members frame in a WsMessage.
type GetMembers struct {
	Ref json.RawMessage
}

// GetHistory asks for a room's retained messages after Since.
// Transport → Lobby → Room; answered with History (Found false when the
// room does not exist).
type GetHistory struct {
	Room  string
	Since uint64
}

// HistoryEntry is one retained message.
type HistoryEntry struct {
	Seq uint64    `json:"seq"`
	ID  uuid.UUID `json:"id"`
	// TS is when the room's stream accepted the message, in Unix
	// milliseconds.
	TS  int64           `json:"ts"`
	Msg json.RawMessage `json:"msg"`
}

// History answers GetHistory.
type History struct {
	Found bool
	Epoch string
	// Seq is the room's last sequence number.
	Seq uint64
	// Complete is true when the entries are every message after Since:
	// the history reaches back far enough.
	Complete bool
	Entries  []HistoryEntry
}

// Published answers a BroadcastMessage that was sent as a request.
// Room → requester, or Lobby → requester when the room does not exist.
type Published struct {
	// Delivered is the number of members the message was handed to.
	Delivered int
	// Seq is the message's sequence number in its room; 0 when no room
	// received it.
	Seq uint64
	// RoomLimit is true when the room did not exist and the node, having
	// as many rooms as it may, did not create it.
	RoomLimit bool
	// Unavailable is true when the node is clustered and the stream did
	// not acknowledge the message: it may still have been stored (its
	// acknowledgement lost), and is then delivered to every member.
	Unavailable bool
	// TooBig is true when the node is clustered and the message is too
	// big for the cluster's NATS (max_payload): nothing was sent.
	TooBig bool
	// StoreFull is true when the store had no room for the message (the
	// disk under a --durable node's data directory is full): it was not
	// stored.
	StoreFull bool
	// Refused is set when the room's policy refused the message: nothing
	// was sent.
	Refused *Refusal
	// Duplicate is true when the room had a message with the same Key
	// within the window: this one was neither stored nor delivered, and
	// Seq is the first one's (Delivered is 0).
	Duplicate bool
	// OutcomeUnknown is true, with Unavailable, when the stream was sent
	// the message and did not answer in time: it may have stored it.
	// Sent again with the same Key, it is stored at most once.
	OutcomeUnknown bool
	// FollowRefused is true, with Unavailable, when the node could follow
	// no room (NATS refused it a consumer): the message was not sent.
	FollowRefused bool
}

// Refusal is why a room's policy refused a message: a code clients may
// switch on, and a sentence for people. It answers the sender in its
// protocol (a lobby.v1 error frame, an HTTP error body).
type Refusal struct {
	Code    string
	Message string
}

// ClientMessage is one data frame read from a client's socket.
// Transport → Session (or Echo, or any actor serving a socket).
type ClientMessage struct {
	Data   []byte
	Binary bool
	// RateLimited marks a frame over the client's inbound rate: the actor
	// answers it (an error frame, or a close) instead of acting on it.
	RateLimited bool
}

// ListRooms asks for a page of the rooms, with their member counts, in
// name order. Transport → Lobby; answered with RoomList.
type ListRooms struct {
	// After is the name the page starts after; "" for the first page.
	After string
	// Limit is the most rooms in the page.
	Limit int
}

// RoomSummary is one room in a RoomList.
type RoomSummary struct {
	Room    string `json:"room"`
	Members int    `json:"members"`
}

// RoomList answers ListRooms, sorted by room name.
type RoomList struct {
	Rooms []RoomSummary
	// More is true when rooms follow the last one listed.
	More bool
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
// queued, for Reason. Lobby, room or questionnaire → the socket actor.
type Close struct {
	Reason CloseReason
}

// CloseReason is why the server closes a socket: the WebSocket close code
// (RFC 6455, 7.4.1), the text the client reads in the close frame, and the
// label the transport counts the disconnect under
// (lobby_disconnects_total{reason=Label}). Reasons are values (package
// socket names Lobby's), never told apart by their text.
type CloseReason struct {
	Code  int
	Text  string
	Label string
}
