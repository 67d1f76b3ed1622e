package test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"
)

// The idempotency tests post the same Idempotency-Key twice (issue 21,
// "Cluster faults" 5: a publisher that retried after a 503 stored its
// message twice), on one node and across the nodes of a cluster.

// keyedAnswer is a publish route's answer.
type keyedAnswer struct {
	Room      string `json:"room"`
	ID        string `json:"id"`
	Seq       uint64 `json:"seq"`
	Delivered int    `json:"delivered"`
	Duplicate bool   `json:"duplicate"`
}

// postKeyed publishes body to path on ts with key as its
// Idempotency-Key, and wants a 200.
func postKeyed(t *testing.T, ts *testServer, path, key, body string) keyedAnswer {
	t.Helper()
	status, resp := httpDo(t, "POST", ts.url(path), []byte(body), http.Header{"Idempotency-Key": {key}})
	if status != http.StatusOK {
		t.Fatalf("POST %s with key %q: %d %s", path, key, status, resp)
	}
	var a keyedAnswer
	if err := json.Unmarshal(resp, &a); err != nil || a.Seq == 0 {
		t.Fatalf("POST %s answered %s (%v)", path, resp, err)
	}
	return a
}

// checkIdempotent posts one key to one room through every node in turn:
// the first answer stores it, every later one says duplicate with the
// same seq. A member on the first and on the last node receives it
// once, history holds it once, and the same key in another room is a
// message of its own.
func checkIdempotent(t *testing.T, nodes []*testServer, room string) {
	t.Helper()
	first, last := nodes[0], nodes[len(nodes)-1]
	members := []*jsonClient{joinJSON(t, first, "/ws/"+room), joinJSON(t, last, "/ws/"+room)}
	const key = "order-4711"
	orig := postKeyed(t, first, "/rooms/"+room+"/broadcast", key, `{"n":1}`)
	if orig.Duplicate || orig.Delivered == 0 {
		t.Fatalf("the first publish answered %+v", orig)
	}
	for i, n := range append(nodes, first) {
		again := postKeyed(t, n, "/rooms/"+room+"/broadcast", key, `{"n":1}`)
		if !again.Duplicate || again.Seq != orig.Seq || again.Room != room {
			t.Fatalf("retry %d (node %s) answered %+v, want duplicate of %+v", i, n.addr, again, orig)
		}
	}
	// A publish with another key after the retries is the very next
	// seq: none of them was stored.
	marker := postKeyed(t, last, "/rooms/"+room+"/broadcast", "marker-1", `"marker"`)
	if marker.Duplicate || marker.Seq != orig.Seq+1 {
		t.Fatalf("the publish after the retries answered %+v, want seq %d", marker, orig.Seq+1)
	}
	// Once the room has gone on, a retry is still the first one's, on
	// every node, whatever each knows of the room's last message.
	for _, n := range nodes {
		waitRoomSeq(t, n, room, marker.Seq)
	}
	for i, n := range nodes {
		again := postKeyed(t, n, "/rooms/"+room+"/broadcast", key, `{"n":1}`)
		if !again.Duplicate || again.Seq != orig.Seq {
			t.Fatalf("late retry %d (node %s) answered %+v, want duplicate of %+v", i, n.addr, again, orig)
		}
	}
	marker2 := postKeyed(t, first, "/rooms/"+room+"/broadcast", "marker-2", `"marker 2"`)
	if marker2.Duplicate || marker2.Seq != marker.Seq+1 {
		t.Fatalf("the publish after the late retries answered %+v, want seq %d", marker2, marker.Seq+1)
	}
	for i, m := range members {
		for _, want := range []struct {
			seq uint64
			msg string
		}{{orig.Seq, `{"n":1}`}, {marker.Seq, `"marker"`}, {marker2.Seq, `"marker 2"`}} {
			if f := m.nextOf("message"); f.Seq != want.seq || string(f.Msg) != want.msg {
				t.Fatalf("member %d: got %s, want seq %d %s: the key was delivered twice", i, f.raw, want.seq, want.msg)
			}
		}
	}
	for _, n := range nodes {
		waitRoomSeq(t, n, room, marker2.Seq)
		if got := historyMessages(t, n, room); got != 3 {
			t.Fatalf("history of %s on %s holds %d messages, want 3", room, n.addr, got)
		}
	}
	// The same key in another room, and on the statistics route, is a
	// message of each.
	other := postKeyed(t, last, "/rooms/"+room+"-other/broadcast", key, `{"n":1}`)
	if other.Duplicate || other.Room != room+"-other" {
		t.Fatalf("the key in another room answered %+v", other)
	}
	stats := postKeyed(t, first, "/dailyDashBoard", key, `[{"product_line":"a","total_trx":1}]`)
	if stats.Duplicate {
		t.Fatalf("the key on /dailyDashBoard answered %+v", stats)
	}
	if again := postKeyed(t, last, "/dailyDashBoard", key, `[{"product_line":"a","total_trx":1}]`); !again.Duplicate || again.Seq != stats.Seq {
		t.Fatalf("the key again on /dailyDashBoard answered %+v, want duplicate of %+v", again, stats)
	}
	if got := metricValue(t, first, "lobby_publish_duplicates_total"); got < 1 {
		t.Fatalf("lobby_publish_duplicates_total %v on the first node", got)
	}
}

