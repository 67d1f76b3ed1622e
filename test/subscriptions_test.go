package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/transport"
)

// TestSubscriptionFrames walks one GET /ws connection through every frame
// and error of subscriptions: connected, subscribe (welcome with ref),
// broadcast and members with a room (ack and members answers carrying
// it), room_required, not_subscribed, already_subscribed, invalid_room,
// unsubscribe/unsubscribed, and the others' joined and left. A member of
// one room never sees another room's messages.
func TestSubscriptionFrames(t *testing.T) {
	ts := startServer(t, transport.Config{})
	c := connectWS(t, ts, "")

	c.sendJSON(`{"type":"broadcast","msg":1,"ref":"r0"}`)
	if f := c.next(); f.Type != "error" || f.Code != "room_required" || string(f.Ref) != `"r0"` {
		t.Fatalf("broadcast without room on /ws: %s, want error room_required", f.raw)
	}
	c.sendJSON(`{"type":"members","ref":"m0"}`)
	if f := c.next(); f.Code != "room_required" {
		t.Fatalf("members without room on /ws: %s, want error room_required", f.raw)
	}

	wa := c.subscribe("a", "")
	if !slices.Equal(wa.Members, []string{c.id}) || wa.Recovered || wa.Epoch == "" {
		t.Fatalf("welcome %s, want members [self], an epoch, recovered false", wa.raw)
	}
	// Someone only in a, and someone only in b, who see c come in.
	onlyA := joinJSON(t, ts, "/ws/a")
	if f := c.next(); f.Type != "joined" || f.Room != "a" || f.ID != onlyA.id {
		t.Fatalf("got %s, want joined a %s", f.raw, onlyA.id)
	}
	onlyB := joinJSON(t, ts, "/ws/b")
	wb := c.subscribe("b", "")
	if !slices.Equal(wb.Members, []string{onlyB.id, c.id}) {
		t.Fatalf("welcome of b %s, want members [onlyB self]", wb.raw)
	}
	if f := onlyB.next(); f.Type != "joined" || f.ID != c.id || f.Room != "b" {
		t.Fatalf("onlyB got %s, want c joined b", f.raw)
	}

	c.sendJSON(`{"type":"subscribe","room":"a","ref":9}`)
	if f := c.next(); f.Code != "already_subscribed" || string(f.Ref) != "9" {
		t.Fatalf("second subscribe to a: %s, want already_subscribed with ref 9", f.raw)
	}
	c.sendJSON(`{"type":"subscribe","room":"no/such","ref":10}`)
	if f := c.next(); f.Code != "invalid_room" || string(f.Ref) != "10" {
		t.Fatalf("subscribe to a bad name: %s, want invalid_room", f.raw)
	}
	c.sendJSON(`{"type":"subscribe","ref":11}`)
	if f := c.next(); f.Code != "invalid_room" {
		t.Fatalf("subscribe with no room: %s, want invalid_room", f.raw)
	}
	c.sendJSON(`{"type":"broadcast","room":"zzz","msg":1,"ref":12}`)
	if f := c.next(); f.Code != "not_subscribed" || string(f.Ref) != "12" {
		t.Fatalf("broadcast to a room not subscribed: %s, want not_subscribed", f.raw)
	}
	c.sendJSON(`{"type":"unsubscribe","room":"zzz","ref":13}`)
	if f := c.next(); f.Code != "not_subscribed" {
		t.Fatalf("unsubscribe from a room not subscribed: %s, want not_subscribed", f.raw)
	}

	// A message to b reaches b's members, the sender, then its ack;
	// onlyA sees nothing of it.
	c.sendJSON(`{"type":"broadcast","room":"b","msg":{"to":"b"},"ref":"rb"}`)
	if f := c.next(); f.Type != "message" || f.Room != "b" || f.Seq != 1 || string(f.Msg) != `{"to":"b"}` {
		t.Fatalf("got %s, want message 1 of b", f.raw)
	}
	c.expect(`{"type":"ack","ref":"rb","room":"b","seq":1}`)
	if f := onlyB.nextOf("message"); f.Room != "b" || f.ID != c.id {
		t.Fatalf("onlyB got %s, want c's message in b", f.raw)
	}
	c.sendJSON(`{"type":"broadcast","room":"a","msg":"to a","ref":"ra"}`)
	if f := c.next(); f.Type != "message" || f.Room != "a" || f.Seq != 1 {
		t.Fatalf("got %s, want message 1 of a", f.raw)
	}
	c.expect(`{"type":"ack","ref":"ra","room":"a","seq":1}`)
	// onlyA's first message is a's, not b's.
	if f := onlyA.nextOf("message"); f.Room != "a" || string(f.Msg) != `"to a"` {
		t.Fatalf("onlyA got %s, want the message to a", f.raw)
	}

	c.sendJSON(`{"type":"members","room":"b","ref":"mb"}`)
	c.expect(`{"type":"members","ref":"mb","room":"b","members":["` + onlyB.id + `","` + c.id + `"]}`)

	// Unsubscribe: the answer, the others' left; a broadcast there is
	// refused from then on.
	c.sendJSON(`{"type":"unsubscribe","room":"a","ref":"u"}`)
	c.expect(`{"type":"unsubscribed","ref":"u","room":"a"}`)
	if f := onlyA.next(); f.Type != "left" || f.ID != c.id || f.Room != "a" {
		t.Fatalf("onlyA got %s, want c left a", f.raw)
	}
	c.sendJSON(`{"type":"broadcast","room":"a","msg":1,"ref":"late"}`)
	if f := c.next(); f.Code != "not_subscribed" {
		t.Fatalf("broadcast after unsubscribe: %s, want not_subscribed", f.raw)
	}

	// A connection with no room left stays open, and may come back.
	c.sendJSON(`{"type":"unsubscribe","room":"b"}`)
	c.expect(`{"type":"unsubscribed","room":"b"}`)
	if f := c.subscribe("a", ""); f.Seq != 1 {
		t.Fatalf("welcome on coming back to a %s, want seq 1", f.raw)
	}
	if f := onlyA.next(); f.Type != "joined" || f.ID != c.id {
		t.Fatalf("onlyA got %s, want c joined again", f.raw)
	}
	// A direct message reaches it by its id, whatever its rooms.
	onlyA.sendJSON(`{"type":"direct","to":"` + c.id + `","msg":"psst","ref":"d"}`)
	if f := c.next(); f.Type != "direct" || f.ID != onlyA.id {
		t.Fatalf("got %s, want onlyA's direct message", f.raw)
	}
	onlyA.expect(`{"type":"ack","ref":"d"}`)
}

