package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// The tests of issue 21's cluster faults run Lobby nodes (the real binary)
// against an external NATS cluster of three servers, as README's
// "Production: a 3-server NATS cluster" sets it up: each node lists the
// three servers and the stream has 3 replicas. The servers run in the
// test's process, so that one can be stopped (as a crash: it hands no
// leadership over) and started again on its store.

// natsCluster is three nats-servers with JetStream, clustered by routes on
// loopback.
type natsCluster struct {
	t           *testing.T
	names       []string
	ports       []int // client ports
	routes      []int // cluster ports
	dirs        []string
	noAdvertise bool

	mu   sync.Mutex
	srvs []*natsserver.Server // nil while stopped
}

// startNATSCluster starts the three servers and waits for their JetStream
// meta leader. With noAdvertise the servers do not tell clients of each
// other: a node then knows only the URLs it was given.
func startNATSCluster(t *testing.T, noAdvertise bool) *natsCluster {
	t.Helper()
	nc := newNATSCluster(t, noAdvertise)
	start := time.Now()
	nc.waitMetaLeader()
	t.Logf("NATS cluster: meta leader %v after the servers started", time.Since(start).Round(time.Millisecond))
	return nc
}

// newNATSCluster starts the three servers without waiting for their
// JetStream meta leader.
func newNATSCluster(t *testing.T, noAdvertise bool) *natsCluster {
	t.Helper()
	nc := &natsCluster{t: t, noAdvertise: noAdvertise, srvs: make([]*natsserver.Server, 3)}
	for i := range 3 {
		nc.names = append(nc.names, fmt.Sprintf("n%d", i))
		nc.ports = append(nc.ports, freePort(t))
		nc.routes = append(nc.routes, freePort(t))
		nc.dirs = append(nc.dirs, t.TempDir())
	}
	t.Cleanup(func() {
		for i := range 3 {
			nc.stop(i)
		}
	})
	for i := range 3 {
		nc.start(i)
	}
	return nc
}

func freePort(t *testing.T) int {
	t.Helper()
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// start starts server i, again after a stop: the same name, ports and
// store.
func (nc *natsCluster) start(i int) {
	nc.t.Helper()
	var routes []string
	for _, p := range nc.routes {
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(p))
	}
	opts := &natsserver.Options{
		ServerName: nc.names[i], Host: "127.0.0.1", Port: nc.ports[i],
		JetStream: true, StoreDir: nc.dirs[i], NoLog: true, NoSigs: true,
		Cluster: natsserver.ClusterOpts{Name: "lobby", Host: "127.0.0.1", Port: nc.routes[i], NoAdvertise: nc.noAdvertise},
		Routes:  natsserver.RoutesFromStr(strings.Join(routes, ",")),
	}
	s, err := natsserver.NewServer(opts)
	if err != nil {
		nc.t.Fatalf("nats server %s: %v", nc.names[i], err)
	}
	go s.Start()
	if !s.ReadyForConnections(waitFor) {
		nc.t.Fatalf("nats server %s did not start", nc.names[i])
	}
	nc.mu.Lock()
	nc.srvs[i] = s
	nc.mu.Unlock()
}

// stop shuts server i down, as a crash would for its peers: no leadership
// is handed over.
func (nc *natsCluster) stop(i int) {
	nc.mu.Lock()
	s := nc.srvs[i]
	nc.srvs[i] = nil
	nc.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

func (nc *natsCluster) server(i int) *natsserver.Server {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	return nc.srvs[i]
}

func (nc *natsCluster) url(i int) string { return "nats://127.0.0.1:" + strconv.Itoa(nc.ports[i]) }

// urls is every server's URL, as a node's --nats-url.
func (nc *natsCluster) urls() string {
	var u []string
	for i := range 3 {
		u = append(u, nc.url(i))
	}
	return strings.Join(u, ",")
}

// waitUntil polls cond until it holds or d passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // the servers' state has no event to wait on
	}
}

// waitMetaLeader waits until the running servers have elected their
// JetStream meta leader and each is current with it.
func (nc *natsCluster) waitMetaLeader() {
	nc.t.Helper()
	waitUntil(nc.t, 30*time.Second, "the JetStream meta leader", func() bool {
		leaders := 0
		for i := range 3 {
			s := nc.server(i)
			if s == nil {
				continue
			}
			if !s.JetStreamIsCurrent() {
				return false
			}
			if s.JetStreamIsLeader() {
				leaders++
			}
		}
		return leaders == 1
	})
}

// metaLeader is the index of the JetStream meta leader, -1 when there is
// none.
func (nc *natsCluster) metaLeader() int {
	for i := range 3 {
		if s := nc.server(i); s != nil && s.JetStreamIsLeader() {
			return i
		}
	}
	return -1
}

// streamLeader is the index of the server leading stream LOBBY, -1 when
// none does.
func (nc *natsCluster) streamLeader() int {
	for i := range 3 {
		if s := nc.server(i); s != nil && s.JetStreamIsStreamLeader(natsserver.DEFAULT_GLOBAL_ACCOUNT, "LOBBY") {
			return i
		}
	}
	return -1
}

