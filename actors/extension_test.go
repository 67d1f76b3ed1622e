package actors

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/actors/chat"
	"github.com/lobby/lobby/actors/socket/sockettest"
	"github.com/lobby/lobby/messages"
)

// noShouting refuses messages in capitals, and panics on "boom": a
// policy with a bug in it.
type noShouting struct{}

func (noShouting) Accept(_ string, _ uuid.UUID, msg json.RawMessage) *messages.Refusal {
	var s string
	_ = json.Unmarshal(msg, &s)
	if s == "boom" {
		panic("a bug in the policy")
	}
	if s != "" && s == strings.ToUpper(s) && s != strings.ToLower(s) {
		return &messages.Refusal{Code: "shouting", Message: "no shouting"}
	}
	return nil
}

// TestPolicyRefusalsAnswerTheSender: a refused message reaches nobody,
// and its sender is told in its protocol: a lobby.v1 error frame with its
// ref, a text frame, an HTTP publish's Refused.
func TestPolicyRefusalsAnswerTheSender(t *testing.T) {
	n := newTestNode(t, Config{Policy: noShouting{}})
	ctx := context.Background()
	text, _, _ := joinText(t, n, "p")
	v1 := sockettest.NewConn()
	v1pid := n.Spawn(n.SessionProps(v1, Join{Room: "p", Protocol: messages.ProtocolJSON}))
	if f := v1.Next(t); !strings.Contains(f, `"welcome"`) {
		t.Fatalf("got %s, want the welcome", f)
	}
	text.Next(t) // v1 joined

	n.Send(v1pid, &messages.ClientMessage{Data: []byte(`{"type":"broadcast","msg":"HEY","ref":7}`)})
	if f, want := v1.Next(t), `{"type":"error","ref":7,"code":"shouting","message":"no shouting"}`; f != want {
		t.Fatalf("lobby.v1 sender got %s, want %s", f, want)
	}
	res, err := n.Publish(ctx, "p", uuid.New(), "", []byte(`"HEY"`))
	if err != nil || res.Refused == nil || res.Refused.Code != "shouting" || res.Seq != 0 {
		t.Fatalf("publish: %+v, %v; want refused, shouting, no seq", res, err)
	}
	// The text member says something allowed, then something refused:
	// it gets its message, then the refusal, and v1 only the message.
	n.Send(v1pid, &messages.ClientMessage{Data: []byte(`{"type":"broadcast","msg":"fine","ref":8}`)})
	if f := v1.Next(t); !strings.Contains(f, `"msg":"fine"`) {
		t.Fatalf("v1 got %s, want its message", f)
	}
	if f := v1.Next(t); !strings.Contains(f, `"type":"ack","ref":8`) {
		t.Fatalf("v1 got %s, want its ack", f)
	}
	if f := text.Next(t); !strings.Contains(f, `"msg":"fine"`) {
		t.Fatalf("text member got %s: no refused message may reach it", f)
	}
}

// TestTextRefusalIsATextFrame: a text-protocol member's refused frame is
// answered with a text frame to it alone.
func TestTextRefusalIsATextFrame(t *testing.T) {
	n := newTestNode(t, Config{Policy: noShouting{}})
	c := sockettest.NewConn()
	pid := n.Spawn(n.SessionProps(c, Join{Room: "t"}))
	c.Next(t) // welcome
	n.Send(pid, &messages.ClientMessage{Data: []byte("HEY")})
	if f, want := c.Next(t), "message refused: no shouting"; f != want {
		t.Fatalf("got %q, want %q", f, want)
	}
}

// TestPanickingRoomClosesItsMembers: a room whose Receive panics (here in
// its policy) closes its members with 1011, to reconnect; other rooms go
// on, and the next join makes the room anew.
func TestPanickingRoomClosesItsMembers(t *testing.T) {
	n := newTestNode(t, Config{Policy: noShouting{}})
	ctx := context.Background()
	victim := sockettest.NewConn()
	pid := n.Spawn(n.SessionProps(victim, Join{Room: "doomed"}))
	victim.Next(t)
	other, _, _ := joinText(t, n, "fine")

	n.Send(pid, &messages.ClientMessage{Data: []byte("boom")})
	if got, want := victim.NextClose(t), "1011 internal error"; got != want {
		t.Fatalf("the doomed room's member closed %q, want %q", got, want)
	}
	if res, err := n.Publish(ctx, "fine", uuid.New(), "", []byte(`"still here"`)); err != nil || res.Delivered != 1 {
		t.Fatalf("publish to another room: %+v, %v", res, err)
	}
	if f := other.Next(t); !strings.Contains(f, "still here") {
		t.Fatalf("the other room's member got %q", f)
	}
	again, _, _ := joinText(t, n, "doomed")
	if res, err := n.Publish(ctx, "doomed", uuid.New(), "", []byte(`"anew"`)); err != nil || res.Delivered != 1 {
		t.Fatalf("publish to the room made anew: %+v, %v", res, err)
	}
	if f := again.Next(t); !strings.Contains(f, "anew") {
		t.Fatalf("the new member got %q", f)
	}
}

