package socket

import "github.com/lobby/lobby/messages"

// MaxHeld and MaxHeldBytes bound what a socket actor holds between its
// start and the answer of what it joins: normally microseconds, but in a
// cluster whose stream is out of reach a join waits, and frames over the
// rate limit are held too (to be answered in order). A client that sends
// more than this before it has even joined is closed.
const (
	MaxHeld      = 256
	MaxHeldBytes = 1 << 20
)

// Hold keeps a client's frames until its actor has joined what it serves
// (a room, a questionnaire), so that none overtakes another.
type Hold struct {
	frames []*messages.ClientMessage
	bytes  int
	// closed is set once the client was closed for holding too much:
	// what it sends from then on is dropped.
	closed bool
}

// Add holds m. Past MaxHeld frames or MaxHeldBytes it closes conn
// (TooManyBeforeJoin) and reports false.
func (h *Hold) Add(conn Conn, m *messages.ClientMessage) bool {
	if h.closed {
		return false
	}
	if len(h.frames) >= MaxHeld || h.bytes+len(m.Data) > MaxHeldBytes {
		conn.Close(TooManyBeforeJoin)
		h.frames, h.bytes, h.closed = nil, 0, true // nobody will take them
		return false
	}
	h.frames = append(h.frames, m)
	h.bytes += len(m.Data)
	return true
}

// Take returns the frames held, in the order they came, and holds no
// more of them.
func (h *Hold) Take() []*messages.ClientMessage {
	frames := h.frames
	h.frames, h.bytes = nil, 0
	return frames
}
