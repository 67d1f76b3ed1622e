package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lobby/lobby/actors/broker"
	"github.com/lobby/lobby/transport"
)

// The slow-node tests (issue 21, cluster faults, item 7) stop the real
// binary with SIGSTOP, as a node starved of CPU or paused by its host
// is, and continue it with SIGCONT.

// reader reads a client's frames in the background, as a live client
// does (coder/websocket answers pings only while it reads), until the
// connection ends.
type reader struct {
	frames chan string
	// done receives the error the reads ended with.
	done chan error
}

func readAll(c *client) *reader {
	r := &reader{frames: make(chan string, 4096), done: make(chan error, 1)}
	go func() {
		for {
			_, data, err := c.ws.Read(context.Background())
			if err != nil {
				r.done <- err
				return
			}
			select {
			case r.frames <- string(data):
			default:
				r.done <- fmt.Errorf("more than %d frames unread", cap(r.frames))
				return
			}
		}
	}()
	return r
}

// next is the next frame the reader got, failing the test if the
// connection ended first.
func (r *reader) next(t *testing.T) string {
	t.Helper()
	select {
	case f := <-r.frames:
		return f
	case err := <-r.done:
		r.done <- err
		t.Fatalf("the connection ended: %v", err)
	case <-time.After(waitFor):
		t.Fatal("no frame")
	}
	return ""
}

// alive fails the test if the connection has ended.
func (r *reader) alive(t *testing.T, name string) {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		t.Fatalf("%s: the connection ended: %v", name, err)
	default:
	}
}

// stopFor stops the binary for d (SIGSTOP), then continues it.
func (b *binaryServer) stopFor(t *testing.T, d time.Duration) {
	t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP: %v", err)
	}
	time.Sleep(d) // the stop itself: nothing to wait on, the node is not running
	if err := b.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT: %v", err)
	}
}

// TestStoppedNodeKeepsItsClients: a node stopped for longer than the
// client timeout (SIGSTOP, as a host pausing it or a CPU quota starving
// it) did not read its clients' pongs meanwhile; they wait in the
// kernel's buffers. Continued, it must not close them for a heartbeat
// timeout, while a client that really is silent is still closed.
func TestStoppedNodeKeepsItsClients(t *testing.T) {
	bin := buildLobby(t)
	node := startBinary(t, bin, []string{"--addr", "127.0.0.1:0", "--connect-rate", "-1",
		"--heartbeat", "250ms", "--client-timeout", "1500ms"})
	ts := &testServer{addr: node.addr}
	const clients = 20
	readers := make([]*reader, clients)
	for i := range readers {
		c := join(t, ts, "/ws/stopped")
		readers[i] = readAll(c)
	}
	// The control: a client that answers no ping (it never reads),
	// connected just before the stop.
	_ = dial(t, ts, "/ws/stopped")

	node.stopFor(t, 3*time.Second)

	// The silent client is closed a client timeout after the node is
	// back: by then every healthy client's heartbeat has ticked.
	const timeouts = `lobby_disconnects_total{reason="heartbeat_timeout"}`
	eventually(t, "the silent client to be closed", func() bool {
		v, _ := metricSample(t, ts, timeouts)
		return v >= 1
	})
	status, body, err := post(ts.url("/rooms/stopped/broadcast"), `{"after":"the stop"}`)
	if err != nil || status != http.StatusOK {
		t.Fatalf("publish after the stop: %d %s %v", status, body, err)
	}
	for i, r := range readers {
		for {
			f := r.next(t)
			if strings.Contains(f, `"after":"the stop"`) {
				break
			}
		}
		r.alive(t, fmt.Sprintf("client %d", i))
	}
	if v := metricValue(t, ts, timeouts); v != 1 {
		t.Fatalf("%s = %v after the stop, want 1 (the silent client only)", timeouts, v)
	}
}

