package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// room names are bench-0, bench-1, ...
func roomName(i int) string { return fmt.Sprintf("bench-%d", i) }

// members connects rooms x per members, 64 at a time, and starts their
// readers.
func members(ctx context.Context, c *config, rooms, per int, h *histogram) ([][]*subscriber, func(), error) {
	all := make([][]*subscriber, rooms)
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 64)
	var wg, readers sync.WaitGroup
	for r := range rooms {
		all[r] = make([]*subscriber, per)
		for i := range per {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				s, err := dialMember(ctx, c.memberURL(r*per+i), roomName(r))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					firstErr = cmpErr(firstErr, err)
					return
				}
				all[r][i] = s
				// Read from the start: a member that did not would leave the
				// notices of the joins after it unread, and its pings
				// unanswered, and the server would rightly close it as a
				// slow consumer or a dead client.
				readers.Go(func() { s.read(h) })
			})
		}
	}
	wg.Wait()
	closeAll := func() {
		for _, room := range all {
			for _, s := range room {
				if s != nil {
					s.ws.CloseNow()
				}
			}
		}
		readers.Wait()
	}
	if firstErr != nil {
		closeAll()
		return nil, nil, fmt.Errorf("connect members: %w", firstErr)
	}
	return all, closeAll, nil
}

func cmpErr(old, err error) error {
	if old != nil {
		return old
	}
	return err
}

// publisher posts messages to rooms at a paced rate.
type publisher struct {
	c      *config
	client *http.Client
	pad    string
	n      atomic.Int64
	errs   atomic.Int64
}

func newPublisher(c *config) *publisher {
	return &publisher{c: c, pad: strings.Repeat("x", c.payload),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c.publishers}}}
}

// run publishes at rate (per second, round-robin over the rooms) for d,
// and returns how many it published to each room.
func (p *publisher) run(ctx context.Context, rate float64, d time.Duration) []int64 {
	perRoom := make([]int64, p.c.rooms)
	var mu sync.Mutex
	jobs := make(chan int, p.c.publishers)
	var wg sync.WaitGroup
	for range p.c.publishers {
		wg.Go(func() {
			for room := range jobs {
				if p.post(ctx, room) {
					mu.Lock()
					perRoom[room]++
					mu.Unlock()
				}
			}
		})
	}
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	next := start
	for i := 0; time.Since(start) < d && ctx.Err() == nil; i++ {
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait)
		}
		jobs <- i % p.c.rooms
		next = next.Add(interval)
	}
	close(jobs)
	wg.Wait()
	return perRoom
}

func (p *publisher) post(ctx context.Context, room int) bool {
	body := message(p.n.Add(1), p.pad)
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(p.c.url, "/")+"/rooms/"+roomName(room)+"/broadcast", bytes.NewReader(body))
	if err != nil {
		p.errs.Add(1)
		return false
	}
	resp, err := p.client.Do(req)
	if err != nil {
		p.errs.Add(1)
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		p.errs.Add(1)
		return false
	}
	return true
}

func totalReceived(all [][]*subscriber) (n int64, closed int) {
	for _, room := range all {
		for _, s := range room {
			n += s.received.Load()
			if s.closed.Load() {
				closed++
			}
		}
	}
	return n, closed
}