// TestSubscriptionFromRoomPath: a connection of /ws/{room} starts in its
// room, may subscribe to more, and its frames without a room mean the
// connect path's room.
func TestSubscriptionFromRoomPath(t *testing.T) {
	ts := startServer(t, transport.Config{})
	c := joinJSON(t, ts, "/ws/home")
	c.subscribe("away", "")
	c.sendJSON(`{"type":"broadcast","msg":"x","ref":1}`)
	if f := c.next(); f.Type != "message" || f.Room != "home" {
		t.Fatalf("got %s, want a message in home", f.raw)
	}
	c.expect(`{"type":"ack","ref":1,"room":"home","seq":1}`)
	c.sendJSON(`{"type":"unsubscribe","room":"home","ref":2}`)
	c.expect(`{"type":"unsubscribed","ref":2,"room":"home"}`)
	c.sendJSON(`{"type":"broadcast","msg":"y","ref":3}`)
	if f := c.next(); f.Code != "not_subscribed" {
		t.Fatalf("broadcast to the path's room after leaving it: %s, want not_subscribed", f.raw)
	}
}

// TestSubscriptionsNeedLobbyV1: GET /ws without the subprotocol is 400
// before any upgrade.
func TestSubscriptionsNeedLobbyV1(t *testing.T) {
	ts := startServer(t, transport.Config{})
	status, body := httpDo(t, "GET", ts.url("/ws"), nil, upgradeHeader())
	expectJSONError(t, status, body, http.StatusBadRequest, "subprotocol_required")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, resp, err := websocket.Dial(ctx, ts.wsURL("/ws"), nil); err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("text-protocol dial of /ws: %v, %v; want 400", err, resp)
	}
}

// TestTooManySubscriptions: past --max-subscriptions a subscribe is an
// error, counted, and the connection stays usable.
func TestTooManySubscriptions(t *testing.T) {
	ts := startServer(t, transport.Config{Config: actors.Config{MaxSubscriptions: 3}})
	c := joinJSON(t, ts, "/ws/r0")
	c.subscribe("r1", "")
	c.subscribe("r2", "")
	c.sendJSON(`{"type":"subscribe","room":"r3","ref":"x"}`)
	if f := c.next(); f.Code != "too_many_subscriptions" || string(f.Ref) != `"x"` {
		t.Fatalf("fourth room: %s, want too_many_subscriptions", f.raw)
	}
	waitMetric(t, ts, `lobby_subscriptions_refused_total{reason="too_many_subscriptions"}`, 1)
	waitMetric(t, ts, `lobby_subscriptions`, 3)
	c.sendJSON(`{"type":"unsubscribe","room":"r1"}`)
	c.nextOf("unsubscribed")
	c.subscribe("r3", "")
	waitMetric(t, ts, `lobby_subscriptions`, 3)
}

