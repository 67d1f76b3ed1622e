package actors

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// countConn counts broadcast frames (the welcome and the notices are not
// JSON) and signals when it has seen want of them.
type countConn struct {
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (c *countConn) Send(data []byte, _ bool) bool {
	if len(data) == 0 || data[0] != '{' {
		return true
	}
	if c.n.Add(1) == c.want {
		close(c.done)
	}
	return true
}
func (c *countConn) Close(socket.Reason) {}
func (c *countConn) Abort(socket.Reason) {}
func (c *countConn) Ping()               {}
func (c *countConn) LastSeen() time.Time { return time.Now() }
func (c *countConn) ActorStopped()       {}

// BenchmarkRoomFanout measures a broadcast through the actors alone: room
// → every member's session → its socket.Conn, no sockets. ns/op is per delivery.
func BenchmarkRoomFanout(b *testing.B) {
	for _, members := range []int{10, 1000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			n := NewNode(Config{Logger: slog.New(slog.DiscardHandler), History: -1})
			defer n.Shutdown(context.Background())
			broadcasts := max(b.N/members, 1)
			conns := make([]*countConn, members)
			for i := range conns {
				conns[i] = &countConn{want: int64(broadcasts), done: make(chan struct{})}
				n.Spawn(n.SessionProps(conns[i], Join{Room: "bench"}))
			}
			sender := uuid.New()
			msg := socket.AppendJSONString(nil, "a typical chat line")
			// Publishes go through the lobby as requests; wait for the
			// room to exist with every member first.
			for {
				info, err := n.Room(b.Context(), "bench")
				if err == nil && len(info.Members) == members {
					break
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			// Sent as requests, like the transport's publishes: the lobby
			// takes a broadcast with no sender for a stopped session's.
			for range broadcasts {
				n.system.Root.RequestFuture(n.lobby, &messages.BroadcastMessage{ID: sender, Msg: msg, RoomID: "bench"}, time.Minute)
			}
			for _, c := range conns {
				<-c.done
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(broadcasts*members), "ns/delivery")
		})
	}
}

// BenchmarkRoomsFanout measures many rooms at once (100 rooms of 20, one
// publisher per room), through the actors alone, for how deliveries per
// second grow with the cores Go may use: run it with -cpu 1,2 (and more
// where there are more). What bounds it past a few cores is in
// cmd/lobbybench/README.md, "Cores".
//
//	go test ./actors -run '^$' -bench RoomsFanout -cpu 1,2
func BenchmarkRoomsFanout(b *testing.B) {
	const rooms, members = 100, 20
	n := NewNode(Config{Logger: slog.New(slog.DiscardHandler), History: -1})
	defer n.Shutdown(context.Background())
	perRoom := max(b.N/(rooms*members), 1)
	var conns []*countConn
	for r := range rooms {
		for range members {
			c := &countConn{want: int64(perRoom), done: make(chan struct{})}
			conns = append(conns, c)
			n.Spawn(n.SessionProps(c, Join{Room: fmt.Sprintf("r%d", r)}))
		}
	}
	for r := range rooms {
		for {
			info, err := n.Room(b.Context(), fmt.Sprintf("r%d", r))
			if err == nil && len(info.Members) == members {
				break
			}
		}
	}
	sender := uuid.New()
	msg := socket.AppendJSONString(nil, "a typical chat line")
	b.ReportAllocs()
	b.ResetTimer()
	var publishers sync.WaitGroup
	for r := range rooms {
		publishers.Go(func() {
			room := fmt.Sprintf("r%d", r)
			for range perRoom {
				n.system.Root.RequestFuture(n.lobby, &messages.BroadcastMessage{ID: sender, Msg: msg, RoomID: room}, time.Minute)
			}
		})
	}
	publishers.Wait()
	for _, c := range conns {
		<-c.done
	}
	b.StopTimer()
	deliveries := float64(perRoom * rooms * members)
	b.ReportMetric(deliveries/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
}
