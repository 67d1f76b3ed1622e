package socket

import "time"

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

// Close reasons an actor gives; the transport counts disconnects by them.
const (
	ReasonHeartbeatTimeout = "heartbeat timeout"
	ReasonRateLimit        = "rate limit"
	ReasonInternalError    = "internal error"
	// ReasonTooManyBeforeJoin closes a client that sent more than
	// MaxHeld frames before its actor had joined what it serves.
	ReasonTooManyBeforeJoin = "too many messages before join"
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

	// Close writes a close frame with code and reason once the frames already
	// queued are written, then closes the socket. Frames sent after Close are
	// dropped. Only the first call counts.
	Close(code int, reason string)

	// Abort closes the connection now, with code and reason, dropping the
	// frames queued: for a client that is not reading or not there.
	Abort(code int, reason string)

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
