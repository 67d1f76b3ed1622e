package transport

import (
	"net/http"

	"github.com/lobby/lobby/messages"
)

// DefaultRoom is the room of GET /ws/.
const DefaultRoom = "lobby"

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

// validRoom reports whether name is a room name (messages.ValidRoom).
// Checking before the upgrade keeps odd names out of logs, metrics labels
// and the JSON the rooms write.
func validRoom(name string) bool { return messages.ValidRoom(name) }

const invalidParticipantMessage = "?participant= is the participant's own id: 1 to 64 characters of A-Z a-z 0-9 _ . -"

// validParticipant reports whether id is a participant id: 1 to 64
// characters of A-Z a-z 0-9 _ . - (a UUID is one). It is the rule of a
// room name, for the same reasons: the id is kept in the store and written
// into JSON.
func validParticipant(id string) bool { return validRoom(id) }
