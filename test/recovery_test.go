package test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/transport"
)

// TestRecoveryUnderLoad drops and reconnects a subscriber three times, at
// random points, while a publisher sends 2 000 messages at a steady rate.
// Recovery must hand over from history to the live stream with no gap and
// no duplicate, whatever is published during the reconnect.
func TestRecoveryUnderLoad(t *testing.T) {
	const total = 2000
	// The history must outlast a reconnect at the publish rate even on a
	// loaded CI machine under the race detector; the hand-off is what is
	// tested here, trimming has its own test.
	ts := startServer(t, transport.Config{Config: actors.Config{History: total}})
	sub := joinJSON(t, ts, "/ws/feed")
	epoch := sub.welcome.Epoch

	publishErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(500 * time.Microsecond)
		defer tick.Stop()
		for i := 1; i <= total; i++ {
			<-tick.C
			status, body := httpDo(t, "POST", ts.url("/rooms/feed/broadcast"), fmt.Appendf(nil, `{"n":%d}`, i), nil)
			if status != http.StatusOK {
				publishErr <- fmt.Errorf("publish %d: %d %s", i, status, body)
				return
			}
		}
	})

	// Three distinct random drop points.
	var drops []int
	for len(drops) < 3 {
		if d := 100 + rand.IntN(total-200); !slices.Contains(drops, d) {
			drops = append(drops, d)
		}
	}
	slices.Sort(drops)

	seen := make(map[uint64]bool, total)
	var last uint64
	for len(seen) < total {
		f := sub.nextOf("message")
		if f.Seq != last+1 {
			t.Fatalf("after seq %d got seq %d: a gap or a duplicate", last, f.Seq)
		}
		if seen[f.Seq] {
			t.Fatalf("seq %d seen twice", f.Seq)
		}
		if want := fmt.Sprintf(`{"n":%d}`, f.Seq); string(f.Msg) != want {
			t.Fatalf("seq %d carries %s, want %s", f.Seq, f.Msg, want)
		}
		seen[f.Seq] = true
		last = f.Seq
		if len(drops) > 0 && len(seen) == drops[0] {
			drops = drops[1:]
			// Drop like a phone losing the network: no close handshake.
			_ = sub.ws.CloseNow()
			sub = joinJSON(t, ts, fmt.Sprintf("/ws/feed?since=%d&epoch=%s", last, epoch))
			if !sub.welcome.Recovered || sub.welcome.Epoch != epoch {
				t.Fatalf("reconnect after seq %d: welcome %s, want recovered in epoch %s", last, sub.welcome.raw, epoch)
			}
		}
	}
	wg.Wait()
	select {
	case err := <-publishErr:
		t.Fatal(err)
	default:
	}
	if len(drops) != 0 {
		t.Fatalf("drops %v never happened", drops)
	}
}

// TestRecoveryCases reconnects to a room at seq 6 whose history keeps the
// last 3 messages.
func TestRecoveryCases(t *testing.T) {
	tests := []struct {
		name      string
		query     string // %s is the room's epoch
		recovered bool
		replay    []uint64
	}{
		{name: "within history", query: "?since=4&epoch=%s", recovered: true, replay: []uint64{5, 6}},
		{name: "just reaches back", query: "?since=3&epoch=%s", recovered: true, replay: []uint64{4, 5, 6}},
		{name: "nothing missed", query: "?since=6&epoch=%s", recovered: true},
		{name: "history trimmed past since", query: "?since=2&epoch=%s", recovered: false},
		{name: "wrong epoch", query: "?since=5&epoch=other%.0s", recovered: false},
		{name: "no epoch", query: "?since=5%.0s", recovered: false},
		{name: "since ahead of the room", query: "?since=60&epoch=%s", recovered: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, transport.Config{Config: actors.Config{History: 3}})
			keeper := joinJSON(t, ts, "/ws/r") // keeps the room and its epoch
			epoch := keeper.welcome.Epoch
			for i := 1; i <= 6; i++ {
				keeper.sendJSON(fmt.Sprintf(`{"type":"broadcast","msg":%d}`, i))
				keeper.nextOf("message")
			}

			c := joinJSON(t, ts, "/ws/r"+fmt.Sprintf(tt.query, epoch))
			if c.welcome.Recovered != tt.recovered || c.welcome.Seq != 6 || c.welcome.Epoch != epoch {
				t.Fatalf("welcome %s, want recovered %v, seq 6, epoch %s", c.welcome.raw, tt.recovered, epoch)
			}
			var replay []uint64
			for range tt.replay {
				f := c.nextOf("message")
				if string(f.Msg) != fmt.Sprint(f.Seq) {
					t.Fatalf("replayed %s, want msg %d", f.raw, f.Seq)
				}
				replay = append(replay, f.Seq)
			}
			if !slices.Equal(replay, tt.replay) {
				t.Fatalf("replayed %v, want %v", replay, tt.replay)
			}
			// The next message is the live one: nothing else was replayed.
			keeper.sendJSON(`{"type":"broadcast","msg":"live"}`)
			if live := c.nextOf("message"); string(live.Msg) != `"live"` || live.Seq != 7 {
				t.Fatalf("after the replay got %s, want the live message seq 7", live.raw)
			}
		})
	}
}

