package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The cluster tests run an embedded NATS server with JetStream (its store
// in a temp dir) and Lobby nodes as subprocesses of the real binary, so
// that a node can really be killed.

// natsServer is an embedded NATS server with JetStream.
type natsServer struct {
	srv  *natsserver.Server
	port int
	dir  string
}

// startNATS starts a NATS server on port (-1: any free port) with its
// JetStream store in dir, and stops it when the test ends.
func startNATS(t *testing.T, port int, dir string) *natsServer {
	t.Helper()
	return startNATSWith(t, &natsserver.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true}, dir)
}

// startNATSWith starts a NATS server with opts, its store in dir, and
// stops it when the test ends.
func startNATSWith(t *testing.T, opts *natsserver.Options, dir string) *natsServer {
	t.Helper()
	s, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(waitFor) {
		t.Fatal("the NATS server did not start")
	}
	n := &natsServer{srv: s, port: s.Addr().(*net.TCPAddr).Port, dir: dir}
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) stop() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

func (n *natsServer) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// lobbyCluster is an embedded NATS server and Lobby nodes using it.
type lobbyCluster struct {
	nats  *natsServer
	nodes []*binaryServer
}

// startCluster starts NATS and n Lobby nodes, with args added to each.
func startCluster(t *testing.T, n int, args ...string) *lobbyCluster {
	t.Helper()
	bin := buildLobby(t)
	c := &lobbyCluster{nats: startNATS(t, -1, t.TempDir())}
	for range n {
		a := append([]string{"--addr", "127.0.0.1:0", "--nats-url", c.nats.url(), "--connect-rate", "-1"}, args...)
		c.nodes = append(c.nodes, startBinary(t, bin, a))
	}
	return c
}

func (c *lobbyCluster) node(i int) *testServer { return &testServer{addr: c.nodes[i].addr} }