// echoBot is a resident that answers "!ping" with "pong" and reports
// every event it gets.
type echoBot struct {
	env    chat.ResidentEnv
	events chan<- any
}

func (b *echoBot) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.RoomWelcome, *messages.MemberJoined, *messages.MemberLeft:
		b.events <- m
	case *messages.RoomMessage:
		b.events <- m
		if string(m.Msg) == `"!ping"` {
			ctx.Send(ctx.Parent(), &messages.BroadcastMessage{ID: b.env.ID, Msg: []byte(`"pong"`), RoomID: b.env.Room})
		}
	}
}

// TestResidentsLiveInTheirRooms: a resident gets its room's welcome,
// joins, messages and leaves, may speak in the room, does not keep an
// empty room alive, and comes back when the room is made anew.
func TestResidentsLiveInTheirRooms(t *testing.T) {
	events := make(chan any, 64)
	var spawned atomic.Int32
	bot := chat.Resident{Name: "echo", In: func(room string) bool { return strings.HasPrefix(room, "bot-") },
		New: func(env chat.ResidentEnv) actor.Actor { spawned.Add(1); return &echoBot{env: env, events: events} }}
	n := newTestNode(t, Config{History: -1, Residents: []chat.Resident{bot}})
	ctx := context.Background()
	next := func() any {
		t.Helper()
		select {
		case e := <-events:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("the resident heard nothing within 10s")
			return nil
		}
	}

	c, id, leave := joinText(t, n, "bot-r")
	if w, ok := next().(*messages.RoomWelcome); !ok || w.Room != "bot-r" {
		t.Fatalf("first event %#v, want the room's welcome", w)
	}
	if j, ok := next().(*messages.MemberJoined); !ok || j.ID != id {
		t.Fatalf("event %#v, want %s joined", j, id)
	}
	if _, err := n.Publish(ctx, "bot-r", uuid.New(), "", []byte(`"!ping"`)); err != nil {
		t.Fatal(err)
	}
	if m, ok := next().(*messages.RoomMessage); !ok || string(m.Msg) != `"!ping"` || m.Seq != 1 || m.Local {
		t.Fatalf("event %#v, want the ping with seq 1, not local (an HTTP publisher's)", m)
	}
	c.Next(t) // the ping
	if f := c.Next(t); !strings.Contains(f, `"pong"`) {
		t.Fatalf("member got %q, want the bot's pong", f)
	}
	if m, ok := next().(*messages.RoomMessage); !ok || string(m.Msg) != `"pong"` || !m.Local {
		t.Fatalf("event %#v, want its own pong, local", m)
	}
	if _, _, otherLeave := joinText(t, n, "plain"); spawned.Load() != 1 {
		t.Fatalf("%d residents spawned, want 1: the bot lives in bot- rooms only", spawned.Load())
	} else {
		otherLeave()
	}

	leave()
	if l, ok := next().(*messages.MemberLeft); !ok || l.ID != id {
		t.Fatalf("event %#v, want %s left", l, id)
	}
	// The empty room goes, bot and all (History -1: nothing keeps it).
	eventually(t, "the room with only its bot to go", func() bool {
		info, err := n.Room(ctx, "bot-r")
		return err == nil && !info.Found
	})
	joinText(t, n, "bot-r")
	if w, ok := next().(*messages.RoomWelcome); !ok || w.Room != "bot-r" || spawned.Load() != 2 {
		t.Fatalf("event %#v, %d spawned; want the bot back in the room made anew", w, spawned.Load())
	}
}

// crashBot panics on every room message; it reports its PID when welcomed.
type crashBot struct{ self chan<- *actor.PID }

func (b *crashBot) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *messages.RoomWelcome:
		b.self <- ctx.Self()
	case *messages.RoomMessage:
		panic("a bug in the bot")
	}
}

// TestPanickingResidentIsStopped: a resident that panics is stopped, not
// restarted in place (it would come back under the same id with no
// welcome), and its room goes on.
func TestPanickingResidentIsStopped(t *testing.T) {
	self := make(chan *actor.PID, 4)
	var spawned atomic.Int32
	bot := chat.Resident{Name: "crash", New: func(chat.ResidentEnv) actor.Actor { spawned.Add(1); return &crashBot{self: self} }}
	n := newTestNode(t, Config{History: -1, Residents: []chat.Resident{bot}})
	c, _, _ := joinText(t, n, "r")
	var pid *actor.PID
	select {
	case pid = <-self:
	case <-time.After(10 * time.Second):
		t.Fatal("the resident was not welcomed")
	}
	if _, err := n.Publish(context.Background(), "r", uuid.New(), "", []byte(`"crash"`)); err != nil {
		t.Fatal(err)
	}
	c.Next(t) // the member still gets the message
	eventually(t, "the panicked resident to be stopped", func() bool {
		_, alive := n.system.ProcessRegistry.GetLocal(pid.Id)
		return !alive
	})
	if got := spawned.Load(); got != 1 {
		t.Fatalf("the resident was made %d times, want once: a panicked resident is not restarted", got)
	}
}
