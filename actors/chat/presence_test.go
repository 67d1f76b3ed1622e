package chat

import (
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/actors/broker"
	"github.com/lobby/lobby/messages"
)

// presenceRig is one room on a MemoryBroker, spawned under a parent that
// takes the room's messages to the lobby, with sessions that record the
// frames they are handed.
type presenceRig struct {
	t      *testing.T
	system *actor.ActorSystem
	parent *actor.PID
	room   *actor.PID
	// others is the session of the members whose frames no test reads.
	others *actor.PID
}

// recorder is a session that records its frames' payload in its protocol.
type recorder struct {
	json   bool
	frames chan []byte
	// batches, if not nil, receives the size of each Batch handed over.
	batches chan int
}

func (r *recorder) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*messages.WsMessage); ok {
		if m.Batch == nil {
			r.record(m)
			return
		}
		if r.batches != nil {
			r.batches <- len(m.Batch)
		}
		for _, f := range m.Batch {
			r.record(f)
		}
	}
}

func (r *recorder) record(m *messages.WsMessage) {
	data := m.Data
	if r.json {
		data = m.JSON
	}
	if data != nil {
		r.frames <- data
	}
}

// next is the recorder's next frame, within a deadline.
func (r *recorder) next(t *testing.T) string {
	t.Helper()
	select {
	case f := <-r.frames:
		return string(f)
	case <-time.After(10 * time.Second):
		t.Fatal("no frame in 10 s")
		return ""
	}
}

// newPresenceRig's room has a presence window of window.
func newPresenceRig(t *testing.T, window time.Duration) *presenceRig {
	return newRig(t, window, broker.NewMemoryBroker(broker.MemoryBrokerConfig{History: 10, HistoryTTL: time.Minute}))
}

// newRig is newPresenceRig on broker b, which it closes.
func newRig(t *testing.T, window time.Duration, b interface {
	broker.Broker
	Close()
}) *presenceRig {
	rig := &presenceRig{t: t, system: actor.NewActorSystem()}
	rooms := make(chan *actor.PID, 1)
	rig.parent = rig.system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*actor.Started); ok {
			rooms <- ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
				return newRoom(roomConfig{name: "r", broker: b, stats: &Stats{}, log: slog.New(slog.DiscardHandler), presenceWindow: window})
			}))
		}
	}))
	rig.room = <-rooms
	rig.others = rig.system.Root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	t.Cleanup(func() {
		_ = rig.system.Root.PoisonFuture(rig.parent).Wait()
		_ = rig.system.Root.PoisonFuture(rig.others).Wait()
		b.Close()
		rig.system.Shutdown()
	})
	return rig
}

// member joins a recording member in protocol p and returns it.
func (rig *presenceRig) member(p messages.Protocol) (uuid.UUID, *recorder) {
	rec := &recorder{json: p == messages.ProtocolJSON, frames: make(chan []byte, 1024)}
	pid := rig.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return rec }))
	rig.t.Cleanup(func() { _ = rig.system.Root.PoisonFuture(pid).Wait() })
	id := uuid.New()
	rig.system.Root.Send(rig.room, &messages.Connect{ID: id, Room: "r", Session: pid, Protocol: p})
	return id, rec
}

// joinOthers joins n members whose frames nobody reads.
func (rig *presenceRig) joinOthers(n int) []uuid.UUID {
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
		rig.system.Root.Send(rig.room, &messages.Connect{ID: ids[i], Room: "r", Session: rig.others, Protocol: messages.ProtocolJSON})
	}
	return ids
}

func (rig *presenceRig) leave(ids []uuid.UUID) {
	for _, id := range ids {
		rig.system.Root.Send(rig.room, &messages.Disconnect{ID: id})
	}
}

func (rig *presenceRig) broadcast(from uuid.UUID, msg string) {
	rig.system.Root.Send(rig.room, &messages.BroadcastMessage{ID: from, Msg: json.RawMessage(msg), RoomID: "r"})
}

type v1Frame struct {
	Type    string          `json:"type"`
	ID      uuid.UUID       `json:"id"`
	Ref     json.RawMessage `json:"ref"`
	Members []uuid.UUID     `json:"members"`
}

func parseV1(t *testing.T, s string) v1Frame {
	t.Helper()
	var f v1Frame
	if err := json.Unmarshal([]byte(s), &f); err != nil {
		t.Fatalf("frame %q: %v", s, err)
	}
	return f
}