// TestSubscriptionPastMaxRooms: a subscribe that would make a room past
// --max-rooms is an error too_many_rooms, and the connection stays.
func TestSubscriptionPastMaxRooms(t *testing.T) {
	ts := startServer(t, transport.Config{Config: actors.Config{MaxRooms: 2, History: -1}})
	c := connectWS(t, ts, "")
	c.subscribe("m1", "")
	c.subscribe("m2", "")
	c.sendJSON(`{"type":"subscribe","room":"m3","ref":3}`)
	if f := c.next(); f.Code != "too_many_rooms" || string(f.Ref) != "3" {
		t.Fatalf("third room: %s, want too_many_rooms", f.raw)
	}
	waitMetric(t, ts, `lobby_subscriptions_refused_total{reason="too_many_rooms"}`, 1)
	c.sendJSON(`{"type":"broadcast","room":"m2","msg":1,"ref":4}`)
	c.nextOf("message")
	if f := c.next(); f.Type != "ack" || f.Room != "m2" {
		t.Fatalf("got %s, want the ack in m2", f.raw)
	}
}

// TestSubscriptionForbiddenByToken: with --jwt-secret, GET /ws needs a
// valid token, and a subscribe to a room its rooms claim does not allow
// is an error forbidden; the connection stays open.
func TestSubscriptionForbiddenByToken(t *testing.T) {
	secret := "jwt-secret-for-tests"
	ts := startServer(t, transport.Config{JWTSecret: secret})
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"exp": time.Now().Add(time.Hour).Unix(), "rooms": []string{"team-*"}, "name": "Ada",
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	status, body := httpDo(t, "GET", ts.url("/ws"), nil, func() http.Header {
		h := upgradeHeader()
		h.Set("Sec-WebSocket-Protocol", "lobby.v1")
		return h
	}())
	expectJSONError(t, status, body, http.StatusUnauthorized, "unauthorized")

	c := connectWS(t, ts, "?token="+tok)
	c.sendJSON(`{"type":"subscribe","room":"news","ref":1}`)
	if f := c.next(); f.Code != "forbidden" || string(f.Ref) != "1" {
		t.Fatalf("subscribe to news: %s, want forbidden", f.raw)
	}
	// The token's name is the member's, whatever the subscribe says.
	w := c.subscribe("team-a", `,"name":"Mallory"`)
	if w.Names[c.id] != "Ada" {
		t.Fatalf("welcome %s, want the token's name Ada for self", w.raw)
	}
	waitMetric(t, ts, `lobby_subscriptions_refused_total{reason="forbidden"}`, 1)
}

// TestSubscriptionNames: a name on connect or on subscribe is shown in
// welcome, joined and members; ids stay the identity.
func TestSubscriptionNames(t *testing.T) {
	ts := startServer(t, transport.Config{})
	ann := connectWS(t, ts, "?name=Ann")
	ann.subscribe("n", "")
	bob := connectWS(t, ts, "")
	w := bob.subscribe("n", `,"name":"Bob ☕"`)
	if w.Names[ann.id] != "Ann" || w.Names[bob.id] != "Bob ☕" {
		t.Fatalf("welcome %s, want names Ann and Bob ☕", w.raw)
	}
	if f := ann.next(); f.Type != "joined" || f.Name != "Bob ☕" || f.ID != bob.id {
		t.Fatalf("ann got %s, want Bob ☕ joined", f.raw)
	}
	bob.sendJSON(`{"type":"members","room":"n"}`)
	if f := bob.next(); f.Names[ann.id] != "Ann" || len(f.Members) != 2 {
		t.Fatalf("members %s, want two with Ann's name", f.raw)
	}
	bob.sendJSON(`{"type":"subscribe","room":"m","name":"` + strings.Repeat("x", 33) + `"}`)
	if f := bob.next(); f.Code != "invalid_name" {
		t.Fatalf("a 33-character name: %s, want invalid_name", f.raw)
	}
	status, body := httpDo(t, "GET", ts.url("/ws?name=%07bell"), nil, func() http.Header {
		h := upgradeHeader()
		h.Set("Sec-WebSocket-Protocol", "lobby.v1")
		return h
	}())
	expectJSONError(t, status, body, http.StatusBadRequest, "invalid_name")
}