// checkIdempotentFrames sends one lobby.v1 broadcast key again from a
// new connection on every node, as a client that reconnected and
// retried: each retry is acked duplicate with the first one's seq, a
// member receives it once, and an HTTP publish with the key in the room
// is a duplicate too. A bad key is an error frame invalid_key.
func checkIdempotentFrames(t *testing.T, nodes []*testServer, room string) {
	t.Helper()
	member := joinJSON(t, nodes[len(nodes)-1], "/ws/"+room)
	sender := joinJSON(t, nodes[0], "/ws/"+room)
	sender.sendJSON(`{"type":"broadcast","msg":"once","ref":1,"key":"frame-1"}`)
	ack := nextSkipping(sender, "ack")
	if ack.Seq == 0 || strings.Contains(ack.raw, "duplicate") {
		t.Fatalf("the first broadcast was acked %s", ack.raw)
	}
	_ = sender.ws.CloseNow()
	for i, n := range nodes {
		retry := joinJSON(t, n, "/ws/"+room)
		retry.sendJSON(`{"type":"broadcast","msg":"once","ref":2,"key":"frame-1"}`)
		if again := nextSkipping(retry, "ack"); again.Seq != ack.Seq || !strings.Contains(again.raw, `"duplicate":true`) {
			t.Fatalf("retry %d was acked %s, want a duplicate of seq %d", i, again.raw, ack.Seq)
		}
		retry.sendJSON(`{"type":"broadcast","msg":"x","ref":3,"key":"a b"}`)
		if f := nextSkipping(retry, "error"); f.Code != "invalid_key" || string(f.Ref) != "3" {
			t.Fatalf("a bad key was answered %s", f.raw)
		}
		_ = retry.ws.CloseNow()
	}
	if a := postKeyed(t, nodes[0], "/rooms/"+room+"/broadcast", "frame-1", `"once"`); !a.Duplicate || a.Seq != ack.Seq {
		t.Fatalf("an HTTP publish with the frame's key answered %+v", a)
	}
	marker := postKeyed(t, nodes[0], "/rooms/"+room+"/broadcast", "frame-marker", `"marker"`)
	if f := member.nextOf("message"); f.Seq != ack.Seq || string(f.Msg) != `"once"` {
		t.Fatalf("the member got %s first", f.raw)
	}
	if f := member.nextOf("message"); f.Seq != marker.Seq || string(f.Msg) != `"marker"` {
		t.Fatalf("the member got %s, want the marker: a retry was delivered", f.raw)
	}
}

