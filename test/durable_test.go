package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/transport"
)

// The durable tests run the real binary with --durable, its data dir the
// test's, and stop it as an operator or a crash would: SIGTERM, or
// kill -9 (SIGKILL). A node started again on the same data dir must hold
// every message it acknowledged, under the same epochs.

// startDurable runs the binary with --durable on dir, with args added.
func startDurable(t *testing.T, dir string, args ...string) *binaryServer {
	t.Helper()
	a := append([]string{"--addr", "127.0.0.1:0", "--durable", "--data-dir", dir, "--connect-rate", "-1"}, args...)
	return startBinary(t, buildLobby(t), a)
}

// stopBinary stops b with sig and waits for it to exit; with SIGTERM it
// must exit 0.
func stopBinary(t *testing.T, b *binaryServer, sig syscall.Signal) {
	t.Helper()
	if err := b.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	waitExit(t, b, sig)
}

// waitExit waits for b to exit after sig.
func waitExit(t *testing.T, b *binaryServer, sig syscall.Signal) {
	t.Helper()
	select {
	case err := <-b.exited:
		b.exited <- err // for the cleanup
		if sig == syscall.SIGTERM && err != nil {
			t.Fatalf("after SIGTERM the binary exited with %v, want 0", err)
		}
	case <-time.After(waitFor):
		_ = b.cmd.Process.Signal(syscall.SIGQUIT) // its goroutines, in the log
		select {
		case err := <-b.exited:
			b.exited <- err
		case <-time.After(5 * time.Second):
		}
		t.Fatalf("the binary did not exit after %v", sig)
	}
}

// historyOf is GET /rooms/{room}/history?since= on ts.
type historyAnswer struct {
	Epoch    string `json:"epoch"`
	Seq      uint64 `json:"seq"`
	Complete bool   `json:"complete"`
	Messages []struct {
		Seq uint64          `json:"seq"`
		ID  string          `json:"id"`
		TS  int64           `json:"ts"`
		Msg json.RawMessage `json:"msg"`
	} `json:"messages"`
}

func historyOf(t *testing.T, ts *testServer, room string, since uint64) historyAnswer {
	t.Helper()
	status, body := httpDo(t, "GET", ts.url(fmt.Sprintf("/rooms/%s/history?since=%d", room, since)), nil, nil)
	if status != http.StatusOK {
		t.Fatalf("history of %s: %d %s", room, status, body)
	}
	var h historyAnswer
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatalf("history of %s: %v in %s", room, err, body)
	}
	return h
}

func publishOK(t *testing.T, ts *testServer, room, body string) uint64 {
	t.Helper()
	status, resp, err := post(ts.url("/rooms/"+room+"/broadcast"), body)
	if err != nil || status != http.StatusOK {
		t.Fatalf("publish %s to %s: %d %s %v", body, room, status, resp, err)
	}
	var ans struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(resp), &ans); err != nil || ans.Seq == 0 {
		t.Fatalf("publish answered %s", resp)
	}
	return ans.Seq
}

// TestDurableRestart: a client has seen messages 1..5 of a room; the node
// stops (SIGTERM, then in a second round kill -9); the node started again
// on its data dir answers the history as before, under the same epoch,
// and takes publishes 6..10 (and so on); the client reconnecting with
// since/epoch gets recovered:true and exactly what it missed.
func TestDurableRestart(t *testing.T) {
	dir := t.TempDir()
	node := startDurable(t, dir)
	ts := &testServer{addr: node.addr}
	c := joinJSON(t, ts, "/ws/durable")
	epoch := c.welcome.Epoch
	for i := 1; i <= 5; i++ {
		if seq := publishOK(t, ts, "durable", fmt.Sprintf(`{"n":%d}`, i)); seq != uint64(i) {
			t.Fatalf("publish %d got seq %d", i, seq)
		}
	}
	var seen uint64
	for seen < 5 {
		seen = c.nextOf("message").Seq
	}
	before := historyOf(t, ts, "durable", 0)

	next := 6
	for round, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		start := time.Now()
		stopBinary(t, node, sig)
		stopped := time.Now()
		node = startDurable(t, dir)
		t.Logf("round %d (%v): stopped in %v, started again in %v", round, sig, stopped.Sub(start).Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
		ts = &testServer{addr: node.addr}
		after := historyOf(t, ts, "durable", 0)
		if after.Epoch != epoch || after.Seq != before.Seq || !after.Complete || len(after.Messages) != len(before.Messages) {
			t.Fatalf("round %d (%v): history after the restart %+v, before %+v", round, sig, after, before)
		}
		for i := range after.Messages {
			if a, b := after.Messages[i], before.Messages[i]; a.Seq != b.Seq || a.ID != b.ID || a.TS != b.TS || string(a.Msg) != string(b.Msg) {
				t.Fatalf("round %d: message %d was %+v, is %+v", round, i, b, a)
			}
		}
		// Published while the client is away.
		for range 5 {
			if seq := publishOK(t, ts, "durable", fmt.Sprintf(`{"n":%d}`, next)); seq != uint64(next) {
				t.Fatalf("round %d: publish %d got seq %d", round, next, seq)
			}
			next++
		}
		c = joinJSON(t, ts, fmt.Sprintf("/ws/durable?since=%d&epoch=%s", seen, epoch))
		if !c.welcome.Recovered || c.welcome.Epoch != epoch || c.welcome.Seq != uint64(next-1) {
			t.Fatalf("round %d: reconnect welcome %s, want recovered in epoch %s at seq %d", round, c.welcome.raw, epoch, next-1)
		}
		for want := seen + 1; want < uint64(next); want++ {
			f := c.nextOf("message")
			if f.Seq != want || string(f.Msg) != fmt.Sprintf(`{"n":%d}`, want) || f.TS == 0 {
				t.Fatalf("round %d: replay %s, want seq %d", round, f.raw, want)
			}
		}
		seen = uint64(next - 1)
		before = historyOf(t, ts, "durable", 0)
	}
}

