package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/transport"
)

// The peers tests run three --durable nodes of the real binary whose
// embedded NATS servers form one cluster (--peers), and stop or kill them
// under load. lobby.v1 clients that reconnect and recover as lobby.js does
// must end up holding every message, in order, none twice.

// peerCluster is n --durable nodes clustered with --peers.
type peerCluster struct {
	t     *testing.T
	bin   string
	dirs  []string
	peers []string
	mu    sync.Mutex
	nodes []*binaryServer
}

// freeAddr is a loopback host:port nothing listens on, for a server a
// test starts (and restarts) on an address it must know in advance. It is
// taken below the kernel's ephemeral range: a port :0 handed out is one
// any outgoing connection may take as its own before the server binds it,
// which failed CI once (a NATS route port "address already in use").
// Ports are handed out in turn from a random start, so two tests of this
// process never get the same one.
func freeAddr(t *testing.T) string {
	t.Helper()
	freePorts.Lock()
	defer freePorts.Unlock()
	if freePorts.next == 0 {
		freePorts.low = ephemeralLow()
		freePorts.next = freePorts.low / 2
		if span := freePorts.low / 4; span > 0 {
			freePorts.next += rand.IntN(span)
		}
	}
	for range 1000 {
		if freePorts.next >= freePorts.low {
			freePorts.next = freePorts.low / 2
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePorts.next))
		freePorts.next++
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr
	}
	t.Fatal("no free loopback port below the ephemeral range")
	return ""
}

var freePorts struct {
	sync.Mutex
	next, low int
}

// ephemeralLow is the first port the kernel hands out for :0 and
// outgoing connections (32768 on Linux unless configured).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n >= 4096 {
				return n
			}
		}
	}
	return 32768
}

func startPeers(t *testing.T, n int) *peerCluster {
	t.Helper()
	pc := &peerCluster{t: t, bin: buildLobby(t), nodes: make([]*binaryServer, n)}
	for range n {
		pc.dirs = append(pc.dirs, t.TempDir())
		pc.peers = append(pc.peers, freeAddr(t))
	}
	for i := range n {
		pc.start(i)
	}
	for i := range n {
		pc.waitReady(i)
	}
	return pc
}

// start (re)starts node i on its data dir and peer address.
func (pc *peerCluster) start(i int) {
	pc.t.Helper()
	b := startBinary(pc.t, pc.bin, []string{"--addr", "127.0.0.1:0", "--durable", "--data-dir", pc.dirs[i],
		"--peer-addr", pc.peers[i], "--peers", strings.Join(pc.peers, ","), "--connect-rate", "-1"})
	pc.mu.Lock()
	pc.nodes[i] = b
	pc.mu.Unlock()
}

func (pc *peerCluster) node(i int) *testServer {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return &testServer{addr: pc.nodes[i].addr}
}

// addrs is the nodes' HTTP addresses as now.
func (pc *peerCluster) addrs() []string {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	var a []string
	for _, b := range pc.nodes {
		a = append(a, b.addr)
	}
	return a
}

func (pc *peerCluster) waitReady(i int) {
	pc.t.Helper()
	ts := pc.node(i)
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, _, err := get(ts.url("/readyz"))
		if err == nil && status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			pc.t.Fatalf("node %d not ready 60 s on (%d %v)", i, status, err)
		}
		time.Sleep(50 * time.Millisecond) // /readyz has no event to wait on
	}
}

func get(url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, string(b), err
}

// recoverer is a lobby.v1 client that does what lobby.js does: on a lost
// connection it reconnects (to the next node) with since/epoch, and it
// checks that each message's seq is the one after the last.
type recoverer struct {
	room  string
	nodes func() []string
	next  int

	mu         sync.Mutex
	epoch      string
	seq        uint64
	msgs       map[uint64]string
	times      []time.Time
	problems   []string
	reconnects int
	notRec     int
}

func newRecoverer(room string, first int, nodes func() []string) *recoverer {
	return &recoverer{room: room, nodes: nodes, next: first, msgs: map[uint64]string{}}
}

func (r *recoverer) problem(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// run connects and reads until ctx ends.
func (r *recoverer) run(ctx context.Context) {
	for ctx.Err() == nil {
		nodes := r.nodes()
		addr := nodes[r.next%len(nodes)]
		r.next++
		r.session(ctx, addr)
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond): // lobby.js backs off too
		}
	}
}