// nextSkipping reads c's frames up to one of type typ, skipping message
// frames too: a sender gets its own message, and a cluster node may
// deliver one stored just before a join after its welcome.
func nextSkipping(c *jsonClient, typ string) frame {
	c.t.Helper()
	for {
		f := c.next()
		switch {
		case f.Type == typ:
			return f
		case f.Type == "message", f.Type == "joined", f.Type == "left", f.Type == "members" && f.Ref == nil:
		default:
			c.t.Fatalf("got %s while waiting for a %s frame", f.raw, typ)
		}
	}
}

func TestIdempotentPublishMemory(t *testing.T) {
	ts := &testServer{addr: startBinary(t, buildLobby(t), []string{"--addr", "127.0.0.1:0", "--connect-rate", "-1"}).addr}
	checkIdempotent(t, []*testServer{ts}, "keyed")
	checkIdempotentFrames(t, []*testServer{ts}, "framed")
}

func TestIdempotentPublishCluster(t *testing.T) {
	c := startCluster(t, 2)
	checkIdempotent(t, []*testServer{c.node(0), c.node(1)}, "keyed")
	checkIdempotentFrames(t, []*testServer{c.node(0), c.node(1)}, "framed")
}

func TestIdempotentPublishDurable(t *testing.T) {
	ts := &testServer{addr: startDurable(t, t.TempDir()).addr}
	checkIdempotent(t, []*testServer{ts}, "keyed")
}

func TestIdempotentPublishPeers(t *testing.T) {
	pc := startPeers(t, 3)
	checkIdempotent(t, []*testServer{pc.node(0), pc.node(1), pc.node(2)}, "keyed")
}

// TestIdempotencyKeyRefused: a key that is empty, too long, not visible
// ASCII, or given twice is 400 invalid_idempotency_key, on both publish
// routes, and nothing is published.
func TestIdempotencyKeyRefused(t *testing.T) {
	ts := &testServer{addr: startBinary(t, buildLobby(t), []string{"--addr", "127.0.0.1:0", "--connect-rate", "-1"}).addr}
	tests := []struct {
		name string
		keys []string
	}{
		{"empty", []string{""}},
		{"too long", []string{strings.Repeat("k", 65)}},
		{"space", []string{"a b"}},
		{"tab", []string{"a\tb"}},
		{"not ascii", []string{"clé"}},
		{"twice", []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/rooms/refused/broadcast", "/dailyDashBoard"} {
				status, body := httpDo(t, "POST", ts.url(path), []byte(`[]`), http.Header{"Idempotency-Key": tt.keys})
				expectJSONError(t, status, body, http.StatusBadRequest, "invalid_idempotency_key")
			}
		})
	}
	if got := historyMessages(t, ts, "refused"); got != 0 {
		t.Fatalf("a refused key published %d messages", got)
	}
	// The longest key there may be is taken.
	if a := postKeyed(t, ts, "/rooms/refused/broadcast", strings.Repeat("k", 64), `"ok"`); a.Duplicate {
		t.Fatalf("answered %+v", a)
	}
}

// startLimitedNATS starts a NATS server whose account may hold at most
// maxConsumers JetStream consumers, and stops it when the test ends.
func startLimitedNATS(t *testing.T, maxConsumers int) *natsServer {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, `
jetstream { store_dir: %q }
accounts {
  LOBBY {
    jetstream { max_consumers: %d, max_mem: -1, max_file: -1, max_streams: -1 }
    users [ { user: lobby, password: lobby } ]
  }
}
no_auth_user: lobby
`, filepath.Join(dir, "store"), maxConsumers), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := natsserver.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats config: %v", err)
	}
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", -1, true, true
	return startNATSWith(t, opts, dir)
}

