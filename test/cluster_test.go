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
	opts := &natsserver.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true}
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
	done chan struct{}
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


