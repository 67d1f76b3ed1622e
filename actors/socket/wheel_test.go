package socket

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// tickedActor records when its heartbeat ticks.
type tickedActor struct {
	hb    Heartbeat
	conn  *silentConn
	ticks chan<- tickAt
}

type tickAt struct {
	pid *actor.PID
	at  time.Time
}

func (a *tickedActor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		a.hb.Start(ctx)
	case *HeartbeatTick:
		a.conn.seen = time.Now()
		a.hb.Tick(a.conn)
		a.ticks <- tickAt{ctx.Self(), time.Now()}
	case *actor.Stopping:
		a.hb.Stop()
	}
}

// TestWheelTicksEachActorOncePerTurn: a node's wheel ticks every actor on
// it, each once per interval (never twice in one turn, as a slot ticked
// again would), and stops its timer once the last actor has left.
func TestWheelTicksEachActorOncePerTurn(t *testing.T) {
	const every = 300 * time.Millisecond // 30 slots of 10 ms
	const actors, turns = 50, 3
	system := actor.NewActorSystem()
	defer system.Shutdown()
	w := NewWheel(system.Root, every)
	defer w.Stop()
	ticks := make(chan tickAt, actors*(turns+2))
	var pids []*actor.PID
	start := time.Now()
	for range actors {
		pids = append(pids, system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
			return &tickedActor{hb: Heartbeat{Every: every, Timeout: time.Hour, Wheel: w}, conn: &silentConn{seen: time.Now()}, ticks: ticks}
		})))
	}
	last := map[string]time.Time{}
	count := map[string]int{}
	deadline := time.After(10 * time.Second)
	for done := 0; done < actors; {
		select {
		case tk := <-ticks:
			id := tk.pid.Id
			if prev, ok := last[id]; ok {
				// A turn is 300 ms; a tick may be late, but two ticks
				// of one actor less than half a turn apart mean it was
				// ticked twice in one turn.
				if gap := tk.at.Sub(prev); gap < every/2 {
					t.Fatalf("actor %s ticked %v after its last tick, want about %v", id, gap, every)
				}
			} else if first := tk.at.Sub(start); first < every/2-w.step {
				t.Fatalf("actor %s first ticked after %v, want in the second half of %v", id, first, every)
			}
			last[id] = tk.at
			if count[id]++; count[id] == turns {
				done++
			}
		case <-deadline:
			t.Fatalf("after 10 s, %d of %d actors were ticked %d times", done, actors, turns)
		}
	}
	for _, pid := range pids {
		_ = system.Root.StopFuture(pid).Wait()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.count != 0 || w.armed {
		t.Fatalf("with every actor stopped, the wheel holds %d and its timer armed is %v", w.count, w.armed)
	}
}

// TestNextDueSkipsWhatTheWheelMissed: a tick on time, or late by less
// than a turn, is next due a turn after it was due; one late by more
// comes round at its slot's first time past now, where the wheel, which
// skips the slots it missed, next ticks it.
func TestNextDueSkipsWhatTheWheelMissed(t *testing.T) {
	const period = time.Second
	t0 := time.Unix(1_000_000, 0)
	for _, tt := range []struct {
		late, want time.Duration // after t0
	}{
		{0, period},
		{300 * time.Millisecond, period},
		{period, 2 * period},
		{3500 * time.Millisecond, 4 * period},
	} {
		if got := nextDue(t0, period, t0.Add(tt.late)).Sub(t0); got != tt.want {
			t.Errorf("due at t0, ticked at +%v: next due +%v, want +%v", tt.late, got, tt.want)
		}
	}
}