// TestFollowRefusedIsRefusedAtOnce: NATS's account takes one consumer,
// node 0's tail; node 1's is refused (issue 21, finding 2: a join then
// waited 10 s for nothing, and a publish answered 503 after 10 s).
// Node 1 is unready, and refuses at once: a join closed 1013 with its
// reason, a lobby.v1 subscribe answered with an error frame, a publish
// 503 with Retry-After; each counted. Node 0 serves as before.
func TestFollowRefusedIsRefusedAtOnce(t *testing.T) {
	n := startLimitedNATS(t, 1)
	bin := buildLobby(t)
	args := []string{"--addr", "127.0.0.1:0", "--nats-url", n.url(), "--connect-rate", "-1"}
	a := &testServer{addr: startBinary(t, bin, args).addr}
	joinJSON(t, a, "/ws/first") // node 0 follows: its tail holds the consumer
	b := &testServer{addr: startBinary(t, bin, args).addr}
	eventually(t, "node 1 to be refused its consumer", func() bool {
		v, _ := metricSample(t, b, "lobby_nats_consumers_refused_total")
		return v >= 1
	})
	if status, body := httpDo(t, "GET", b.url("/readyz"), nil, nil); status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz on the refused node: %d %s", status, body)
	}

	start := time.Now()
	c := dial(t, b, "/ws/refused")
	c.expectClose(websocket.StatusTryAgainLater, "cluster refused this node a consumer: try another node or later")
	j := &jsonClient{client: &client{t: t, ws: dialWS(t, b, "/ws/refused", &websocket.DialOptions{Subprotocols: []string{"lobby.v1"}})}}
	j.expectClose(websocket.StatusTryAgainLater, "cluster refused this node a consumer: try another node or later")
	s := connectWS(t, b, "")
	s.sendJSON(`{"type":"subscribe","room":"refused","ref":7}`)
	if f := s.nextOf("error"); f.Code != "unavailable" || string(f.Ref) != "7" {
		t.Fatalf("subscribe answered %s, want an error unavailable with ref 7", f.raw)
	}
	status, resp, header := httpDoHeader(t, "POST", b.url("/rooms/refused/broadcast"), []byte(`"x"`), nil)
	expectJSONError(t, status, resp, http.StatusServiceUnavailable, "unavailable")
	if header.Get("Retry-After") == "" {
		t.Fatal("the refused publish has no Retry-After")
	}
	d := time.Since(start)
	if d > 2*time.Second {
		t.Fatalf("the refusals took %v, want at once", d)
	}
	t.Logf("two joins, a subscribe and a publish refused in %v", d.Round(time.Millisecond))
	if got := metricValue(t, b, `lobby_follow_refused_total{kind="join"}`); got != 3 {
		t.Fatalf(`lobby_follow_refused_total{kind="join"} = %v, want 3`, got)
	}
	if got := metricValue(t, b, `lobby_follow_refused_total{kind="publish"}`); got != 1 {
		t.Fatalf(`lobby_follow_refused_total{kind="publish"} = %v, want 1`, got)
	}
	// Node 0, which holds the consumer, serves as before.
	if seq := publishOK(t, a, "first", `"still"`); seq != 1 {
		t.Fatalf("node 0's publish got seq %d", seq)
	}
}

// freezer is a TCP proxy to a NATS server that can stop passing bytes
// either way, as a hung server would, and pass what it held on once
// thawed: what the node sent meanwhile reaches the server late, as a
// publish whose answer was lost.
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	frozen bool
	wg     sync.WaitGroup
}

func startFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target}
	f.cond = sync.NewCond(&f.mu)
	var conns sync.Map
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			conns.Store(c, up)
			f.wg.Add(2)
			go f.pipe(c, up)
			go f.pipe(up, c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		f.thaw()
		conns.Range(func(c, up any) bool {
			_ = c.(net.Conn).Close()
			_ = up.(net.Conn).Close()
			return true
		})
		f.wg.Wait()
	})
	return f
}

