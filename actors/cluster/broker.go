package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lobby/lobby/actors/broker"
)

// Config configures a Broker.
type Config struct {
	// URLs are the NATS servers, "nats://host:4222" or "host:4222"; any one
	// of a NATS cluster is enough, the others are learnt. Required.
	URLs []string
	// Creds is a NATS credentials file (JWT and NKey). Empty means none.
	Creds string
	// Token is a NATS authentication token. Empty means none.
	Token string
	// User and Password authenticate with a user name. Empty means none.
	User, Password string
	// Name names the connection in the NATS server's monitoring. Empty
	// means "lobby".
	Name string
	// Stream is the JetStream stream of room messages. Empty means
	// "LOBBY".
	Stream string
	// Replicas is the stream's replica count: 3 on a 3-server NATS
	// cluster. Zero means 1.
	Replicas int
	// History is how many of a room's last messages Read returns (the
	// history route, recovery). Less than 1 means none.
	History int
	// StreamPerRoom is how many messages the stream keeps per room, at
	// least History. It is also the margin of a node that falls behind a
	// busy room: the stream drops a room's oldest message past it,
	// whether every node has had it or not. Zero means 10 000.
	StreamPerRoom int
	// HistoryTTL is how long the stream keeps a message. Zero means 5 min.
	HistoryTTL time.Duration
	// PublishTimeout bounds the wait for the stream's acknowledgement of
	// a message; past it the sender is told it failed. Zero means 5 s.
	PublishTimeout time.Duration
	// ConnectTimeout bounds a connection attempt and the stream's set-up
	// at start.
	// Zero means 10 s.
	ConnectTimeout time.Duration
	// Logger receives the broker's logs. Nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = "lobby"
	}
	if c.Stream == "" {
		c.Stream = "LOBBY"
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.StreamPerRoom <= 0 {
		c.StreamPerRoom = 10_000
	}
	c.StreamPerRoom = max(c.StreamPerRoom, c.History)
	if c.HistoryTTL <= 0 {
		c.HistoryTTL = 5 * time.Minute
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Limits of the broker's queues.
const (
	// maxInflight bounds the publishes queued or awaiting their
	// acknowledgement; past it Append and Publish fail at once.
	maxInflight = 8192
	// maxReads bounds the stream reads (history, recovery) run at once.
	maxReads = 32
)

// payloadHeadroom is what a message's NATS payload may need beyond its
// body: a room message's headers, a direct message's 32-byte prefix. A
// body larger than the server's max_payload less this is refused with
// broker.ErrTooBig rather than sent.
const payloadHeadroom = 1024

// headerFrom carries a room message's sender.
const headerFrom = "Lobby-From"

// subjectRoom is the prefix of the stream's subjects.
const subjectRoom = "lobby.room."

var _ broker.Broker = (*Broker)(nil)

// Broker is a NATS connection serving one node. Make it with Connect and
// close it with Close once the node has shut down.
type Broker struct {
	// Static after Connect.
	cfg     Config
	log     *slog.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	metrics *metrics
	ctx     context.Context
	cancel  context.CancelFunc

	// state is the stream as last set up or checked, and its epoch.
	state atomic.Pointer[streamState]
	// streamOK is set while the stream is known to exist: cleared when
	// the connection is lost or an operation finds no stream, set again
	// by the keeper once it has checked or made it anew.
	streamOK atomic.Bool
	// check asks the keeper to set the stream up now.
	check chan struct{}

	up    atomic.Bool
	watch atomic.Pointer[func(bool)]
	// attemptLogged is set once a failed connection attempt was logged
	// at warn level, until connected again.
	attemptLogged atomic.Bool
	watchEpoch    atomic.Pointer[func(string)]
	// inflight counts publishes queued or awaiting acknowledgement.
	inflight atomic.Int64
	// lag sums the messages stored and not yet delivered to the rooms
	// followed; follows counts them.
	lag     atomic.Int64
	follows atomic.Int64

	out   chan outbound
	acks  chan pendingAck
	reads chan struct{}
	// wg counts every goroutine the broker starts.
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// streamState is the stream as set up, and its epoch.
type streamState struct {
	stream jetstream.Stream
	epoch  string
}

// streamCheckInterval is how often the keeper checks that the stream
// still exists and is the same (not deleted, or made anew by another
// node), besides when an operation finds it missing.
const streamCheckInterval = 5 * time.Second

// outbound is one publish for the writer: a room message when done is
// set, else a plain message.
type outbound struct {
	msg   *nats.Msg
	done  func(uint64, error)
	start time.Time
}

type pendingAck struct {
	f     jetstream.PubAckFuture
	done  func(uint64, error)
	start time.Time
}

// Connect connects to NATS, creates or updates the stream, and returns a
// Broker; it fails when it is connected but cannot set the stream up
// within ConnectTimeout. When NATS is unreachable it returns a Broker that
// is not ready and keeps trying: the keeper sets the stream up once
// connected. The broker reconnects by itself for as long as it lives.
func Connect(cfg Config) (*Broker, error) {
	cfg = cfg.withDefaults()
	if len(cfg.URLs) == 0 {
		return nil, errors.New("cluster: no NATS URL")
	}
	b := &Broker{cfg: cfg, log: cfg.Logger.With(slog.String("component", "nats")),
		out: make(chan outbound, maxInflight), acks: make(chan pendingAck, maxInflight), reads: make(chan struct{}, maxReads),
		check: make(chan struct{}, 1)}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.metrics = newMetrics(b)
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.Timeout(cfg.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		// Nothing is buffered while disconnected: a publish then fails at
		// once, and its sender is told, rather than go out later after
		// it was told it failed.
		nats.ReconnectBufSize(-1),
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(2),
		// A node starts while NATS is down: it serves, unready, and
		// connects when NATS comes.
		nats.RetryOnFailedConnect(true),
		nats.ConnectHandler(func(*nats.Conn) { b.setUp(true, nil) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { b.setUp(false, err) }),
		nats.ReconnectHandler(func(*nats.Conn) { b.setUp(true, nil) }),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			// Loud once per outage (a wrong credential would otherwise
			// only show as a node never ready), quiet after.
			if b.attemptLogged.Swap(true) {
				b.log.Debug("NATS connection attempt failed", slog.Any("err", err))
				return
			}
			b.log.Warn("NATS connection attempt failed: trying again", slog.Any("err", err))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			b.log.Warn("NATS error", slog.String("subject", subject), slog.Any("err", err))
		}),
	}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to NATS %s: %w", strings.Join(cfg.URLs, ","), err)
	}
	b.nc = nc
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*maxInflight),
		jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: jetstream: %w", err)
	}
	b.js = js
	if !nc.IsConnected() {
		// The first connection failed: nats.go tries again, and the
		// keeper sets the stream up once it is connected.
		b.log.Warn("NATS unreachable: serving without the cluster (/readyz 503, publishes unavailable) until it is",
			slog.String("url", strings.Join(cfg.URLs, ",")), slog.String("stream", cfg.Stream))
		b.wg.Add(3)
		go b.writer()
		go b.acker()
		go b.keeper()
		return b, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ConnectTimeout)
	defer cancel()
	if err := b.setUpStream(ctx, true); err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: create or update stream %s: %w", cfg.Stream, err)
	}
	b.up.Store(nc.IsConnected())
	b.metrics.connected.Set(boolGauge(b.up.Load()))
	b.wg.Add(3)
	go b.writer()
	go b.acker()
	go b.keeper()
	b.log.Info("connected to NATS", slog.String("url", nc.ConnectedUrlRedacted()), slog.String("stream", cfg.Stream),
		slog.String("epoch", b.Epoch()), slog.String("server_version", nc.ConnectedServerVersion()))
	return b, nil
}

