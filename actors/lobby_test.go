package actors

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lobby/lobby/actors/socket/sockettest"
	"github.com/lobby/lobby/messages"
)

func newTestNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// TestJoinRacingTheLastLeave runs the race the lobby is built to win: the
// last member of a room leaves while a newcomer joins the same name. The
// newcomer must always land in a live room and hear itself.
func TestJoinRacingTheLastLeave(t *testing.T) {
	// No history, so that a room is stopped as soon as it is empty.
	n := newTestNode(t, Config{History: -1})
	for i := range 200 {
		leaverConn := sockettest.NewConn()
		leaver := n.Spawn(n.SessionProps(leaverConn, Join{Room: "race"}))
		leaverConn.Next(t) // welcome

		joinerConn := sockettest.NewConn()
		var wg sync.WaitGroup
		wg.Go(func() { n.Stop(leaver) })
		joiner := n.Spawn(n.SessionProps(joinerConn, Join{Room: "race"}))
		wg.Wait()

		welcome := joinerConn.Next(t)
		id, ok := strings.CutPrefix(welcome, "your id is ")
		if !ok {
			t.Fatalf("round %d: first frame %q", i, welcome)
		}
		n.Send(joiner, &messages.ClientMessage{Data: []byte("me")})
		want := `{"id":"` + id + `","msg":"me","room_id":"race"}`
		for {
			f := joinerConn.Next(t)
			if f == want {
				break
			}
			if !strings.HasSuffix(f, " just joined!") && !strings.HasSuffix(f, " disconnected.") {
				t.Fatalf("round %d: got %q, want %q", i, f, want)
			}
		}
		n.Stop(joiner)
	}
	// The last leave reaches the room, which reports itself idle, and the
	// lobby stops it.
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for {
		rooms, _, err := n.Rooms(context.Background(), "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(rooms) == 0 {
			break
		}
		select {
		case <-deadline.C:
			t.Fatalf("rooms left after everyone left: %+v", rooms)
		case <-poll.C:
		}
	}
}

func TestDrainingLobbyRefusesJoins(t *testing.T) {
	n := newTestNode(t, Config{})
	if err := n.BeginDrain(context.Background()); err != nil {
		t.Fatal(err)
	}
	conn := sockettest.NewConn()
	pid := n.Spawn(n.SessionProps(conn, Join{Room: "late"}))
	select {
	case closed := <-conn.Closed:
		if closed != "1001 server shutting down" {
			t.Fatalf("closed %q, want 1001 server shutting down", closed)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session was not closed")
	}
	select {
	case f := <-conn.Frames:
		t.Fatalf("a refused client got %q; it never joined", f)
	default:
	}
	n.Stop(pid)
}

// panicConn panics on the frame "boom", as a bug reached by one client
// would.
type panicConn struct{ *sockettest.Conn }

func (c panicConn) Send(data []byte, binary bool) bool {
	if string(data) == "boom" {
		panic("bug")
	}
	return c.Conn.Send(data, binary)
}

func TestPanicClosesOnlyThatClientWith1011(t *testing.T) {
	n := newTestNode(t, Config{History: -1})
	victim := sockettest.NewConn()
	pid := n.Spawn(n.SessionProps(panicConn{victim}, Join{Room: "p"}))
	victim.Next(t) // welcome
	other := sockettest.NewConn()
	otherPID := n.Spawn(n.SessionProps(other, Join{Room: "p"}))
	other.Next(t)
	victim.Next(t) // the other's joined notice

	n.Send(pid, &messages.WsMessage{Data: []byte("boom")})
	select {
	case closed := <-victim.Closed:
		if closed != "1011 internal error" {
			t.Fatalf("closed %q, want 1011 internal error", closed)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the panicking session did not close its connection")
	}
	// It stopped (not restarted with a new id): its room is told it left,
	// and the other member is untouched.
	if f := other.Next(t); !strings.HasSuffix(f, " disconnected.") {
		t.Fatalf("other member got %q, want the disconnected notice", f)
	}
	select {
	case c := <-other.Closed:
		t.Fatalf("the other member was closed too: %s", c)
	default:
	}
	victim.WaitStopped(t)
	select {
	case <-other.Stopped:
		t.Fatal("the other member's actor stopped too")
	default:
	}
	n.Stop(otherPID)
}

// TestPoisonedSessionTellsItsConn: Poison returns at once; the socket.Conn learns
// when the actor has stopped, after its room was told and after protoactor
// forgot its pid, so that the transport may shut the socket then.
func TestPoisonedSessionTellsItsConn(t *testing.T) {
	n := newTestNode(t, Config{History: -1})
	leaving, staying := sockettest.NewConn(), sockettest.NewConn()
	pid := n.Spawn(n.SessionProps(leaving, Join{Room: "s"}))
	leaving.Next(t)
	stayingPID := n.Spawn(n.SessionProps(staying, Join{Room: "s"}))
	staying.Next(t)
	leaving.Next(t) // joined notice

	n.Poison(pid)
	leaving.WaitStopped(t)
	if _, ok := n.system.ProcessRegistry.GetLocal(pid.Id); ok {
		t.Fatal("the stopped session is still registered")
	}
	if f := staying.Next(t); !strings.HasSuffix(f, " disconnected.") {
		t.Fatalf("the other member got %q, want the disconnected notice", f)
	}
	n.Stop(stayingPID)
	staying.WaitStopped(t) // Stop's wait covers socket actors too
}

// TestEmptyRoomLingers: a member who leaves and comes back within
// chat.EmptyRoomLinger finds the same room (same epoch), and the room goes once
// the linger is over.
func TestEmptyRoomLingers(t *testing.T) {
	n := newTestNode(t, Config{History: -1})
	ctx := context.Background()
	roomInfo := func() *messages.RoomInfo {
		t.Helper()
		info, err := n.Room(ctx, "l")
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	waitRoom := func(what string, done func(*messages.RoomInfo) bool) *messages.RoomInfo {
		t.Helper()
		deadline := time.NewTimer(10 * time.Second)
		defer deadline.Stop()
		poll := time.NewTicker(time.Millisecond)
		defer poll.Stop()
		for {
			if info := roomInfo(); done(info) {
				return info
			}
			select {
			case <-deadline.C:
				t.Fatalf("timed out waiting for %s", what)
			case <-poll.C:
			}
		}
	}
	first := sockettest.NewConn()
	pid := n.Spawn(n.SessionProps(first, Join{Room: "l"}))
	first.Next(t) // welcome
	epoch := roomInfo().Epoch
	n.Stop(pid)
	waitRoom("the member to leave", func(i *messages.RoomInfo) bool { return i.Found && len(i.Members) == 0 })

	again := sockettest.NewConn()
	pid = n.Spawn(n.SessionProps(again, Join{Room: "l"}))
	again.Next(t)
	if got := roomInfo(); got.Epoch != epoch {
		t.Fatalf("rejoined a room in epoch %s, want the lingering room's %s", got.Epoch, epoch)
	}
	n.Stop(pid)
	waitRoom("the room to go", func(i *messages.RoomInfo) bool { return !i.Found })
}