// waitStreamLeader waits for stream LOBBY's leader and returns it.
func (nc *natsCluster) waitStreamLeader() int {
	nc.t.Helper()
	leader := -1
	waitUntil(nc.t, 30*time.Second, "stream LOBBY's leader", func() bool {
		leader = nc.streamLeader()
		return leader >= 0
	})
	return leader
}

// moveStreamLeader asks stream LOBBY's leader to step down for server to.
func (nc *natsCluster) moveStreamLeader(to int) {
	nc.t.Helper()
	conn, err := nats.Connect(nc.url(to))
	if err != nil {
		nc.t.Fatal(err)
	}
	defer conn.Close()
	req := fmt.Sprintf(`{"placement":{"preferred":%q}}`, nc.names[to])
	waitUntil(nc.t, 30*time.Second, "stream LOBBY's leader to move to "+nc.names[to], func() bool {
		if nc.streamLeader() == to {
			return true
		}
		if _, err := conn.Request("$JS.API.STREAM.LEADER.STEPDOWN.LOBBY", []byte(req), 2*time.Second); err != nil {
			nc.t.Logf("stream leader step down: %v", err)
		}
		return false
	})
}

// lobbyConns is the client connection ids named "lobby" (a Lobby node's)
// on each running server.
func (nc *natsCluster) lobbyConns() []map[uint64]bool {
	nc.t.Helper()
	out := make([]map[uint64]bool, 3)
	for i := range 3 {
		out[i] = map[uint64]bool{}
		s := nc.server(i)
		if s == nil {
			continue
		}
		cz, err := s.Connz(&natsserver.ConnzOptions{Limit: 1024})
		if err != nil {
			nc.t.Fatal(err)
		}
		for _, c := range cz.Conns {
			if c.Name == "lobby" {
				out[i][c.Cid] = true
			}
		}
	}
	return out
}

// natsNodes is Lobby nodes of the real binary using a natsCluster, and
// the server each one's connection went to at its start.
type natsNodes struct {
	nats  *natsCluster
	bin   string
	args  []string
	bins  []*binaryServer
	onSrv []int
}

func (c *natsNodes) node(i int) *testServer { return &testServer{addr: c.bins[i].addr} }

// startNATSNodes starts n Lobby nodes one after the other, each with every
// server's URL and 3 replicas (and args), notes which server each one is
// connected to, and waits until all are ready.
func startNATSNodes(t *testing.T, nc *natsCluster, n int, args ...string) *natsNodes {
	t.Helper()
	c := &natsNodes{nats: nc, bin: buildLobby(t), args: args}
	for range n {
		b, srv := c.start(t)
		c.bins = append(c.bins, b)
		c.onSrv = append(c.onSrv, srv)
	}
	for i := range n {
		waitReadyz(t, c.node(i), 30*time.Second)
	}
	t.Logf("nodes connected to servers %v", c.onSrv)
	return c
}

// start starts one node and returns it and the server it connected to.
func (c *natsNodes) start(t *testing.T) (*binaryServer, int) {
	t.Helper()
	before := c.nats.lobbyConns()
	a := append([]string{"--addr", "127.0.0.1:0", "--nats-url", c.nats.urls(), "--nats-replicas", "3", "--connect-rate", "-1"}, c.args...)
	b := startBinary(t, c.bin, a)
	srv := -1
	waitUntil(t, waitFor, "the node's NATS connection", func() bool {
		for i, conns := range c.nats.lobbyConns() {
			for cid := range conns {
				if !before[i][cid] {
					srv = i
					return true
				}
			}
		}
		return false
	})
	return b, srv
}

// restart kills node i and starts it anew (its connection may go to
// another server), and waits until it is ready.
func (c *natsNodes) restart(t *testing.T, i int) {
	t.Helper()
	if err := c.bins[i].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err := <-c.bins[i].exited
	c.bins[i].exited <- err
	c.bins[i], c.onSrv[i] = c.start(t)
	waitReadyz(t, c.node(i), 30*time.Second)
	t.Logf("node %d started again, on server %d", i, c.onSrv[i])
}

// waitReadyz waits until ts's /readyz answers 200.
func waitReadyz(t *testing.T, ts *testServer, d time.Duration) {
	t.Helper()
	waitUntil(t, d, ts.addr+"'s /readyz to answer 200", func() bool {
		status, _, err := get(ts.url("/readyz"))
		return err == nil && status == http.StatusOK
	})
}

// readyWatch polls /readyz of nodes every 50 ms and records each answer
// other than 200. A poll not answered within 2 s (a loaded machine) is
// counted apart, in lost.
type readyWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	bad    [][]time.Time
	polls  []int
	lost   []int
}

