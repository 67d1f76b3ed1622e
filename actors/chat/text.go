package chat

import (
	"encoding/json"

	"github.com/google/uuid"

	"github.com/lobby/lobby/actors/socket"
)

// The seed's text protocol, byte for byte. Every function here appends to
// dst so that a room encodes a frame once, into one buffer, for all members.

func appendWelcome(dst []byte, id uuid.UUID) []byte {
	dst = append(dst, "your id is "...)
	return appendUUID(dst, id)
}

func appendJoined(dst []byte, id uuid.UUID) []byte {
	dst = appendUUID(dst, id)
	return append(dst, " just joined!"...)
}

func appendDisconnected(dst []byte, id uuid.UUID) []byte {
	dst = appendUUID(dst, id)
	return append(dst, " disconnected."...)
}

// appendBroadcast encodes {"id":..,"msg":..,"room_id":..} in that key order.
// msg must be valid JSON; it is copied as is.
func appendBroadcast(dst []byte, id uuid.UUID, msg json.RawMessage, room string) []byte {
	dst = append(dst, `{"id":"`...)
	dst = appendUUID(dst, id)
	dst = append(dst, `","msg":`...)
	dst = append(dst, msg...)
	dst = append(dst, `,"room_id":`...)
	dst = socket.AppendJSONString(dst, room)
	return append(dst, '}')
}

func appendUUID(dst []byte, id uuid.UUID) []byte {
	for i, b := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0xf])
	}
	return dst
}

const hexDigits = "0123456789abcdef"
