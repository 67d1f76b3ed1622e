package socket

import "github.com/lobby/lobby/messages"

// MaxRateStrikes is how many frames over its rate limit in a row a client
// of a JSON protocol is told about (each with an error frame) before it
// is closed.
const MaxRateStrikes = 20

// Strikes counts a client's frames over its rate limit in a row: the
// transport marks them (ClientMessage.RateLimited), the actor answers.
type Strikes struct{ n int }

// Verdict is what to do with a client frame, for its rate limit.
type Verdict int

const (
	// Pass: the frame is within the limit; handle it.
	Pass Verdict = iota
	// Warn: over the limit; answer it with a CodeRateLimited error frame
	// and drop it.
	Warn
	// Closed: over the limit too often; the connection was closed
	// (RateLimit).
	Closed
)

// Count judges m, closing conn once the client has gone over the limit
// more than max times in a row. A max of 0 closes at the first frame over
// the limit: for a protocol with no error frame to warn with.
func (s *Strikes) Count(conn Conn, m *messages.ClientMessage, max int) Verdict {
	if !m.RateLimited {
		s.n = 0
		return Pass
	}
	s.n++
	if s.n > max {
		conn.Close(RateLimit)
		return Closed
	}
	return Warn
}