func watchReadyz(nodes []*testServer) *readyWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &readyWatch{cancel: cancel, done: make(chan struct{}), bad: make([][]time.Time, len(nodes)), polls: make([]int, len(nodes)), lost: make([]int, len(nodes))}
	client := &http.Client{Timeout: 2 * time.Second}
	var wg sync.WaitGroup
	for i, ts := range nodes {
		wg.Go(func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				status := 0
				if resp, err := client.Get(ts.url("/readyz")); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				w.mu.Lock()
				w.polls[i]++
				switch status {
				case http.StatusOK:
				case 0:
					w.lost[i]++
				default:
					w.bad[i] = append(w.bad[i], time.Now())
				}
				w.mu.Unlock()
			}
		})
	}
	go func() {
		wg.Wait()
		client.CloseIdleConnections()
		close(w.done)
	}()
	return w
}

// stop ends the watch and returns, per node, the times it was not ready.
func (w *readyWatch) stop() [][]time.Time {
	w.cancel()
	<-w.done
	return w.bad
}

// longestUnready is the longest run of a node's unready polls: from its
// first to its last poll with at most 200 ms between two.
func longestUnready(bad []time.Time) time.Duration {
	var longest time.Duration
	for i, start := 0, 0; i < len(bad); i++ {
		if i > 0 && bad[i].Sub(bad[i-1]) > 200*time.Millisecond {
			start = i
		}
		longest = max(longest, bad[i].Sub(bad[start])+50*time.Millisecond)
	}
	return longest
}

// answer is one HTTP publish a pubLoop made.
type answer struct {
	n       int
	node    int
	status  int
	seq     uint64
	start   time.Time
	latency time.Duration
}

// pubLoop publishes {"p":p,"n":i} to room, on nodes in turn, one after
// the other, until ctx ends, and records every answer. Its client waits
// 20 s: longer than any answer the node should take.
type pubLoop struct {
	p       int
	mu      sync.Mutex
	answers []answer
}

func (p *pubLoop) body(n int) string { return fmt.Sprintf(`{"p":%d,"n":%d}`, p.p, n) }

func (p *pubLoop) run(ctx context.Context, room string, nodes []*testServer, every time.Duration) {
	client := &http.Client{Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		node := n % len(nodes)
		a := answer{n: n, node: node, start: time.Now()}
		resp, err := client.Post(nodes[node].url("/rooms/"+room+"/broadcast"), "application/json", strings.NewReader(p.body(n)))
		a.latency = time.Since(a.start)
		if err == nil {
			a.status = resp.StatusCode
			var ans struct {
				Seq uint64 `json:"seq"`
			}
			if json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&ans) == nil {
				a.seq = ans.Seq
			}
			resp.Body.Close()
		}
		p.mu.Lock()
		p.answers = append(p.answers, a)
		p.mu.Unlock()
	}
}

func (p *pubLoop) all() []answer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.answers)
}

// longestFailing is the longest run of failed publishes in answers: from
// the first one's start to the last one's answer.
func longestFailing(answers []answer) time.Duration {
	var longest time.Duration
	var from time.Time
	for _, a := range answers {
		if a.status == http.StatusOK {
			from = time.Time{}
			continue
		}
		if from.IsZero() {
			from = a.start
		}
		longest = max(longest, a.start.Add(a.latency).Sub(from))
	}
	return longest
}

// numbered is what a member received of the messages {"n":i}: n and
// when, in the order received.
type numbered struct {
	n  int
	id string
	at time.Time
}

// memberLog reads a lobby.v1 member's message frames on a goroutine of its
// own, until stopped or the connection ends.
type memberLog struct {
	c      *jsonClient
	mu     sync.Mutex
	got    []numbered
	closed error
	done   chan struct{}
}

func logMember(c *jsonClient) *memberLog {
	m := &memberLog{c: c, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			_, data, err := c.ws.Read(context.Background())
			if err != nil {
				m.mu.Lock()
				m.closed = err
				m.mu.Unlock()
				return
			}
			var f struct {
				Type string `json:"type"`
				ID   string `json:"id"`
				Msg  struct {
					N *int `json:"n"`
				} `json:"msg"`
			}
			if json.Unmarshal(data, &f) != nil || f.Type != "message" || f.Msg.N == nil {
				continue
			}
			m.mu.Lock()
			m.got = append(m.got, numbered{n: *f.Msg.N, id: f.ID, at: time.Now()})
			m.mu.Unlock()
		}
	}()
	return m
}

func (m *memberLog) snapshot() ([]numbered, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.got), m.closed
}

// stop closes the member's connection and waits for its reader.
func (m *memberLog) stop() {
	_ = m.c.ws.CloseNow()
	<-m.done
}

// waitAll waits until the member holds every n of want, or until d.
func (m *memberLog) waitAll(want map[int]bool, d time.Duration) []numbered {
	deadline := time.Now().Add(d)
	for {
		got, closed := m.snapshot()
		missing := 0
		seen := map[int]bool{}
		for _, g := range got {
			seen[g.n] = true
		}
		for n := range want {
			if !seen[n] {
				missing++
			}
		}
		if missing == 0 || closed != nil || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond) // the reader has no event per message to wait on
	}
}

