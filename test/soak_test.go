package test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/transport"
)

// TestSoak churns 2 000 clients (connect, send, read their own message
// back, disconnect) for LOBBY_SOAK (a duration, e.g. 60s), then checks that
// the server's goroutines and heap return to near where they started. It
// does not run unless LOBBY_SOAK is set:
//
//	LOBBY_SOAK=60s go test ./test -run Soak -v
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("LOBBY_SOAK"))
	if err != nil {
		t.Skip("set LOBBY_SOAK to a duration to run the soak test")
	}
	const clients = 2000
	ts := startServer(t, transport.Config{Config: actors.Config{HistoryTTL: time.Second, Logger: quietLogger(t)}})

	goroutinesBefore := runtime.NumGoroutine()
	runtime.GC()
	var startHeap runtime.MemStats
	runtime.ReadMemStats(&startHeap)

	// Two rounds, each measured once everything has closed and expired.
	// The first keeps about 5 MiB: the runtime never frees a goroutine's
	// descriptor (~4 MiB for the peak of 2 000 clients' and their
	// connections' goroutines, test and server in one process), and Go
	// maps keep their size. It may keep no more than 8 MiB (protoactor's
	// process registry would keep 12 MB of maps if the node did not shrink
	// it), and the second round must add nothing to the first.
	var live [2]uint64
	var cycles, failures atomic.Int64
	for round := range 2 {
		deadline := time.Now().Add(d / 2)
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				room := fmt.Sprintf("/ws/soak-%d", i%50)
				for time.Now().Before(deadline) {
					if err := soakCycle(ts, room); err != nil {
						if failures.Add(1) <= 5 {
							t.Logf("cycle failed: %v", err)
						}
						continue
					}
					cycles.Add(1)
				}
			})
		}
		wg.Wait()
		eventually(t, "every connection to close", func() bool { return metricValue(t, ts, "lobby_connections") == 0 })
		eventually(t, "every room to expire", func() bool { return metricValue(t, ts, "lobby_rooms") == 0 })
		eventually(t, "goroutines to return", func() bool {
			runtime.GC()
			return runtime.NumGoroutine() <= goroutinesBefore+10
		})
		// Twice: sync.Pool keeps what it held for one more collection.
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		live[round] = m.HeapAlloc
		t.Logf("round %d: %d cycles so far, %d failed; goroutines %d (start %d); live heap %.1f MiB (start %.1f)",
			round+1, cycles.Load(), failures.Load(), runtime.NumGoroutine(), goroutinesBefore,
			float64(m.HeapAlloc)/(1<<20), float64(startHeap.HeapAlloc)/(1<<20))
	}
	t.Logf("%d clients, %v: %d cycles, %.0f/s", clients, d, cycles.Load(), float64(cycles.Load())/d.Seconds())
	if failures.Load() > cycles.Load()/1000 {
		t.Errorf("%d of %d cycles failed", failures.Load(), cycles.Load()+failures.Load())
	}
	if kept := int64(live[0]) - int64(startHeap.HeapAlloc); kept > 8<<20 {
		t.Errorf("the first round left %d MiB more live heap than the start", kept>>20)
	}
	if grew := int64(live[1]) - int64(live[0]); grew > 2<<20 {
		t.Errorf("the second round left %d MiB more live heap than the first: a leak", grew>>20)
	}
}

// soakCycle is one client's life: connect, send, read its message back,
// leave.
func soakCycle(ts *testServer, room string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, ts.wsURL(room), nil)
	if err != nil {
		return err
	}
	defer ws.CloseNow()
	_, welcome, err := ws.Read(ctx)
	if err != nil {
		return err
	}
	id := string(welcome[len("your id is "):])
	if err := ws.Write(ctx, websocket.MessageText, []byte("soak")); err != nil {
		return err
	}
	want := broadcastFrame(id, `"soak"`, room[len("/ws/"):])
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		if string(data) == want {
			break
		}
	}
	return ws.Close(websocket.StatusNormalClosure, "")
}
