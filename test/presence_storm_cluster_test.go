package test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/transport"
)

// TestClusterReconnectStorm is issue 21's finding 13 as measured: lobby.v1
// clients of one node reconnect to another at once, asking to recover.
// Each gets its replay and, before the fix, a joined or left frame for
// every other client moving (their leaves from the first node, their
// joins here): with a send queue of 32 frames, they were closed 1008 slow
// consumer mid-replay. Now every one is recovered, stays connected, and
// ends with the right member list.
func TestClusterReconnectStorm(t *testing.T) {
	const storm, replay = 200, 20
	c := startCluster(t, 2, "--send-queue", "32", "--history", "31")
	a, b := c.node(0), c.node(1)
	clients := make([]*jsonClient, storm)
	for i := range clients {
		clients[i] = joinJSON(t, a, "/ws/move")
	}
	epoch := clients[0].welcome.Epoch
	for i := 1; i <= replay; i++ {
		if status, body := httpDo(t, "POST", a.url("/rooms/move/broadcast"), fmt.Appendf(nil, `{"n":%d}`, i), nil); status != http.StatusOK {
			t.Fatalf("publish %d: %d %s", i, status, body)
		}
	}
	last := uint64(replay)
	waitRoomSeq(t, b, "move", last)
	watcher := joinJSON(t, b, "/ws/move")

	// All at once: they drop, and dial the other node with since 0.
	for _, cl := range clients {
		_ = cl.ws.CloseNow()
	}
	conns := make([]*websocket.Conn, storm)
	errs := make(chan error, storm)
	var wg sync.WaitGroup
	for w := range 20 {
		wg.Go(func() {
			for i := w; i < storm; i += 20 {
				ctx, cancel := context.WithTimeout(context.Background(), waitFor)
				ws, _, err := websocket.Dial(ctx, b.wsURL(fmt.Sprintf("/ws/move?since=0&epoch=%s", epoch)),
					&websocket.DialOptions{Subprotocols: []string{transport.SubprotocolJSON}})
				cancel()
				if err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				ws.SetReadLimit(-1)
				conns[i] = ws
			}
		})
	}
	wg.Wait()
	close(errs)
	for _, ws := range conns {
		if ws != nil {
			t.Cleanup(func() { _ = ws.CloseNow() })
		}
	}
	for err := range errs {
		t.Fatal(err)
	}
	// The room on node 1 has let the old ids go (node 0's leaves come
	// beside the stream, not in it) before the message that ends the test.
	eventually(t, "node 1 to list the moved clients alone", func() bool { return len(roomMembers(t, b, "move")) == storm+1 })
	// One message after the storm; every client reads its welcome
	// (recovered), its replay, then that message, and its member list
	// from the presence it got is the room's.
	if status, body := httpDo(t, "POST", b.url("/rooms/move/broadcast"), []byte(`"after"`), nil); status != http.StatusOK {
		t.Fatalf("publish: %d %s", status, body)
	}
	readers := append([]*jsonClient{watcher}, make([]*jsonClient, 0, storm)...)
	for _, ws := range conns {
		cl := &jsonClient{client: &client{t: t, ws: ws}}
		cl.welcome = cl.next()
		if cl.welcome.Type != "welcome" || !cl.welcome.Recovered {
			t.Fatalf("welcome %s, want recovered", cl.welcome.raw)
		}
		cl.id = cl.welcome.ID
		readers = append(readers, cl)
	}
	want := roomMembers(t, b, "move")
	if len(want) != storm+1 {
		t.Fatalf("node 1 lists %d members, want %d", len(want), storm+1)
	}
	frames := 0
	for i, cl := range readers {
		members := slices.Clone(cl.welcome.Members)
		seq := cl.welcome.Seq
		if i > 0 {
			seq = 0 // the replay follows
		}
		for done := false; !done; {
			f := cl.next()
			frames++
			switch f.Type {
			case "joined":
				if !slices.Contains(members, f.ID) {
					members = append(members, f.ID)
				}
			case "left":
				members = slices.DeleteFunc(members, func(id string) bool { return id == f.ID })
			case "members":
				members = slices.Clone(f.Members)
			case "message":
				if f.Seq != seq+1 {
					t.Fatalf("client %d: seq %d after %d", i, f.Seq, seq)
				}
				seq = f.Seq
				done = string(f.Msg) == `"after"`
			default:
				t.Fatalf("client %d: %s", i, f.raw)
			}
		}
		slices.Sort(members)
		if !slices.Equal(members, sortedCopy(want)) {
			t.Fatalf("client %d ends with %d members, want the %d node 1 lists", i, len(members), len(want))
		}
	}
	t.Logf("%d clients read %d frames in all (welcomes left out), %d replayed messages each", len(readers), frames, replay)
	if n := metricValue(t, b, `lobby_disconnects_total{reason="slow_consumer"}`); n != 0 {
		t.Fatalf("%v clients closed as slow consumers on node 1, want none", n)
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
