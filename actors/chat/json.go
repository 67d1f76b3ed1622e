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

func appendV1Welcome(dst []byte, id uuid.UUID, room, epoch string, seq uint64, members []uuid.UUID, recovered bool) []byte {
	dst = append(dst, `{"type":"welcome","id":"`...)
	dst = appendUUID(dst, id)
	dst = append(dst, `","room":`...)
	dst = socket.AppendJSONString(dst, room)
	dst = append(dst, `,"epoch":`...)
	dst = socket.AppendJSONString(dst, epoch)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"members":`...)
	dst = appendUUIDList(dst, members)
	dst = append(dst, `,"recovered":`...)
	dst = strconv.AppendBool(dst, recovered)
	return append(dst, '}')
}

// appendV1Presence encodes {"type":kind,"id":..,"room":..}, kind being
// "joined" or "left".
func appendV1Presence(dst []byte, kind string, id uuid.UUID, room string) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, kind...)
	dst = append(dst, `","id":"`...)
	dst = appendUUID(dst, id)
	dst = append(dst, `","room":`...)
	dst = socket.AppendJSONString(dst, room)
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

// appendV1Ack encodes an ack; a zero seq (a direct message has none) is
// left out.
func appendV1Ack(dst []byte, ref json.RawMessage, seq uint64) []byte {
	dst = append(dst, `{"type":"ack","ref":`...)
	dst = append(dst, ref...)
	if seq != 0 {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendUint(dst, seq, 10)
	}
	return append(dst, '}')
}

func appendV1Members(dst []byte, ref json.RawMessage, members []uuid.UUID) []byte {
	dst = append(dst, `{"type":"members",`...)
	dst = socket.AppendRef(dst, ref)
	dst = append(dst, `"members":`...)
	dst = appendUUIDList(dst, members)
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