func (f *freezer) url() string { return "nats://" + f.ln.Addr().String() }

// pipe copies from to to, one read at a time, each held while frozen.
func (f *freezer) pipe(from, to net.Conn) {
	defer f.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		f.mu.Lock()
		for f.frozen {
			f.cond.Wait()
		}
		f.mu.Unlock()
		if n > 0 {
			if _, werr := to.Write(buf[:n]); werr != nil {
				_ = from.Close()
				return
			}
		}
		if err != nil {
			_ = to.Close()
			return
		}
	}
}

func (f *freezer) freeze() {
	f.mu.Lock()
	f.frozen = true
	f.mu.Unlock()
}

func (f *freezer) thaw() {
	f.mu.Lock()
	f.frozen = false
	f.cond.Broadcast()
	f.mu.Unlock()
}

// TestPublishOutcomeUnknown: a publish that NATS takes and does not
// answer in time (the server hangs, then goes on) is answered 503
// outcome_unknown with Retry-After, not a plain unavailable (issue 21,
// "Cluster faults" 5: 29 % of the "failed" publishes of a hung NATS were
// stored and delivered later). The message is stored once it goes on,
// and the retry with the same Idempotency-Key answers duplicate with its
// seq: its member receives it once.
func TestPublishOutcomeUnknown(t *testing.T) {
	n := startNATS(t, -1, t.TempDir())
	fz := startFreezer(t, strings.TrimPrefix(n.url(), "nats://"))
	ts := &testServer{addr: startBinary(t, buildLobby(t), []string{"--addr", "127.0.0.1:0", "--nats-url", fz.url(), "--connect-rate", "-1"}).addr}
	m := joinJSON(t, ts, "/ws/hung")
	// A first message, so that the node knows the room's last and sends
	// the next one at once: a node that must look the last up first sends
	// nothing while NATS hangs, and answers a plain unavailable.
	publishOK(t, ts, "hung", `"before"`)
	m.nextOf("message")

	fz.freeze()
	start := time.Now()
	status, body, header := httpDoHeader(t, "POST", ts.url("/rooms/hung/broadcast"), []byte(`{"n":1}`), http.Header{"Idempotency-Key": {"retry-me"}})
	expectJSONError(t, status, body, http.StatusServiceUnavailable, "outcome_unknown")
	if header.Get("Retry-After") == "" || !strings.Contains(string(body), "same Idempotency-Key") {
		t.Fatalf("outcome_unknown without Retry-After (%q) or advice: %s", header.Get("Retry-After"), body)
	}
	t.Logf("outcome_unknown after %v", time.Since(start).Round(time.Millisecond))
	fz.thaw()

	// The attempts the node made meanwhile reach NATS now: stored once.
	if f := m.nextOf("message"); f.Seq != 2 || string(f.Msg) != `{"n":1}` {
		t.Fatalf("the member got %s, want the message stored late", f.raw)
	}
	eventually(t, "the node to be ready again", func() bool {
		status, _ := httpDo(t, "GET", ts.url("/readyz"), nil, nil)
		return status == http.StatusOK
	})
	again := postKeyed(t, ts, "/rooms/hung/broadcast", "retry-me", `{"n":1}`)
	if !again.Duplicate || again.Seq != 2 {
		t.Fatalf("the retry answered %+v, want a duplicate of seq 2", again)
	}
	marker := postKeyed(t, ts, "/rooms/hung/broadcast", "marker", `"marker"`)
	if f := m.nextOf("message"); f.Seq != marker.Seq || string(f.Msg) != `"marker"` {
		t.Fatalf("the member got %s, want the marker: the retry was delivered", f.raw)
	}
	if got := metricValue(t, ts, "lobby_publish_outcome_unknown_total"); got != 1 {
		t.Fatalf("lobby_publish_outcome_unknown_total = %v, want 1", got)
	}
}
