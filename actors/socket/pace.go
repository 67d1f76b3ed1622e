package socket

// Pacer is a Conn that says when its queue has room again, so that an
// actor with more to send at once than the queue takes (a recovering
// member's replay: its welcome, every message it missed, and those that
// came meanwhile) sends it as its client reads it, through a Paced,
// instead of all at once past the queue's bound, which closes a healthy
// client as a slow consumer.
type Pacer interface {
	Conn
	// Room is how many more frames, and bytes of frames, Send queues now
	// within the queue's bound.
	Room() (frames, bytes int)
	// Bound is the queue's bound: the most frames, and bytes, it holds.
	Bound() (frames, bytes int)
	// WhenDrained calls drained once, when the queue is next empty (every
	// frame queued handed to the socket): at once if it is empty now,
	// else from the goroutine that emptied it. drained must not block (an
	// actor sends itself a message). It is never called once the
	// connection is closing; a second WhenDrained before the call
	// replaces the first.
	WhenDrained(drained func())
}

// SlowConsumer closes a client that does not read as fast as its frames
// come: its queue is full, or a write to it timed out.
var SlowConsumer = Reason{Code: ClosePolicyViolation, Text: "slow consumer", Label: "slow_consumer"}

// Paced sends frames to a Pacer as fast as its client reads them: it
// holds what the queue has no room for, and hands it on when the queue
// has drained. A replay of a thousand messages to a client whose queue
// takes 256 goes out a queue at a time, at the client's pace.
//
// While it holds frames, every frame its actor sends must go through it
// (it is a Conn: the actor uses it in place of the Pacer meanwhile), and
// waits behind those, so that order is kept. Frames sent while it holds
// some (Send) are bounded as the queue is (Pacer.Bound): a client that
// falls that far behind the frames that come, on top of its replay
// (Add), reads slower than they come, and is closed as a slow consumer.
// Frames given with Add are bounded by whoever gives them. Close and
// Abort drop what it holds: the client, closed, recovers it when it
// comes back.
//
// A Paced belongs to its actor, and is used from its Receive only.
type Paced struct {
	Pacer
	// wake is given to WhenDrained: the actor sends itself a message,
	// on which it calls Push.
	wake    func()
	held    []pacedFrame
	head    int
	waiting bool // a WhenDrained is on its way
	// behind and behindBytes count what Send added, against the bound.
	behind, behindBytes int
	closed              bool
}

type pacedFrame struct {
	data   []byte
	binary bool
	// behind: the frame came through Send, and counts in behind.
	behind bool
}

// NewPaced makes a Paced in front of conn; wake is called, from any
// goroutine, when its actor should call Push.
func NewPaced(conn Pacer, wake func()) *Paced {
	return &Paced{Pacer: conn, wake: wake}
}

// Add holds a frame of the burst to pace, such as a replay's, behind
// those held; Push sends it.
func (p *Paced) Add(data []byte, binary bool) {
	if !p.closed {
		p.held = append(p.held, pacedFrame{data: data, binary: binary})
	}
}

// Send implements Conn: the frame goes behind those held. It reports
// false when the client has fallen more than a queue behind (it is then
// closed as a slow consumer) or is closing.
func (p *Paced) Send(data []byte, binary bool) bool {
	if p.closed {
		return false
	}
	if p.Len() == 0 && !p.waiting {
		return p.Pacer.Send(data, binary)
	}
	frames, bytes := p.Pacer.Bound()
	if p.behind >= frames || p.behindBytes+len(data) > bytes {
		p.close()
		p.Pacer.Abort(SlowConsumer)
		return false
	}
	p.behind++
	p.behindBytes += len(data)
	p.held = append(p.held, pacedFrame{data: data, binary: binary, behind: true})
	return true
}

// Close implements Conn.
func (p *Paced) Close(r Reason) {
	p.close()
	p.Pacer.Close(r)
}

// Abort implements Conn.
func (p *Paced) Abort(r Reason) {
	p.close()
	p.Pacer.Abort(r)
}

// Len is how many frames are held.
func (p *Paced) Len() int { return len(p.held) - p.head }

// Push sends what the queue has room for, and asks to be woken when it
// has drained if frames are left. It reports whether none is left: the
// actor may then use the Pacer directly again.
func (p *Paced) Push() (done bool) {
	p.waiting = false
	if p.closed {
		return true
	}
	frames, bytes := p.Pacer.Room()
	full, _ := p.Pacer.Bound()
	for p.head < len(p.held) {
		f := p.held[p.head]
		// A frame larger than the room left waits for an empty queue;
		// one larger than the queue's bound then goes, and meets the
		// bound as it would have unpaced.
		if frames < 1 || len(f.data) > bytes && frames < full {
			break
		}
		if !p.Pacer.Send(f.data, f.binary) {
			p.close() // closing: nothing more goes out
			return true
		}
		frames--
		bytes -= len(f.data)
		if f.behind {
			p.behind--
			p.behindBytes -= len(f.data)
		}
		p.held[p.head] = pacedFrame{}
		p.head++
	}
	if p.head == len(p.held) {
		p.held, p.head = p.held[:0], 0
		return true
	}
	if p.head >= len(p.held)/2 {
		// What was sent is not kept: a replay behind a steady stream of
		// frames never empties, and would grow for ever.
		n := copy(p.held, p.held[p.head:])
		clear(p.held[n:])
		p.held, p.head = p.held[:n], 0
	}
	p.waiting = true
	p.Pacer.WhenDrained(p.wake)
	return false
}

func (p *Paced) close() {
	p.closed = true
	clear(p.held)
	p.held, p.head = nil, 0
}