// roomMembers is GET /rooms/{room}'s member list on ts.
func roomMembers(t *testing.T, ts *testServer, room string) []string {
	t.Helper()
	status, body := httpDo(t, "GET", ts.url("/rooms/"+room), nil, nil)
	if status == http.StatusNotFound {
		return nil
	}
	if status != http.StatusOK {
		t.Fatalf("GET /rooms/%s: %d %s", room, status, body)
	}
	var r struct {
		Members []string `json:"members"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	slices.Sort(r.Members)
	return r.Members
}

// roomInfo is GET /rooms/{room} on ts.
func roomInfo(t *testing.T, ts *testServer, room string) (seq uint64, epoch string) {
	t.Helper()
	status, body := httpDo(t, "GET", ts.url("/rooms/"+room), nil, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /rooms/%s: %d %s", room, status, body)
	}
	var r struct {
		Seq   uint64 `json:"seq"`
		Epoch string `json:"epoch"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return r.Seq, r.Epoch
}

// waitRoomSeq waits until ts has delivered room's messages up to seq: a
// publisher's answer only waits for the node it published to.
func waitRoomSeq(t *testing.T, ts *testServer, room string, seq uint64) {
	t.Helper()
	eventually(t, fmt.Sprintf("the node to deliver %s up to seq %d", room, seq), func() bool {
		got, _ := roomInfo(t, ts, room)
		return got >= seq
	})
}

// delivery is one message frame a collector read, and when.
type delivery struct {
	seq uint64
	id  string
	msg string
	at  time.Time
}

// collector reads a lobby.v1 client's message frames on a goroutine of
// its own until it has want of them or the connection ends.
type collector struct {
	c    *jsonClient
	want int
	got  []delivery
	// errors are the error frames read.
	errors []string
	err    error
	done   chan struct{}
}

func collect(c *jsonClient, want int) *collector {
	col := &collector{c: c, want: want, done: make(chan struct{})}
	go func() {
		defer close(col.done)
		for len(col.got) < col.want {
			ctx, cancel := context.WithTimeout(context.Background(), 3*waitFor)
			_, data, err := c.ws.Read(ctx)
			cancel()
			if err != nil {
				col.err = err
				return
			}
			var f frame
			if err := json.Unmarshal(data, &f); err != nil {
				col.err = err
				return
			}
			f.raw = string(data)
			if f.Type == "error" {
				col.errors = append(col.errors, f.raw)
			}
			if f.Type == "message" {
				col.got = append(col.got, delivery{seq: f.Seq, id: f.ID, msg: string(f.Msg), at: time.Now()})
			}
		}
	}()
	return col
}

// wait waits for the collector and fails the test if it did not get all
// it wanted.
func (col *collector) wait(t *testing.T, name string) []delivery {
	t.Helper()
	<-col.done
	if col.err != nil || len(col.got) != col.want {
		counts := map[string]int{}
		for _, d := range col.got {
			k := d.id
			if strings.HasPrefix(d.msg, `{"node"`) {
				k = d.msg[:10]
			}
			counts[k]++
		}
		t.Logf("%s: %v; errors %q", name, counts, col.errors)
		t.Fatalf("%s: got %d of %d messages (%v)", name, len(col.got), col.want, col.err)
	}
	return col.got
}

// TestClusterOneOrderEverywhere spreads a room's members over three nodes;
// a member of each node broadcasts and each node gets HTTP publishes, all
// at once. Every member receives every message, and all of them in the
// same order with the same seqs.
func TestClusterOneOrderEverywhere(t *testing.T) {
	c := startCluster(t, 3)
	const perSender = 60
	var members []*jsonClient
	for i := range 3 {
		for range 2 {
			members = append(members, joinJSON(t, c.node(i), "/ws/order"))
		}
	}
	text := join(t, c.node(2), "/ws/order")
	total := 3*perSender + 3*perSender // broadcasts, then HTTP publishes
	cols := make([]*collector, len(members))
	for i, m := range members {
		cols[i] = collect(m, total)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 3 {
		sender := members[2*i]
		wg.Go(func() {
			for n := range perSender {
				msg := fmt.Sprintf(`{"type":"broadcast","msg":"%d-%d","ref":%d}`, i, n, n)
				ctx, cancel := context.WithTimeout(context.Background(), waitFor)
				err := sender.ws.Write(ctx, websocket.MessageText, []byte(msg))
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		})
		ts := c.node(i)
		wg.Go(func() {
			for n := range perSender {
				status, body, err := post(ts.url("/rooms/order/broadcast"), fmt.Sprintf(`{"node":%d,"n":%d}`, i, n))
				if err != nil || status != http.StatusOK {
					errs <- fmt.Errorf("publish to node %d: %d %s %v", i, status, body, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	var first []delivery
	for i, col := range cols {
		got := col.wait(t, fmt.Sprintf("member %d", i))
		for j := 1; j < len(got); j++ {
			if got[j].seq <= got[j-1].seq {
				t.Fatalf("member %d: seq %d after %d", i, got[j].seq, got[j-1].seq)
			}
		}
		if i == 0 {
			first = got
			continue
		}
		if !slices.EqualFunc(got, first, func(a, b delivery) bool { return a.seq == b.seq && a.id == b.id && a.msg == b.msg }) {
			t.Fatalf("member %d saw another order than member 0", i)
		}
	}
	// One sender's messages keep their order.
	for i := range 3 {
		n := 0
		for _, d := range first {
			if d.id == members[2*i].id {
				if want := fmt.Sprintf(`"%d-%d"`, i, n); d.msg != want {
					t.Fatalf("sender %d: got %s, want %s", i, d.msg, want)
				}
				n++
			}
		}
		if n != perSender {
			t.Fatalf("sender %d: %d messages delivered, want %d", i, n, perSender)
		}
	}
	// A text-protocol member sees the same messages, in its format.
	seen := 0
	for seen < total {
		line := text.readText()
		var m struct {
			ID  string          `json:"id"`
			Msg json.RawMessage `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &m) != nil {
			continue // a presence line
		}
		if m.ID != first[seen].id || string(m.Msg) != first[seen].msg {
			t.Fatalf("text member: message %d is %s, want id %s msg %s", seen, line, first[seen].id, first[seen].msg)
		}
		seen++
	}
	// And every node answers the same history.
	var histories [][]byte
	for i := range 3 {
		status, body := httpDo(t, "GET", c.node(i).url("/rooms/order/history?since="+strconv.FormatUint(first[len(first)-20].seq, 10)), nil, nil)
		if status != http.StatusOK {
			t.Fatalf("history on node %d: %d %s", i, status, body)
		}
		histories = append(histories, body)
	}
	if !slices.Equal(scanSeqs(t, histories[0]), seqsOf(first[len(first)-19:])) {
		t.Fatalf("history %s, want the last 19 seqs", histories[0])
	}
	for i := 1; i < 3; i++ {
		if string(histories[i]) != string(histories[0]) {
			t.Fatalf("node %d's history differs:\n%s\n%s", i, histories[i], histories[0])
		}
	}
}

func seqsOf(ds []delivery) []uint64 {
	seqs := make([]uint64, len(ds))
	for i, d := range ds {
		seqs[i] = d.seq
	}
	return seqs
}

// post publishes body to url, for goroutines that may not fail the test.
func post(url, body string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b [512]byte
	n, _ := resp.Body.Read(b[:])
	return resp.StatusCode, string(b[:n]), nil
}

// TestClusterPresenceAndDirect checks that members, joins and leaves are
// the cluster's, and that direct messages reach a session on any node.
func TestClusterPresenceAndDirect(t *testing.T) {
	c := startCluster(t, 3)
	a := joinJSON(t, c.node(0), "/ws/pres")
	b := joinJSON(t, c.node(1), "/ws/pres")
	a.expectPresence("joined", b.id)
	text := join(t, c.node(2), "/ws/pres")
	a.expectPresence("joined", text.id)
	b.expectPresence("joined", text.id)
	d := joinJSON(t, c.node(2), "/ws/pres")
	want := []string{a.id, b.id, text.id, d.id}
	slices.Sort(want)
	if got := slices.Sorted(slices.Values(d.welcome.Members)); !slices.Equal(got, want) {
		t.Fatalf("welcome members %v, want %v", got, want)
	}
	text.expect(d.id + " just joined!")
	for i := range 3 {
		eventually(t, fmt.Sprintf("node %d to list every member", i), func() bool {
			return slices.Equal(roomMembers(t, c.node(i), "pres"), want)
		})
		status, body := httpDo(t, "GET", c.node(i).url("/rooms"), nil, nil)
		if status != http.StatusOK || !strings.Contains(string(body), `{"room":"pres","members":4}`) {
			t.Fatalf("GET /rooms on node %d: %d %s", i, status, body)
		}
	}
	b.sendJSON(`{"type":"members","ref":"m"}`)
	if got := slices.Sorted(slices.Values(b.nextOf("members").Members)); !slices.Equal(got, want) {
		t.Fatalf("members frame %v, want %v", got, want)
	}

	// A direct frame from node 0 to node 2, acked; an HTTP send on node 1
	// to a session on node 0; a text client gets it in its shape.
	a.sendJSON(`{"type":"direct","to":"` + d.id + `","msg":{"hi":"d"},"ref":"x"}`)
	if f := d.nextOf("direct"); f.ID != a.id || string(f.Msg) != `{"hi":"d"}` {
		t.Fatalf("direct: %s", f.raw)
	}
	if f := a.nextOf("ack"); string(f.Ref) != `"x"` {
		t.Fatalf("direct ack: %s", f.raw)
	}
	status, body := httpDo(t, "POST", c.node(1).url("/sessions/"+a.id+"/send"), []byte(`"psst"`), nil)
	if status != http.StatusOK {
		t.Fatalf("send across nodes: %d %s", status, body)
	}
	if f := a.nextOf("direct"); string(f.Msg) != `"psst"` {
		t.Fatalf("HTTP direct: %s", f.raw)
	}
	d.sendJSON(`{"type":"direct","to":"` + text.id + `","msg":"to text"}`)
	text.expect(broadcastFrame(d.id, `"to text"`, "pres"))
	status, body = httpDo(t, "POST", c.node(0).url("/sessions/00000000-0000-4000-8000-000000000000/send"), []byte(`1`), nil)
	expectJSONError(t, status, body, http.StatusNotFound, "unknown_session")

	// A leave on one node reaches the others.
	_ = b.ws.Close(websocket.StatusNormalClosure, "")
	a.expectPresence("left", b.id)
	text.expect(b.id + " disconnected.")
	for i := range 3 {
		eventually(t, fmt.Sprintf("node %d to forget the member who left", i), func() bool {
			return !slices.Contains(roomMembers(t, c.node(i), "pres"), b.id)
		})
	}
}

// expectPresence reads frames until a presence frame of kind for id.
func (c *jsonClient) expectPresence(kind, id string) {
	c.t.Helper()
	for {
		f := c.next()
		if f.Type == kind && f.ID == id {
			return
		}
		if f.Type != "joined" && f.Type != "left" {
			c.t.Fatalf("got %s while waiting for %s %s", f.raw, kind, id)
		}
	}
}

// TestClusterRecoveryOnAnotherNode drops a subscriber three times while a
// publisher goes on, and reconnects it each time to another node with
// since and epoch: it gets every message once, in order.
func TestClusterRecoveryOnAnotherNode(t *testing.T) {
	const total = 600
	c := startCluster(t, 3, "--history", "5000", "--send-queue", "5001")
	sub := joinJSON(t, c.node(1), "/ws/feed")
	epoch := sub.welcome.Epoch

	publishErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 1; i <= total; i++ {
			<-tick.C
			status, body, err := post(c.node(0).url("/rooms/feed/broadcast"), fmt.Sprintf(`{"n":%d}`, i))
			if err != nil || status != http.StatusOK {
				publishErr <- fmt.Errorf("publish %d: %d %s %v", i, status, body, err)
				return
			}
		}
	})
	drops := []int{total / 5, total / 2, 4 * total / 5}
	var lastSeq uint64
	for n := 1; n <= total; n++ {
		f := sub.nextOf("message")
		if want := fmt.Sprintf(`{"n":%d}`, n); string(f.Msg) != want || f.Seq <= lastSeq {
			t.Fatalf("after seq %d (n %d) got %s: a gap, a duplicate or disorder", lastSeq, n-1, f.raw)
		}
		lastSeq = f.Seq
		if len(drops) > 0 && n == drops[0] {
			drops = drops[1:]
			_ = sub.ws.CloseNow()
			node := c.node((1 + len(drops)) % 3)
			sub = joinJSON(t, node, fmt.Sprintf("/ws/feed?since=%d&epoch=%s", lastSeq, epoch))
			if !sub.welcome.Recovered || sub.welcome.Epoch != epoch {
				t.Fatalf("reconnect after seq %d: welcome %s, want recovered in epoch %s", lastSeq, sub.welcome.raw, epoch)
			}
		}
	}
	wg.Wait()
	select {
	case err := <-publishErr:
		t.Fatal(err)
	default:
	}
	// Another epoch, or a since no longer stored, is not recovered. The
	// publisher's answers only waited for node 0: node 2 may still be
	// delivering the last messages.
	waitRoomSeq(t, c.node(2), "feed", lastSeq)
	stale := joinJSON(t, c.node(2), "/ws/feed?since=3&epoch=other")
	if stale.welcome.Recovered || stale.welcome.Seq != lastSeq {
		t.Fatalf("welcome %s, want recovered false at seq %d", stale.welcome.raw, lastSeq)
	}
}

// TestClusterNodeKilled kills a node with SIGKILL while two others'
// members receive publishes to both: they lose nothing, never wait a
// second for the next message, and the dead node's members leave the
// member lists within 15 s.
func TestClusterNodeKilled(t *testing.T) {
	const perPublisher = 400
	c := startCluster(t, 3)
	var cols []*collector
	for i := range 2 {
		for range 2 {
			cols = append(cols, collect(joinJSON(t, c.node(i), "/ws/kill"), 2*perPublisher))
		}
	}
	doomed := []*jsonClient{joinJSON(t, c.node(2), "/ws/kill"), joinJSON(t, c.node(2), "/ws/kill")}
	eventually(t, "node 0 to list all six members", func() bool { return len(roomMembers(t, c.node(0), "kill")) == 6 })

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	killed := make(chan time.Time, 1)
	for i := range 2 {
		wg.Go(func() {
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for n := range perPublisher {
				<-tick.C
				if i == 0 && n == perPublisher/3 {
					if err := c.nodes[2].cmd.Process.Kill(); err != nil {
						errs <- err
						return
					}
					killed <- time.Now()
				}
				status, body, err := post(c.node(i).url("/rooms/kill/broadcast"), fmt.Sprintf(`{"p":%d,"n":%d}`, i, n))
				if err != nil || status != http.StatusOK {
					errs <- fmt.Errorf("publish %d to node %d: %d %s %v", n, i, status, body, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, col := range cols {
		got := col.wait(t, fmt.Sprintf("member %d", i))
		var gap time.Duration
		for j := 1; j < len(got); j++ {
			gap = max(gap, got[j].at.Sub(got[j-1].at))
		}
		t.Logf("member %d: largest gap between deliveries %v", i, gap)
		if gap >= time.Second {
			t.Fatalf("member %d waited %v between two messages", i, gap)
		}
	}
	at := <-killed
	deadline := at.Add(15 * time.Second)
	for i := range 2 {
		for {
			members := roomMembers(t, c.node(i), "kill")
			if !slices.Contains(members, doomed[0].id) && !slices.Contains(members, doomed[1].id) {
				if len(members) != 4 {
					t.Fatalf("node %d lists %v, want the 4 members alive", i, members)
				}
				t.Logf("node %d: the dead node's members left the lists %v after the kill", i, time.Since(at).Round(time.Millisecond))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("15 s after the kill node %d still lists %v", i, members)
			}
			time.Sleep(50 * time.Millisecond) // polling GET /rooms/kill: there is no event to wait on
		}
	}
}

// TestClusterMovedClientsListedOnce kills a node's process (SIGKILL): its
// clients reconnect to another node, recovering, as new sessions, and
// every node's member list (GET /rooms/{room}, a members frame, a
// welcome) lists each live client once within a few seconds, rather than
// its old session too until the dead node has been silent for the
// presence timeout (8 s, judged every 2 s: never before 6 s after the
// kill), as it did (issue 21, cluster fault 8: 206 members listed for
// 156 live).
func TestClusterMovedClientsListedOnce(t *testing.T) {
	c := startCluster(t, 3)
	stay := []*jsonClient{joinJSON(t, c.node(0), "/ws/moved"), joinJSON(t, c.node(0), "/ws/moved"), joinJSON(t, c.node(1), "/ws/moved")}
	var doomed []*jsonClient
	for range 3 {
		doomed = append(doomed, joinJSON(t, c.node(2), "/ws/moved"))
	}
	for i := range 2 {
		eventually(t, fmt.Sprintf("node %d to list all six members", i), func() bool { return len(roomMembers(t, c.node(i), "moved")) == 6 })
	}
	if err := c.nodes[2].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var want []string
	for _, m := range stay {
		want = append(want, m.id)
	}
	for i, d := range doomed {
		m := joinJSON(t, c.node(0), fmt.Sprintf("/ws/moved?since=%d&epoch=%s", d.welcome.Seq, d.welcome.Epoch))
		if !m.welcome.Recovered {
			t.Fatalf("client %d moved to node 0: %s, want recovered", i, m.welcome.raw)
		}
		want = append(want, m.id)
	}
	slices.Sort(want)
	t.Logf("the killed node's clients reconnected %v after the kill", time.Since(killed).Round(time.Millisecond))
	// Short of the 6 s the presence timeout could have done it in at the
	// earliest, and no shorter: a loaded machine is slow to reconnect.
	deadline := killed.Add(5500 * time.Millisecond)
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for i := range 2 {
		for {
			got := roomMembers(t, c.node(i), "moved")
			if slices.Equal(got, want) {
				t.Logf("node %d lists each live client once %v after the kill", i, time.Since(killed).Round(time.Millisecond))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d lists %d members %v %v after the kill, want the %d live ones %v", i, len(got), got, time.Since(killed).Round(time.Millisecond), len(want), want)
			}
			<-poll.C
		}
	}
	stay[2].sendJSON(`{"type":"members","ref":"m"}`)
	f := stay[2].nextOf("members")
	slices.Sort(f.Members)
	if !slices.Equal(f.Members, want) {
		t.Fatalf("a members frame on node 1 lists %v, want %v", f.Members, want)
	}
	late := joinJSON(t, c.node(1), "/ws/moved")
	members := slices.DeleteFunc(slices.Clone(late.welcome.Members), func(id string) bool { return id == late.id })
	slices.Sort(members)
	if !slices.Equal(members, want) {
		t.Fatalf("a welcome on node 1 lists %v besides the newcomer, want %v", members, want)
	}
}

// TestClusterNATSOutage stops NATS for a few seconds: sockets stay open,
// publishes fail with the documented errors, /readyz answers 503; then a
// new NATS server on the same port and store brings everything back
// without restarting a node.
func TestClusterNATSOutage(t *testing.T) {
	c := startCluster(t, 2)
	a := joinJSON(t, c.node(0), "/ws/out")
	b := joinJSON(t, c.node(1), "/ws/out")
	a.expectPresence("joined", b.id)
	text := join(t, c.node(1), "/ws/out")
	a.expectPresence("joined", text.id)
	b.expectPresence("joined", text.id)

	c.nats.stop()
	for i := range 2 {
		eventually(t, fmt.Sprintf("node %d's /readyz to turn 503", i), func() bool {
			status, _ := httpDo(t, "GET", c.node(i).url("/readyz"), nil, nil)
			return status == http.StatusServiceUnavailable
		})
	}
	status, body := httpDo(t, "POST", c.node(0).url("/rooms/out/broadcast"), []byte(`"lost?"`), nil)
	expectJSONError(t, status, body, http.StatusServiceUnavailable, "unavailable")
	status, body = httpDo(t, "POST", c.node(0).url("/sessions/"+b.id+"/send"), []byte(`"lost?"`), nil)
	expectJSONError(t, status, body, http.StatusServiceUnavailable, "unavailable")
	a.sendJSON(`{"type":"broadcast","msg":"lost?","ref":"r1"}`)
	if f := a.nextOf("error"); f.Code != "unavailable" || string(f.Ref) != `"r1"` {
		t.Fatalf("broadcast during the outage: %s, want error unavailable with ref r1", f.raw)
	}
	text.send("dropped")
	eventually(t, "node 1 to count the text frame it dropped", func() bool {
		_, body := httpDo(t, "GET", c.node(1).url("/metrics"), nil, nil)
		return strings.Contains(string(body), "lobby_cluster_dropped_total 1")
	})

	c.nats = startNATS(t, c.nats.port, c.nats.dir)
	for i := range 2 {
		eventually(t, fmt.Sprintf("node %d's /readyz to turn 200", i), func() bool {
			status, _ := httpDo(t, "GET", c.node(i).url("/readyz"), nil, nil)
			return status == http.StatusOK
		})
	}
	// The same sockets, and the same epoch: the stream outlived the
	// outage.
	status, body = httpDo(t, "POST", c.node(0).url("/rooms/out/broadcast"), []byte(`"back"`), nil)
	if status != http.StatusOK {
		t.Fatalf("publish after the outage: %d %s", status, body)
	}
	for _, m := range []*jsonClient{a, b} {
		if f := m.nextOf("message"); string(f.Msg) != `"back"` {
			t.Fatalf("after the outage got %s", f.raw)
		}
	}
	b.sendJSON(`{"type":"broadcast","msg":"from b","ref":1}`)
	if f := a.nextOf("message"); string(f.Msg) != `"from b"` || f.ID != b.id {
		t.Fatalf("after the outage got %s", f.raw)
	}
	for {
		line := text.readText()
		if line == broadcastFrame(b.id, `"from b"`, "out") {
			break
		}
	}
	if got := roomMembers(t, c.node(0), "out"); len(got) != 3 {
		t.Fatalf("after the outage node 0 lists %v, want 3 members", got)
	}
	b2 := joinJSON(t, c.node(1), "/ws/out")
	if b2.welcome.Epoch != a.welcome.Epoch {
		t.Fatalf("epoch %s after the outage, %s before", b2.welcome.Epoch, a.welcome.Epoch)
	}
}

// TestClusterNearMaxPayload publishes bodies near NATS's max_payload (1 MiB,
// the default --max-publish-bytes too): one that fits with its headers is
// stored; one that does not is refused at once as too big, by HTTP
// (413), by a lobby.v1 frame (error message_too_big) and as a cross-node
// direct message, never as "unavailable"; the node serves on.
func TestClusterNearMaxPayload(t *testing.T) {
	c := startCluster(t, 2, "--max-message-bytes", "2097152", "--rate-bytes", "-1")
	a := joinJSON(t, c.node(0), "/ws/big")
	b := joinJSON(t, c.node(1), "/ws/big")
	a.expectPresence("joined", b.id)
	body := func(n int) []byte { return []byte(`"` + strings.Repeat("x", n-2) + `"`) }

	status, resp := httpDo(t, "POST", c.node(0).url("/rooms/big/broadcast"), body(1<<20-4096), nil)
	if status != http.StatusOK {
		t.Fatalf("a publish that fits: %d %s", status, resp)
	}
	for _, m := range []*jsonClient{a, b} {
		if f := m.nextOf("message"); len(f.Msg) != 1<<20-4096 {
			t.Fatalf("got a message of %d bytes, want %d", len(f.Msg), 1<<20-4096)
		}
	}

	status, resp = httpDo(t, "POST", c.node(0).url("/rooms/big/broadcast"), body(1<<20-16), nil)
	expectJSONError(t, status, resp, http.StatusRequestEntityTooLarge, "body_too_large")

	start := time.Now()
	status, resp = httpDo(t, "POST", c.node(0).url("/sessions/"+b.id+"/send"), body(1<<20-16), nil)
	expectJSONError(t, status, resp, http.StatusRequestEntityTooLarge, "body_too_large")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a direct message too big took %v to be refused", d)
	}

	a.sendJSON(`{"type":"broadcast","msg":` + string(body(1<<20)) + `,"ref":"big"}`)
	if f := a.nextOf("error"); f.Code != "message_too_big" || string(f.Ref) != `"big"` {
		t.Fatalf("a broadcast too big: %s, want error message_too_big with ref big", f.raw)
	}
	a.sendJSON(`{"type":"direct","to":"` + b.id + `","msg":` + string(body(1<<20)) + `,"ref":"bigd"}`)
	if f := a.nextOf("error"); f.Code != "message_too_big" || string(f.Ref) != `"bigd"` {
		t.Fatalf("a direct message too big: %s, want error message_too_big with ref bigd", f.raw)
	}

	// Nothing is broken: small messages go on.
	status, resp = httpDo(t, "POST", c.node(0).url("/rooms/big/broadcast"), []byte(`"small"`), nil)
	if status != http.StatusOK {
		t.Fatalf("a small publish after: %d %s", status, resp)
	}
	if f := b.nextOf("message"); string(f.Msg) != `"small"` {
		t.Fatalf("after the big ones got %s", f.raw)
	}
	if status, _ := httpDo(t, "GET", c.node(0).url("/readyz"), nil, nil); status != http.StatusOK {
		t.Fatalf("/readyz %d after the big ones", status)
	}
}

// TestClusterStreamLost brings NATS back on an empty store: the stream is
// gone. Without a node restarting, the nodes make it anew, agree on its
// new epoch, and serve again; lobby.v1 members of the old stream are
// closed to reconnect, and recovering with the old epoch is refused.
func TestClusterStreamLost(t *testing.T) {
	c := startCluster(t, 2)
	a := joinJSON(t, c.node(0), "/ws/lost")
	b := joinJSON(t, c.node(1), "/ws/lost")
	a.expectPresence("joined", b.id)
	text := join(t, c.node(1), "/ws/lost")
	old := a.welcome.Epoch
	for range 3 {
		if status, body := httpDo(t, "POST", c.node(0).url("/rooms/lost/broadcast"), []byte(`"before"`), nil); status != http.StatusOK {
			t.Fatalf("publish before: %d %s", status, body)
		}
	}
	var lastSeq uint64
	for range 3 {
		lastSeq = b.nextOf("message").Seq
	}

	c.nats.stop()
	for i := range 2 {
		eventually(t, fmt.Sprintf("node %d's /readyz to turn 503", i), func() bool {
			status, _ := httpDo(t, "GET", c.node(i).url("/readyz"), nil, nil)
			return status == http.StatusServiceUnavailable
		})
	}
	c.nats = startNATS(t, c.nats.port, t.TempDir()) // the same port, an empty store
	for i := range 2 {
		eventually(t, fmt.Sprintf("node %d's /readyz to turn 200", i), func() bool {
			status, _ := httpDo(t, "GET", c.node(i).url("/readyz"), nil, nil)
			return status == http.StatusOK
		})
	}

	// The lobby.v1 members of the lost stream are told to reconnect.
	for _, m := range []*jsonClient{a, b} {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		for {
			if _, _, err := m.ws.Read(ctx); err != nil {
				if websocket.CloseStatus(err) != websocket.StatusTryAgainLater {
					t.Fatalf("a member of the lost stream: %v, want closed 1013", err)
				}
				break
			}
		}
		cancel()
	}

	status, body := httpDo(t, "POST", c.node(0).url("/rooms/lost/broadcast"), []byte(`"after"`), nil)
	if status != http.StatusOK {
		t.Fatalf("publish after the stream was lost: %d %s", status, body)
	}
	for {
		if line := text.readText(); strings.Contains(line, `"after"`) {
			break
		}
	}
	_, epoch0 := roomInfo(t, c.node(0), "lost")
	seq1, epoch1 := roomInfo(t, c.node(1), "lost")
	if epoch0 == old || epoch0 != epoch1 {
		t.Fatalf("epochs after the stream was lost: node 0 %s, node 1 %s, before %s: want one new epoch", epoch0, epoch1, old)
	}
	a2 := joinJSON(t, c.node(0), "/ws/lost")
	stale := joinJSON(t, c.node(1), fmt.Sprintf("/ws/lost?since=%d&epoch=%s", lastSeq, old))
	if a2.welcome.Epoch != epoch0 || stale.welcome.Epoch != epoch0 {
		t.Fatalf("welcomes in epochs %s and %s, want %s", a2.welcome.Epoch, stale.welcome.Epoch, epoch0)
	}
	if stale.welcome.Recovered || stale.welcome.Seq != seq1 {
		t.Fatalf("recovering in the old epoch: welcome %s, want recovered false at seq %d", stale.welcome.raw, seq1)
	}
	if status, body := httpDo(t, "POST", c.node(1).url("/rooms/lost/broadcast"), []byte(`"again"`), nil); status != http.StatusOK {
		t.Fatalf("publish to node 1: %d %s", status, body)
	}
	for _, m := range []*jsonClient{a2, stale} {
		if f := m.nextOf("message"); string(f.Msg) != `"again"` || f.Seq <= seq1 {
			t.Fatalf("after the stream was made anew got %s", f.raw)
		}
	}
}

// TestClusterStreamDeleted deletes the stream while NATS runs (as `nats
// stream rm` would): the nodes make it anew, in one new epoch, and
// publishes succeed again without a node restarting.
func TestClusterStreamDeleted(t *testing.T) {
	c := startCluster(t, 2)
	a := joinJSON(t, c.node(0), "/ws/rm")
	old := a.welcome.Epoch
	nc, err := nats.Connect(c.nats.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := js.DeleteStream(ctx, "LOBBY"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a publish to succeed after the stream was deleted", func() bool {
		status, body := httpDo(t, "POST", c.node(1).url("/rooms/rm/broadcast"), []byte(`"after"`), nil)
		if status != http.StatusOK && status != http.StatusServiceUnavailable {
			t.Fatalf("publish: %d %s", status, body)
		}
		return status == http.StatusOK
	})
	eventually(t, "both nodes to agree on a new epoch", func() bool {
		_, e0 := roomInfo(t, c.node(0), "rm")
		_, e1 := roomInfo(t, c.node(1), "rm")
		return e0 == e1 && e0 != old
	})
	for i := range 2 {
		if status, _ := httpDo(t, "GET", c.node(i).url("/readyz"), nil, nil); status != http.StatusOK {
			t.Fatalf("node %d's /readyz: %d", i, status)
		}
	}
}

// TestClusterNATSDownAtStart starts a node before NATS: it serves,
// unready, answers publishes unavailable, and once NATS comes it sets the
// stream up and serves fully, without a restart.
func TestClusterNATSDownAtStart(t *testing.T) {
	port := freePort(t)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	node := &testServer{addr: startBinary(t, buildLobby(t), []string{"--addr", "127.0.0.1:0", "--nats-url", url, "--connect-rate", "-1"}).addr}
	if status, _ := httpDo(t, "GET", node.url("/readyz"), nil, nil); status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz without NATS: %d, want 503", status)
	}
	status, body := httpDo(t, "POST", node.url("/rooms/late/broadcast"), []byte(`"early"`), nil)
	expectJSONError(t, status, body, http.StatusServiceUnavailable, "unavailable")

	startNATS(t, port, t.TempDir())
	eventually(t, "/readyz to turn 200 once NATS is up", func() bool {
		status, _ := httpDo(t, "GET", node.url("/readyz"), nil, nil)
		return status == http.StatusOK
	})
	a := joinJSON(t, node, "/ws/late")
	if a.welcome.Epoch == "" {
		t.Fatalf("welcome %s: no epoch", a.welcome.raw)
	}
	if status, body := httpDo(t, "POST", node.url("/rooms/late/broadcast"), []byte(`"late"`), nil); status != http.StatusOK {
		t.Fatalf("publish once NATS is up: %d %s", status, body)
	}
	if f := a.nextOf("message"); string(f.Msg) != `"late"` {
		t.Fatalf("got %s", f.raw)
	}
	if _, epoch := roomInfo(t, node, "late"); epoch != a.welcome.Epoch {
		t.Fatalf("GET /rooms/late: epoch %s, welcome %s", epoch, a.welcome.Epoch)
	}
}

// TestClusterQuestionnaire runs a questionnaire on a clustered node: it
// lives on the node that stores it, as on a single node.
func TestClusterQuestionnaire(t *testing.T) {
	c := startCluster(t, 1, "--data-dir", t.TempDir())
	ts := c.node(0)
	q := createQuestionnaire(t, ts, threeQuestions)
	presenter := dialPresenter(t, ts, q)
	presenter.expect(`{"type":"state","current":null,"closed":false,"participants":0}`)
	p := dialParticipant(t, ts, q, "p1")
	presenter.expectPresenter(`{"type":"state","current":null,"closed":false,"participants":1}`)
	presenter.send(`{"type":"show","question":1}`)
	presenter.expect(tallyFrame(1, []int{0, 0, 0, 0}, 1))
	p.expect(talkQuestion + `null}`)
	p.send(`{"type":"answer","question":1,"option":2}`)
	presenter.expectPresenter(tallyFrame(1, []int{0, 0, 1, 0}, 1))
	if r := getResults(t, ts, q); len(r.Results) != 3 || r.Results[1][2] != 1 {
		t.Fatalf("results: %+v", r)
	}
	hangUp(presenter, p)
}

// TestHeldFramesAreBoundedWhileJoinsWait: with NATS out of reach a join
// waits, and what its client sends meanwhile is held; large frames past
// a MiB close it 1008 rather than grow the node (issue 21, finding 3: 50
// such clients took the node from 25 MB to 1 GB).
func TestHeldFramesAreBoundedWhileJoinsWait(t *testing.T) {
	node := &testServer{addr: startBinary(t, buildLobby(t), []string{"--addr", "127.0.0.1:0", "--nats-url", unreachableNATS(t),
		"--connect-rate", "-1", "--rate", "-1", "--rate-bytes", "-1"}).addr}
	ws := dialWS(t, node, "/ws/held", nil)
	c := &client{t: t, ws: ws}
	frame := []byte(strings.Repeat("x", 60<<10))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for range 40 { // 2.3 MiB, far under 256 frames
		if err := ws.Write(ctx, websocket.MessageText, frame); err != nil {
			break // closed already
		}
	}
	c.expectClose(websocket.StatusPolicyViolation, "too many messages before join")
}

// TestHeldFramesAreBoundedOverTheNode: a MiB per client is still a GiB
// for a thousand clients whose joins wait, so the node bounds what they
// hold together (--held-budget) and closes the client that would pass it
// 1013, the node's shortage rather than the client's fault.
func TestHeldFramesAreBoundedOverTheNode(t *testing.T) {
	node := &testServer{addr: startBinary(t, buildLobby(t), []string{"--addr", "127.0.0.1:0", "--nats-url", unreachableNATS(t),
		"--connect-rate", "-1", "--rate", "-1", "--rate-bytes", "-1", "--held-budget", strconv.Itoa(2 << 20)}).addr}
	frame := []byte(strings.Repeat("x", 60<<10))
	send := func(c *client, n int) {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		for range n {
			if err := c.ws.Write(ctx, websocket.MessageText, frame); err != nil {
				return // closed already
			}
		}
	}
	var clients []*client
	for i := range 2 { // 720 KiB each, under a client's MiB
		c := &client{t: t, ws: dialWS(t, node, "/ws/held", nil)}
		clients = append(clients, c)
		send(c, 12)
		waitMetric(t, node, "lobby_held_bytes", float64((i+1)*12*len(frame)))
	}
	third := &client{t: t, ws: dialWS(t, node, "/ws/held", nil)}
	send(third, 12) // the eleventh frame would pass 2 MiB
	third.expectClose(websocket.StatusTryAgainLater, "server busy")
	waitMetric(t, node, "lobby_held_bytes", float64(2*12*len(frame)))
	hangUp(clients...)
	waitMetric(t, node, "lobby_held_bytes", 0)
}

// TestRefusedFramesAreNotHeld: frames over the rate limit are answered,
// never acted on, so a client whose join waits is not holding them
// (issue 21, finding 3: 12 136 of 12 750 frames were refused yet kept).
func TestRefusedFramesAreNotHeld(t *testing.T) {
	node := &testServer{addr: startBinary(t, buildLobby(t), []string{"--addr", "127.0.0.1:0", "--nats-url", unreachableNATS(t),
		"--connect-rate", "-1", "--rate", "1", "--rate-burst", "1", "--rate-bytes", "-1"}).addr}
	c := &client{t: t, ws: dialWS(t, node, "/ws/held", nil)}
	frame := []byte(strings.Repeat("x", 60<<10))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for i := range 40 { // 2.3 MiB: over a client's MiB were they kept
		if err := c.ws.Write(ctx, websocket.MessageText, frame); err != nil {
			t.Fatalf("frame %d: %v", i+1, err)
		}
	}
	waitMetric(t, node, "lobby_rate_limited_total", 39)
	if got := metricValue(t, node, "lobby_held_bytes"); got != float64(len(frame)) {
		t.Fatalf("lobby_held_bytes %v after 39 refused frames, want the one frame let through (%d)", got, len(frame))
	}
	if got := metricValue(t, node, "lobby_connections"); got != 1 {
		t.Fatalf("lobby_connections %v, want the client still open", got)
	}
	hangUp(c)
}

// unreachableNATS is a NATS address nothing listens on: a node given it
// serves, and its joins wait.
func unreachableNATS(t *testing.T) string {
	t.Helper()
	return "nats://" + freeAddr(t)
}

// TestClusterRoomSeqsAreContiguous: a room's seqs count its messages, 1
// more each, in cluster mode too, whatever other rooms the stream holds
// and whichever node each message was published on (issue 21, finding
// 10: they were stream sequences, and lobby.js took every skip for a
// gap). A lobby.js page on one node shows 5 messages published on both
// with seqs n+1..n+5 and no gap.
func TestClusterRoomSeqsAreContiguous(t *testing.T) {
	c := startCluster(t, 2)
	// Messages in other rooms, so that the stream's sequences run ahead
	// of the room's.
	for i := range 3 {
		for _, room := range []string{"elsewhere", "count"} {
			if status, body, err := post(c.node(i%2).url("/rooms/"+room+"/broadcast"), `"before"`); err != nil || status != http.StatusOK {
				t.Fatalf("publish to %s: %d %s %v", room, status, body, err)
			}
		}
	}
	member := joinJSON(t, c.node(1), "/ws/count")
	n := member.welcome.Seq
	// A node may answer a join before it has heard of a publish made on
	// the other one a moment ago: its welcome is then a seq behind, and
	// the message follows, the next seq. Nothing is skipped either way.
	if n > 3 {
		t.Fatalf("welcome seq %d after 3 messages", n)
	}
	for n < 3 {
		if f := member.nextOf("message"); f.Seq != n+1 {
			t.Fatalf("after welcome seq %d: %s, want seq %d", n, f.raw, n+1)
		}
		n++
	}
	for i := range 5 {
		if status, body, err := post(c.node(0).url("/rooms/elsewhere/broadcast"), `"noise"`); err != nil || status != http.StatusOK {
			t.Fatalf("publish: %d %s %v", status, body, err)
		}
		status, body, err := post(c.node(i%2).url("/rooms/count/broadcast"), fmt.Sprintf(`"m%d"`, i+1))
		if err != nil || status != http.StatusOK {
			t.Fatalf("publish m%d: %d %s %v", i+1, status, body, err)
		}
		var ans struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal([]byte(body), &ans); err != nil || ans.Seq != n+uint64(i)+1 {
			t.Fatalf("publish m%d answered %s, want seq %d", i+1, body, n+uint64(i)+1)
		}
	}
	for i := range 5 {
		f := member.nextOf("message")
		if f.Seq != n+uint64(i)+1 || string(f.Msg) != fmt.Sprintf(`"m%d"`, i+1) {
			t.Fatalf("message %d: %s, want seq %d", i+1, f.raw, n+uint64(i)+1)
		}
		if f.TS == 0 {
			t.Fatalf("message %d has no ts: %s", i+1, f.raw)
		}
	}

	// The same through lobby.js, in a browser on node 1.
	b := startBrowser(t)
	page := b.open(t, "cluster-chat", c.node(1).url("/#count"))
	page.waitText("#state", "live")
	for i := range 5 {
		if status, body, err := post(c.node(i%2).url("/rooms/count/broadcast"), fmt.Sprintf(`"p%d"`, i+1)); err != nil || status != http.StatusOK {
			t.Fatalf("publish p%d: %d %s %v", i+1, status, body, err)
		}
	}
	page.waitFor("5 messages", `(n) => [...document.querySelectorAll("#messages li.msg")].filter((li) => li.querySelector(".text").textContent.startsWith("p")).length >= n`, 5)
	got := evaluate[[]string](page, `[...document.querySelectorAll("#messages li.msg, #messages li.gap")].map((li) =>
		li.classList.contains("gap") ? "gap: " + li.querySelector(".text").textContent : li.dataset.seq + ":" + li.querySelector(".text").textContent)`)
	var want []string
	for i := 1; i <= 8; i++ {
		want = append(want, fmt.Sprintf("%d:%s", i, []string{"", `before`, `before`, `before`, "m1", "m2", "m3", "m4", "m5"}[i]))
	}
	for i := 1; i <= 5; i++ {
		want = append(want, fmt.Sprintf("%d:p%d", 8+i, i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the page holds\n  %v\nwant\n  %v", got, want)
	}
	if state := page.text("#state"); state != "live" {
		t.Fatalf("lobby.js state %q, want live", state)
	}
}

// TestClusterManyRoomsDoNotBlockNewOnes: 1 100 sockets in 1 100 rooms on
// node 0, past nats-server's default of 1 000 consumers: a join to a new
// room on node 1 is welcomed at once and a publish there answered at once
// (issue 21, finding 2: a consumer per followed room blocked every new
// room on every node), and node 0 holds one consumer, not one per room.
func TestClusterManyRoomsDoNotBlockNewOnes(t *testing.T) {
	c := startCluster(t, 2)
	const rooms = 1100
	var wg sync.WaitGroup
	clients := make([]*jsonClient, rooms)
	sem := make(chan struct{}, 50)
	errs := make(chan error, rooms)
	for i := range rooms {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			ws, _, err := websocket.Dial(ctx, c.node(0).wsURL(fmt.Sprintf("/ws/busy-%d", i)), &websocket.DialOptions{Subprotocols: []string{"lobby.v1"}})
			if err != nil {
				errs <- err
				return
			}
			if _, _, err := ws.Read(ctx); err != nil { // the welcome
				errs <- fmt.Errorf("room %d: no welcome: %w", i, err)
				return
			}
			clients[i] = &jsonClient{client: &client{t: t, ws: ws}}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	defer func() {
		for _, cl := range clients {
			_ = cl.ws.CloseNow()
		}
	}()
	if got := metricValue(t, c.node(0), "lobby_bridge_rooms_followed"); got < rooms {
		t.Fatalf("node 0 follows %v rooms, want %d", got, rooms)
	}
	consumers := natsConsumers(t, c.nats)
	if consumers > 2*(1+32) {
		t.Fatalf("%d consumers on the stream for %d rooms followed", consumers, rooms)
	}
	start := time.Now()
	m := joinJSON(t, c.node(1), "/ws/fresh")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a join to a new room took %v", d)
	}
	if status, body, err := post(c.node(1).url("/rooms/fresh/broadcast"), `"hi"`); err != nil || status != http.StatusOK {
		t.Fatalf("publish: %d %s %v", status, body, err)
	}
	if f := m.nextOf("message"); f.Seq != 1 {
		t.Fatalf("got %s", f.raw)
	}
	t.Logf("%d rooms followed on node 0, %d consumers on the stream; a new room on node 1 in %v", rooms, consumers, time.Since(start).Round(time.Millisecond))
}

// natsConsumers is how many consumers the stream LOBBY has.
func natsConsumers(t *testing.T, n *natsServer) int {
	t.Helper()
	nc, err := nats.Connect(n.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s, err := js.Stream(ctx, "LOBBY")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Consumers
}