// TestNATSClusterServerOfANodeDies is issue 21's cluster fault 1: a
// node's NATS connection is on the server that dies (not the stream's
// leader). The rooms keep delivering on every node: each member gets
// every message acknowledged, in order, within 15 s of its ack, and a
// room that waited over 3 s is visible (the tail made anew, or /readyz
// 503) rather than frozen silently. Publishes fail, and the node is
// unready, only while its connection moves (2 s at most). The server
// started again on its store closes no client.
func TestNATSClusterServerOfANodeDies(t *testing.T) {
	nc := startNATSCluster(t, false)
	c := startNATSNodes(t, nc, 2, "--rate", "-1", "--rate-bytes", "-1")
	victim := c.onSrv[0]
	if leader := nc.waitStreamLeader(); leader == victim {
		nc.moveStreamLeader((victim + 1) % 3)
	}
	const rooms = 4
	var logs [][]*memberLog
	for r := range rooms {
		var ms []*memberLog
		for i := range 2 {
			ms = append(ms, logMember(joinJSON(t, c.node(i), fmt.Sprintf("/ws/die-%d", r))))
		}
		logs = append(logs, ms)
	}
	defer func() {
		for _, ms := range logs {
			for _, m := range ms {
				m.stop()
			}
		}
	}()
	watch := watchReadyz([]*testServer{c.node(0), c.node(1)})
	ctx, cancel := context.WithCancel(context.Background())
	pubs := make([]*pubLoop, rooms)
	var wg sync.WaitGroup
	for r := range rooms {
		pubs[r] = &pubLoop{}
		wg.Go(func() {
			pubs[r].run(ctx, fmt.Sprintf("die-%d", r), []*testServer{c.node(0), c.node(1)}, 20*time.Millisecond)
		})
	}
	waitUntil(t, waitFor, "publishes before the kill", func() bool { return len(pubs[rooms-1].all()) >= 20 })
	killed := time.Now()
	nc.stop(victim)
	t.Logf("stopped %s, which node 0 was connected to (node 1: %s)", nc.names[victim], nc.names[c.onSrv[1]])
	waitUntil(t, 30*time.Second, "publishes acknowledged 8 s after the kill", func() bool {
		for _, p := range pubs {
			all := p.all()
			if len(all) == 0 || all[len(all)-1].status != http.StatusOK || all[len(all)-1].start.Before(killed.Add(8*time.Second)) {
				return false
			}
		}
		return true
	})
	cancel()
	wg.Wait()

	// Every member is given 15 s after the last publish to hold every
	// acknowledged message; /readyz is watched until then.
	acks := make([]map[int]time.Time, rooms)
	failed := make([]int, rooms)
	gots := make([][][]numbered, rooms)
	for r, p := range pubs {
		acks[r] = map[int]time.Time{}
		want := map[int]bool{}
		for _, a := range p.all() {
			if a.status == http.StatusOK {
				acks[r][a.n] = a.start.Add(a.latency)
				want[a.n] = true
			} else {
				failed[r]++
			}
		}
		for _, m := range logs[r] {
			gots[r] = append(gots[r], m.waitAll(want, 15*time.Second))
		}
	}
	bad := watch.stop()
	for i := range 2 {
		longest := longestUnready(bad[i])
		t.Logf("node %d: /readyz not 200 for %v at the longest", i, longest)
		// A node whose connection moves may be unready while it does,
		// about a second; the other not at all.
		if limit := map[bool]time.Duration{true: 2 * time.Second}[c.onSrv[i] == victim]; longest > limit {
			t.Errorf("node %d (on %s) was not ready for %v", i, nc.names[c.onSrv[i]], longest)
		}
	}
	for r, p := range pubs {
		// Publishes fail only while a node's connection moves.
		if d := longestFailing(p.all()); d > 2*time.Second {
			t.Errorf("room %d: publishes failed for %v in a row", r, d.Round(time.Millisecond))
		}
	}
	for r := range rooms {
		for i, got := range gots[r] {
			if _, closed := logs[r][i].snapshot(); closed != nil {
				t.Errorf("room %d, member on node %d: closed: %v", r, i, closed)
			}
			seen := map[int]time.Time{}
			for j, g := range got {
				if j > 0 && g.n <= got[j-1].n {
					t.Errorf("room %d, member on node %d: message %d after %d", r, i, g.n, got[j-1].n)
				}
				seen[g.n] = g.at
			}
			var slowest time.Duration
			for n, at := range acks[r] {
				d, ok := seen[n]
				if !ok {
					t.Errorf("room %d, member on node %d: acknowledged message %d never came", r, i, n)
					continue
				}
				slowest = max(slowest, d.Sub(at))
			}
			t.Logf("room %d, member on node %d: %d messages, %d acknowledged (%d failed); slowest %v after its ack",
				r, i, len(got), len(acks[r]), failed[r], slowest.Round(time.Millisecond))
			if slowest > 15*time.Second {
				t.Errorf("room %d, member on node %d: a message came %v after its ack", r, i, slowest)
			}
			if slowest > 3*time.Second {
				// A room that waited this long must have been visible.
				restarts, _ := metricSample(t, c.node(i), "lobby_bridge_tail_restarts_total")
				if restarts == 0 && len(bad[i]) == 0 {
					t.Errorf("room %d on node %d waited %v for a message, with /readyz 200 throughout and no tail made anew", r, i, slowest)
				}
			}
		}
	}

	// The server back on its store: members stay, and get what follows.
	nc.start(victim)
	nc.waitMetaLeader()
	for r := range rooms {
		status, body, err := post(c.node(0).url(fmt.Sprintf("/rooms/die-%d/broadcast", r)), `{"n":1000000}`)
		if err != nil || status != http.StatusOK {
			t.Fatalf("publish after the restart: %d %s %v", status, body, err)
		}
	}
	for r := range rooms {
		for i, m := range logs[r] {
			got := m.waitAll(map[int]bool{1000000: true}, waitFor)
			if _, closed := m.snapshot(); closed != nil || len(got) == 0 || got[len(got)-1].n != 1000000 {
				t.Errorf("room %d, member on node %d after the server came back: closed %v", r, i, closed)
			}
		}
	}
}

