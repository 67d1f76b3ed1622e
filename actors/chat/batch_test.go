package chat

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lobby/lobby/actors/broker"
	"github.com/lobby/lobby/messages"
)

// burstBroker is a MemoryBroker whose deliveries can be held back and
// then handed to the room all at once, as a NATS follow hands over what
// came in while its room was busy.
type burstBroker struct {
	*broker.MemoryBroker
	mu      sync.Mutex
	holding bool
	held    []broker.StreamMessage
	heldOne chan struct{} // signalled for each delivery held
}

func (b *burstBroker) Follow(room string, deliver func(broker.StreamMessage) <-chan struct{}, started func(uint64, string)) func() {
	return b.MemoryBroker.Follow(room, func(sm broker.StreamMessage) <-chan struct{} {
		b.mu.Lock()
		if b.holding {
			b.held = append(b.held, sm)
			b.mu.Unlock()
			b.heldOne <- struct{}{}
			return nil
		}
		held := b.held
		b.held = nil
		b.mu.Unlock()
		for _, h := range held {
			deliver(h)
		}
		return deliver(sm)
	}, started)
}

func (b *burstBroker) hold(on bool) {
	b.mu.Lock()
	b.holding = on
	b.mu.Unlock()
}

// TestRoomDeliversABurstAsOneMessagePerMember: messages that reach a
// room together go to each member as one WsMessage holding them all, in
// stream order, in each member's protocol.
func TestRoomDeliversABurstAsOneMessagePerMember(t *testing.T) {
	b := &burstBroker{
		MemoryBroker: broker.NewMemoryBroker(broker.MemoryBrokerConfig{History: 10, HistoryTTL: time.Minute}),
		heldOne:      make(chan struct{}, 16),
	}
	rig := newRig(t, time.Hour, b)
	_, text := rig.member(messages.ProtocolText)
	v1ID, v1 := rig.member(messages.ProtocolJSON)
	v1.batches, text.batches = make(chan int, 16), make(chan int, 16)
	if f := parseV1(t, v1.next(t)); f.Type != "welcome" {
		t.Fatalf("first frame %+v, want the welcome", f)
	}
	if got := text.next(t); got != v1ID.String()+" just joined!" {
		t.Fatalf("text member's first frame %q", got)
	}

	b.hold(true)
	for _, m := range []string{`"one"`, `"two"`, `"three"`} {
		rig.broadcast(v1ID, m)
		select {
		case <-b.heldOne:
		case <-time.After(10 * time.Second):
			t.Fatal("the broker never delivered an append")
		}
	}
	b.hold(false)
	rig.broadcast(v1ID, `"four"`) // delivered with the three held

	for _, r := range []*recorder{v1, text} {
		select {
		case n := <-r.batches:
			if n != 4 {
				t.Fatalf("a batch of %d, want the 4 messages in one", n)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no batch in 10 s")
		}
		for i, m := range []string{`"one"`, `"two"`, `"three"`, `"four"`} {
			got := r.next(t)
			if !strings.Contains(got, `"msg":`+m) {
				t.Fatalf("frame %d %s, want message %s", i, got, m)
			}
			if r.json && !strings.Contains(got, `"seq":`+string(rune('1'+i))+`,`) {
				t.Fatalf("frame %d %s, want seq %d", i, got, i+1)
			}
		}
	}
}