func (r *recoverer) session(ctx context.Context, addr string) {
	r.mu.Lock()
	url := "ws://" + addr + "/ws/" + r.room
	if r.epoch != "" {
		url += fmt.Sprintf("?since=%d&epoch=%s", r.seq, r.epoch)
	}
	had := r.epoch != ""
	r.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	ws, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{Subprotocols: []string{transport.SubprotocolJSON}})
	cancel()
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ws.SetReadLimit(-1)
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			r.mu.Lock()
			r.problem("frame %q: %v", data, err)
			r.mu.Unlock()
			return
		}
		r.mu.Lock()
		switch f.Type {
		case "welcome":
			if had {
				r.reconnects++
				if !f.Recovered || f.Epoch != r.epoch {
					r.notRec++
					r.problem("reconnect to %s after seq %d: %s", addr, r.seq, data)
				}
			}
			r.epoch = f.Epoch
			if !had {
				r.seq = f.Seq
			}
		case "message":
			if f.Seq != r.seq+1 {
				r.problem("message seq %d after %d (%s)", f.Seq, r.seq, addr)
			}
			if f.Seq > r.seq {
				r.seq = f.Seq
				r.msgs[f.Seq] = string(f.Msg)
				r.times = append(r.times, time.Now())
			}
		}
		r.mu.Unlock()
	}
}

// waitSeq waits until the recoverer has every message up to seq.
func (r *recoverer) waitSeq(t *testing.T, name string, seq uint64) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s to hold every message up to %d", name, seq), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.seq >= seq
	})
}

// publisher posts numbered messages to the nodes in turn until stopped,
// and records what was acknowledged: seq → body.
type publisher struct {
	mu     sync.Mutex
	acked  map[uint64]string
	failed int
	n      int
}

func (p *publisher) run(ctx context.Context, id int, room string, nodes func() []string, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		all := nodes()
		body := fmt.Sprintf(`{"p":%d,"n":%d}`, id, i)
		status, resp, err := post("http://"+all[i%len(all)]+"/rooms/"+room+"/broadcast", body)
		p.mu.Lock()
		p.n++
		var ans struct {
			Seq uint64 `json:"seq"`
		}
		if err == nil && status == http.StatusOK && json.Unmarshal([]byte(resp), &ans) == nil {
			p.acked[ans.Seq] = body
		} else {
			p.failed++
		}
		p.mu.Unlock()
	}
}

// check holds every recoverer to the stream: every acknowledged message
// held, under its seq, no problem seen.
func checkRecoverers(t *testing.T, pub *publisher, rs []*recoverer) {
	t.Helper()
	pub.mu.Lock()
	defer pub.mu.Unlock()
	var last uint64
	for seq := range pub.acked {
		last = max(last, seq)
	}
	for i, r := range rs {
		r.waitSeq(t, fmt.Sprintf("client %d", i), last)
	}
	for i, r := range rs {
		r.mu.Lock()
		for _, p := range r.problems {
			t.Errorf("client %d: %s", i, p)
		}
		for seq, body := range pub.acked {
			if r.msgs[seq] != body {
				t.Errorf("client %d: acknowledged seq %d (%s) held as %q", i, seq, body, r.msgs[seq])
			}
		}
		t.Logf("client %d: %d messages, %d reconnects, %d not recovered", i, len(r.msgs), r.reconnects, r.notRec)
		r.mu.Unlock()
	}
	t.Logf("publishes: %d acknowledged, %d failed, of %d", len(pub.acked), pub.failed, pub.n)
}