// TestNATSClusterStreamLeaderDies is issue 21's cluster fault 2: the
// server leading the stream (and JetStream's meta group) dies. A node
// whose connection was elsewhere never answers /readyz 503 (polled
// throughout, 12 s past the kill: past unreadyAfter); one whose
// connection was on the dead server only while it moves (2 s at most).
// Publishes wait, bounded: each is answered within 6 s (the publish
// timeout, 5 s, and a margin), and every one answered 200 is stored. A
// publish answered 503 that was stored anyway is logged: that is fault 5,
// still open.
func TestNATSClusterStreamLeaderDies(t *testing.T) {
	nc := startNATSCluster(t, false)
	c := startNATSNodes(t, nc, 3, "--history", "10000", "--send-queue", "10001", "--rate", "-1", "--rate-bytes", "-1")
	// The worst server to lose leads both the stream and the JetStream
	// meta group (which makes consumers): the stream's leadership is
	// moved to it, and a node's connection must be on it too, so that
	// the kill moves that connection.
	leader := nc.metaLeader()
	if nc.waitStreamLeader() != leader {
		nc.moveStreamLeader(leader)
	}
	for tries := 0; !slices.Contains(c.onSrv, leader); tries++ {
		if tries == 10 {
			t.Fatalf("no node connected to %s in 10 starts", nc.names[leader])
		}
		c.restart(t, 2)
	}
	nodes := []*testServer{c.node(0), c.node(1), c.node(2)}
	m := logMember(joinJSON(t, c.node(0), "/ws/lead"))
	defer m.stop()
	watch := watchReadyz(nodes)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	// Three publishers, one per node, so that each node has a publish in
	// flight when the leader goes.
	pubs := make([]*pubLoop, 3)
	for i := range 3 {
		pubs[i] = &pubLoop{p: i}
		wg.Go(func() { pubs[i].run(ctx, "lead", nodes[i:i+1], 10*time.Millisecond) })
	}
	waitUntil(t, waitFor, "publishes before the kill", func() bool { return len(pubs[2].all()) >= 20 })
	killed := time.Now()
	nc.stop(leader)
	t.Logf("stopped %s, the stream leader; nodes on %v", nc.names[leader], c.onSrv)
	newLeader := nc.waitStreamLeader()
	elected := time.Since(killed)
	nc.waitMetaLeader()
	t.Logf("%s leads the stream after %v, the meta group %v after the kill", nc.names[newLeader], elected.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	waitUntil(t, 30*time.Second, "each node's publishes to succeed again", func() bool {
		for _, p := range pubs {
			all := p.all()
			// 12 s past the kill, past unreadyAfter (10 s): the watch
			// and the publishers go on meanwhile.
			if len(all) == 0 || all[len(all)-1].status != http.StatusOK || all[len(all)-1].start.Before(killed.Add(max(elected+time.Second, 12*time.Second))) {
				return false
			}
		}
		return true
	})
	cancel()
	wg.Wait()
	bad := watch.stop()

	for i := range 3 {
		longest := longestUnready(bad[i])
		t.Logf("node %d (on %s): /readyz not 200 in %d of %d polls (%d not answered in 2 s), %v at the longest",
			i, nc.names[c.onSrv[i]], len(bad[i]), watch.polls[i], watch.lost[i], longest)
		limit := time.Duration(0)
		if c.onSrv[i] == leader {
			limit = 2 * time.Second // its connection moves to another server
		}
		if longest > limit {
			t.Errorf("node %d (on %s) was not ready for %v: a leader election is ridden out", i, nc.names[c.onSrv[i]], longest)
		}
	}

	// What was stored, and under which answer.
	h := historyOf(t, c.node(0), "lead", 0)
	stored := map[string]bool{}
	for _, msg := range h.Messages {
		stored[string(msg.Msg)] = true
	}
	for i, p := range pubs {
		var slowest time.Duration
		var failed []int
		for _, a := range p.all() {
			slowest = max(slowest, a.latency)
			body := p.body(a.n)
			switch {
			case a.status == http.StatusOK && !stored[body]:
				t.Errorf("node %d: publish %d answered 200 (seq %d) is not in the stream", i, a.n, a.seq)
			case a.status != http.StatusOK && stored[body]:
				// Issue 21's cluster fault 5, still open: "unavailable"
				// may have been stored. Logged, not yet held to.
				t.Logf("node %d: publish %d answered %d after %v is in the stream", i, a.n, a.status, a.latency.Round(time.Millisecond))
			}
			if a.status != http.StatusOK {
				failed = append(failed, a.status)
			}
		}
		t.Logf("node %d: %d publishes, failed %v, slowest answer %v", i, len(p.all()), failed, slowest.Round(time.Millisecond))
		if slowest > 6*time.Second {
			t.Errorf("node %d: a publish took %v to be answered", i, slowest)
		}
	}
}

// spawned is a binary started by startAtOnce.
type spawned struct {
	b      *binaryServer
	addrCh chan string
	out    *strings.Builder
	outMu  *sync.Mutex
}

// spawnBinary starts bin as startBinary does, without waiting for it to
// listen, so that several start at the same instant.
func spawnBinary(t *testing.T, bin string, args []string) *spawned {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "LOBBY_DATA_DIR="+t.TempDir())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &spawned{b: &binaryServer{cmd: cmd, exited: make(chan error, 1)}, addrCh: make(chan string, 1), out: &strings.Builder{}, outMu: &sync.Mutex{}}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		err := <-s.b.exited
		s.b.exited <- err
	})
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				s.addrCh <- m[1]
			}
			s.outMu.Lock()
			s.out.WriteString(line + "\n")
			s.outMu.Unlock()
		}
	}()
	go func() {
		<-logDone
		s.b.exited <- cmd.Wait()
	}()
	return s
}

