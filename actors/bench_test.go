package actors

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
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
func (c *countConn) Close(int, string)   {}
func (c *countConn) Abort(int, string)   {}
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

// BenchmarkRoomLeave measures the member bookkeeping of a leave and a join
// in a room of 20 000 (not the notices they send, O(members) either way):
// "holes" is the room's, "reindex" the slice delete and re-index of every
// later member it replaced, for the ratio in one run.
//
//	go test ./actors -run '^$' -bench RoomLeave
func BenchmarkRoomLeave(b *testing.B) {
	const size = 20_000
	ids := make([]uuid.UUID, size)
	for i := range ids {
		ids[i] = uuid.New()
	}
	pid := &actor.PID{Id: "member"}
	b.Run("holes", func(b *testing.B) {
		r := newRoom("big", nil, nil, &Stats{})
		for _, id := range ids {
			r.members.add(member{id: id, pid: pid})
		}
		b.ResetTimer()
		for i := range b.N {
			// The member who joined longest ago leaves and comes back:
			// the worst case for a re-index, a steady churn for holes.
			id := ids[i%size]
			r.members.remove(id)
			r.members.add(member{id: id, pid: pid})
		}
	})
	b.Run("reindex", func(b *testing.B) {
		members := make([]member, 0, size)
		index := make(map[uuid.UUID]int, size)
		for _, id := range ids {
			index[id] = len(members)
			members = append(members, member{id: id, pid: pid})
		}
		b.ResetTimer()
		for i := range b.N {
			id := ids[i%size]
			j := index[id]
			members = slices.Delete(members, j, j+1)
			delete(index, id)
			for k := j; k < len(members); k++ {
				index[members[k].id] = k
			}
			index[id] = len(members)
			members = append(members, member{id: id, pid: pid})
		}
	})
}
