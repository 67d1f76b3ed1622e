package socket

import (
	"time"

	"github.com/lobby/lobby/messages"
)

// Close codes an actor may give Conn.Close. They are WebSocket status codes
// (RFC 6455, section 7.4.1), kept here so that actors need not import the
// WebSocket library.
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	ClosePolicyViolation = 1008
	CloseInternalError   = 1011
	CloseTryAgainLater   = 1013
)

// Reason is why the server closes a socket: its code, the text the
// client reads, and the label the disconnect is counted under.
type Reason = messages.CloseReason

// The reasons Lobby's actors close sockets with. An actor type of one's
// own may make its own: its Label is then a lobby_disconnects_total
// reason of its own (keep labels few and fixed: each is a time series).
var (
	HeartbeatTimeout  = Reason{Code: ClosePolicyViolation, Text: "heartbeat timeout", Label: "heartbeat_timeout"}
	RateLimit         = Reason{Code: ClosePolicyViolation, Text: "rate limit", Label: "rate_limit"}
	InternalError     = Reason{Code: CloseInternalError, Text: "internal error", Label: "internal_error"}
	TooManyBeforeJoin = Reason{Code: ClosePolicyViolation, Text: "too many messages before join", Label: "policy"}
	ShuttingDown      = Reason{Code: CloseGoingAway, Text: "server shutting down", Label: "shutdown"}
)

// Conn is an actor's view of its client's socket. All methods are safe for
// concurrent use and return without waiting on the network, so an actor
// may call them from Receive.
type Conn interface {
	// Send queues one frame for the socket's writer. Frames are written in
	// the order they were queued. Send reports false when the frame was not
	// queued: the queue was full, and the connection is then closing as a
	// slow consumer, or the connection is already closing.
	Send(data []byte, binary bool) bool

	// Close writes a close frame for r once the frames already queued are
	// written, then closes the socket. Frames sent after Close are
	// dropped. Only the first call counts.
	Close(r Reason)

	// Abort closes the connection now, for r, dropping the frames queued:
	// for a client that is not reading or not there.
	Abort(r Reason)

	// Ping sends a ping frame without waiting for the pong; the pong moves
	// LastSeen.
	Ping()

	// LastSeen is when the client last proved alive: the last time bytes
	// (a frame, a ping, a pong, or part of one) were read from it, or the
	// time the connection opened.
	LastSeen() time.Time

	// ActorStopped is called once, when the actor serving the connection
	// has stopped: it will call nothing on the Conn after that. Actors do
	// not call it; the wrapper Props puts around them does.
	ActorStopped()
}

// PingOwer is a Conn that may put a ping off (to write it with the
// client's next frames), and says when the last one is still unwritten.
// The heartbeat then counts the client's silence from now rather than
// close it for not answering a ping it was never sent.
type PingOwer interface {
	Conn
	// PingOwed reports whether the last Ping has not been written yet.
	PingOwed() bool
}

// Batcher is a Conn that writes an actor's frames in batches: the frames
// an actor sends in one turn (one run of its mailbox) go to the socket
// together, at the turn's end, from the actor's own goroutine, instead of
// waking a writer for each. Props arranges the calls; an actor makes none.
type Batcher interface {
	Conn
	// Hold makes Send queue without writing, until Flush. The actor's
	// wrapper calls it before each message.
	Hold()
	// Flush writes what is queued without waiting for the network, handing
	// what the socket does not take to the Conn's writer, and ends Hold.
	// The actor's mailbox calls it when a run ends, and every
	// FlushEvery messages of a long run.
	Flush()
}

// FlushEvery is how many messages of one mailbox run a Batcher holds at
// most before it writes them: a mailbox that never empties still writes.
const FlushEvery = 16