// TestNATSClusterNodesStartTogether is issue 21's cluster fault 3: three
// nodes started at the same instant against a fresh 3-server cluster,
// with 3 replicas, race to create the stream. None exits: each listens,
// turns ready, and delivers what the others publish. The servers have
// just started: they have no JetStream meta leader yet, so the first
// attempts to create the stream get no answer.
func TestNATSClusterNodesStartTogether(t *testing.T) {
	bin := buildLobby(t)
	for round := range 1 {
		nc := newNATSCluster(t, false)
		var procs []*spawned
		for range 3 {
			procs = append(procs, spawnBinary(t, bin, []string{"--addr", "127.0.0.1:0", "--nats-url", nc.urls(), "--nats-replicas", "3", "--connect-rate", "-1"}))
		}
		var nodes []*testServer
		for i, p := range procs {
			select {
			case addr := <-p.addrCh:
				nodes = append(nodes, &testServer{addr: addr})
			case err := <-p.b.exited:
				p.b.exited <- err
				p.outMu.Lock()
				t.Fatalf("round %d: node %d exited (%v) before it listened:\n%s", round, i, err, p.out.String())
			case <-time.After(30 * time.Second):
				t.Fatalf("round %d: node %d did not listen in 30 s", round, i)
			}
		}
		start := time.Now()
		for _, ts := range nodes {
			waitReadyz(t, ts, 30*time.Second)
		}
		t.Logf("round %d: all three ready %v after they listened", round, time.Since(start).Round(time.Millisecond))
		var members []*jsonClient
		for i := range 3 {
			members = append(members, joinJSON(t, nodes[i], "/ws/together"))
		}
		for i := range 3 {
			if status, body, err := post(nodes[i].url("/rooms/together/broadcast"), fmt.Sprintf(`{"n":%d}`, i)); err != nil || status != http.StatusOK {
				t.Fatalf("round %d: publish to node %d: %d %s %v", round, i, status, body, err)
			}
		}
		for i, m := range members {
			for j := range 3 {
				if f := m.nextOf("message"); string(f.Msg) != fmt.Sprintf(`{"n":%d}`, j) {
					t.Fatalf("round %d: member on node %d got %s, want n %d", round, i, f.raw, j)
				}
			}
			_ = m.ws.CloseNow()
		}
		for i, p := range procs {
			select {
			case err := <-p.b.exited:
				p.b.exited <- err
				t.Fatalf("round %d: node %d exited: %v", round, i, err)
			default:
			}
			_ = p.b.cmd.Process.Kill()
		}
	}
}

// freezeProxy forwards TCP connections to a NATS server until frozen:
// then it forwards nothing either way, and holds new connections without
// answering, as a hung server (not a dead one) would.
type freezeProxy struct {
	ln     net.Listener
	target string
	done   chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	gate  chan struct{} // closed while not frozen
	conns []net.Conn
}

func startFreezeProxy(t *testing.T, target string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, target: target, done: make(chan struct{}), gate: make(chan struct{})}
	close(p.gate)
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *freezeProxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *freezeProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
		p.gate = make(chan struct{})
	default:
	}
}

