package socket

import (
	"sync/atomic"

	"github.com/lobby/lobby/messages"
)

// MaxHeld and MaxHeldBytes bound what a socket actor holds between its
// start and the answer of what it joins: normally microseconds, but in a
// cluster whose stream is out of reach a join waits, and frames over the
// rate limit are held too (to be answered in order). A client that sends
// more than this before it has even joined is closed.
const (
	MaxHeld      = 256
	MaxHeldBytes = 1 << 20
)

// maxRefusedKept is the most of a frame over the rate limit a Hold keeps:
// enough for a small frame's ref to be answered, and nothing of a large
// frame, which is never acted on.
const maxRefusedKept = 256

// NodeBusy closes a client whose frames would take a node's HoldBudget
// past its limit: the node, not the client, is short, so it may retry.
var NodeBusy = Reason{Code: CloseTryAgainLater, Text: "server busy", Label: "busy"}

// HoldBudget bounds the bytes all of a node's socket actors hold before
// they have joined: MaxHeldBytes bounds one connection, but a node whose
// joins wait (a cluster stream out of reach) would otherwise hold that
// much for every connection it has.
type HoldBudget struct {
	limit int64
	used  atomic.Int64
}

// NewHoldBudget makes a budget of limit bytes.
func NewHoldBudget(limit int64) *HoldBudget {
	return &HoldBudget{limit: limit}
}

// Used is how many bytes are held now, over the node.
func (b *HoldBudget) Used() int64 { return b.used.Load() }

func (b *HoldBudget) charge(n int) bool {
	if b.used.Add(int64(n)) > b.limit {
		b.used.Add(-int64(n))
		return false
	}
	return true
}

func (b *HoldBudget) release(n int) { b.used.Add(-int64(n)) }

// Hold keeps a client's frames until its actor has joined what it serves
// (a room, a questionnaire), so that none overtakes another.
type Hold struct {
	// Budget, when set, is the node's: what the Hold keeps is charged to
	// it too. A Hold with a Budget must be emptied (Take) when its actor
	// stops, or the node's budget is lost.
	Budget *HoldBudget

	frames []*messages.ClientMessage
	bytes  int
	// closed is set once the client was closed for holding too much:
	// what it sends from then on is dropped.
	closed bool
}

// Add holds m. Past MaxHeld frames, MaxHeldBytes or the node's Budget it
// closes conn (TooManyBeforeJoin, or NodeBusy for the budget) and reports
// false. Of a frame over the rate limit it keeps only what answering it
// needs: such frames are answered, never acted on.
func (h *Hold) Add(conn Conn, m *messages.ClientMessage) bool {
	if h.closed {
		return false
	}
	if m.RateLimited && len(m.Data) > maxRefusedKept {
		m = &messages.ClientMessage{Binary: m.Binary, RateLimited: true}
	}
	if len(h.frames) >= MaxHeld || h.bytes+len(m.Data) > MaxHeldBytes {
		h.shut(conn, TooManyBeforeJoin)
		return false
	}
	if h.Budget != nil && !h.Budget.charge(len(m.Data)) {
		h.shut(conn, NodeBusy)
		return false
	}
	h.frames = append(h.frames, m)
	h.bytes += len(m.Data)
	return true
}

// shut closes conn for r and lets go of everything held: nobody will take it.
func (h *Hold) shut(conn Conn, r Reason) {
	conn.Close(r)
	h.Take()
	h.closed = true
}

// Take returns the frames held, in the order they came, and holds no
// more of them.
func (h *Hold) Take() []*messages.ClientMessage {
	frames := h.frames
	if h.Budget != nil {
		h.Budget.release(h.bytes)
	}
	h.frames, h.bytes = nil, 0
	return frames
}
