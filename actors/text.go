package actors

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/google/uuid"
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
	dst = appendJSONString(dst, room)
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

// appendJSONString appends s as a JSON string. It escapes only what JSON
// requires (quote, backslash, control characters), as the seed's serde_json
// did, and replaces invalid UTF-8 with U+FFFD so that the frame is always
// valid JSON and valid UTF-8 whatever the client sent.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
