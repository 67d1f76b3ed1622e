package test

import (
	"slices"
	"testing"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/transport"
)

// TestRoomPresenceStorm is issue 21's finding 13: a burst of joins and
// leaves (a reconnect storm) must not close a healthy lobby.v1 member as a
// slow consumer. 300 clients subscribe to a room and leave it again while
// a member with a send queue of 32 frames watches; before the fix the
// room sent it 600 presence frames at once and it was closed 1008 slow
// consumer. Now it gets at most a burst of joined and left frames and
// then members snapshots, and the list it builds from them is right.
func TestRoomPresenceStorm(t *testing.T) {
	ts := startServer(t, transport.Config{SendQueue: 32, Config: actors.Config{Logger: quietLogger(t)}})
	const storm = 300
	watcher := joinJSON(t, ts, "/ws/storm")
	others := make([]*jsonClient, storm)
	for i := range others {
		others[i] = connectWS(t, ts, "")
	}
	for _, c := range others {
		c.sendJSON(`{"type":"subscribe","room":"storm","ref":1}`)
	}
	for _, c := range others {
		c.sendJSON(`{"type":"unsubscribe","room":"storm","ref":2}`)
	}
	// Every storm client has left once it reads its unsubscribed; none
	// may have been closed on the way.
	for i, c := range others {
		for f := c.next(); f.Type != "unsubscribed"; f = c.next() {
			if f.Type == "error" {
				t.Fatalf("storm client %d: %s", i, f.raw)
			}
		}
	}
	// A message flushes what the room coalesced: by its ack the watcher
	// has been told every join and leave before it.
	watcher.sendJSON(`{"type":"broadcast","msg":"after the storm","ref":"end"}`)
	members := slices.Clone(watcher.welcome.Members)
	presence := map[string]int{}
	for {
		f := watcher.next()
		presence[f.Type]++
		switch f.Type {
		case "joined":
			if !slices.Contains(members, f.ID) {
				members = append(members, f.ID)
			}
		case "left":
			members = slices.DeleteFunc(members, func(id string) bool { return id == f.ID })
		case "members":
			if f.Ref != nil {
				t.Fatalf("members frame with a ref nobody asked for: %s", f.raw)
			}
			members = slices.Clone(f.Members)
		}
		if f.Type == "ack" {
			break
		}
	}
	t.Logf("the watcher got %d joined, %d left, %d members frames for %d joins and leaves",
		presence["joined"], presence["left"], presence["members"], 2*storm)
	if !slices.Equal(members, []string{watcher.id}) {
		t.Fatalf("watcher's member list after the storm has %d ids, want only its own: %v", len(members), members)
	}
	if n := presence["joined"] + presence["left"] + presence["members"]; n > 2*storm/4 {
		t.Fatalf("watcher got %d presence frames for %d joins and leaves: they were not coalesced", n, 2*storm)
	}
	if n := metricValue(t, ts, `lobby_disconnects_total{reason="slow_consumer"}`); n != 0 {
		t.Fatalf("%v clients closed as slow consumers, want none", n)
	}
	watcher.sendJSON(`{"type":"members","ref":"m"}`)
	if f := watcher.nextOf("members"); !slices.Equal(f.Members, []string{watcher.id}) {
		t.Fatalf("members answer %s, want only %s", f.raw, watcher.id)
	}
}

// TestBrowserPresenceStorm: lobby.js takes the members frame a room sends
// for a burst of joins and leaves as the room's member list, and calls
// onPresence with it. Like TestBrowser, it skips without Chromium unless
// CI is set.
func TestBrowserPresenceStorm(t *testing.T) {
	ts := startServer(t, transport.Config{Config: actors.Config{Logger: quietLogger(t)}})
	b := startBrowser(t)
	p := b.open(t, "storm", ts.url("/status"))
	p.waitFor("the page", `() => document.readyState === "complete"`)
	p.waitFor("lobby.js in the room", `async () => {
		if (!window.__storm) {
			const { Lobby } = await import("/lobby.js");
			window.__stormLobby = new Lobby(location.origin, {});
			window.__stormTypes = [];
			window.__storm = window.__stormLobby.join("pstorm", {
				onPresence: (p) => window.__stormTypes.push(p.type),
			});
		}
		return window.__storm.state === "live";
	}`)
	const storm = 60
	others := make([]*jsonClient, storm)
	ids := make([]string, storm)
	for i := range others {
		others[i] = joinJSON(t, ts, "/ws/pstorm")
		ids[i] = others[i].id
	}
	// The first 40 leave; the page is left with the last 20, in join order.
	for _, c := range others[:40] {
		_ = c.ws.CloseNow()
	}
	want := ids[40:]
	p.waitFor("the member list after the storm", `(want) => {
		const others = window.__storm.members.filter((id) => id !== window.__stormLobby.id);
		return window.__storm.members.length === want.length + 1 && others.every((id, i) => id === want[i]);
	}`, want)
	types := evaluate[[]string](p, `window.__stormTypes`)
	if !slices.Contains(types, "members") {
		t.Fatalf("onPresence got %v: no members frame, so the burst was not coalesced", types)
	}
	if n := len(types); n > storm {
		t.Fatalf("onPresence was called %d times for %d joins and %d leaves", n, storm, 40)
	}
	t.Logf("onPresence was called %d times for %d joins and 40 leaves", len(types), storm)
	p.close()
}