// TestRoomCoalescesPresenceBurst: 100 joins and 50 leaves in a burst
// reach a lobby.v1 member as presenceBurst joined frames and one members
// frame (no ref) with the room's list, before the next message; a text
// member gets every notice of the seed's protocol, in order.
func TestRoomCoalescesPresenceBurst(t *testing.T) {
	rig := newPresenceRig(t, time.Hour) // no window ends mid-burst on a loaded machine
	textID, text := rig.member(messages.ProtocolText)
	v1ID, v1 := rig.member(messages.ProtocolJSON)
	if f := parseV1(t, v1.next(t)); f.Type != "welcome" {
		t.Fatalf("first frame %+v, want the welcome", f)
	}
	others := rig.joinOthers(100)
	rig.leave(others[:50])
	rig.broadcast(v1ID, `"after"`)

	for i := range presenceBurst {
		if f := parseV1(t, v1.next(t)); f.Type != "joined" || f.ID != others[i] {
			t.Fatalf("frame %d %+v, want joined %s", i, f, others[i])
		}
	}
	f := parseV1(t, v1.next(t))
	want := append([]uuid.UUID{textID, v1ID}, others[50:]...)
	if f.Type != "members" || f.Ref != nil || !slices.Equal(f.Members, want) {
		t.Fatalf("after the burst %+v, want members (no ref) %v", f, want)
	}
	if got := v1.next(t); !strings.HasPrefix(got, `{"type":"message",`) || !strings.Contains(got, `"msg":"after"`) {
		t.Fatalf("after the members frame %s, want the message", got)
	}

	wantText := []string{v1ID.String() + " just joined!"}
	for _, id := range others {
		wantText = append(wantText, id.String()+" just joined!")
	}
	for _, id := range others[:50] {
		wantText = append(wantText, id.String()+" disconnected.")
	}
	for i, w := range wantText {
		if got := text.next(t); got != w {
			t.Fatalf("text frame %d %q, want %q", i, got, w)
		}
	}
	if got := text.next(t); !strings.Contains(got, `"msg":"after"`) {
		t.Fatalf("text frame after the notices %q, want the message", got)
	}
}

// TestRoomPresenceUnderTheBurst: joins and leaves up to presenceBurst
// in a window are sent one by one, and no members frame follows.
func TestRoomPresenceUnderTheBurst(t *testing.T) {
	rig := newPresenceRig(t, time.Hour)
	v1ID, v1 := rig.member(messages.ProtocolJSON)
	parseV1(t, v1.next(t))
	others := rig.joinOthers(presenceBurst / 2)
	rig.leave(others)
	rig.broadcast(v1ID, `"after"`)
	for i, id := range append(slices.Clone(others), others...) {
		kind := "joined"
		if i >= len(others) {
			kind = "left"
		}
		if f := parseV1(t, v1.next(t)); f.Type != kind || f.ID != id {
			t.Fatalf("frame %d %+v, want %s %s", i, f, kind, id)
		}
	}
	if got := v1.next(t); !strings.HasPrefix(got, `{"type":"message",`) {
		t.Fatalf("after the presence %s, want the message", got)
	}
}

// TestRoomPresenceWindowEnds: with no message to flush it, a burst's
// members frame comes when the window ends, and the next window sends
// joined and left frames again.
func TestRoomPresenceWindowEnds(t *testing.T) {
	rig := newPresenceRig(t, presenceWindowLength)
	v1ID, v1 := rig.member(messages.ProtocolJSON)
	parseV1(t, v1.next(t))
	others := rig.joinOthers(presenceBurst + 20) // 20 held: more than half the room's
	for range presenceBurst {
		parseV1(t, v1.next(t))
	}
	start := time.Now()
	f := parseV1(t, v1.next(t))
	if want := append([]uuid.UUID{v1ID}, others...); f.Type != "members" || !slices.Equal(f.Members, want) {
		t.Fatalf("after the burst %+v, want members %v", f, want)
	}
	t.Logf("the members frame came %v after the burst's last joined", time.Since(start))
	rig.leave(others[:1])
	if f := parseV1(t, v1.next(t)); f.Type != "left" || f.ID != others[0] {
		t.Fatalf("in the next window %+v, want left %s", f, others[0])
	}
}

// TestRoomPresenceHeldInABigRoom: in a room of 300, 30 joins past the
// burst are fewer than a members frame would stand for
// (presenceSnapshotAt): they are held and sent one by one before the
// next message, in order, rather than as a list of 300.
func TestRoomPresenceHeldInABigRoom(t *testing.T) {
	rig := newPresenceRig(t, time.Hour)
	v1ID, v1 := rig.member(messages.ProtocolJSON)
	parseV1(t, v1.next(t))
	rig.joinOthers(300)
	rig.broadcast(v1ID, `"one"`)
	for range presenceBurst {
		parseV1(t, v1.next(t))
	}
	if f := parseV1(t, v1.next(t)); f.Type != "members" || len(f.Members) != 301 {
		t.Fatalf("after 300 joins %+v, want a members frame of 301", f)
	}
	if f := parseV1(t, v1.next(t)); f.Type != "message" {
		t.Fatalf("after the members frame %+v, want the message", f)
	}
	// The window is still open and its burst spent: these are held.
	more := rig.joinOthers(30)
	rig.broadcast(v1ID, `"two"`)
	for i, id := range more {
		if f := parseV1(t, v1.next(t)); f.Type != "joined" || f.ID != id {
			t.Fatalf("frame %d %+v, want joined %s", i, f, id)
		}
	}
	if got := v1.next(t); !strings.Contains(got, `"msg":"two"`) {
		t.Fatalf("after the held joins %s, want the message", got)
	}
}
