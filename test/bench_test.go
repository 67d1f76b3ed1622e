package test

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

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
			ts := startServer(b, transport.Config{Logger: slog.New(slog.DiscardHandler), Rate: -1})
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