// streamConfig is the stream every node sets up.
func (b *Broker) streamConfig() jetstream.StreamConfig {
	cfg := b.cfg
	return jetstream.StreamConfig{
		Name:              cfg.Stream,
		Description:       "Lobby room messages",
		Subjects:          []string{subjectRoom + "*"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          cfg.Replicas,
		MaxMsgsPerSubject: int64(cfg.StreamPerRoom),
		MaxAge:            cfg.HistoryTTL,
		Duplicates:        min(2*time.Minute, cfg.HistoryTTL),
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
	}
}

// setUpStream creates or updates the stream (create), or only looks it
// up and creates it if it is missing, then takes its epoch: a hash of its
// name and creation time, the same on every node. An epoch other than the
// last one (the stream was made anew) is passed to the epoch watcher.
func (b *Broker) setUpStream(ctx context.Context, create bool) error {
	var stream jetstream.Stream
	var err error
	if !create {
		stream, err = b.js.Stream(ctx, b.cfg.Stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			b.log.Warn("the stream is gone: making it anew", slog.String("stream", b.cfg.Stream))
			create = true
		} else if err != nil {
			return err
		}
	}
	if create {
		if stream, err = b.js.CreateOrUpdateStream(ctx, b.streamConfig()); err != nil {
			return err
		}
	}
	info := stream.CachedInfo()
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d", info.Config.Name, info.Created.UnixNano())
	epoch := fmt.Sprintf("%08x", h.Sum32())
	old := b.state.Swap(&streamState{stream: stream, epoch: epoch})
	if old == nil && b.watchEpoch.Load() != nil {
		// Set up for the first time after a start without NATS.
		(*b.watchEpoch.Load())(epoch)
	} else if old != nil && old.epoch != epoch {
		b.log.Warn("the stream was made anew: its history is lost, rooms restart under a new epoch",
			slog.String("stream", b.cfg.Stream), slog.String("old_epoch", old.epoch), slog.String("epoch", epoch))
		if f := b.watchEpoch.Load(); f != nil {
			(*f)(epoch)
		}
	}
	if !b.streamOK.Swap(true) && old != nil {
		b.log.Info("the stream is available", slog.String("stream", b.cfg.Stream), slog.String("epoch", epoch))
	}
	return nil
}

// keeper sets the stream up again when asked (a reconnection, an
// operation that found no stream) and checks it every
// streamCheckInterval, until the broker closes. It is the one goroutine
// that sets the stream up after Connect.
func (b *Broker) keeper() {
	defer b.wg.Done()
	tick := time.NewTicker(streamCheckInterval)
	defer tick.Stop()
	for {
		create := false
		select {
		case <-b.ctx.Done():
			return
		case <-b.check:
			create = true
		case <-tick.C:
		}
		wait := 100 * time.Millisecond
		for b.up.Load() {
			ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
			err := b.setUpStream(ctx, create)
			cancel()
			if err == nil || b.ctx.Err() != nil {
				break
			}
			b.log.Debug("cluster: set up the stream: will retry", slog.Any("err", err), slog.Duration("in", wait))
			if streamGone(err) {
				b.streamOK.Store(false)
				create = true
			}
			t := time.NewTimer(wait)
			select {
			case <-b.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			wait = min(2*wait, 2*time.Second)
		}
	}
}

// streamGone reports whether err says the stream does not exist (or
// nothing answers for it).
func streamGone(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse)
}

// checkStream asks the keeper to set the stream up again if err says it
// is gone; until then the broker is not ready and appends fail.
func (b *Broker) checkStream(err error) {
	if err == nil || !streamGone(err) {
		return
	}
	if b.streamOK.Swap(false) {
		b.log.Warn("the stream is missing: appends fail (unavailable) and /readyz answers 503 until it is set up again",
			slog.String("stream", b.cfg.Stream), slog.Any("err", err))
	}
	b.askCheck()
}

func (b *Broker) askCheck() {
	select {
	case b.check <- struct{}{}:
	default:
	}
}

// Close stops every follow and read, fails the publishes not yet
// acknowledged, and closes the connection. Calling it again does nothing.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		b.cancel()
		b.wg.Wait()
		b.nc.Close()
	})
}

