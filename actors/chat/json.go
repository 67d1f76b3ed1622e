package chat

import (
	"encoding/json"
	"strconv"

	"github.com/google/uuid"

	"github.com/lobby/lobby/actors/socket"
)

// The lobby.v1 protocol's server frames. Like the text protocol's, each is
// appended to dst by hand, in a fixed key order, so that a room encodes a
// frame once for all its lobby.v1 members without reflection.

// appendV1Welcome encodes a room's welcome; ref (a subscribe's) and
// names (of the members that have one) are left out when empty.
func appendV1Welcome(dst []byte, ref json.RawMessage, id uuid.UUID, room, epoch string, seq uint64, members []uuid.UUID, names []memberName, recovered bool) []byte {
	dst = append(dst, `{"type":"welcome",`...)
	dst = socket.AppendRef(dst, ref)
	dst = append(dst, `"id":"`...)
	dst = appendUUID(dst, id)
	dst = append(dst, `","room":`...)
	dst = socket.AppendJSONString(dst, room)
	dst = append(dst, `,"epoch":`...)
	dst = socket.AppendJSONString(dst, epoch)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"members":`...)
	dst = appendUUIDList(dst, members)
	dst = appendNames(dst, names)
	dst = append(dst, `,"recovered":`...)
	dst = strconv.AppendBool(dst, recovered)
	return append(dst, '}')
}

// memberName is a member's display name, for the frames that show it.
type memberName struct {
	id   uuid.UUID
	name string
}

// appendNames appends `,"names":{"<id>":"<name>",..}` when any member
// has a name: ids stay the members' identity, and a client that knows
// no names reads the frame as before.
func appendNames(dst []byte, names []memberName) []byte {
	if len(names) == 0 {
		return dst
	}
	dst = append(dst, `,"names":{`...)
	for i, n := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = appendUUID(dst, n.id)
		dst = append(dst, `":`...)
		dst = socket.AppendJSONString(dst, n.name)
	}
	return append(dst, '}')
}

// appendV1Connected is GET /ws's first frame: the session's id.
func appendV1Connected(dst []byte, id uuid.UUID) []byte {
	dst = append(dst, `{"type":"connected","id":"`...)
	dst = appendUUID(dst, id)
	return append(dst, `"}`...)
}

// appendV1Unsubscribed answers an unsubscribe.
func appendV1Unsubscribed(dst []byte, ref json.RawMessage, room string) []byte {
	dst = append(dst, `{"type":"unsubscribed",`...)
	dst = socket.AppendRef(dst, ref)
	dst = append(dst, `"room":`...)
	dst = socket.AppendJSONString(dst, room)
	return append(dst, '}')
}

// appendV1Presence encodes {"type":kind,"id":..,"room":..,"name":..},
// kind being "joined" or "left", the name only when there is one.
func appendV1Presence(dst []byte, kind string, id uuid.UUID, room, name string) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, kind...)
	dst = append(dst, `","id":"`...)
	dst = appendUUID(dst, id)
	dst = append(dst, `","room":`...)
	dst = socket.AppendJSONString(dst, room)
	if name != "" {
		dst = append(dst, `,"name":`...)
		dst = socket.AppendJSONString(dst, name)
	}
	return append(dst, '}')
}

// appendV1Message encodes a message frame; ts is when the room's stream
// accepted it, in Unix milliseconds.
func appendV1Message(dst []byte, id uuid.UUID, room string, seq uint64, ts int64, msg json.RawMessage) []byte {
	dst = append(dst, `{"type":"message","id":"`...)
	dst = appendUUID(dst, id)
	dst = append(dst, `","room":`...)
	dst = socket.AppendJSONString(dst, room)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, ts, 10)
	dst = append(dst, `,"msg":`...)
	dst = append(dst, msg...)
	return append(dst, '}')
}

func appendV1Direct(dst []byte, id uuid.UUID, msg json.RawMessage) []byte {
	dst = append(dst, `{"type":"direct","id":"`...)
	dst = appendUUID(dst, id)
	dst = append(dst, `","msg":`...)
	dst = append(dst, msg...)
	return append(dst, '}')
}

// appendV1Ack encodes an ack; an empty room and a zero seq (a direct
// message has neither) are left out.
func appendV1Ack(dst []byte, ref json.RawMessage, room string, seq uint64, duplicate bool) []byte {
	dst = append(dst, `{"type":"ack","ref":`...)
	dst = append(dst, ref...)
	if room != "" {
		dst = append(dst, `,"room":`...)
		dst = socket.AppendJSONString(dst, room)
	}
	if seq != 0 {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendUint(dst, seq, 10)
	}
	if duplicate {
		dst = append(dst, `,"duplicate":true`...)
	}
	return append(dst, '}')
}

func appendV1Members(dst []byte, ref json.RawMessage, room string, members []uuid.UUID, names []memberName) []byte {
	dst = append(dst, `{"type":"members",`...)
	dst = socket.AppendRef(dst, ref)
	dst = append(dst, `"room":`...)
	dst = socket.AppendJSONString(dst, room)
	dst = append(dst, `,"members":`...)
	dst = appendUUIDList(dst, members)
	dst = appendNames(dst, names)
	return append(dst, '}')
}

func appendUUIDList(dst []byte, ids []uuid.UUID) []byte {
	dst = append(dst, '[')
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = appendUUID(dst, id)
		dst = append(dst, '"')
	}
	return append(dst, ']')
}
