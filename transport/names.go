package transport

import "net/http"

// DefaultRoom is the room of GET /ws/.
const DefaultRoom = "lobby"

// maxRoomLen is the longest room name accepted.
const maxRoomLen = 64

// roomFromPath returns the {room} of r's path, or answers 400 and returns
// false when it is not a room name.
func roomFromPath(w http.ResponseWriter, r *http.Request) (string, bool) {
	room := r.PathValue("room")
	if !validRoom(room) {
		writeError(w, http.StatusBadRequest, codeInvalidRoom, invalidRoomMessage)
		return "", false
	}
	return room, true
}

const invalidRoomMessage = "a room name is 1 to 64 characters of A-Z a-z 0-9 _ . -"

// validRoom reports whether name is a room name: 1 to 64 characters of
// A-Z a-z 0-9 _ . -. Checking before the upgrade keeps odd names out of
// logs, metrics labels and the JSON the rooms write.
func validRoom(name string) bool {
	if len(name) == 0 || len(name) > maxRoomLen {
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

const invalidParticipantMessage = "?participant= is the participant's own id: 1 to 64 characters of A-Z a-z 0-9 _ . -"

// validParticipant reports whether id is a participant id: 1 to 64
// characters of A-Z a-z 0-9 _ . - (a UUID is one). It is the rule of a
// room name, for the same reasons: the id is kept in the store and written
// into JSON.
func validParticipant(id string) bool { return validRoom(id) }