func (b *Broker) setUp(up bool, err error) {
	if b.up.Swap(up) == up {
		return
	}
	b.metrics.connected.Set(boolGauge(up))
	// The stream may have been lost meanwhile (a NATS server back with
	// an empty store): not ready until the keeper has set it up again.
	b.streamOK.Store(false)
	if up {
		b.attemptLogged.Store(false)
		b.askCheck()
		b.log.Info("NATS connected: the cluster is available once the stream is set up", slog.String("url", b.nc.ConnectedUrlRedacted()))
	} else {
		b.log.Warn("NATS connection lost: publishes fail (unavailable) and /readyz answers 503 until it is back", slog.Any("err", err))
	}
	if f := b.watch.Load(); f != nil {
		(*f)(up)
	}
}

// Epoch implements broker.Broker.
func (b *Broker) Epoch() string {
	if s := b.state.Load(); s != nil {
		return s.epoch
	}
	return ""
}

// errNoStream is the answer of an operation on the stream before it was
// first set up (the node started while NATS was down).
var errNoStream = errors.New("the stream is not set up yet")

// stream is the stream's handle, nil before it was first set up.
func (b *Broker) stream() jetstream.Stream {
	if s := b.state.Load(); s != nil {
		return s.stream
	}
	return nil
}

// Up implements broker.Broker.
func (b *Broker) Up() bool { return b.up.Load() }

