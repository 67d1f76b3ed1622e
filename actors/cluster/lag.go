package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lobby/lobby/actors/broker"
)

// How far the node is behind the stream: the messages stored that its
// tail has not delivered yet, and the age of the oldest of them. A
// delivery's own NumPending does not say it: it is the server's count
// when it sent the message, and nats.go holds up to a pull's worth of
// messages sent long ago (a node starved of CPU was 12 s behind with a
// pending count of 0). So the node also asks the stream where it is,
// every lagProbeInterval, and reads the time of the oldest message it
// has not delivered.

// lagProbeInterval is how often the node asks the stream how far it has
// got.
const lagProbeInterval = time.Second

// What the tail pulls ahead of what it has handed on: nats.go's default
// count, and a byte bound (tailPullBytes) so that a pull of big
// messages holds a few MiB, not 500 of them.
const (
	tailPullMessages = 500
	tailPullBytesMin = 4 << 20
)

// tailPullBytes is the byte bound of one pull: never below two of the
// largest messages the server takes, or the tail could never get one.
func (b *Broker) tailPullBytes() int {
	return int(max(tailPullBytesMin, 2*b.maxPayload.Load()))
}

// lagState is what the broker knows of its lag; every field may be read
// at any time.
type lagState struct {
	// streamLast is the stream's last sequence as last heard of: a
	// probe, an ack, a delivery's pending count.
	streamLast atomic.Uint64
	// tailTime is when the stream took the message the tail last
	// delivered (Unix ns).
	tailTime atomic.Int64
	// nextSeq and nextTime are the oldest message the tail had not
	// delivered when last probed, and when the stream took it.
	nextSeq  atomic.Uint64
	nextTime atomic.Int64
	// behind is set while the node is further behind than MaxLag, until
	// it is within half of it.
	behind atomic.Bool
	// paused is set while the tail waits for its rooms (holdBack).
	paused atomic.Bool
}

// restart starts counting on a tail that starts at the stream's end,
// last, the stream having taken it at at.
func (l *lagState) restart(last uint64, at time.Time) {
	l.streamLast.Store(last)
	l.tailTime.Store(at.UnixNano())
	l.nextSeq.Store(0)
}

// delivered records a message the tail delivered: its stream sequence,
// the server's pending count when it sent it, and when it was stored.
func (l *lagState) delivered(seq, pending uint64, at time.Time) {
	l.tailTime.Store(at.UnixNano())
	l.heard(seq + pending)
}

// heard records that the stream has got at least to seq.
func (l *lagState) heard(seq uint64) {
	for {
		old := l.streamLast.Load()
		if seq <= old || l.streamLast.CompareAndSwap(old, seq) {
			return
		}
	}
}

// Lag is how far a node is behind its stream.
type Lag struct {
	// Messages are the messages stored that the node has not delivered.
	Messages uint64
	// Age is how long ago the stream took the oldest of them; 0 when
	// there are none.
	Age time.Duration
}

// Lag is how far the node is behind the stream, as last known.
func (b *Broker) Lag() Lag {
	tail := b.tailLast.Load()
	last := max(b.lag.streamLast.Load(), b.ackedLast.Load())
	if last <= tail {
		return Lag{}
	}
	// The oldest message not delivered is the one the probe found, if
	// the tail has not got there yet; else one stored after the one the
	// tail delivered last, so no older than that.
	oldest := b.lag.tailTime.Load()
	if b.lag.nextSeq.Load() > tail {
		oldest = b.lag.nextTime.Load()
	}
	return Lag{Messages: last - tail, Age: max(time.Since(time.Unix(0, oldest)), 0)}
}

// behindErr is Ready's answer about the lag: nil unless the node is too
// far behind.
func (b *Broker) behindErr() error {
	if !b.lag.behind.Load() {
		return nil
	}
	l := b.Lag()
	if l.Messages == 0 {
		// Caught up since the last probe, which will say so.
		return nil
	}
	return fmt.Errorf("%w: %d messages not delivered yet, the oldest stored %.1f s ago (limit %v)",
		broker.ErrBehind, l.Messages, l.Age.Seconds(), b.cfg.MaxLag)
}

// lagWatcher probes the stream every lagProbeInterval and judges the
// node behind or not, until the broker closes.
func (b *Broker) lagWatcher() {
	defer b.wg.Done()
	tick := time.NewTicker(lagProbeInterval)
	defer tick.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-tick.C:
			b.probeLag()
		}
	}
}

// probeLag asks the stream for its last sequence and, when the tail has
// not got there, for the oldest message the tail has not delivered: the
// node is as far behind as that message is old.
func (b *Broker) probeLag() {
	st := b.state.Load()
	if st == nil || !b.up.Load() {
		return
	}
	b.tailMu.Lock()
	running, epoch := b.tailRunning, b.tailEpoch
	b.tailMu.Unlock()
	if !running || epoch != st.epoch {
		return // not following this stream yet: Ready says so already
	}
	ctx, cancel := context.WithTimeout(b.ctx, lagProbeInterval)
	defer cancel()
	info, err := st.stream.Info(ctx)
	if err != nil {
		return // the keeper judges the stream; the lag is judged once it answers
	}
	b.lag.heard(info.State.LastSeq)
	tail := b.tailLast.Load()
	age := time.Duration(0)
	if info.State.LastSeq > tail {
		m, err := st.stream.GetMsg(ctx, tail+1, jetstream.WithGetMsgSubject(subjectRoom+"*"))
		switch {
		case err == nil:
			b.lag.nextTime.Store(m.Time.UnixNano())
			b.lag.nextSeq.Store(m.Sequence)
			age = time.Since(m.Time)
		case errors.Is(err, jetstream.ErrMsgNotFound):
			// Gone (expired, or the limits) since: none is older.
		default:
			return
		}
	}
	b.judgeLag(age, info.State.LastSeq-min(tail, info.State.LastSeq))
}

// judgeLag turns the node unready when the oldest message it has not
// delivered is older than MaxLag, and ready again within half of it.
func (b *Broker) judgeLag(age time.Duration, messages uint64) {
	limit := b.cfg.MaxLag
	if limit < 0 {
		return
	}
	switch {
	case age > limit && !b.lag.behind.Swap(true):
		b.metrics.behindTotal.Inc()
		b.log.Warn("this node is behind the stream: /readyz answers 503 until it catches up",
			slog.Duration("oldest_undelivered", age.Round(time.Millisecond)), slog.Uint64("messages", messages),
			slog.Duration("max_lag", limit))
	case age <= limit/2 && b.lag.behind.Swap(false):
		b.log.Info("this node has caught up with the stream: ready",
			slog.Duration("oldest_undelivered", age.Round(time.Millisecond)), slog.Uint64("messages", messages))
	}
}