// TestSubscriptionRecoveryPerRoom: a client in two rooms is cut off while
// both go on; it reconnects on a new connection and subscribes to each
// with its own since and epoch, and gets exactly what it missed in each,
// in order, then live messages.
func TestSubscriptionRecoveryPerRoom(t *testing.T) {
	ts := startServer(t, transport.Config{})
	c := connectWS(t, ts, "")
	wa, wb := c.subscribe("ra", ""), c.subscribe("rb", "")
	publish := func(room string, n int) {
		t.Helper()
		status, body := httpDo(t, "POST", ts.url("/rooms/"+room+"/broadcast"), fmt.Appendf(nil, `{"n":%d}`, n), nil)
		if status != http.StatusOK {
			t.Fatalf("publish: %d %s", status, body)
		}
	}
	for i := 1; i <= 3; i++ {
		publish("ra", i)
		publish("rb", 10+i)
	}
	last := map[string]uint64{}
	for len(last) < 2 || last["ra"] < 3 || last["rb"] < 3 {
		f := c.nextOf("message")
		if f.Seq != last[f.Room]+1 {
			t.Fatalf("room %s: seq %d after %d", f.Room, f.Seq, last[f.Room])
		}
		last[f.Room] = f.Seq
	}
	c.ws.CloseNow()

	for i := 4; i <= 6; i++ {
		publish("ra", i)
	}
	publish("rb", 14)

	d := connectWS(t, ts, "")
	ra := d.subscribe("ra", fmt.Sprintf(`,"since":%d,"epoch":"%s"`, last["ra"], wa.Epoch))
	if !ra.Recovered || ra.Seq != 6 {
		t.Fatalf("welcome of ra %s, want recovered, the room at seq 6", ra.raw)
	}
	for want := uint64(4); want <= 6; want++ {
		if f := d.nextOf("message"); f.Room != "ra" || f.Seq != want {
			t.Fatalf("got %s, want ra's message %d", f.raw, want)
		}
	}
	rb := d.subscribe("rb", fmt.Sprintf(`,"since":%d,"epoch":"%s"`, last["rb"], wb.Epoch))
	if !rb.Recovered {
		t.Fatalf("welcome of rb %s, want recovered", rb.raw)
	}
	if f := d.nextOf("message"); f.Room != "rb" || f.Seq != 4 || string(f.Msg) != `{"n":14}` {
		t.Fatalf("got %s, want rb's message 4", f.raw)
	}
	// A wrong epoch is not recovered.
	d.sendJSON(`{"type":"unsubscribe","room":"rb"}`)
	d.nextOf("unsubscribed")
	if f := d.subscribe("rb", `,"since":1,"epoch":"other"`); f.Recovered {
		t.Fatalf("welcome with a wrong epoch %s, want recovered false", f.raw)
	}
	publish("ra", 7)
	if f := d.nextOf("message"); f.Room != "ra" || f.Seq != 7 {
		t.Fatalf("got %s, want ra's live message 7", f.raw)
	}
	d.sendJSON(`{"type":"subscribe","room":"rc","since":-1}`)
	if f := d.next(); f.Code != "invalid_since" {
		t.Fatalf("since -1: %s, want invalid_since", f.raw)
	}
}