// Ready implements broker.Broker.
func (b *Broker) Ready() bool { return b.up.Load() && b.streamOK.Load() }

// Watch implements broker.Broker.
func (b *Broker) Watch(f func(up bool)) { b.watch.Store(&f) }

// WatchEpoch implements broker.Broker.
func (b *Broker) WatchEpoch(f func(epoch string)) { b.watchEpoch.Store(&f) }

// roomSubject is room's subject in the stream: a room name may hold
// dots, which NATS reads as token separators, and never "~".
func roomSubject(room string) string {
	return subjectRoom + strings.ReplaceAll(room, ".", "~")
}

func unavailable(err error) error {
	if err == nil || errors.Is(err, broker.ErrUnavailable) {
		return broker.ErrUnavailable
	}
	return fmt.Errorf("%w: %w", broker.ErrUnavailable, err)
}

// MaxMessageBytes is the largest message body the broker sends: the
// NATS server's max_payload, less room for headers. It may change when
// the connection moves to another server.
func (b *Broker) MaxMessageBytes() int64 {
	return b.nc.MaxPayload() - payloadHeadroom
}

func (b *Broker) tooBig(n int) bool {
	limit := b.nc.MaxPayload()
	return limit > 0 && int64(n) > limit-payloadHeadroom
}

// Append implements broker.Broker.
func (b *Broker) Append(room string, from uuid.UUID, msg json.RawMessage, done func(uint64, error)) {
	if b.tooBig(len(msg)) {
		done(0, broker.ErrTooBig)
		return
	}
	if !b.streamOK.Load() {
		b.metrics.publishFailures.Inc()
		done(0, unavailable(errors.New("the stream is not set up")))
		return
	}
	m := &nats.Msg{Subject: roomSubject(room), Data: msg, Header: nats.Header{headerFrom: []string{from.String()}}}
	if err := b.enqueue(outbound{msg: m, done: done, start: time.Now()}); err != nil {
		b.metrics.publishFailures.Inc()
		done(0, err)
	}
}

// Publish implements broker.Broker.
func (b *Broker) Publish(subject, reply string, data []byte) error {
	if b.tooBig(len(data)) {
		return broker.ErrTooBig
	}
	return b.enqueue(outbound{msg: &nats.Msg{Subject: subject, Reply: reply, Data: data}})
}

func (b *Broker) enqueue(o outbound) error {
	if !b.up.Load() || b.ctx.Err() != nil {
		return broker.ErrUnavailable
	}
	if b.inflight.Add(1) > maxInflight {
		b.inflight.Add(-1)
		return unavailable(errors.New("too many publishes in flight"))
	}
	b.out <- o // never blocks: inflight bounds what is queued
	return nil
}

// writer publishes what is queued, in order.
func (b *Broker) writer() {
	defer b.wg.Done()
	for {
		select {
		case <-b.ctx.Done():
			drain(b, b.out, func(o outbound) {
				if o.done != nil {
					o.done(0, broker.ErrUnavailable)
				}
			})
			return
		case o := <-b.out:
			if o.done == nil {
				b.inflight.Add(-1)
				if err := b.nc.PublishMsg(o.msg); err != nil {
					b.log.Debug("NATS publish failed", slog.String("subject", o.msg.Subject), slog.Any("err", err))
					continue
				}
				b.metrics.out.WithLabelValues(kindOf(o.msg.Subject)).Inc()
				continue
			}
			f, err := b.js.PublishMsgAsync(o.msg)
			if err != nil {
				b.inflight.Add(-1)
				if errors.Is(err, nats.ErrMaxPayload) {
					// The server's max_payload changed since Append
					// checked it.
					o.done(0, broker.ErrTooBig)
					continue
				}
				b.metrics.publishFailures.Inc()
				o.done(0, unavailable(err))
				continue
			}
			b.acks <- pendingAck{f: f, done: o.done, start: o.start} // never blocks: inflight bounds it
		}
	}
}