func (p *freezeProxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// open waits until the proxy is not frozen; false when it is closed.
func (p *freezeProxy) open() bool {
	p.mu.Lock()
	gate := p.gate
	p.mu.Unlock()
	select {
	case <-gate:
		return true
	case <-p.done:
		return false
	}
}

func (p *freezeProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		c.Close()
		return false
	default:
	}
	p.conns = append(p.conns, c)
	return true
}

func (p *freezeProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		p.wg.Go(func() {
			if !p.open() {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				return
			}
			if !p.track(up) {
				return
			}
			var pair sync.WaitGroup
			pair.Go(func() { p.pipe(up, c) })
			pair.Go(func() { p.pipe(c, up) })
			pair.Wait()
		})
	}
}

// pipe copies src to dst, holding what it read while frozen.
func (p *freezeProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.open() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *freezeProxy) close() {
	p.mu.Lock()
	select {
	case <-p.done:
		p.mu.Unlock()
		return
	default:
	}
	close(p.done)
	conns := p.conns
	p.mu.Unlock()
	p.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	p.wg.Wait()
}

// TestNATSClusterHungServer is issue 21's cluster fault 4: the node's one
// NATS server hangs (a proxy stops forwarding, and holds the reconnects it
// accepts unanswered). The node's actors are not held up by nats.go:
// while publishes and members' broadcasts are made into several rooms, an
// echo socket, /healthz, /readyz and a room's members request answer
// within 2 s (under a second on a quiet machine; the old code held them
// about 10 s); every publish is answered within 7 s (the publish timeout
// and a margin), none hangs to the node's 10 s request limit.
func TestNATSClusterHungServer(t *testing.T) {
	nc := startNATSCluster(t, true)
	proxy := startFreezeProxy(t, "127.0.0.1:"+strconv.Itoa(nc.ports[0]))
	node := &testServer{addr: startBinary(t, buildLobby(t), []string{"--addr", "127.0.0.1:0", "--nats-url", proxy.url(), "--nats-replicas", "3",
		"--connect-rate", "-1", "--rate", "-1", "--rate-bytes", "-1"}, "GOMAXPROCS=2").addr}
	waitReadyz(t, node, 30*time.Second)
	const rooms = 4
	var members []*jsonClient
	for r := range rooms {
		members = append(members, joinJSON(t, node, fmt.Sprintf("/ws/hung-%d", r)))
		publishOK(t, node, fmt.Sprintf("hung-%d", r), `{"n":0}`)
	}
	echo := dial(t, node, "/echo")
	watcher := joinJSON(t, node, "/ws/hung-watch")

	proxy.freeze()
	frozen := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 16*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	pubs := make([]*pubLoop, rooms)
	for r := range rooms {
		pubs[r] = &pubLoop{}
		wg.Go(func() { pubs[r].run(ctx, fmt.Sprintf("hung-%d", r), []*testServer{node}, 300*time.Millisecond) })
	}
	// Members broadcast too: appends made by the node's actors.
	for r, m := range members {
		wg.Go(func() {
			tick := time.NewTicker(300 * time.Millisecond)
			defer tick.Stop()
			for i := 1; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				wctx, wcancel := context.WithTimeout(ctx, time.Second)
				err := m.ws.Write(wctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"broadcast","msg":{"r":%d,"i":%d},"ref":%d}`, r, i, i))
				wcancel()
				if err != nil {
					return
				}
			}
		})
	}
	// The members' acks and errors are read, so that their queues do not
	// close them as slow.
	for _, m := range members {
		wg.Go(func() {
			for {
				if _, _, err := m.ws.Read(ctx); err != nil {
					return
				}
			}
		})
	}

	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	timed := func(what string, f func() error) {
		start := time.Now()
		err := f()
		if d := time.Since(start); err != nil || d > 2*time.Second {
			t.Errorf("%.1f s into the freeze: %s took %v (%v)", time.Since(frozen).Seconds(), what, d.Round(time.Millisecond), err)
		}
	}
	probes := 0
	for ctx.Err() == nil {
		probes++
		timed("an echo", func() error {
			// Its own deadline: the freeze's may end mid-probe.
			wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer wcancel()
			if err := echo.ws.Write(wctx, websocket.MessageText, []byte("ping")); err != nil {
				return err
			}
			_, data, err := echo.ws.Read(wctx)
			if err == nil && string(data) != "ping" {
				err = fmt.Errorf("echoed %q", data)
			}
			return err
		})
		for _, path := range []string{"/healthz", "/readyz"} {
			timed(path, func() error {
				resp, err := client.Get(node.url(path))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				return err
			})
		}
		timed("a members request", func() error {
			wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer wcancel()
			if err := watcher.ws.Write(wctx, websocket.MessageText, []byte(`{"type":"members","ref":"m"}`)); err != nil {
				return err
			}
			for {
				_, data, err := watcher.ws.Read(wctx)
				if err != nil {
					return err
				}
				if strings.Contains(string(data), `"ref":"m"`) {
					return nil
				}
			}
		})
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	wg.Wait()
	statuses := map[int]int{}
	var slowest time.Duration
	for r, p := range pubs {
		for _, a := range p.all() {
			statuses[a.status]++
			slowest = max(slowest, a.latency)
			if a.latency > 7*time.Second {
				t.Errorf("room %d: a publish %.1f s into the freeze was answered %d after %v", r, a.start.Sub(frozen).Seconds(), a.status, a.latency.Round(time.Millisecond))
			}
		}
	}
	t.Logf("%d probes in %v of freeze; publishes answered %v, the slowest in %v", probes, time.Since(frozen).Round(time.Millisecond), statuses, slowest.Round(time.Millisecond))
	proxy.thaw()
}

// TestNATSClusterSenderOrderAcrossALeaderChange is issue 21's cluster
// fault 6: one lobby.v1 sender broadcasts numbered messages without
// waiting for their acks while the stream leader dies. Every member, on
// each node, gets the sender's messages in the order sent (never 147 after
// 152), and every one acknowledged.
func TestNATSClusterSenderOrderAcrossALeaderChange(t *testing.T) {
	nc := startNATSCluster(t, false)
	c := startNATSNodes(t, nc, 3, "--rate", "-1", "--rate-bytes", "-1")
	// The server lost leads the stream and the meta group, as in fault 2.
	leader := nc.metaLeader()
	if nc.waitStreamLeader() != leader {
		nc.moveStreamLeader(leader)
	}
	// The sender sits on a node whose connection survives, so that its
	// appends ride out the election rather than fail with its connection.
	senderNode := 0
	for i, s := range c.onSrv {
		if s != leader {
			senderNode = i
			break
		}
	}
	sender := joinJSON(t, c.node(senderNode), "/ws/order6")
	var logs []*memberLog
	for i := range 3 {
		logs = append(logs, logMember(joinJSON(t, c.node(i), "/ws/order6")))
	}
	defer func() {
		for _, m := range logs {
			m.stop()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[int]bool{}
	errored := map[int]string{}
	wg.Go(func() {
		for {
			_, data, err := sender.ws.Read(context.Background())
			if err != nil {
				return
			}
			var f frame
			if json.Unmarshal(data, &f) != nil {
				continue
			}
			n, err := strconv.Atoi(string(f.Ref))
			if err != nil {
				continue
			}
			mu.Lock()
			switch f.Type {
			case "ack":
				acked[n] = true
			case "error":
				errored[n] = f.Code
			}
			mu.Unlock()
		}
	})
	sent := 0
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		// 100 a second: a tail stalled 2 s then hands a member about
		// 200 at once, under its 256-frame queue (past it the member is
		// closed as a slow consumer, fault 1's burst, not this test's).
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
			err := sender.ws.Write(wctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"broadcast","msg":{"n":%d},"ref":%d}`, n, n))
			wcancel()
			if err != nil {
				return
			}
			mu.Lock()
			sent = n + 1
			mu.Unlock()
		}
	}()
	waitUntil(t, waitFor, "messages before the kill", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 50
	})
	killed := time.Now()
	nc.stop(leader)
	nc.waitStreamLeader()
	elected := time.Since(killed)
	// The sender goes on 6 s past the kill (2 s past the election, if
	// later), then every message it sent must be answered.
	waitUntil(t, 30*time.Second, "6 s of sending after the kill", func() bool {
		return time.Since(killed) > max(elected+2*time.Second, 6*time.Second)
	})
	cancel()
	<-sendDone
	mu.Lock()
	total := sent
	mu.Unlock()
	// Every message sent is answered, ack or error.
	waitUntil(t, 30*time.Second, "an answer to every message sent", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)+len(errored) >= total
	})
	_ = sender.ws.CloseNow()
	wg.Wait()
	mu.Lock()
	want := map[int]bool{}
	for n := range acked {
		want[n] = true
	}
	codes := map[string]int{}
	for _, code := range errored {
		codes[code]++
	}
	mu.Unlock()
	t.Logf("stopped %s (the leader; sender on node %d, nodes on %v): elected in %v; %d sent, %d acknowledged, errors %v",
		nc.names[leader], senderNode, c.onSrv, elected.Round(time.Millisecond), total, len(want), codes)
	for i, m := range logs {
		got := m.waitAll(want, 15*time.Second)
		if _, closed := m.snapshot(); closed != nil {
			t.Errorf("member on node %d: closed: %v", i, closed)
		}
		seen := map[int]bool{}
		disorder := 0
		for j, g := range got {
			if g.id != sender.id {
				continue
			}
			if j > 0 && g.n <= got[j-1].n {
				disorder++
				if disorder <= 5 {
					t.Errorf("member on node %d: the sender's message %d after its %d", i, g.n, got[j-1].n)
				}
			}
			seen[g.n] = true
		}
		if disorder > 0 {
			t.Errorf("member on node %d: %d messages out of the order sent", i, disorder)
		}
		for n := range want {
			if !seen[n] {
				t.Errorf("member on node %d: acknowledged message %d never came", i, n)
			}
		}
	}
}
