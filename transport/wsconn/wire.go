package wsconn

import (
	"errors"
	"time"
)

// The server keeps its heartbeat below coder/websocket: Conn writes
// the pings into the outgoing byte stream and takes the client's pongs out
// of the incoming one. coder/websocket's Ping waits for its pong on a
// goroutine of its own, and a pong read through coder/websocket leaves the
// connection's reader parked deep inside its read path, where the
// goroutine's stack cannot shrink back to 2 KiB; an idle connection would
// pay both every heartbeat. The scanners below follow frame boundaries
// only: everything else about the frames is coder/websocket's to check.

// WebSocket framing (RFC 6455 section 5.2).
const (
	finBit   = 0x80
	maskBit  = 0x80
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
	len16    = 126
	len64    = 127
	maxCtlSz = 125
)

// Data frame opcodes.
const (
	opText   = 0x1
	opBinary = 0x2
)

// appendFrameHeader appends the header of an unmasked, final data frame
// carrying n bytes: how a server frames a message (RFC 6455 section 5.2).
func appendFrameHeader(dst []byte, binary bool, n int) []byte {
	op := byte(opText)
	if binary {
		op = opBinary
	}
	dst = append(dst, finBit|op)
	switch {
	case n <= maxCtlSz:
		return append(dst, byte(n))
	case n <= 0xffff:
		return append(dst, len16, byte(n>>8), byte(n))
	}
	return append(dst, len64, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// pingFrame is an unmasked server ping with no payload.
var pingFrame = []byte{finBit | opPing, 0}

// errBadPong is the read error for a pong frame no client may send
// (unmasked, or a payload over 125 bytes).
var errBadPong = errors.New("websocket: invalid pong frame from the client")

// frameScanner follows frame boundaries in one direction of a WebSocket
// byte stream, whatever the chunks it is handed.
type frameScanner struct {
	// hdr counts the bytes of the current frame's header seen so far; 0 at
	// a frame boundary. need is the header's length, known from its
	// second byte.
	hdr, need int
	op        byte
	len7      byte
	ext       uint64
	// left is the payload still to come once the header is complete.
	left uint64
}

// atBoundary reports whether the bytes seen so far end with a whole frame.
func (s *frameScanner) atBoundary() bool { return s.hdr == 0 && s.left == 0 }

// headerByte takes the next byte of a header, and reports whether the
// header is now complete.
func (s *frameScanner) headerByte(b byte) bool {
	switch s.hdr {
	case 0:
		s.op, s.ext = b, 0
	case 1:
		s.len7 = b & 0x7f
		s.need = 2
		switch s.len7 {
		case len16:
			s.need += 2
		case len64:
			s.need += 8
		}
		if b&maskBit != 0 {
			s.need += 4
		}
	default:
		if s.hdr < 2+extLen(s.len7) {
			s.ext = s.ext<<8 | uint64(b)
		}
	}
	s.hdr++
	if s.hdr < 2 || s.hdr < s.need {
		return false
	}
	s.hdr = 0
	s.left = uint64(s.len7)
	if s.len7 >= len16 {
		s.left = s.ext
	}
	return true
}

// take follows p from its start and stops right after the first frame
// that ends in it. It returns how many bytes it followed.
func (s *frameScanner) take(p []byte) int {
	for i := 0; i < len(p); {
		if s.left > 0 {
			k := min(s.left, uint64(len(p)-i))
			i += int(k)
			s.left -= k
			if s.left == 0 {
				return i
			}
			continue
		}
		if s.headerByte(p[i]) && s.left == 0 {
			return i + 1
		}
		i++
	}
	return len(p)
}

func extLen(len7 byte) int {
	switch len7 {
	case len16:
		return 2
	case len64:
		return 8
	}
	return 0
}

// inScanner takes the pongs out of the client's byte stream, and counts
// the control frames in it.
type inScanner struct {
	frameScanner
	// pong is set while the current frame is being taken out: a pong, or
	// with dropPings a ping.
	pong bool
	// budget bounds the client's control frames (close, ping, pong),
	// which never reach the connection's actor and its rate limit: a ping
	// or pong flood would otherwise cost the server CPU for free.
	budget controlBudget
	// flooded is set when the client goes over its budget, until
	// Conn has reported it; dropPings, from then on, takes pings out
	// too, unanswered, while the client is being closed.
	flooded, dropPings bool
	// fragments counts the continuation frames of the message being
	// read; past MaxFragments, fragFlood is 1 until Conn has reported
	// it, then 2.
	fragments int
	fragFlood int
}

// MaxFragments is the most continuation frames one message may have. A
// message that is never finished, in empty fragments, reaches neither the
// read limit nor the rate limit, which count messages: it would cost the
// server a core for free. Real clients send a message in one frame, or in
// a few large ones.
const MaxFragments = 64

// controlBudget is a token bucket for control frames. A zero rate is no
// limit.
type controlBudget struct {
	rate, burst float64
	tokens      float64
	// last is when tokens was last brought up to date (UnixNano).
	last int64
}

// take charges one control frame and reports whether the client is
// within its budget.
func (c *controlBudget) take(now int64) bool {
	if c.rate <= 0 {
		return true
	}
	if c.last == 0 {
		c.tokens = c.burst
	} else {
		c.tokens = min(c.burst, c.tokens+float64(now-c.last)/1e9*c.rate)
	}
	c.last = now
	c.tokens--
	return c.tokens >= 0
}

// filter removes the pong frames from p in place. It returns how many
// bytes are left for coder/websocket and how many pongs ended in p.
//
// Only a pong's bytes are held back, and a frame's first byte says
// whether it is one: the write index never passes the read index, even
// when a header is split between two reads.
func (s *inScanner) filter(p []byte) (n, pongs int, err error) {
	w := 0
	for i := 0; i < len(p); {
		if s.left > 0 {
			k := int(min(s.left, uint64(len(p)-i)))
			if !s.pong {
				copy(p[w:], p[i:i+k])
				w += k
			}
			i += k
			s.left -= uint64(k)
			if s.left == 0 && s.pong {
				s.pong = false
				pongs++
			}
			continue
		}
		b := p[i]
		i++
		if s.hdr == 0 {
			// A pong has FIN set and no RSV bits; any other first byte
			// with the pong opcode is coder/websocket's to refuse.
			if b&opClose != 0 && !s.dropPings && !s.budget.take(time.Now().UnixNano()) {
				// Over budget: this frame and every ping after it, in
				// this read too, are dropped unanswered.
				s.flooded, s.dropPings = true, true
			}
			s.pong = b == finBit|opPong || s.dropPings && b == finBit|opPing
			if b&opClose == 0 { // a data frame
				if b&0x0f == 0 {
					s.fragments++
				} else {
					s.fragments = 0
				}
				if s.fragments > MaxFragments && s.fragFlood == 0 {
					s.fragFlood = 1
				}
			}
		}
		if s.pong && s.hdr == 1 && (b&maskBit == 0 || b&0x7f > maxCtlSz) {
			return w, pongs, errBadPong
		}
		if !s.pong {
			p[w] = b
			w++
		}
		if s.headerByte(b) && s.left == 0 && s.pong {
			s.pong = false
			pongs++
		}
	}
	return w, pongs, nil
}

// outScanner follows the frames coder/websocket writes, so that a ping
// goes in between two frames and never after a close frame.
type outScanner struct {
	frameScanner
	closed bool
}

// scan follows p, written after everything scanned before.
func (s *outScanner) scan(p []byte) {
	for i := 0; i < len(p); {
		if s.left > 0 {
			k := min(s.left, uint64(len(p)-i))
			i += int(k)
			s.left -= k
			continue
		}
		if s.hdr == 0 && p[i]&0x0f == opClose {
			s.closed = true
		}
		s.headerByte(p[i])
		i++
	}
}
