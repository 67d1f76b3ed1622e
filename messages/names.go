package messages

import "unicode/utf8"

// MaxRoomLen is the longest room name.
const MaxRoomLen = 64

// InvalidRoomText says, to whoever gave a name ValidRoom refuses, what a
// room name is.
const InvalidRoomText = "a room name is 1 to 64 characters of A-Z a-z 0-9 _ . -"

// ValidRoom reports whether name is a room name: 1 to MaxRoomLen
// characters of A-Z a-z 0-9 _ . -. The transport checks a path's room
// with it before the upgrade, and a session a lobby.v1 client's
// subscribe: one rule keeps odd names out of logs, metrics labels and
// the JSON the rooms write, whichever way a name comes in.
func ValidRoom(name string) bool {
	if len(name) == 0 || len(name) > MaxRoomLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// MaxNameRunes is the longest display name, in characters.
const MaxNameRunes = 32

// CleanName is a member's display name as rooms show it, and whether it
// is one: at most MaxNameRunes characters of valid UTF-8 with no control
// character; "" (no name) is valid. A name only labels an id in frames
// and pages, it never identifies anyone, so a bad one is refused rather
// than repaired.
func CleanName(name string) (string, bool) {
	if name == "" {
		return "", true
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameRunes {
		return "", false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return "", false
		}
	}
	return name, true
}

// MaxIdempotencyKey is the longest idempotency key a publish may carry.
const MaxIdempotencyKey = 64

// InvalidIdempotencyKeyText says what an idempotency key is, for the
// answer to one that is not.
const InvalidIdempotencyKeyText = "an idempotency key is 1 to 64 visible ASCII characters (no spaces)"

// ValidIdempotencyKey reports whether key is an idempotency key (an HTTP
// publish's Idempotency-Key, a lobby.v1 broadcast's key): 1 to
// MaxIdempotencyKey visible ASCII characters, what a UUID, a ULID or a
// hash fits in, and nothing a log line or a NATS header could be made
// to carry more with.
func ValidIdempotencyKey(key string) bool {
	if len(key) == 0 || len(key) > MaxIdempotencyKey {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return false
		}
	}
	return true
}
