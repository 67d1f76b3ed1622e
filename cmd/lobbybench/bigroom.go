package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// bigroom: one room of --subs members that HTTP publishes reach at
// --rate, first quiet for half of --duration, then for the other half
// while clients join it and leave at --churn a second (each joins, reads
// its welcome, and closes). A join or a leave is itself a fan-out: every
// member is told of it. What must not change between the halves is the
// publishes' latency and the server's CPU per frame it delivers, notices
// included. (A leave's member bookkeeping, O(1) or not, is small beside
// its notice to every member: what this shows is that the churn costs
// no more than its notices.)
func bigroom(ctx context.Context, c *config) (*result, error) {
	c.rooms = 1
	var h histogram
	all, closeAll, err := members(ctx, c, 1, c.subs, &h)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	pub := newPublisher(c)
	// Warm up, as fanout does.
	expected := pub.run(ctx, c.rate, time.Second)[0] * int64(c.subs)
	waitDelivered(all, expected, time.Second)

	// phase publishes for d, with churn joins a second beside (0: none),
	// and measures it.
	phase := func(churn float64, d time.Duration) (r result) {
		h.reset()
		before, closedBefore := totalReceived(all)
		pubErrs := pub.errs.Load()
		phaseExpected := expected
		cpuStart, _, statErr := serverStat(c)
		var done, errs atomic.Int64
		stop := make(chan struct{})
		var churners sync.WaitGroup
		if churn > 0 {
			churners.Go(func() { churnAt(ctx, c, churn, stop, &done, &errs) })
		}
		start := time.Now()
		perRoom := pub.run(ctx, c.rate, d)
		elapsed := time.Since(start)
		close(stop)
		churners.Wait()
		expected += perRoom[0] * int64(c.subs)
		got := waitDelivered(all, expected, time.Second)
		_, closed := totalReceived(all)
		r = result{Seconds: elapsed.Seconds(), Published: perRoom[0], Delivered: got - before,
			Lost:           (expected - phaseExpected) - (got - before),
			DeliveriesPerS: float64(got-before) / elapsed.Seconds(),
			P50ms:          ms(h.quantile(0.5)), P99ms: ms(h.quantile(0.99)), MaxMs: ms(h.quantile(1)),
			JoinsPerS: float64(done.Load()) / elapsed.Seconds(),
			Errors:    pub.errs.Load() - pubErrs + errs.Load() + int64(closed-closedBefore)}
		if cpuEnd, _, err := serverStat(c); err == nil && statErr == nil {
			// Every frame the members were sent: the publishes, and a
			// notice of each join and of each leave.
			frames := (got - before) + 2*done.Load()*int64(c.subs)
			if frames > 0 {
				r.ServerCPUus = float64((cpuEnd - cpuStart).Microseconds()) / float64(frames)
			}
		}
		return r
	}
	quiet := phase(0, c.duration/2)
	busy := phase(c.churn, c.duration/2)
	res := busy
	res.Rooms, res.Subs = 1, c.subs
	res.Steps = []result{quiet, busy}
	res.QuietP99ms, res.QuietMaxMs, res.QuietCPUus = quiet.P99ms, quiet.MaxMs, quiet.ServerCPUus
	res.Published, res.Lost, res.Errors = quiet.Published+busy.Published, quiet.Lost+busy.Lost, quiet.Errors+busy.Errors
	return &res, nil
}

// churnAt makes clients join room 0 and leave it, rate times a second
// in all, until stop is closed; a cycle that cannot keep to the pace does
// not make the next ones wait, up to 256 at once.
func churnAt(ctx context.Context, c *config, rate float64, stop <-chan struct{}, done, errs *atomic.Int64) {
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			errs.Add(1) // 256 cycles behind: the server is not keeping up
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			s, err := dialMember(ctx, c.url, roomName(0))
			if err != nil {
				errs.Add(1)
				return
			}
			// The close handshake reads what the room sent meanwhile.
			if err := s.ws.Close(websocket.StatusNormalClosure, ""); err != nil {
				errs.Add(1)
				return
			}
			done.Add(1)
		})
	}
}

func (r *result) bigroomSummary() string {
	return fmt.Sprintf(" %d members, %.0f joins+leaves/s: publish p99 %.1f ms (quiet %.1f), max %.1f ms (quiet %.1f), server CPU %.2f µs/frame (quiet %.2f), lost %d",
		r.Subs, r.JoinsPerS, r.P99ms, r.QuietP99ms, r.MaxMs, r.QuietMaxMs, r.ServerCPUus, r.QuietCPUus, r.Lost)
}
