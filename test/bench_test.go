package test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/transport"
)

// BenchmarkRoomFanout measures deliveries per second to the members of one
// room, one member sending text frames as fast as a window of 128 frames
// not yet echoed back to it allows (so the load is closed-loop and no queue
// overflows). Client and server share the machine, so the figure is a
// floor; cmd/lobbybench measures with the server on a core of its own.
//
//	go test ./test -run '^$' -bench RoomFanout -benchtime 20000x
func BenchmarkRoomFanout(b *testing.B) {
	for _, members := range []int{10, 100} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			ts := startServer(b, transport.Config{Config: actors.Config{Logger: slog.New(slog.DiscardHandler)}, Rate: -1})
			sender := join(b, ts, "/ws/bench")
			var others []*client
			for range members - 1 {
				others = append(others, join(b, ts, "/ws/bench"))
			}
			// Let the joined notices pass: the sender sends a marker and
			// every member reads up to it.
			sender.send("ready")
			ready := broadcastFrame(sender.id, `"ready"`, "bench")
			for _, c := range append(others, sender) {
				for c.readText() != ready {
				}
			}

			const window = 128
			echoed := make(chan struct{}, window)
			var wg sync.WaitGroup
			for _, c := range others {
				wg.Go(func() {
					for range b.N {
						c.read()
					}
				})
			}
			wg.Go(func() {
				for range b.N {
					if f := sender.readText(); !strings.Contains(f, `"msg":"m"`) {
						b.Errorf("sender got %q", f)
						return
					}
					echoed <- struct{}{}
				}
			})

			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				if i >= window {
					<-echoed
				}
				sender.send("m")
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.ReportMetric(float64(b.N*members)/elapsed.Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkJoinWhileListingRooms measures how long a join takes (dial to
// "your id is") on a node with 30 000 rooms while four clients list rooms
// without pause: listing must not stall the lobby, which every join passes
// through. It reports the joins' p50 and p99; the -bench comparison is
// against no listing at all.
//
//	go test ./test -run '^$' -bench JoinWhileListingRooms -benchtime 2000x
func BenchmarkJoinWhileListingRooms(b *testing.B) {
	for _, listers := range []int{0, 4} {
		b.Run(fmt.Sprintf("listers=%d", listers), func(b *testing.B) {
			ts := startServer(b, transport.Config{Config: actors.Config{Logger: slog.New(slog.DiscardHandler)}, Rate: -1})
			// 30 000 rooms, made by publishing to them (they keep their
			// history, so they stay), 16 publishers at a time.
			var fill sync.WaitGroup
			for p := range 16 {
				fill.Go(func() {
					for i := p; i < 30_000; i += 16 {
						req, _ := http.NewRequest("POST", ts.url(fmt.Sprintf("/rooms/room-%05d/broadcast", i)), strings.NewReader("1"))
						if resp, err := http.DefaultClient.Do(req); err == nil {
							resp.Body.Close()
						}
					}
				})
			}
			fill.Wait()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range listers {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						if resp, err := http.Get(ts.url("/rooms?limit=1000&after=room-10000")); err == nil {
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
					}
				})
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				c := join(b, ts, fmt.Sprintf("/ws/room-%05d", i%30_000))
				lat = append(lat, time.Since(start))
				_ = c.ws.CloseNow()
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkSubscribedFanout is BenchmarkRoomFanout over lobby.v1 sockets,
// for members who sit in the broadcast's room alone ("rooms=1", today's
// single-room fan-out) and members who each sit in ten rooms on their one
// connection ("rooms=10"): being in other rooms must not slow a room's
// fan-out. Both run in one process, one after the other; run with
// -count to interleave them.
//
//	go test ./test -run '^$' -bench SubscribedFanout -benchtime 5000x -count 3
func BenchmarkSubscribedFanout(b *testing.B) {
	const members = 100
	for _, rooms := range []int{1, 10} {
		b.Run(fmt.Sprintf("rooms=%d", rooms), func(b *testing.B) {
			ts := startServer(b, transport.Config{Config: actors.Config{Logger: slog.New(slog.DiscardHandler)}, Rate: -1})
			sender := joinJSON(b, ts, "/ws/bench")
			var readers []*jsonClient
			for range members - 1 {
				readers = append(readers, joinJSON(b, ts, "/ws/bench"))
			}
			for _, c := range append(readers, sender) {
				for r := 1; r < rooms; r++ {
					c.sendJSON(fmt.Sprintf(`{"type":"subscribe","room":"other-%d"}`, r))
				}
				for welcomed := 1; welcomed < rooms; {
					if c.next().Type == "welcome" {
						welcomed++
					}
				}
			}
			is := func(data []byte, msg string) bool {
				return strings.HasPrefix(string(data), `{"type":"message"`) && strings.HasSuffix(string(data), `"msg":"`+msg+`"}`)
			}
			// The joins' notices wait in the readers' sockets: a warm-up
			// message behind them, read by everyone, leaves the timing to
			// the broadcasts.
			var warm sync.WaitGroup
			sender.sendJSON(`{"type":"broadcast","msg":"warm"}`)
			const window = 128
			echoed := make(chan struct{}, window)
			var wg sync.WaitGroup
			for _, c := range append(readers, sender) {
				warm.Add(1)
				wg.Go(func() {
					for _, data := c.read(); !is(data, "warm"); _, data = c.read() {
					}
					warm.Done()
					for n := 0; n < b.N; {
						if _, data := c.read(); is(data, "m") {
							n++
							if c == sender {
								echoed <- struct{}{}
							}
						}
					}
				})
			}
			warm.Wait()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				if i >= window {
					<-echoed
				}
				sender.sendJSON(`{"type":"broadcast","msg":"m"}`)
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.ReportMetric(float64(b.N*members)/elapsed.Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkSubscriptionMemorySockets is BenchmarkSubscriptionMemory (in
// ./actors) over real sockets, server and clients in this process: 100
// lobby.v1 connections, idle in one room, then each in 100 rooms.
// KB/connection is what one idle connection costs, both ends counted (an
// upper bound of the server's); KB/subscription is what each room more
// costs, the server's bookkeeping (the clients hold nothing more for it).
//
//	go test ./test -run '^$' -bench SubscriptionMemorySockets -benchtime 1x
func BenchmarkSubscriptionMemorySockets(b *testing.B) {
	const conns, rooms = 100, 100
	heap := func() float64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return float64(ms.HeapAlloc)
	}
	for b.Loop() {
		ts := startServer(b, transport.Config{Config: actors.Config{Logger: slog.New(slog.DiscardHandler), History: -1,
			Heartbeat: time.Hour, ClientTimeout: 2 * time.Hour}, Rate: -1})
		base := heap()
		clients := make([]*jsonClient, conns)
		for i := range clients {
			clients[i] = joinJSON(b, ts, "/ws/home")
		}
		// Every client reads whatever comes, and counts the markers.
		markers := make(chan struct{}, conns*rooms)
		var readers sync.WaitGroup
		for _, c := range clients {
			readers.Go(func() {
				for {
					_, data, err := c.ws.Read(context.Background())
					if err != nil {
						return
					}
					if strings.Contains(string(data), `"msg":"marker"`) {
						markers <- struct{}{}
					}
				}
			})
		}
		// quiesce publishes a marker to each room and waits until every
		// member has read it: what was sent before is read too.
		quiesce := func(rooms []string) {
			for _, r := range rooms {
				httpDo(b, "POST", ts.url("/rooms/"+r+"/broadcast"), []byte(`"marker"`), nil)
			}
			for range conns * len(rooms) {
				<-markers
			}
		}
		quiesce([]string{"home"})
		idle := heap()
		names := make([]string, rooms-1)
		for i := range names {
			names[i] = fmt.Sprintf("room-%d", i)
		}
		for _, c := range clients {
			for _, r := range names {
				if err := c.ws.Write(context.Background(), websocket.MessageText, []byte(`{"type":"subscribe","room":"`+r+`"}`)); err != nil {
					b.Fatal(err)
				}
			}
		}
		for deadline := time.Now().Add(time.Minute); ; {
			if v, ok := metricSample(b, ts, "lobby_subscriptions"); ok && v == conns*rooms {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the subscriptions did not all complete")
			}
		}
		quiesce(append(names, "home"))
		full := heap()
		b.ReportMetric((idle-base)/conns/1024, "KB/connection")
		b.ReportMetric((full-idle)/(conns*(rooms-1))/1024, "KB/subscription")
		for _, c := range clients {
			c.ws.CloseNow()
		}
		readers.Wait()
		ts.stop(b)
	}
}