// drain answers what is still queued in ch once the broker is closing,
// each one an inflight append or publish less.
func drain[T any](b *Broker, ch <-chan T, answer func(T)) {
	for {
		select {
		case v := <-ch:
			b.inflight.Add(-1)
			answer(v)
		default:
			return
		}
	}
}

// acker waits for the stream's acknowledgements, in publish order.
func (b *Broker) acker() {
	defer b.wg.Done()
	for {
		select {
		case <-b.ctx.Done():
			drain(b, b.acks, func(a pendingAck) { a.done(0, broker.ErrUnavailable) })
			return
		case a := <-b.acks:
			select {
			case ack := <-a.f.Ok():
				b.metrics.out.WithLabelValues(kindRoom).Inc()
				b.metrics.publishSeconds.Observe(time.Since(a.start).Seconds())
				a.done(ack.Sequence, nil)
			case err := <-a.f.Err():
				b.metrics.publishFailures.Inc()
				b.checkStream(err)
				a.done(0, unavailable(err))
			case <-b.ctx.Done():
				a.done(0, broker.ErrUnavailable)
			}
			b.inflight.Add(-1)
		}
	}
}

// Subscribe implements broker.Broker.
func (b *Broker) Subscribe(subject string, handle func(subject, reply string, data []byte)) (func(), error) {
	kind := kindOf(subject)
	sub, err := b.nc.Subscribe(subject, func(m *nats.Msg) {
		b.metrics.in.WithLabelValues(kind).Inc()
		handle(m.Subject, m.Reply, m.Data)
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: subscribe %s: %w", subject, err)
	}
	// A busy node's presence or direct subscription may hold many
	// messages for a moment; NATS's default would drop past 512 KiB·128.
	_ = sub.SetPendingLimits(1<<20, 256<<20)
	return func() { _ = sub.Unsubscribe() }, nil
}

// lastSeq is the stream sequence of room subject's last message, 0 when it
// has none.
func (b *Broker) lastSeq(ctx context.Context, subject string) (uint64, error) {
	stream := b.stream()
	if stream == nil {
		return 0, errNoStream
	}
	m, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		b.checkStream(err)
		return 0, err
	}
	return m.Sequence, nil
}

// Follow implements broker.Broker.
func (b *Broker) Follow(room string, deliver func(broker.StreamMessage), started func(last uint64, epoch string)) func() {
	ctx, cancel := context.WithCancel(b.ctx)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.follow(ctx, room, deliver, started)
	}()
	return cancel
}

// follow finds the room's last message, starts an ordered consumer after
// it (trying again until it can, or ctx ends) and lets it deliver until
// ctx ends.
func (b *Broker) follow(ctx context.Context, room string, deliver func(broker.StreamMessage), started func(uint64, string)) {
	subject := roomSubject(room)
	var pending atomic.Int64 // this follow's part of b.lag
	handler := func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		from, _ := uuid.Parse(m.Headers().Get(headerFrom))
		b.metrics.in.WithLabelValues(kindRoom).Inc()
		p := int64(md.NumPending)
		b.lag.Add(p - pending.Swap(p))
		deliver(broker.StreamMessage{Seq: md.Sequence.Stream, From: from, Msg: m.Data(), At: md.Timestamp})
	}
	b.follows.Add(1)
	defer func() {
		b.follows.Add(-1)
		b.lag.Add(-pending.Swap(0))
	}()
	var cons jetstream.Consumer
	var last uint64
	err := retry(ctx, func() error {
		var err error
		opCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if last, err = b.lastSeq(opCtx, subject); err != nil {
			return err
		}
		cons, err = b.js.OrderedConsumer(opCtx, b.cfg.Stream, jetstream.OrderedConsumerConfig{
			FilterSubjects:    []string{subject},
			DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:       last + 1,
			InactiveThreshold: time.Minute,
		})
		b.checkStream(err)
		return err
	}, b.log, "follow room "+room)
	if err != nil {
		return // ctx ended
	}
	started(last, b.Epoch())
	var cc jetstream.ConsumeContext
	err = retry(ctx, func() error {
		var err error
		cc, err = cons.Consume(handler, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			b.log.Debug("room follow", slog.String("room", room), slog.Any("err", err))
			b.checkStream(err)
		}))
		return err
	}, b.log, "consume room "+room)
	if err != nil {
		return
	}
	<-ctx.Done()
	cc.Stop()
	select {
	case <-cc.Closed():
	case <-time.After(5 * time.Second):
	}
}

