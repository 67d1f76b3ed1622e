package actors

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
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
			n := benchNode(b, Config{Logger: slog.New(slog.DiscardHandler), History: -1})
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
	n := benchNode(b, Config{Logger: slog.New(slog.DiscardHandler), History: -1})
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

// messageConn counts the message frames of lobby.v1 (its welcome,
// presence and answers are JSON too): it signals warm at the first, a
// warm-up, and done when it has seen want more.
type messageConn struct {
	countConn
	warm chan struct{}
}

func (c *messageConn) Send(data []byte, _ bool) bool {
	if !bytes.HasPrefix(data, []byte(`{"type":"message"`)) {
		return true
	}
	switch c.n.Add(1) {
	case 1:
		close(c.warm)
	case c.want + 1:
		close(c.done)
	}
	return true
}

// subscribeAll has every session subscribe to rooms, and waits until the
// node counts want memberships.
func subscribeAll(b *testing.B, n *Node, pids []*actor.PID, rooms []string, want int64) {
	b.Helper()
	for _, pid := range pids {
		for _, room := range rooms {
			n.Send(pid, &messages.ClientMessage{Data: []byte(`{"type":"subscribe","room":"` + room + `"}`)})
		}
	}
	deadline := time.Now().Add(time.Minute)
	for n.stats.Subscriptions.Load() != want {
		if time.Now().After(deadline) {
			b.Fatalf("%d subscriptions, want %d", n.stats.Subscriptions.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkSubscriptionMemory measures, through the actors alone, what a
// lobby.v1 connection costs the node for each room it is in: 200
// sessions on GET /ws subscribe to 100 rooms each. KB/session is a
// session in no room (its actor, its timer, the lobby's entry); KB/room
// is each membership more (the session's, the lobby's and the room's
// bookkeeping), to compare with what one idle connection costs in all
// (cmd/lobbybench/README.md: about 7.5 KB of heap and stack, and its
// kernel buffers).
//
//	go test ./actors -run '^$' -bench SubscriptionMemory -benchtime 1x
func BenchmarkSubscriptionMemory(b *testing.B) {
	const sessions, perSession = 200, 100
	rooms := make([]string, perSession)
	for i := range rooms {
		rooms[i] = fmt.Sprintf("room-%d", i)
	}
	for b.Loop() {
		n := benchNode(b, Config{Logger: slog.New(slog.DiscardHandler), History: -1, Heartbeat: time.Hour, ClientTimeout: time.Hour})
		base := heapInUse()
		pids := make([]*actor.PID, sessions)
		for i := range pids {
			pids[i] = n.Spawn(n.SessionProps(&countConn{done: make(chan struct{})}, Join{Protocol: messages.ProtocolJSON}))
		}
		// A registered session is known to the lobby; wait for all.
		subscribeAll(b, n, pids, nil, 0)
		for {
			if info, err := n.Room(b.Context(), "none"); err == nil && !info.Found {
				break
			}
		}
		idle := heapInUse()
		subscribeAll(b, n, pids, rooms, sessions*perSession)
		full := heapInUse()
		b.ReportMetric(float64(idle-base)/sessions/1024, "KB/session")
		b.ReportMetric(float64(full-idle)/(sessions*perSession)/1024, "KB/room")
		n.Shutdown(context.Background())
	}
}

// BenchmarkSubscribedFanout compares, in one run, a broadcast to a room of
// 1 000 members who are in that room alone ("one-room": today's
// single-room fan-out) with one to a room of 1 000 members who each sit
// in ten rooms ("ten-rooms"): a session in many rooms must not make any
// room's fan-out slower. ns/delivery is per member reached.
//
//	go test ./actors -run '^$' -bench SubscribedFanout -count 3
func BenchmarkSubscribedFanout(b *testing.B) {
	const members = 1000
	for _, perMember := range []int{1, 10} {
		name := "one-room"
		if perMember > 1 {
			name = fmt.Sprintf("%d-rooms", perMember)
		}
		b.Run(name, func(b *testing.B) {
			n := benchNode(b, Config{Logger: slog.New(slog.DiscardHandler), History: -1, Heartbeat: time.Hour, ClientTimeout: time.Hour})
			defer n.Shutdown(context.Background())
			broadcasts := max(b.N/members, 1)
			conns := make([]*messageConn, members)
			pids := make([]*actor.PID, members)
			for i := range conns {
				conns[i] = &messageConn{countConn: countConn{want: int64(broadcasts), done: make(chan struct{})}, warm: make(chan struct{})}
				pids[i] = n.Spawn(n.SessionProps(conns[i], Join{Room: "bench", Protocol: messages.ProtocolJSON}))
			}
			others := make([]string, perMember-1)
			for i := range others {
				others[i] = fmt.Sprintf("other-%d", i)
			}
			subscribeAll(b, n, pids, others, int64(members*perMember))
			for _, room := range append(others, "bench") {
				for {
					info, err := n.Room(b.Context(), room)
					if err == nil && len(info.Members) == members {
						break
					}
				}
			}
			sender := uuid.New()
			msg := socket.AppendJSONString(nil, "a typical chat line")
			// The joins' notices (half a million per room) are still on
			// their way to the sessions: a warm-up message, behind them
			// in every mailbox, waits them out, so that the timing is the
			// broadcasts' alone.
			n.system.Root.RequestFuture(n.lobby, &messages.BroadcastMessage{ID: sender, Msg: msg, RoomID: "bench"}, time.Minute)
			for _, c := range conns {
				<-c.warm
			}
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
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

// benchNode starts a node of cfg for a benchmark, which shuts it down.
func benchNode(b *testing.B, cfg Config) *Node {
	b.Helper()
	n, err := NewNode(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return n
}