func TestRecoveryAcrossARecreatedRoom(t *testing.T) {
	ts := startServer(t, transport.Config{Config: actors.Config{HistoryTTL: 50 * time.Millisecond}})
	first := joinJSON(t, ts, "/ws/gone")
	first.sendJSON(`{"type":"broadcast","msg":1}`)
	first.nextOf("message")
	_ = first.ws.CloseNow()
	// The room expires and is made anew: a new epoch, and the old one's
	// seqs mean nothing there.
	eventually(t, "the room to expire", func() bool {
		status, _ := httpDo(t, "GET", ts.url("/rooms/gone"), nil, nil)
		return status == http.StatusNotFound
	})
	again := joinJSON(t, ts, "/ws/gone?since=0&epoch="+first.welcome.Epoch)
	if again.welcome.Recovered || again.welcome.Epoch == first.welcome.Epoch || again.welcome.Seq != 0 {
		t.Fatalf("welcome %s, want recovered false in a new epoch at seq 0", again.welcome.raw)
	}
}

func TestBadRecoveryQuery(t *testing.T) {
	ts := startServer(t, transport.Config{})
	for _, q := range []string{"?since=x&epoch=e", "?since=-1&epoch=e", "?since=99999999999999999999999&epoch=e"} {
		status, body := httpDo(t, "GET", ts.url("/ws/r"+q), nil, upgradeHeader())
		expectJSONError(t, status, body, http.StatusBadRequest, "invalid_since")
	}
}

