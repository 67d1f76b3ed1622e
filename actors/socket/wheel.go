package socket

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// wheelSlots is how many slots a Wheel's interval is cut into: the pings
// of a node's clients go out in that many groups, spread over the
// interval.
const wheelSlots = 100

// minWheelStep bounds how often a Wheel wakes, for a short interval.
const minWheelStep = 10 * time.Millisecond

// Wheel ticks the heartbeats of a node's socket actors with one timer.
// A timer per connection wakes the process, and on an idle machine the
// CPU, once per client per interval at a moment of its own: 400 wake-ups
// a second for 2 000 clients at 5 s, each of which costs more in the
// kernel than the tick itself (issue 18: a fan-out with heartbeats cost
// 1.10–1.16× the CPU per delivery of a hub without them, 0.96–1.01×
// with them off). The wheel wakes once a step (Every/100, 50 ms at 5 s)
// and sends HeartbeatTick to the actors of the slot that is due; an
// actor gets one tick per turn of the wheel, Every apart.
//
// The timer runs only while some actor is on the wheel, so a node with
// no clients does not wake at all.
type Wheel struct {
	// step is the time between two slots, period a whole turn (Every,
	// give or take a step's rounding).
	step, period time.Duration
	root         *actor.RootContext

	mu sync.Mutex
	// slots[i] are the actors ticked when the wheel is at i; next is when
	// it comes to cursor.
	slots   []map[*actor.PID]struct{}
	cursor  int
	next    time.Time
	count   int
	timer   *time.Timer
	armed   bool
	stopped bool
}

// NewWheel makes the wheel of actors of root's system whose heartbeat
// ticks every every.
func NewWheel(root *actor.RootContext, every time.Duration) *Wheel {
	w := &Wheel{step: max(every/wheelSlots, minWheelStep), root: root}
	n := max(int(every/w.step), 1)
	w.period = time.Duration(n) * w.step
	w.slots = make([]map[*actor.PID]struct{}, n)
	for i := range w.slots {
		w.slots[i] = map[*actor.PID]struct{}{}
	}
	return w
}

// add puts pid on the wheel and reports its slot and when its first tick
// is due: in a slot drawn from the second half of the interval, for the
// reason firstTick gives.
func (w *Wheel) add(pid *actor.PID) (slot int, due time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if w.count == 0 {
		// The wheel stood still: start it again from now.
		w.next = now.Add(w.step)
	}
	n := len(w.slots)
	k := n/2 + rand.N(n-n/2)
	slot = (w.cursor + k) % n
	w.slots[slot][pid] = struct{}{}
	w.count++
	if !w.armed && !w.stopped {
		w.armLocked(now)
	}
	return slot, w.next.Add(time.Duration(k) * w.step)
}

// remove takes pid off the wheel.
func (w *Wheel) remove(slot int, pid *actor.PID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.slots[slot][pid]; !ok {
		return
	}
	delete(w.slots[slot], pid)
	w.count--
	if w.count == 0 && w.armed {
		w.timer.Stop()
		w.armed = false
	}
}

// Stop stops the wheel's timer for good; call it once the node's socket
// actors have stopped.
func (w *Wheel) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.armed {
		w.timer.Stop()
		w.armed = false
	}
}

func (w *Wheel) armLocked(now time.Time) {
	w.armed = true
	if w.timer == nil {
		w.timer = time.AfterFunc(w.next.Sub(now), w.turn)
		return
	}
	w.timer.Reset(w.next.Sub(now))
}

// heartbeatTick is the one HeartbeatTick every actor gets: it carries
// nothing.
var heartbeatTick = &HeartbeatTick{}

// turn ticks the slots that are due and arms the timer for the next one.
func (w *Wheel) turn() {
	w.mu.Lock()
	if !w.armed || w.stopped {
		w.mu.Unlock()
		return
	}
	now := time.Now()
	var due []*actor.PID
	n := len(w.slots)
	for i := 0; i < n && !w.next.After(now); i++ {
		for pid := range w.slots[w.cursor] {
			due = append(due, pid)
		}
		w.cursor = (w.cursor + 1) % n
		w.next = w.next.Add(w.step)
	}
	if late := now.Sub(w.next); late >= 0 {
		// The timer came more than a whole turn late (the process was
		// stopped): every slot has been ticked once; skip the rest, as
		// the actors' heartbeats do (nextDue).
		k := int(late/w.step) + 1
		w.cursor = (w.cursor + k) % n
		w.next = w.next.Add(time.Duration(k) * w.step)
	}
	w.armed = false
	if w.count > 0 {
		w.armLocked(now)
	}
	w.mu.Unlock()
	// Sent without the lock: a send is a mailbox push, but add and remove
	// need not wait for a slot's worth of them.
	for _, pid := range due {
		w.root.Send(pid, heartbeatTick)
	}
}