// TestSlowConsumerInManyRooms: a client in five rooms that stops reading
// is closed once as a slow consumer (one close, one disconnect counted),
// and leaves every room; the rooms go on for the others.
func TestSlowConsumerInManyRooms(t *testing.T) {
	ts := startServer(t, transport.Config{Config: actors.Config{ClientTimeout: time.Hour, Logger: quietLogger(t)},
		SendQueue: 16, WriteTimeout: 2 * time.Second})
	ws, id := dialStalled(t, ts, "/ws/s0")
	for i := 1; i < 5; i++ {
		msg := fmt.Sprintf(`{"type":"subscribe","room":"s%d"}`, i)
		if err := ws.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	watcher := joinJSON(t, ts, "/ws/s4")
	eventually(t, "the stalled client in five rooms", func() bool { return metricValue(t, ts, "lobby_subscriptions") == 6 })
	big := strings.Repeat("x", 8<<10)
	closed := false
	for n := 0; !closed && n < 5000; n++ {
		room := fmt.Sprintf("s%d", n%5)
		httpDo(t, "POST", ts.url("/rooms/"+room+"/broadcast"), fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, n, big), nil)
		closed = metricValue(t, ts, `lobby_disconnects_total{reason="slow_consumer"}`) > 0
	}
	if !closed {
		t.Fatal("the stalled client was never closed")
	}
	// It has left all five rooms: the watcher sees it leave s4, and
	// the node counts the watcher's membership alone.
	for {
		f := watcher.next()
		if f.Type == "left" && f.ID == id {
			break
		}
	}
	waitMetric(t, ts, "lobby_subscriptions", 1)
	if n := metricValue(t, ts, `lobby_disconnects_total{reason="slow_consumer"}`); n != 1 {
		t.Fatalf("%v slow-consumer disconnects, want 1", n)
	}
	watcher.sendJSON(`{"type":"broadcast","msg":"still here","ref":1}`)
	f := watcher.next()
	for f.Type != "ack" {
		f = watcher.next() // the messages published meanwhile
	}
}

// TestSubscriptionStorm: one client subscribes and unsubscribes 10 000
// times over 50 rooms. Every answer comes, in order, and afterwards no
// room and no membership is left behind.
func TestSubscriptionStorm(t *testing.T) {
	const (
		rounds = 10_000
		rooms  = 50
		window = 40 // subscribe/unsubscribe pairs in flight
	)
	ts := startServer(t, transport.Config{Config: actors.Config{History: -1, Logger: quietLogger(t)}, Rate: -1, RateBytes: -1})
	c := connectWS(t, ts, "")
	watcher := joinJSON(t, ts, "/ws/watch")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make(chan error, 1)
	go func() {
		var b strings.Builder
		for i := 0; i < rounds; i += window {
			b.Reset()
			for j := i; j < i+window; j++ {
				room := fmt.Sprintf("storm-%d", j%rooms)
				if err := c.ws.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"subscribe","room":"%s","ref":%d}`, room, j)); err != nil {
					errs <- err
					return
				}
				if err := c.ws.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"unsubscribe","room":"%s","ref":%d}`, room, j)); err != nil {
					errs <- err
					return
				}
			}
			// Keep at most two windows in flight: the hold before a
			// join completes is bounded, as a client's should be.
			select {
			case <-ctx.Done():
				return
			case errs <- nil:
			}
		}
	}()
	var want int
	for want < rounds {
		if want%window == 0 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		var f struct {
			Type string
			Ref  int
			Room string
		}
		for _, typ := range []string{"welcome", "unsubscribed"} {
			_, data := c.read()
			if err := json.Unmarshal(data, &f); err != nil || f.Type != typ || f.Ref != want {
				t.Fatalf("frame %s, want %s of ref %d", data, typ, want)
			}
		}
		want++
	}
	waitMetric(t, ts, "lobby_subscriptions", 1) // the watcher's
	eventually(t, "the storm's rooms to go", func() bool {
		_, body := httpDo(t, "GET", ts.url("/rooms"), nil, nil)
		var list struct{ Rooms []struct{ Room string } }
		return json.Unmarshal(body, &list) == nil && len(list.Rooms) == 1 && list.Rooms[0].Room == "watch"
	})
	watcher.sendJSON(`{"type":"members","ref":1}`)
	if f := watcher.nextOf("members"); !slices.Equal(f.Members, []string{watcher.id}) {
		t.Fatalf("members of watch %v, want the watcher alone", f.Members)
	}
}

