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
	if !messages.ValidRoom(room) {
		writeError(w, http.StatusBadRequest, codeInvalidRoom, messages.InvalidRoomText)
		return "", false
	}
	return room, true
}

const invalidParticipantMessage = "?participant= is the participant's own id: 1 to 64 characters of A-Z a-z 0-9 _ . -"

// validParticipant reports whether id is a participant id: 1 to 64
// characters of A-Z a-z 0-9 _ . - (a UUID is one). It is the rule of a
// room name, for the same reasons: the id is kept in the store and written
// into JSON.
func validParticipant(id string) bool { return messages.ValidRoom(id) }
