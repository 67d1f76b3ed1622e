package socket

import "github.com/lobby/lobby/messages"

// MaxHeld bounds the frames a socket actor holds between its start and
// the answer of what it joins (normally microseconds). A client that
// sends more than this before it has even joined is closed.
const MaxHeld = 256

// Hold keeps a client's frames until its actor has joined what it serves
// (a room, a questionnaire), so that none overtakes another.
type Hold struct {
	frames []*messages.ClientMessage
}

// Add holds m. Past MaxHeld it closes conn (TooManyBeforeJoin) and
// reports false.
func (h *Hold) Add(conn Conn, m *messages.ClientMessage) bool {
	if len(h.frames) >= MaxHeld {
		conn.Close(TooManyBeforeJoin)
		return false
	}
	h.frames = append(h.frames, m)
	return true
}

// Take returns the frames held, in the order they came, and holds no
// more of them.
func (h *Hold) Take() []*messages.ClientMessage {
	frames := h.frames
	h.frames = nil
	return frames
}