// TestClusterSubscriptions: one connection on node 0 in two rooms whose
// other members sit on node 1; messages of each room reach it in order
// with their room, presence crosses nodes per room, and an unsubscribe
// is seen on the other node as a leave of that room alone.
func TestClusterSubscriptions(t *testing.T) {
	c := startCluster(t, 2)
	sub := connectWS(t, c.node(0), "")
	x := joinJSON(t, c.node(1), "/ws/cx")
	y := joinJSON(t, c.node(1), "/ws/cy")
	eventually(t, "node 0 to know node 1's members", func() bool {
		return slices.Contains(roomMembers(t, c.node(0), "cx"), x.id) && slices.Contains(roomMembers(t, c.node(0), "cy"), y.id)
	})
	wx := sub.subscribe("cx", "")
	if !slices.Contains(wx.Members, x.id) {
		t.Fatalf("welcome of cx %s, want node 1's member in it", wx.raw)
	}
	sub.subscribe("cy", "")
	x.expectPresence("joined", sub.id)
	y.expectPresence("joined", sub.id)
	for i := range 2 {
		eventually(t, fmt.Sprintf("node %d to list the subscriber in both rooms", i), func() bool {
			return slices.Contains(roomMembers(t, c.node(i), "cx"), sub.id) && slices.Contains(roomMembers(t, c.node(i), "cy"), sub.id)
		})
	}
	x.sendJSON(`{"type":"broadcast","msg":"x1"}`)
	y.sendJSON(`{"type":"broadcast","msg":"y1"}`)
	x.sendJSON(`{"type":"broadcast","msg":"x2"}`)
	got := map[string][]string{}
	for len(got["cx"]) < 2 || len(got["cy"]) < 1 {
		f := sub.nextOf("message")
		got[f.Room] = append(got[f.Room], string(f.Msg))
	}
	if !slices.Equal(got["cx"], []string{`"x1"`, `"x2"`}) || !slices.Equal(got["cy"], []string{`"y1"`}) {
		t.Fatalf("messages by room %v", got)
	}
	sub.sendJSON(`{"type":"broadcast","room":"cy","msg":"from node 0","ref":1}`)
	if f := y.nextOf("message"); string(f.Msg) != `"y1"` {
		t.Fatalf("y got %s, want its own message first", f.raw)
	}
	if f := y.nextOf("message"); f.Room != "cy" || f.ID != sub.id {
		t.Fatalf("y got %s, want the subscriber's message", f.raw)
	}
	if f := sub.nextOf("message"); f.ID != sub.id {
		t.Fatalf("got %s, want the subscriber's own message", f.raw)
	}
	if f := sub.nextOf("ack"); f.Room != "cy" {
		t.Fatalf("ack %s, want room cy", f.raw)
	}
	sub.sendJSON(`{"type":"unsubscribe","room":"cx"}`)
	sub.nextOf("unsubscribed")
	for f := x.next(); f.Type != "left" || f.ID != sub.id; f = x.next() {
		if f.Type == "left" {
			t.Fatalf("x got %s, want the subscriber's left", f.raw)
		}
	}
	eventually(t, "node 1 to keep the subscriber in cy alone", func() bool {
		return !slices.Contains(roomMembers(t, c.node(1), "cx"), sub.id) && slices.Contains(roomMembers(t, c.node(1), "cy"), sub.id)
	})
}

// TestClusterDirectToNoRoom: a GET /ws connection in no room, on node 0,
// gets direct messages sent on node 1, before it subscribes and after it
// has left its last room; no node lists a room for it.
func TestClusterDirectToNoRoom(t *testing.T) {
	c := startCluster(t, 2)
	lone := connectWS(t, c.node(0), "")
	send := func(msg string) int {
		status, _ := httpDo(t, "POST", c.node(1).url("/sessions/"+lone.id+"/send"), []byte(msg), nil)
		return status
	}
	eventually(t, "node 1 to know where the session is", func() bool { return send(`"first"`) == http.StatusOK })
	if f := lone.next(); f.Type != "direct" || string(f.Msg) != `"first"` {
		t.Fatalf("got %s, want the direct message", f.raw)
	}
	other := joinJSON(t, c.node(1), "/ws/meet")
	other.sendJSON(`{"type":"direct","to":"` + lone.id + `","msg":"hi","ref":"d"}`)
	if f := lone.next(); f.Type != "direct" || f.ID != other.id {
		t.Fatalf("got %s, want other's direct message", f.raw)
	}
	other.expect(`{"type":"ack","ref":"d"}`)
	lone.subscribe("meet", "")
	lone.sendJSON(`{"type":"unsubscribe","room":"meet"}`)
	lone.nextOf("unsubscribed")
	if send(`"after"`) != http.StatusOK {
		t.Fatal("a direct message to the session in no room again was not delivered")
	}
	if f := lone.next(); string(f.Msg) != `"after"` {
		t.Fatalf("got %s, want the direct message", f.raw)
	}
	for i := range 2 {
		_, body := httpDo(t, "GET", c.node(i).url("/rooms"), nil, nil)
		if strings.Contains(string(body), `"room":""`) {
			t.Fatalf("node %d lists a room with no name: %s", i, body)
		}
	}
	lone.ws.CloseNow()
	eventually(t, "node 1 to forget the session", func() bool { return send(`"gone"`) == http.StatusNotFound })
}