// waitDelivered waits until want messages have been received, or grace
// has passed since the last progress.
func waitDelivered(all [][]*subscriber, want int64, grace time.Duration) int64 {
	last, since := int64(-1), time.Now()
	for {
		got, _ := totalReceived(all)
		if got >= want {
			return got
		}
		if got != last {
			last, since = got, time.Now()
		} else if time.Since(since) > grace {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fanout(ctx context.Context, c *config) (*result, error) {
	var h histogram
	all, closeAll, err := members(ctx, c, c.rooms, c.subs, &h)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	pub := newPublisher(c)
	res := &result{Rooms: c.rooms, Subs: c.subs}
	var expected int64

	step := func(rate float64, d time.Duration) result {
		h.reset()
		before, _ := totalReceived(all)
		perRoom := pub.run(ctx, rate, d)
		var published int64
		for _, n := range perRoom {
			published += n
			expected += n * int64(c.subs)
		}
		got := waitDelivered(all, expected, time.Second)
		_, closed := totalReceived(all)
		r := result{Seconds: d.Seconds(), Published: published, Delivered: got - before,
			Lost: expected - got, DeliveriesPerS: float64(published*int64(c.subs)) / d.Seconds(),
			P50ms: ms(h.quantile(0.50)), P99ms: ms(h.quantile(0.99)), MaxMs: ms(h.quantile(1)), Errors: pub.errs.Load() + int64(closed)}
		return r
	}

	// Warm up: the first messages to a thousand fresh connections pay for
	// stack growth and first allocations on both sides, and would be the
	// whole p99 of a short step.
	step(min(c.rate, 20), time.Second)
	cpuStart, _, statErr := serverStat(c)
	warmDelivered, _ := totalReceived(all)
	start := time.Now()

	if !c.ramp {
		s := step(c.rate, c.duration)
		s.Rooms, s.Subs = res.Rooms, res.Subs
		*res = s
	} else {
		for rate := c.rate; rate <= c.maxRate && ctx.Err() == nil; rate *= c.factor {
			s := step(rate, c.step)
			res.Steps = append(res.Steps, s)
			switch {
			case s.Lost > 0:
				res.Stop = fmt.Sprintf("loss of %d at %.0f publishes/s", s.Lost, rate)
			case s.Errors > 0:
				res.Stop = fmt.Sprintf("%d errors at %.0f publishes/s", s.Errors, rate)
			case s.P99ms > ms(c.p99Bound):
				res.Stop = fmt.Sprintf("p99 %.1f ms at %.0f publishes/s", s.P99ms, rate)
			case float64(s.Published) < 0.9*rate*c.step.Seconds():
				// The server answers publishes slower than they are asked
				// for: it is saturated. The step still counts.
				res.Stop = fmt.Sprintf("saturated: %.0f of %.0f publishes/s accepted", float64(s.Published)/c.step.Seconds(), rate)
				if s.DeliveriesPerS > res.BestDeliveriesS {
					res.BestDeliveriesS, res.P99ms, res.P50ms, res.MaxMs = s.DeliveriesPerS, s.P99ms, s.P50ms, s.MaxMs
				}
			}
			if res.Stop != "" {
				break
			}
			if s.DeliveriesPerS > res.BestDeliveriesS {
				res.BestDeliveriesS, res.P99ms, res.P50ms, res.MaxMs = s.DeliveriesPerS, s.P99ms, s.P50ms, s.MaxMs
			}
		}
		if res.Stop == "" {
			res.Stop = "reached --max-rate"
		}
	}
	res.Seconds = time.Since(start).Seconds()
	if cpuEnd, _, err := serverStat(c); err == nil && statErr == nil {
		delivered, _ := totalReceived(all)
		delivered -= warmDelivered
		if delivered > 0 {
			res.ServerCPUus = float64((cpuEnd - cpuStart).Microseconds()) / float64(delivered)
		}
	}
	return res, nil
}

func serverStat(c *config) (time.Duration, int64, error) {
	if c.serverPID == 0 {
		return 0, 0, errors.New("no --server-pid")
	}
	return procStat(c.serverPID)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// chat: every member sends frames carrying a timestamp at --rate per
// second; every member of the room receives each.
func chat(ctx context.Context, c *config) (*result, error) {
	var h histogram
	all, closeAll, err := members(ctx, c, c.rooms, c.subs, &h)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	cpuStart, _, _ := serverStat(c)
	var sent atomic.Int64
	runCtx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	pad := strings.Repeat("x", c.payload)
	var wg sync.WaitGroup
	for _, room := range all {
		for _, s := range room {
			wg.Go(func() {
				// Members start at random points of the interval, as
				// people typing do: tickers started together would send
				// every member's frame in the same instant, and the
				// latency measured would be that burst's.
				interval := time.Duration(float64(time.Second) / c.rate)
				select {
				case <-runCtx.Done():
					return
				case <-time.After(rand.N(interval)):
				}
				tick := time.NewTicker(interval)
				defer tick.Stop()
				for {
					select {
					case <-runCtx.Done():
						return
					case <-tick.C:
					}
					msg := fmt.Appendf(nil, `{"t":%d,"pad":"%s"}`, time.Now().UnixNano(), pad)
					if err := s.ws.Write(runCtx, websocket.MessageText, msg); err != nil {
						return
					}
					sent.Add(1)
				}
			})
		}
	}
	wg.Wait()
	expected := sent.Load() * int64(c.subs)
	got := waitDelivered(all, expected, 2*time.Second)
	res := &result{Rooms: c.rooms, Subs: c.subs, Seconds: c.duration.Seconds(), Published: sent.Load(),
		Delivered: got, Lost: expected - got, DeliveriesPerS: float64(got) / c.duration.Seconds(),
		P50ms: ms(h.quantile(0.5)), P99ms: ms(h.quantile(0.99)), MaxMs: ms(h.quantile(1))}
	if cpuEnd, _, err := serverStat(c); err == nil && got > 0 {
		res.ServerCPUus = float64((cpuEnd - cpuStart).Microseconds()) / float64(got)
	}
	return res, nil
}

// idle opens --conns connections that only answer pings, and reads the
// server's RSS before and after.
func idle(ctx context.Context, c *config) (*result, error) {
	_, rssBefore, statErr := serverStat(c)
	var h histogram
	rooms := max(c.conns/c.subs, 1)
	per := c.conns / rooms
	all, closeAll, err := members(ctx, c, rooms, per, &h)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	select {
	case <-time.After(c.settle):
	case <-ctx.Done():
	}
	res := &result{Conns: rooms * per, Rooms: rooms, Subs: per, Seconds: c.settle.Seconds()}
	// Memory per connection means nothing if the server has been closing
	// connections meanwhile.
	if _, closed := totalReceived(all); closed > 0 {
		return nil, fmt.Errorf("idle: the server closed %d of %d connections during the run", closed, res.Conns)
	}
	if statErr == nil {
		if _, rssAfter, err := serverStat(c); err == nil {
			res.KBPerConn = float64(rssAfter-rssBefore) / float64(res.Conns)
		}
	}
	return res, nil
}

// churn connects, reads the welcome and closes, from --concurrency clients
// at once, for --duration.
func churn(ctx context.Context, c *config) (*result, error) {
	runCtx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	var cycles, errs atomic.Int64
	var wg sync.WaitGroup
	cpuStart, _, statErr := serverStat(c)
	start := time.Now()
	for i := range c.conc {
		wg.Go(func() {
			for runCtx.Err() == nil {
				s, err := dialMember(runCtx, c.url, roomName(i%max(c.rooms, 1)))
				if err != nil {
					if runCtx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				s.ws.Close(websocket.StatusNormalClosure, "")
				cycles.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := &result{Seconds: elapsed.Seconds(), CyclesPerS: float64(cycles.Load()) / elapsed.Seconds(), Errors: errs.Load()}
	if cpuEnd, _, err := serverStat(c); err == nil && statErr == nil && cycles.Load() > 0 {
		res.CPUusPerCycle = float64((cpuEnd - cpuStart).Microseconds()) / float64(cycles.Load())
	}
	return res, nil
}