// TestRecoveryLongerThanTheSendQueue: a lobby.v1 client that missed three
// send queues' worth of messages (of 16 KiB, more than the kernel's
// buffers take at once) recovers them all, in order, and is not closed:
// its replay goes out as it reads it, a queue at a time. Sent at once, it
// passed the queue's bound and the client was closed 1008 slow consumer
// mid-replay, or, within a replay bound of what the queue takes, told
// recovered:false. A client that reads nothing is still closed as a slow
// consumer; a recovery past the replay bound (the memory a replay may
// hold) is still recovered:false.
func TestRecoveryLongerThanTheSendQueue(t *testing.T) {
	const queue = 64
	pad := strings.Repeat("x", 16<<10)
	tests := []struct {
		name      string
		missed    int
		maxReplay int
		recovered bool
	}{
		{name: "three send queues", missed: 3 * queue, recovered: true},
		{name: "past the replay bound", missed: 3 * queue, maxReplay: 2 * queue, recovered: false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, transport.Config{SendQueue: queue,
				Config: actors.Config{History: 4 * queue, MaxReplay: tt.maxReplay, Logger: quietLogger(t)}})
			room := fmt.Sprintf("long%d", i)
			keeper := joinJSON(t, ts, "/ws/"+room) // keeps the room and its epoch
			since, epoch := keeper.welcome.Seq, keeper.welcome.Epoch
			_ = keeper.ws.CloseNow()
			keeper = joinJSON(t, ts, "/ws/"+room)
			go func() {
				// The keeper reads nothing that matters; read it all, so
				// that it is no slow consumer itself.
				for {
					if _, _, err := keeper.ws.Read(context.Background()); err != nil {
						return
					}
				}
			}()
			for n := 1; n <= tt.missed; n++ {
				if status, body := httpDo(t, "POST", ts.url("/rooms/"+room+"/broadcast"), fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, n, pad), nil); status != http.StatusOK {
					t.Fatalf("publish %d: %d %s", n, status, body)
				}
			}

			back := joinJSON(t, ts, fmt.Sprintf("/ws/%s?since=%d&epoch=%s", room, since, epoch))
			if back.welcome.Recovered != tt.recovered {
				t.Fatalf("welcome %.200s after %d missed, want recovered %v", back.welcome.raw, tt.missed, tt.recovered)
			}
			if !tt.recovered {
				waitMetric(t, ts, "lobby_recoveries_too_long_total", 1)
				return
			}
			for n := 1; n <= tt.missed; n++ {
				f := back.nextOf("message")
				if want := fmt.Sprintf(`{"n":%d,"pad":"%s"}`, n, pad); string(f.Msg) != want || f.Seq != since+uint64(n) {
					t.Fatalf("replayed %.80s at seq %d, want n %d at seq %d", f.Msg, f.Seq, n, since+uint64(n))
				}
			}
			if status, body := httpDo(t, "POST", ts.url("/rooms/"+room+"/broadcast"), []byte(`"live"`), nil); status != http.StatusOK {
				t.Fatalf("publish: %d %s", status, body)
			}
			if f := back.nextOf("message"); string(f.Msg) != `"live"` {
				t.Fatalf("after the replay got %.200s, want the live message", f.raw)
			}
			if n := metricValue(t, ts, `lobby_disconnects_total{reason="slow_consumer"}`); n != 0 {
				t.Fatalf("%v clients closed as slow consumers", n)
			}
		})
	}

	t.Run("an event stream", func(t *testing.T) {
		ts := startServer(t, transport.Config{SendQueue: queue, Config: actors.Config{History: 4 * queue, Logger: quietLogger(t)}})
		keeper := joinJSON(t, ts, "/ws/streamed")
		since, epoch := keeper.welcome.Seq, keeper.welcome.Epoch
		_ = keeper.ws.CloseNow()
		for n := 1; n <= 3*queue; n++ {
			publishTo(t, ts, "streamed", fmt.Sprintf(`{"n":%d,"pad":"%s"}`, n, pad))
		}
		s := openEvents(t, ts, fmt.Sprintf("/rooms/streamed/events?since=%d&epoch=%s", since, epoch), nil)
		if _, w := s.nextEvent("welcome"); !w.Recovered {
			t.Fatalf("welcome %.200s, want recovered", w.raw)
		}
		for n := 1; n <= 3*queue; n++ {
			if _, f := s.nextEvent("message"); f.Seq != since+uint64(n) {
				t.Fatalf("replayed seq %d, want %d", f.Seq, since+uint64(n))
			}
		}
		if n := metricValue(t, ts, `lobby_disconnects_total{reason="slow_consumer"}`); n != 0 {
			t.Fatalf("%v streams closed as slow consumers", n)
		}
	})

	t.Run("a client that reads nothing", func(t *testing.T) {
		// Closed for what it does not read (the write timeout), not for
		// the pongs it does not send.
		ts := startServer(t, transport.Config{SendQueue: queue, WriteTimeout: time.Second,
			Config: actors.Config{History: 4 * queue, ClientTimeout: time.Hour, Logger: quietLogger(t)}})
		keeper := joinJSON(t, ts, "/ws/stalled")
		since, epoch := keeper.welcome.Seq, keeper.welcome.Epoch
		_ = keeper.ws.CloseNow()
		for n := 1; n <= 3*queue; n++ {
			if status, body := httpDo(t, "POST", ts.url("/rooms/stalled/broadcast"), fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, n, pad), nil); status != http.StatusOK {
				t.Fatalf("publish %d: %d %s", n, status, body)
			}
		}
		stalled, _ := dialStalled(t, ts, fmt.Sprintf("/ws/stalled?since=%d&epoch=%s", since, epoch))
		defer stalled.CloseNow()
		waitMetric(t, ts, `lobby_disconnects_total{reason="slow_consumer"}`, 1)
	})
}