// TestDurableKillUnderLoad: publishers post as fast as they are answered
// while the node is killed (kill -9): every publish that was answered 200
// is in the history after the restart, with the seq it was answered,
// and the room's seqs have no hole.
func TestDurableKillUnderLoad(t *testing.T) {
	dir := t.TempDir()
	node := startDurable(t, dir)
	ts := &testServer{addr: node.addr}
	publishOK(t, ts, "load", `"first"`)

	var mu sync.Mutex
	acked := map[uint64]string{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for p := range 4 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"p":%d,"n":%d}`, p, n)
				status, resp, err := post(ts.url("/rooms/load/broadcast"), body)
				if err != nil {
					return // the node is gone
				}
				if status != http.StatusOK {
					continue
				}
				var ans struct {
					Seq uint64 `json:"seq"`
				}
				if json.Unmarshal([]byte(resp), &ans) == nil {
					mu.Lock()
					acked[ans.Seq] = body
					mu.Unlock()
				}
			}
		})
	}
	eventually(t, "50 acknowledged publishes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 50
	})
	if err := node.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	waitExit(t, node, syscall.SIGKILL)

	node = startDurable(t, dir, "--history", "10000", "--send-queue", "10001")
	ts = &testServer{addr: node.addr}
	h := historyOf(t, ts, "load", 0)
	stored := map[uint64]string{}
	for i, m := range h.Messages {
		if m.Seq != uint64(i+1) {
			t.Fatalf("history entry %d has seq %d: a hole", i, m.Seq)
		}
		stored[m.Seq] = string(m.Msg)
	}
	mu.Lock()
	defer mu.Unlock()
	var seqs []uint64
	for seq, body := range acked {
		seqs = append(seqs, seq)
		if stored[seq] != body {
			t.Fatalf("acknowledged seq %d (%s) is %q after the restart", seq, body, stored[seq])
		}
	}
	slices.Sort(seqs)
	t.Logf("%d publishes acknowledged before the kill (up to seq %d); %d stored", len(acked), seqs[len(seqs)-1], len(h.Messages))
	if seq := publishOK(t, ts, "load", `"after"`); seq != h.Seq+1 {
		t.Fatalf("the first publish after the restart got seq %d, want %d", seq, h.Seq+1)
	}
}

// historyMessages is how many messages GET /rooms/{room}/history lists,
// 0 for a room the node no longer knows.
func historyMessages(t *testing.T, ts *testServer, room string) int {
	t.Helper()
	status, body := httpDo(t, "GET", ts.url("/rooms/"+room+"/history"), nil, nil)
	if status == http.StatusNotFound {
		return 0
	}
	if status != http.StatusOK {
		t.Fatalf("history of %s: %d %s", room, status, body)
	}
	var h historyAnswer
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	return len(h.Messages)
}

// TestLatestValue: the statistics room keeps its last batch once its
// history has expired, in memory and --durable (and there across a
// restart), while another room's history expires as it did.
func TestLatestValue(t *testing.T) {
	check := func(t *testing.T, ts *testServer) {
		t.Helper()
		for i := range 2 {
			postDashboard(t, ts, []dashboardRecord{{"Cards", 1, 10 + i, 100 * float64(i+1), "EUR", "ok"}})
		}
		publishOK(t, ts, "plain", `"gone soon"`)
		eventually(t, "plain's history to expire", func() bool {
			return historyMessages(t, ts, "plain") == 0 && historyMessages(t, ts, "dailyNews") < 2
		})
		h := historyOf(t, ts, "dailyNews", 0)
		if len(h.Messages) != 1 || h.Messages[0].Seq != 2 || h.Seq != 2 || h.Messages[0].TS == 0 {
			t.Fatalf("dailyNews after its history expired: %+v, want its last batch alone", h)
		}
		var batch []dashboardRecord
		if err := json.Unmarshal(h.Messages[0].Msg, &batch); err != nil || len(batch) != 1 || batch[0].TotalAmount != 200 {
			t.Fatalf("the latest value is %s", h.Messages[0].Msg)
		}
		// A lobby.v1 client that saw batch 1 recovers batch 2 from it.
		c := joinJSON(t, ts, "/ws/dailyNews?since=1&epoch="+h.Epoch)
		if !c.welcome.Recovered {
			t.Fatalf("recovery from the latest value: %s", c.welcome.raw)
		}
		if f := c.nextOf("message"); f.Seq != 2 {
			t.Fatalf("recovered %s, want batch 2", f.raw)
		}
		_ = c.ws.CloseNow()
	}
	t.Run("Memory", func(t *testing.T) {
		check(t, startServer(t, transport.Config{Config: actors.Config{HistoryTTL: time.Second}}))
	})
	t.Run("Durable", func(t *testing.T) {
		dir := t.TempDir()
		node := startDurable(t, dir, "--history-ttl", "1s")
		check(t, &testServer{addr: node.addr})
		start := time.Now()
		stopBinary(t, node, syscall.SIGTERM)
		t.Logf("stopped in %v", time.Since(start))
		node = startDurable(t, dir, "--history-ttl", "1s")
		if h := historyOf(t, &testServer{addr: node.addr}, "dailyNews", 0); len(h.Messages) != 1 || h.Messages[0].Seq != 2 {
			t.Fatalf("dailyNews after a restart: %+v", h)
		}
	})
}

// TestDurableDiskFull: the disk under --data-dir fills up (a tmpfs of its
// own, filled by a file): publishes are answered 503 store_full and
// counted, the node keeps serving; once the file is gone they are stored
// again. It needs root, to mount the tmpfs, and skips without.
func TestDurableDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	node := startDurable(t, dir, "--durable-min-free", strconv.Itoa(8<<20))
	t.Cleanup(func() {
		// After the node's own cleanup has killed it (cleanups run last
		// first): unmount what it no longer uses.
		_ = exec.Command("umount", "-l", dir).Run()
	})
	ts := &testServer{addr: node.addr}
	c := joinJSON(t, ts, "/ws/full")
	publishOK(t, ts, "full", `"before"`)
	c.nextOf("message")

	// Fill the disk to 4 MiB short of full: under the 8 MiB the node keeps.
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, int64(st.Bavail)*st.Bsize-4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a publish to be refused 503 store_full", func() bool {
		status, body, err := post(ts.url("/rooms/full/broadcast"), `"while full"`)
		if err != nil {
			t.Fatal(err)
		}
		if status == http.StatusOK {
			return false
		}
		expectJSONError(t, status, []byte(body), http.StatusServiceUnavailable, "store_full")
		return true
	})
	if v := metricValue(t, ts, "lobby_store_full_total"); v < 1 {
		t.Fatalf("lobby_store_full_total %v after a refused publish", v)
	}
	// A member's broadcast is answered too, the connection kept.
	c.sendJSON(`{"type":"broadcast","msg":"full?","ref":1}`)
	for {
		f := c.next() // the messages stored before the disk was seen full come first
		if f.Type == "message" && string(f.Msg) == `"while full"` {
			continue
		}
		if f.Type != "error" || f.Code != "store_full" {
			t.Fatalf("a broadcast while full: %s", f.raw)
		}
		break
	}
	if status, _ := httpDo(t, "GET", ts.url("/healthz"), nil, nil); status != http.StatusOK {
		t.Fatalf("/healthz %d while the disk is full", status)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventually(t, "publishes to be stored again", func() bool {
		status, _, err := post(ts.url("/rooms/full/broadcast"), `"after"`)
		return err == nil && status == http.StatusOK
	})
	h := historyOf(t, ts, "full", 0)
	if last := h.Messages[len(h.Messages)-1]; string(last.Msg) != `"after"` || last.Seq != h.Seq || !h.Complete {
		t.Fatalf("history after the disk had room again: %+v", h)
	}
}