// retry calls f until it succeeds or ctx ends, waiting longer after each
// failure, up to 2 s.
func retry(ctx context.Context, f func() error, log *slog.Logger, what string) error {
	wait := 100 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Debug("cluster: will retry", slog.String("what", what), slog.Any("err", err), slog.Duration("in", wait))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// Read implements broker.Broker.
func (b *Broker) Read(room string, after, upto uint64, done func(broker.ReadResult)) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		select {
		case b.reads <- struct{}{}:
		case <-ctx.Done():
			done(broker.ReadResult{Err: unavailable(ctx.Err())})
			return
		}
		res := b.read(ctx, room, after, upto)
		<-b.reads
		if res.Err != nil {
			res.Err = unavailable(res.Err)
		}
		res.Epoch = b.Epoch()
		done(res)
	}()
}

func (b *Broker) read(ctx context.Context, room string, after, upto uint64) broker.ReadResult {
	subject := roomSubject(room)
	var res broker.ReadResult
	last, err := b.lastSeq(ctx, subject)
	if err != nil {
		return broker.ReadResult{Err: err}
	}
	res.Last = last
	if upto == 0 || upto > last {
		upto = last
	}
	if after >= upto {
		res.Complete = after <= last
		return res
	}
	if b.cfg.History <= 0 {
		return res // no history kept: incomplete unless nothing was missed
	}
	stream := b.stream()
	if stream == nil {
		return broker.ReadResult{Err: errNoStream}
	}
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     subject,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       max(after, 1),
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 10 * time.Second,
		MemoryStorage:     true,
	})
	if err != nil {
		b.checkStream(err)
		return broker.ReadResult{Err: err}
	}
	defer func() {
		delCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = stream.DeleteConsumer(delCtx, cons.CachedInfo().Name)
	}()
	first := true
	// Only the last History messages are history: older ones are
	// dropped as newer ones are read, so that a read holds at most
	// History of them however many are stored.
	kept := lastN[broker.StreamMessage]{n: b.cfg.History}
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return broker.ReadResult{Err: err}
		}
		n, end := 0, false
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			seq := md.Sequence.Stream
			if first {
				first = false
				res.Complete = after == 0 || seq == after
			}
			if seq > after && seq <= upto {
				from, _ := uuid.Parse(m.Headers().Get(headerFrom))
				kept.push(broker.StreamMessage{Seq: seq, From: from, Msg: m.Data(), At: md.Timestamp})
			}
			if seq >= upto || md.NumPending == 0 {
				end = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return broker.ReadResult{Err: err}
		}
		if end || n == 0 {
			res.Messages = kept.slice()
			if kept.dropped {
				res.Complete = false
			}
			return res
		}
	}
}

// lastN keeps the last n values pushed, in a ring of at most n.
type lastN[T any] struct {
	n    int
	buf  []T
	head int // the oldest value's index, once buf is full
	// dropped is set once a value was dropped for a newer one.
	dropped bool
}

func (l *lastN[T]) push(v T) {
	if l.n <= 0 {
		l.dropped = true
		return
	}
	if len(l.buf) < l.n {
		if len(l.buf) == cap(l.buf) {
			// Grown by hand: append could grow it past n.
			grown := make([]T, len(l.buf), min(max(2*cap(l.buf), 8), l.n))
			copy(grown, l.buf)
			l.buf = grown
		}
		l.buf = append(l.buf, v)
		return
	}
	l.buf[l.head] = v
	l.head = (l.head + 1) % l.n
	l.dropped = true
}

// slice is the values kept, oldest first.
func (l *lastN[T]) slice() []T {
	if l.head == 0 {
		return l.buf
	}
	out := make([]T, 0, len(l.buf))
	out = append(out, l.buf[l.head:]...)
	return append(out, l.buf[:l.head]...)
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
