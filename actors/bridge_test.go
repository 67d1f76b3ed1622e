package actors

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lobby/lobby/actors/broker"
	"github.com/lobby/lobby/actors/socket/sockettest"
	"github.com/lobby/lobby/messages"
)

// twoNodes starts two nodes that share one MemoryBroker: a cluster in one
// process, with the bridge, presence and direct messages as on NATS.
func twoNodes(t *testing.T) (a, b *Node) {
	t.Helper()
	mb := broker.NewMemoryBroker(broker.MemoryBrokerConfig{History: 100, HistoryTTL: time.Minute, HistoryBytes: 1 << 20})
	t.Cleanup(mb.Close) // after the nodes' shutdowns, which run first
	return newTestNode(t, Config{Broker: mb}), newTestNode(t, Config{Broker: mb})
}

// joinText starts a text-protocol session on n in room and returns its
// conn and id, once its welcome says it is in.
func joinText(t *testing.T, n *Node, room string) (*sockettest.Conn, uuid.UUID, func()) {
	t.Helper()
	c := sockettest.NewConn()
	pid := n.Spawn(n.SessionProps(c, Join{Room: room}))
	welcome := c.Next(t)
	id, err := uuid.Parse(strings.TrimPrefix(welcome, "your id is "))
	if err != nil {
		t.Fatalf("welcome %q: %v", welcome, err)
	}
	return c, id, func() { n.Stop(pid) }
}

// TestBridgeJoinsTwoNodesRooms: members of one room on two nodes see each
// other join and leave, get each other's messages in one order, and are
// listed by either node; a direct message finds its session on the other
// node, and one to nobody is not delivered.
func TestBridgeJoinsTwoNodesRooms(t *testing.T) {
	a, b := twoNodes(t)
	ctx := context.Background()
	ca, ida, _ := joinText(t, a, "r")
	cb, idb, leaveB := joinText(t, b, "r")
	if got, want := ca.Next(t), idb.String()+" just joined!"; got != want {
		t.Fatalf("node a's member got %q, want %q", got, want)
	}

	// Both members get both messages, in the stream's one order.
	pa := a.Spawn(a.SessionProps(sockettest.NewConn(), Join{Room: "other"})) // a second room, untouched
	defer a.Stop(pa)
	if _, err := a.Publish(ctx, "r", uuid.New(), "", []byte(`"from a"`)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, "r", uuid.New(), "", []byte(`"from b"`)); err != nil {
		t.Fatal(err)
	}
	got := []string{ca.Next(t), ca.Next(t)}
	if other := []string{nextOf(t, cb, ida), nextOf(t, cb, ida)}; !slices.Equal(got, other) {
		t.Fatalf("node a's member got %q, node b's %q: want the same frames in the same order", got, other)
	}
	if !strings.Contains(got[0]+got[1], `"from a"`) || !strings.Contains(got[0]+got[1], `"from b"`) {
		t.Fatalf("frames %q, want both messages", got)
	}

	// Either node lists both members once presence has crossed.
	for name, n := range map[string]*Node{"a": a, "b": b} {
		var members []uuid.UUID
		eventually(t, "node "+name+" to list both members", func() bool {
			info, err := n.Room(ctx, "r")
			if err != nil {
				t.Fatal(err)
			}
			members = info.Members
			return len(members) == 2 && slices.Contains(members, ida) && slices.Contains(members, idb)
		})
	}

	// A direct message from node a reaches node b's session.
	res, err := a.Direct(ctx, idb, uuid.New(), []byte(`"psst"`))
	if err != nil || !res.Delivered {
		t.Fatalf("direct to the other node's session: %+v, %v", res, err)
	}
	if f := nextOf(t, cb, ida); !strings.Contains(f, `"psst"`) {
		t.Fatalf("node b's member got %q, want the direct message", f)
	}
	if res, err := a.Direct(ctx, uuid.New(), uuid.New(), []byte(`1`)); err != nil || res.Delivered {
		t.Fatalf("direct to nobody: %+v, %v; want not delivered", res, err)
	}

	leaveB()
	if got, want := ca.Next(t), idb.String()+" disconnected."; got != want {
		t.Fatalf("node a's member got %q, want %q", got, want)
	}
}

// TestBridgeHistoryIsTheClusters: a room's history is the stream's, the
// same read on either node, whichever node the messages came through;
// a lobby.v1 member joining on the other node recovers from it.
func TestBridgeHistoryIsTheClusters(t *testing.T) {
	a, b := twoNodes(t)
	ctx := context.Background()
	_, _, leave := joinText(t, a, "h") // keeps the room alive on a
	defer leave()
	for i, n := range []*Node{a, b, a} {
		if _, err := n.Publish(ctx, "h", uuid.New(), "", []byte{'0' + byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var seqs [2][]uint64
	for i, n := range []*Node{a, b} {
		h, err := n.History(ctx, "h", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range h.Entries {
			seqs[i] = append(seqs[i], e.Seq)
		}
	}
	if !slices.Equal(seqs[0], []uint64{1, 2, 3}) || !slices.Equal(seqs[0], seqs[1]) {
		t.Fatalf("history on a %v, on b %v; want [1 2 3] on both", seqs[0], seqs[1])
	}

	info, err := a.Room(ctx, "h")
	if err != nil {
		t.Fatal(err)
	}
	c := sockettest.NewConn()
	pid := b.Spawn(b.SessionProps(c, Join{Room: "h", Protocol: messages.ProtocolJSON, Recover: true, Since: 1, Epoch: info.Epoch}))
	defer b.Stop(pid)
	welcome := c.Next(t)
	if !strings.Contains(welcome, `"recovered":true`) {
		t.Fatalf("welcome %s, want recovered", welcome)
	}
	for _, want := range []string{`"seq":2`, `"seq":3`} {
		if f := c.Next(t); !strings.Contains(f, want) {
			t.Fatalf("replay %s, want %s", f, want)
		}
	}
}

// nextOf is c's next frame other than the notice that early joined:
// a node may learn of another node's member after its own joined
// (presence crosses the broker on its own time), and then tells it.
func nextOf(t *testing.T, c *sockettest.Conn, early uuid.UUID) string {
	t.Helper()
	for {
		if f := c.Next(t); f != early.String()+" just joined!" {
			return f
		}
	}
}

// eventually polls cond until it is true, failing t after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-poll.C:
		}
	}
}