// TestPeersRollingRestart: three --peers nodes restarted one after the
// other (SIGTERM, start again, wait ready, next) while a publisher posts
// to them and lobby.v1 clients reconnect and recover: every client ends
// with every message, in order, none missing, none twice, and every
// reconnect recovered.
func TestPeersRollingRestart(t *testing.T) {
	pc := startPeers(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	var rs []*recoverer
	for i := range 3 {
		r := newRecoverer("rolling", i, pc.addrs)
		rs = append(rs, r)
		wg.Go(func() { r.run(ctx) })
	}
	waitJoined(t, rs)
	pub := &publisher{acked: map[uint64]string{}}
	pubCtx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		pub.run(pubCtx, 0, "rolling", pc.addrs, 10*time.Millisecond)
	}()
	for i := range 3 {
		start := time.Now()
		stopBinary(t, pc.nodes[i], syscall.SIGTERM)
		stopped := time.Since(start)
		pc.start(i)
		pc.waitReady(i)
		t.Logf("node %d: stopped in %v, ready again %v after the SIGTERM", i, stopped.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}
	stopPub()
	<-pubDone
	checkRecoverers(t, pub, rs)
	h := historyOf(t, pc.node(0), "rolling", 0)
	for i := 1; i < len(h.Messages); i++ {
		if h.Messages[i].Seq != h.Messages[i-1].Seq+1 {
			t.Fatalf("the history has seq %d after %d", h.Messages[i].Seq, h.Messages[i-1].Seq)
		}
	}
}

// TestPeersKillOne: kill -9 of one of three --peers nodes under publish
// load, the stream's leader or a follower: no acknowledged message is
// lost, the clients on the other nodes miss nothing (how long they waited
// is logged, and bounded), and the node started again catches up: its
// history is the others'.
func TestPeersKillOne(t *testing.T) {
	for _, kill := range []string{"Leader", "Follower"} {
		t.Run(kill, func(t *testing.T) { testPeersKillOne(t, kill == "Leader") })
	}
}

func testPeersKillOne(t *testing.T, leader bool) {
	pc := startPeers(t, 3)
	victim := -1
	eventually(t, "one node to lead the stream", func() bool {
		leaders := 0
		for i := range 3 {
			if v, ok := metricSample(t, pc.node(i), "lobby_nats_stream_leader"); ok && v == 1 {
				leaders++
				if leader {
					victim = i
				}
			} else if !leader {
				victim = i
			}
		}
		return leaders == 1
	})
	var alive []int
	for i := range 3 {
		if i != victim {
			alive = append(alive, i)
		}
	}
	survivors := func() []string { a := pc.addrs(); return []string{a[alive[0]], a[alive[1]]} }
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	var rs []*recoverer
	for i := range 2 {
		r := newRecoverer("kill", i, survivors)
		rs = append(rs, r)
		wg.Go(func() { r.run(ctx) })
	}
	waitJoined(t, rs)
	pub := &publisher{acked: map[uint64]string{}}
	pubCtx, stopPub := context.WithCancel(ctx)
	var pubs sync.WaitGroup
	for p := range 2 {
		pubs.Go(func() { pub.run(pubCtx, p, "kill", survivors, 5*time.Millisecond) })
	}
	eventually(t, "100 acknowledged publishes", func() bool {
		pub.mu.Lock()
		defer pub.mu.Unlock()
		return len(pub.acked) >= 100
	})
	killed := time.Now()
	if err := pc.nodes[victim].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitExit(t, pc.nodes[victim], syscall.SIGKILL)
	deadline := time.Now().Add(60 * time.Second)
	for {
		pub.mu.Lock()
		n := len(pub.acked)
		pub.mu.Unlock()
		if n >= 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("60 s after the kill, %d publishes acknowledged", n)
		}
		time.Sleep(20 * time.Millisecond) // counting acks: polled
	}
	stopPub()
	pubs.Wait()
	checkRecoverers(t, pub, rs)
	for i, r := range rs {
		r.mu.Lock()
		var stall time.Duration
		for j := 1; j < len(r.times); j++ {
			if r.times[j].After(killed) {
				stall = max(stall, r.times[j].Sub(r.times[j-1]))
			}
		}
		r.mu.Unlock()
		t.Logf("client %d: longest wait between two messages after the kill of node %d: %v", i, victim, stall.Round(time.Millisecond))
		if stall > 15*time.Second {
			t.Errorf("client %d waited %v between two messages", i, stall)
		}
	}

	pc.start(victim)
	pc.waitReady(victim)
	// A node's first reads after an election may find no leader yet
	// (503): tried again.
	read := func(i int) (h historyAnswer, ok bool) {
		status, body, err := get(pc.node(i).url("/rooms/kill/history"))
		return h, err == nil && status == http.StatusOK && json.Unmarshal([]byte(body), &h) == nil
	}
	var want historyAnswer
	eventually(t, "a survivor to answer the history", func() bool {
		var ok bool
		want, ok = read(alive[0])
		return ok
	})
	eventually(t, "the restarted node to catch up", func() bool {
		got, ok := read(victim)
		return ok && got.Seq == want.Seq && got.Epoch == want.Epoch
	})
	t.Logf("node %d caught up %v after the kill", victim, time.Since(killed).Round(time.Millisecond))
}

// waitJoined waits until every recoverer has joined its room.
func waitJoined(t *testing.T, rs []*recoverer) {
	t.Helper()
	eventually(t, "the clients to join", func() bool {
		for _, r := range rs {
			r.mu.Lock()
			joined := r.epoch != ""
			r.mu.Unlock()
			if !joined {
				return false
			}
		}
		return true
	})
}