// TestClusterRecoveryReadsTheWholeStream: a lobby.v1 client that missed
// more than --history messages (its node fell behind, or it was away)
// recovers them all from the stream, which keeps far more, on any node,
// even more than its send queue takes at once: the replay goes out as
// the client reads it (before, a recovery past three quarters of
// --send-queue was answered recovered:false).
func TestClusterRecoveryReadsTheWholeStream(t *testing.T) {
	c := startCluster(t, 2, "--history", "10", "--send-queue", "64")
	tests := []struct {
		name   string
		missed int
	}{
		{name: "four times the history", missed: 40},
		{name: "three send queues", missed: 3 * 64},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			room := fmt.Sprintf("whole%d", i)
			first := joinJSON(t, c.node(0), "/ws/"+room)
			since, epoch := first.welcome.Seq, first.welcome.Epoch
			_ = first.ws.CloseNow()
			for n := range tt.missed {
				if status, body, err := post(c.node(0).url("/rooms/"+room+"/broadcast"), fmt.Sprintf(`{"n":%d}`, n)); err != nil || status != http.StatusOK {
					t.Fatalf("publish %d: %d %s %v", n, status, body, err)
				}
			}
			waitRoomSeq(t, c.node(1), room, since+uint64(tt.missed))
			back := joinJSON(t, c.node(1), fmt.Sprintf("/ws/%s?since=%d&epoch=%s", room, since, epoch))
			if !back.welcome.Recovered {
				t.Fatalf("welcome %s after %d missed, want recovered", back.welcome.raw, tt.missed)
			}
			for n := range tt.missed {
				f := back.nextOf("message")
				if want := fmt.Sprintf(`{"n":%d}`, n); string(f.Msg) != want || f.Seq != since+uint64(n)+1 {
					t.Fatalf("replayed %s, want %s at seq %d", f.raw, want, since+uint64(n)+1)
				}
			}
		})
	}
}

// TestClusterStoppedNodeCatchesUp: node 1 of two is stopped (SIGSTOP)
// for 4 s, longer than its clients' timeout, while a room it has members
// in gets 50 publishes a second on node 0; continued, its members get
// every message, in order, and none is closed (neither for the
// heartbeats it could not read nor as slow consumers); the node says how
// late it delivered them, and its heap did not grow with the backlog,
// which waited in the stream.
func TestClusterStoppedNodeCatchesUp(t *testing.T) {
	// A client timeout short enough for the stop to pass it, long enough
	// for a machine busy with other tests not to.
	c := startCluster(t, 2, "--heartbeat", "250ms", "--client-timeout", "2s")
	const members, total = 10, 300
	type member struct {
		c *jsonClient
		r *reader
	}
	ms := make([]member, members)
	for i := range ms {
		jc := joinJSON(t, c.node(1), "/ws/behind")
		ms[i] = member{c: jc, r: readAll(jc.client)}
	}
	heapBefore := metricValue(t, c.node(1), "go_memstats_heap_inuse_bytes")

	publishErr := make(chan error, 1)
	published := make(chan struct{})
	go func() {
		defer close(published)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for n := range total {
			<-tick.C
			status, body, err := post(c.node(0).url("/rooms/behind/broadcast"), fmt.Sprintf(`{"n":%d}`, n))
			if err != nil || status != http.StatusOK {
				publishErr <- fmt.Errorf("publish %d: %d %s %v", n, status, body, err)
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // some messages before the stop, live
	c.nodes[1].stopFor(t, 4*time.Second)
	<-published
	select {
	case err := <-publishErr:
		t.Fatal(err)
	default:
	}

	var first uint64
	for i, m := range ms {
		for n := 0; n < total; {
			var f frame
			raw := m.r.next(t)
			if err := json.Unmarshal([]byte(raw), &f); err != nil {
				t.Fatalf("member %d: %q: %v", i, raw, err)
			}
			if f.Type != "message" {
				continue
			}
			if n == 0 && i == 0 {
				first = f.Seq
			}
			if want := fmt.Sprintf(`{"n":%d}`, n); string(f.Msg) != want || f.Seq != first+uint64(n) {
				t.Fatalf("member %d: got %s, want %s at seq %d", i, raw, want, first+uint64(n))
			}
			n++
		}
		m.r.alive(t, fmt.Sprintf("member %d", i))
	}
	for _, reason := range []string{"heartbeat_timeout", "slow_consumer"} {
		if v, _ := metricSample(t, c.node(1), `lobby_disconnects_total{reason="`+reason+`"}`); v != 0 {
			t.Fatalf("node 1 closed %v clients for %s", v, reason)
		}
	}
	// The messages published during the stop were delivered late, and
	// the node says so.
	// About 200 were published during the stop: all but those of its
	// last quarter second were delivered a quarter second late or more.
	late := metricValue(t, c.node(1), "lobby_bridge_delivery_delay_seconds_count") - bucketAtLeast(t, c.node(1), "lobby_bridge_delivery_delay_seconds", 0.25)
	if late < 100 {
		t.Fatalf("%v messages counted delivered a quarter second or more late after a 4 s stop at 50/s, want 100 or more", late)
	}
	grown := metricValue(t, c.node(1), "go_memstats_heap_inuse_bytes") - heapBefore
	t.Logf("after the stop: %v messages delivered a quarter second or more late; heap grew %.1f MiB", late, grown/(1<<20))
	if grown > 32<<20 {
		t.Fatalf("node 1's heap grew by %.0f MiB catching up %d messages", grown/(1<<20), total)
	}
}

// bucketAtLeast is the count of histogram's first bucket whose bound is
// at least le.
func bucketAtLeast(t *testing.T, ts *testServer, histogram string, le float64) float64 {
	t.Helper()
	status, body := httpDo(t, "GET", ts.url("/metrics"), nil, nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d", status)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, histogram+`_bucket{le="`)
		if !ok {
			continue
		}
		var bound, count float64
		if _, err := fmt.Sscanf(strings.Replace(rest, `"} `, " ", 1), "%g %g", &bound, &count); err != nil {
			continue // +Inf
		}
		if bound >= le {
			return count
		}
	}
	t.Fatalf("/metrics has no bucket of %s at %v or more", histogram, le)
	return 0
}

// behindBroker is a node's broker that says the node is behind its
// stream, as the NATS broker does past --max-stream-lag.
type behindBroker struct {
	*broker.MemoryBroker
	behind atomic.Bool
}

func (b *behindBroker) Ready() error {
	if b.behind.Load() {
		return fmt.Errorf("%w: 40 messages not delivered yet, the oldest stored 7.5 s ago (limit 5s)", broker.ErrBehind)
	}
	return nil
}

// TestReadyzSaysBehind: a node behind its stream answers /readyz 503
// with status behind and the broker's reason, not "cluster unavailable",
// and 200 again once it has caught up.
func TestReadyzSaysBehind(t *testing.T) {
	mb := broker.NewMemoryBroker(broker.MemoryBrokerConfig{History: 100, HistoryTTL: time.Minute, HistoryBytes: 1 << 20})
	t.Cleanup(mb.Close)
	b := &behindBroker{MemoryBroker: mb}
	b.behind.Store(true)
	cfg := transport.Config{}
	cfg.Broker = b
	ts := startServer(t, cfg)
	status, body := httpDo(t, "GET", ts.url("/readyz"), nil, nil)
	var got struct{ Status, Message string }
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("/readyz %s: %v", body, err)
	}
	if status != http.StatusServiceUnavailable || got.Status != "behind" || !strings.Contains(got.Message, "7.5 s ago") {
		t.Fatalf("/readyz behind: %d %s, want 503 with status behind and the reason", status, body)
	}
	b.behind.Store(false)
	if status, body := httpDo(t, "GET", ts.url("/readyz"), nil, nil); status != http.StatusOK {
		t.Fatalf("/readyz caught up: %d %s", status, body)
	}
}
