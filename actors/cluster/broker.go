package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"slices"
	"strconv"
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
	// of a NATS cluster is enough, the others are learnt. Required unless
	// Embedded is set.
	URLs []string
	// Embedded, when set, is the node's own NATS server (--durable),
	// reached through an in-process connection: no port, no URL.
	Embedded *Embedded
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
	// Latest says which rooms keep their last message past HistoryTTL,
	// for LatestTTL: their latest value (the statistics room's last
	// batch). Nil means none.
	Latest func(room string) bool
	// LatestTTL is how long a latest value is kept. Zero means 30 days.
	LatestTTL time.Duration
	// IdempotencyWindow is the stream's window of duplicates: how long an
	// append's idempotency key (its Nats-Msg-Id) is remembered, at most
	// HistoryTTL. Zero means broker.DefaultIdempotencyWindow.
	IdempotencyWindow time.Duration
	// PublishTimeout bounds the wait for the stream's acknowledgement of
	// a message; past it the sender is told it failed. Zero means 5 s.
	PublishTimeout time.Duration
	// ConnectTimeout bounds a connection attempt and the stream's set-up
	// at start.
	// Zero means 10 s.
	ConnectTimeout time.Duration
	// MaxLag is how far behind the stream the node may fall, measured as
	// the age of the oldest message it has not delivered yet, before it
	// turns unready (Ready says broker.ErrBehind); it is ready again once
	// it is within half of it. Zero means 5 s; negative, never unready
	// for lag.
	MaxLag time.Duration
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
	if c.LatestTTL <= 0 {
		c.LatestTTL = 30 * 24 * time.Hour
	}
	if c.IdempotencyWindow <= 0 {
		c.IdempotencyWindow = broker.DefaultIdempotencyWindow
	}
	c.IdempotencyWindow = min(c.IdempotencyWindow, c.HistoryTTL)
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.MaxLag == 0 {
		c.MaxLag = 5 * time.Second
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
	// maxReads bounds the stream reads (history, recovery) run at once:
	// each is a consumer of its own, so that with the tail a node never
	// has more than 1+maxReads consumers on the stream, however many
	// rooms it follows.
	maxReads = 32
	// maxCASAttempts bounds how often an append is tried again when
	// another node appended to its room first.
	maxCASAttempts = 64
	// maxFollowBuffer bounds what a starting follow holds while it looks
	// its room's end up; past it the look-up starts again.
	maxFollowBuffer = 4096
)

// payloadHeadroom is what a message's NATS payload may need beyond its
// body: a room message's headers, a direct message's 32-byte prefix. A
// body larger than the server's max_payload less this is refused with
// broker.ErrTooBig rather than sent.
const payloadHeadroom = 1024

// Headers of a room message: its sender, and its seq in its room.
const (
	headerFrom = "Lobby-From"
	headerSeq  = "Lobby-Seq"
)

// subjectRoom is the prefix of the stream's subjects.
const subjectRoom = "lobby.room."

var _ broker.Broker = (*Broker)(nil)

// Broker is a NATS connection serving one node. Make it with Connect and
// close it with Close once the node has shut down.
//
// A room's messages carry their seq in the room (header Lobby-Seq): one
// more than the room's last, set under JetStream's optimistic concurrency
// (Nats-Expected-Last-Subject-Sequence), so that seqs are contiguous per
// room whatever node appends: an append that finds another node's
// message first is numbered again and retried. A room has at most one
// record in flight from a node, which holds every append that queued
// while the one before was stored (record.go); rooms append in parallel.
//
// Every room this node follows is fed by one ordered consumer of the
// whole stream, the tail: a node holds one consumer however many rooms it
// follows (plus the reads', at most maxReads at once), where a consumer
// per room met nats-server's limit of 1 000 and blocked every new room.
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
	// the connection is lost (a stream of one replica, which its server
	// may have lost) or an operation finds no stream, set again by the
	// keeper once it has checked or made it anew.
	streamOK atomic.Bool
	// check asks the keeper to set the stream up now.
	check chan struct{}
	// maxPayload is the server's max_payload, read when connected: asking
	// nats.go for it takes its connection lock, which a reconnect to a
	// hung server holds for seconds.
	maxPayload atomic.Int64

	up    atomic.Bool
	watch atomic.Pointer[func(bool)]
	// attemptLogged is set once a failed connection attempt was logged
	// at warn level, until connected again.
	attemptLogged atomic.Bool
	watchEpoch    atomic.Pointer[func(string)]
	// inflight counts publishes queued or awaiting acknowledgement.
	inflight atomic.Int64
	// follows counts the rooms followed.
	follows atomic.Int64
	// lag is how far the tail is behind the stream (lag.go).
	lag lagState
	// full is set while the store said it has no room left; appends fail
	// at once (ErrStoreFull) until fullUntil, then try again.
	full      atomic.Bool
	fullUntil atomic.Int64
	// leader is set while this node's embedded server leads the stream,
	// as last checked.
	leader atomic.Bool
	// tailGen numbers the tails; tailLast is the stream sequence the tail
	// last delivered, tailAt when (Unix ns); ackedLast is the highest one
	// an append of this node was acknowledged: past tailLast for long,
	// the tail is stalled.
	tailGen   atomic.Uint64
	tailLast  atomic.Uint64
	tailAt    atomic.Int64
	ackedLast atomic.Uint64
	// tailRefused is set while NATS refuses the tail its consumer (its
	// limit of consumers reached), until the tail runs again.
	tailRefused atomic.Bool
	// streamLast is the stream's last sequence as the keeper last read
	// it (every streamCheckInterval, and after a reconnection): a node
	// that appends nothing would otherwise never find its tail stalled.
	streamLast atomic.Uint64

	// mu guards rooms.
	mu    sync.Mutex
	rooms map[string]*roomState

	// tailMu guards the tail's state: tailReady is closed once the tail
	// runs for the stream of epoch tailEpoch; tailStopped is when a
	// stalled tail stopped to be made anew, zero otherwise; restartTail
	// asks it to start again (the stream was made anew).
	tailMu      sync.Mutex
	tailReady   chan struct{}
	tailRunning bool
	tailStopped time.Time
	tailEpoch   string
	restartTail chan struct{}

	out   chan outbound
	reads chan struct{}
	// wg counts every goroutine the broker starts.
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// roomState is what the broker knows of one room, while it follows the
// room or appends to it: its appends waiting, and its last message.
type roomState struct {
	subject string
	queue   []pendingAppend
	// writing is set while an appender goroutine serves the queue.
	writing bool
	// known is set when lastSeq and lastStream are the room's last
	// message as last seen (an ack, the tail, a look-up); an append with
	// an old one is refused by the stream and looked up again.
	known      bool
	lastSeq    uint64
	lastStream uint64
	follows    []*roomFollow
}

type pendingAppend struct {
	from  uuid.UUID
	msg   json.RawMessage
	key   string
	done  func(uint64, bool, error)
	start time.Time
}

// roomFollow is one Follow. While it starts (looks its room's end up)
// what the tail delivers for it waits in buf; then it delivers what came
// after the end it found.
type roomFollow struct {
	deliver func(broker.StreamMessage) <-chan struct{}
	b       *Broker
	ctx     context.Context
	subject string

	mu       sync.Mutex
	epoch    string
	starting bool
	// after is the stream sequence of the room's last message when it
	// started: what the tail delivers up to it was counted in its start.
	after    uint64
	buf      []tailMsg
	overflow bool
	// last is the room seq last delivered (or started from); repairing is
	// set while the messages between it and one the tail delivered are
	// read from the stream, the tail's waiting in buf.
	last      uint64
	repairing bool
}

type tailMsg struct {
	stream uint64
	sm     broker.StreamMessage
}

// streamState is the stream as set up, and its epoch.
type streamState struct {
	stream jetstream.Stream
	epoch  string
}

// unreadyAfter is how long the stream may not answer before the node
// turns unready: a NATS cluster elects a new stream leader within a few
// seconds, which appends ride out.
const unreadyAfter = 10 * time.Second

// streamCheckInterval is how often the keeper checks that the stream
// still exists and is the same (not deleted, or made anew by another
// node), besides when an operation finds it missing.
const streamCheckInterval = 5 * time.Second

// outbound is one plain publish for the writer.
type outbound struct {
	msg *nats.Msg
}

// Connect connects to NATS, creates or updates the stream, and returns a
// Broker; it fails when NATS refuses the stream. When NATS is unreachable,
// or does not answer for the stream in time (a NATS cluster electing its
// leader), it returns a Broker that is not ready and keeps trying: the
// keeper sets the stream up once it can. The broker reconnects by itself
// for as long as it lives.
func Connect(cfg Config) (*Broker, error) {
	cfg = cfg.withDefaults()
	if len(cfg.URLs) == 0 && cfg.Embedded == nil {
		return nil, errors.New("cluster: no NATS URL")
	}
	b := &Broker{cfg: cfg, log: cfg.Logger.With(slog.String("component", "nats")),
		out: make(chan outbound, maxInflight), reads: make(chan struct{}, maxReads),
		check: make(chan struct{}, 1), rooms: make(map[string]*roomState),
		tailReady: make(chan struct{}), restartTail: make(chan struct{}, 1)}
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
		nats.ConnectHandler(func(nc *nats.Conn) { b.maxPayload.Store(nc.MaxPayload()); b.setUp(nc, true, nil) }),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) { b.setUp(nc, false, err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { b.maxPayload.Store(nc.MaxPayload()); b.setUp(nc, true, nil) }),
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
	url := strings.Join(cfg.URLs, ",")
	if cfg.Embedded != nil {
		opts = append(opts, nats.InProcessServer(cfg.Embedded.srv))
		if cfg.Embedded.token != "" {
			opts = append(opts, nats.Token(cfg.Embedded.token))
		}
		url = "in-process"
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to NATS %s: %w", url, err)
	}
	b.nc = nc
	b.maxPayload.Store(nc.MaxPayload())
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*maxInflight),
		jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: jetstream: %w", err)
	}
	b.js = js
	start := func() {
		b.wg.Add(4)
		go b.writer()
		go b.keeper()
		go b.tailer()
		go b.lagWatcher()
	}
	if !nc.IsConnected() {
		// The first connection failed: nats.go tries again, and the
		// keeper sets the stream up once it is connected.
		b.log.Warn("NATS unreachable: serving without the cluster (/readyz 503, publishes unavailable) until it is",
			slog.String("url", url), slog.String("stream", cfg.Stream))
		start()
		return b, nil
	}
	setUpWait := cfg.ConnectTimeout
	if cfg.Embedded != nil && cfg.Embedded.clustered {
		// Its peers may not be up yet (they start one after the other):
		// the node serves unready meanwhile, and the keeper sets the
		// stream up once a majority answers.
		setUpWait = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), setUpWait)
	defer cancel()
	b.up.Store(nc.IsConnected())
	b.metrics.connected.Set(boolGauge(b.up.Load()))
	if err := b.setUpStream(ctx, true); err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.Code != 503 {
			// NATS answered, and refused: a wrong setting, or a server
			// too old. Trying again would not help.
			nc.Close()
			return nil, fmt.Errorf("cluster: create or update stream %s: %w", cfg.Stream, err)
		}
		// No answer in time: a NATS cluster still electing its leader,
		// or nodes started at once. The keeper tries again.
		b.log.Warn("the stream could not be set up yet: serving unready (/readyz 503) until it is",
			slog.String("stream", cfg.Stream), slog.Any("err", err))
		b.askCheck()
		start()
		return b, nil
	}
	start()
	b.log.Info("connected to NATS", slog.String("url", url), slog.String("stream", cfg.Stream),
		slog.String("epoch", b.Epoch()), slog.String("server_version", nc.ConnectedServerVersion()))
	return b, nil
}

// streamConfig is the stream every node sets up.
func (b *Broker) streamConfig() jetstream.StreamConfig {
	cfg := b.cfg
	maxAge := cfg.HistoryTTL
	if cfg.Latest != nil {
		// Latest values outlive the history: the stream keeps messages
		// for LatestTTL, and every other room's carry a TTL of
		// HistoryTTL (Nats-TTL) so that they go when the history does.
		maxAge = max(maxAge, cfg.LatestTTL)
	}
	return jetstream.StreamConfig{
		Name:              cfg.Stream,
		Description:       "Lobby room messages",
		Subjects:          []string{subjectRoom + "*"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          cfg.Replicas,
		MaxMsgsPerSubject: int64(cfg.StreamPerRoom),
		MaxAge:            maxAge,
		Duplicates:        cfg.IdempotencyWindow,
		Discard:           jetstream.DiscardOld,
		// A replica may answer a direct get before it has caught up: a
		// follow starting from a stale last message would skip what came
		// after it. A replicated stream is read from its leader.
		AllowDirect: cfg.Replicas == 1,
		AllowMsgTTL: cfg.Latest != nil,
	}
}

// setUpStream creates or updates the stream (create), or only looks it
// up and creates it if it is missing, then takes its epoch: a hash of its
// name and creation time, the same on every node. An epoch other than the
// last one (the stream was made anew) restarts the tail and is passed to
// the epoch watcher.
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
	b.streamLast.Store(info.State.LastSeq)
	if e := b.cfg.Embedded; e != nil {
		b.leader.Store(info.Cluster != nil && info.Cluster.Leader == e.srv.Name())
	}
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d", info.Config.Name, info.Created.UnixNano())
	epoch := fmt.Sprintf("%08x", h.Sum32())
	old := b.state.Swap(&streamState{stream: stream, epoch: epoch})
	if old == nil || old.epoch != epoch {
		b.kickTail()
	}
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
		var failing time.Time
		for b.up.Load() {
			ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
			err := b.setUpStream(ctx, create || b.state.Load() == nil)
			cancel()
			if err == nil || b.ctx.Err() != nil {
				break
			}
			b.log.Debug("cluster: set up the stream: will retry", slog.Any("err", err), slog.Duration("in", wait))
			if failing.IsZero() {
				failing = time.Now()
			}
			switch {
			case errors.Is(err, jetstream.ErrStreamNotFound):
				b.streamOK.Store(false)
				create = true
			case time.Since(failing) > unreadyAfter:
				// No answer for this long is no election any more.
				if b.streamOK.Swap(false) {
					b.log.Warn("the stream does not answer: appends fail (unavailable) and /readyz answers 503 until it does",
						slog.String("stream", b.cfg.Stream), slog.Any("err", err))
				}
				create = create || streamGone(err)
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

// checkStream asks the keeper to check the stream if err says it may be
// gone. Only a stream NATS says it does not have makes the broker unready
// at once (appends then fail until it is set up again); no answer (a
// stream leader lost, an election) is ridden out, and makes it unready
// only if it lasts (the keeper's unreadyAfter).
func (b *Broker) checkStream(err error) {
	if err == nil || !streamGone(err) {
		return
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		b.askCheck()
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

// setUp takes nc from nats.go's callback: b.nc may not be set yet when
// the first connect's handler runs (RetryOnFailedConnect calls it from
// its own goroutine).
func (b *Broker) setUp(nc *nats.Conn, up bool, err error) {
	if b.up.Swap(up) == up || b.ctx.Err() != nil {
		return // no change, or closing
	}
	b.metrics.connected.Set(boolGauge(up))
	if b.cfg.Replicas == 1 {
		// The stream may have been lost meanwhile (a NATS server back
		// with an empty store): not ready until the keeper has set it up
		// again. A replicated stream outlives one server: a connection
		// moved off a server that died finds it on the others, and the
		// keeper's check below says so, or turns the node unready if it
		// does not for unreadyAfter. Clearing it here made the node
		// unready for as long as that check took after the move: 5 s
		// when its first request was lost with the server.
		b.streamOK.Store(false)
	}
	if up {
		b.attemptLogged.Store(false)
		b.askCheck()
		b.log.Info("NATS connected: the cluster is available once the stream is set up", slog.String("url", nc.ConnectedUrlRedacted()))
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

// Ready implements broker.Broker: connected, the stream set up, the tail
// following it, or being made anew after a stall for less than
// unreadyAfter, and not too far behind it (Config.MaxLag). A tail whose
// consumer died with its server takes a new consumer, which waits for
// the NATS cluster (its meta group may be electing a leader too): the
// node rides that out as it does a stream leader's election, rather than
// empty a load balancer's pool.
func (b *Broker) Ready() error {
	switch {
	case !b.up.Load():
		return unavailable(errors.New("NATS is not connected"))
	case !b.streamOK.Load():
		return unavailable(errors.New("the stream is not set up"))
	}
	b.tailMu.Lock()
	following := b.tailRunning || !b.tailStopped.IsZero() && time.Since(b.tailStopped) < unreadyAfter
	b.tailMu.Unlock()
	if !following {
		return unavailable(errors.New("the node does not follow the stream yet"))
	}
	return b.behindErr()
}

// Watch implements broker.Broker.
func (b *Broker) Watch(f func(up bool)) { b.watch.Store(&f) }

// WatchEpoch implements broker.Broker.
func (b *Broker) WatchEpoch(f func(epoch string)) { b.watchEpoch.Store(&f) }

// roomSubject is room's subject in the stream: a room name may hold
// dots, which NATS reads as token separators, and never "~".
func roomSubject(room string) string {
	return subjectRoom + strings.ReplaceAll(room, ".", "~")
}

// subjectRoomName is roomSubject's inverse.
func subjectRoomName(subject string) string {
	return strings.ReplaceAll(strings.TrimPrefix(subject, subjectRoom), "~", ".")
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
	return b.maxPayload.Load() - payloadHeadroom
}

func (b *Broker) tooBig(n int) bool {
	limit := b.maxPayload.Load()
	return limit > 0 && int64(n) > limit-payloadHeadroom
}

// fullRetry is how long after the store said it was full appends fail at
// once, before one is tried again.
const fullRetry = time.Second

// storeFull reports whether err says the store has no room: the disk
// under it full, or JetStream's own limit met.
func storeFull(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10023, 10047: // insufficient resources, storage resources exceeded
			return true
		}
	}
	s := err.Error()
	return strings.Contains(s, "no space left") || strings.Contains(s, "insufficient") ||
		strings.Contains(s, "resources exceeded")
}

// Append implements broker.Broker.
func (b *Broker) Append(room string, from uuid.UUID, msg json.RawMessage, key string, done func(uint64, bool, error)) {
	if b.tooBig(len(msg)) {
		done(0, false, broker.ErrTooBig)
		return
	}
	if !b.up.Load() || !b.streamOK.Load() || b.ctx.Err() != nil {
		b.metrics.publishFailures.Inc()
		why := "the stream is not set up"
		if !b.up.Load() {
			why = "not connected to NATS"
		}
		done(0, false, unavailable(errors.New(why)))
		return
	}
	if e := b.cfg.Embedded; e != nil && !e.hasRoom() {
		b.metrics.storeFull.Inc()
		if !b.full.Swap(true) {
			b.log.Error("the store's disk is full: publishes are refused (503 store_full) until it has room again",
				slog.String("dir", e.dir), slog.Int64("min_free", e.minFree))
		}
		done(0, false, broker.ErrStoreFull)
		return
	}
	if b.full.Load() && time.Now().UnixNano() < b.fullUntil.Load() {
		b.metrics.storeFull.Inc()
		done(0, false, broker.ErrStoreFull)
		return
	}
	if b.inflight.Add(1) > maxInflight {
		b.inflight.Add(-1)
		b.metrics.publishFailures.Inc()
		done(0, false, unavailable(errors.New("too many publishes in flight")))
		return
	}
	subject := roomSubject(room)
	b.mu.Lock()
	rs := b.roomLocked(subject)
	rs.queue = append(rs.queue, pendingAppend{from: from, msg: msg, key: key, done: done, start: time.Now()})
	start := !rs.writing
	rs.writing = true
	b.mu.Unlock()
	if start {
		b.wg.Add(1)
		go b.appender(rs)
	}
}

// roomLocked is subject's state, made if need be. b.mu is held.
func (b *Broker) roomLocked(subject string) *roomState {
	rs, ok := b.rooms[subject]
	if !ok {
		rs = &roomState{subject: subject}
		b.rooms[subject] = rs
	}
	return rs
}

// forgetLocked drops a room's state once nothing uses it. b.mu is held.
func (b *Broker) forgetLocked(rs *roomState) {
	if !rs.writing && len(rs.queue) == 0 && len(rs.follows) == 0 && b.rooms[rs.subject] == rs {
		delete(b.rooms, rs.subject)
	}
}

// appender stores a room's queued appends, one record after the other,
// then ends: each record's seqs follow the last one's, which only its
// ack says, so the appends that queue meanwhile go in the next record
// together (record.go).
func (b *Broker) appender(rs *roomState) {
	defer b.wg.Done()
	var batch []pendingAppend
	singles := 0 // appends to store one per record
	for {
		b.mu.Lock()
		if len(rs.queue) == 0 {
			rs.writing = false
			b.forgetLocked(rs)
			b.mu.Unlock()
			return
		}
		n := 1
		if singles == 0 {
			n = recordLen(rs.queue, int(min(recordBytes, b.MaxMessageBytes())))
		} else {
			singles--
		}
		batch = append(batch[:0], rs.queue[:n]...)
		clear(rs.queue[:n])
		rs.queue = rs.queue[n:]
		b.mu.Unlock()
		first, dup, err := b.store(rs, batch)
		if errors.Is(err, errRecordTooBig) {
			// The server's max_payload is smaller than when the record
			// was put together (the connection moved to another
			// server): its appends go again, one per record.
			b.mu.Lock()
			rs.queue = append(slices.Clone(batch), rs.queue...)
			b.mu.Unlock()
			singles = len(batch)
			clear(batch)
			continue
		}
		b.inflight.Add(-int64(len(batch)))
		switch {
		case err == nil:
			if b.full.Swap(false) {
				b.log.Info("the store has room again: publishes are stored")
			}
			b.metrics.out.WithLabelValues(kindRoom).Add(float64(len(batch)))
			for _, a := range batch {
				b.metrics.publishSeconds.Observe(time.Since(a.start).Seconds())
			}
		case errors.Is(err, broker.ErrStoreFull):
			b.metrics.storeFull.Add(float64(len(batch)))
			if !b.full.Swap(true) {
				b.log.Error("the store is full: publishes are refused (503) until it has room again", slog.Any("err", err))
			}
			b.fullUntil.Store(time.Now().Add(fullRetry).UnixNano())
		case !errors.Is(err, broker.ErrTooBig):
			b.metrics.publishFailures.Add(float64(len(batch)))
		}
		for i, a := range batch {
			seq := uint64(0)
			if err == nil {
				seq = first + uint64(i)
			}
			a.done(seq, dup, err)
		}
		clear(batch)
	}
}

// store appends one record of a room's appends (one or more, record.go):
// its first message numbered one more than the room's last as known, on
// the condition that it still is its last; when another node's came
// first, it looks the last up and tries again. It returns the first
// message's seq, the others' following it. dup says the stream had the
// append's idempotency key already, from another Append (a record with
// a key holds that append alone).
func (b *Broker) store(rs *roomState, batch []pendingAppend) (uint64, bool, error) {
	// PublishTimeout counts from the Append, the record's oldest: a
	// room's records are stored one after the other, and each one's wait
	// after the last one's would add up (a hung NATS server held a
	// publish behind a member's broadcasts for twice the timeout, past
	// the node's own 10 s).
	a := batch[0]
	ctx, cancel := context.WithDeadline(b.ctx, a.start.Add(b.cfg.PublishTimeout))
	defer cancel()
	room := subjectRoomName(rs.subject)
	ttl := ""
	if b.cfg.Latest != nil && !b.cfg.Latest(room) {
		// Whole seconds (Nats-TTL's least), rounded up: never shorter
		// than the history's.
		ttl = strconv.FormatInt(max(1, int64((b.cfg.HistoryTTL+time.Second-1)/time.Second)), 10) + "s"
	}
	// One id for every attempt: an attempt whose answer was lost (a
	// stream leader that died, an election) is stored once however often
	// it is sent again, and its ack then says where. A publisher's
	// idempotency key is the id, so that its own retry, through any
	// node, is stored once too (within the stream's window of
	// duplicates); the room is part of it, so that one key in two rooms
	// is two messages. A room name has no ':', a minted id neither.
	msgID := uuid.NewString()
	if a.key != "" {
		msgID = room + ":" + a.key
	}
	// The record is made once, of its own memory: an attempt given up
	// (awaitNATS) may still send it while the appender has gone on.
	rec := record{data: a.msg, from: a.from, count: len(batch), msgID: msgID, ttl: ttl}
	if len(batch) > 1 {
		rec.data = encodeRecord(batch)
	}
	// maybeStored is set once an attempt got no answer: the stream may
	// hold the record, and a failure then says its outcome is unknown.
	maybeStored, dup := false, false
	fail := func(err error) error {
		if maybeStored {
			return fmt.Errorf("%w: %w", broker.ErrOutcomeUnknown, err)
		}
		return unavailable(err)
	}
	wait := 25 * time.Millisecond
	pause := func() {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		wait = min(2*wait, 400*time.Millisecond)
	}
	var lastErr error
	for cas := 1; ; {
		if ctx.Err() != nil {
			if lastErr == nil {
				lastErr = ctx.Err()
			}
			return 0, false, fail(lastErr)
		}
		if !b.up.Load() {
			// Disconnected: a reconnect to a hung server holds nats.go's
			// connection lock for up to ConnectTimeout, which an attempt
			// would wait on past its deadline. The connection is waited
			// for instead, until PublishTimeout.
			lastErr = errors.New("not connected to NATS")
			pause()
			continue
		}
		b.mu.Lock()
		known, seq, stream := rs.known, rs.lastSeq, rs.lastStream
		b.mu.Unlock()
		r, ok := awaitNATS(b, ctx, func() attemptResult {
			return b.attempt(ctx, rs, rec, known, seq, stream)
		})
		if !ok {
			// The attempt waits on nats.go's connection lock, held by a
			// reconnection to a hung server: it is given up, and may
			// still store the record once the lock is free. The next
			// record carries the same condition (the room's last as
			// known): of the two, the one that comes second is refused,
			// and the next is numbered again after the first.
			maybeStored = true
			r = attemptResult{stream: stream, err: fmt.Errorf("no answer from NATS: %w", ctx.Err())}
		}
		err := r.err
		stream = r.stream
		if r.sent {
			// After an attempt with no answer, a duplicate may be this
			// Append's own, not a publisher's retry.
			dup = err == nil && r.duplicate && a.key != "" && !maybeStored
			var apiErr *jetstream.APIError
			if err != nil && !errors.As(err, &apiErr) && !errors.Is(err, nats.ErrNoResponders) {
				maybeStored = true
			}
		}
		if err == nil {
			return r.first, dup, nil
		}
		lastErr = err
		b.mu.Lock()
		if rs.lastStream == stream {
			rs.known = false
		}
		b.mu.Unlock()
		var apiErr *jetstream.APIError
		isAPI := errors.As(err, &apiErr)
		switch {
		case isAPI && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
			// Another node's message came first: numbered again, at once.
			if cas++; cas > maxCASAttempts {
				return 0, false, fail(err)
			}
			b.metrics.casRetries.Inc()
			continue
		case errors.Is(err, nats.ErrMaxPayload) && len(batch) > 1:
			return 0, false, errRecordTooBig
		case errors.Is(err, nats.ErrMaxPayload):
			return 0, false, broker.ErrTooBig
		case storeFull(err):
			return 0, false, fmt.Errorf("%w: %w", broker.ErrStoreFull, err)
		case errors.Is(err, jetstream.ErrStreamNotFound) && b.cfg.Replicas > 1:
			// A replicated stream without a leader (an election, a
			// majority lost) is "not found" meanwhile: tried again.
			b.checkStream(err)
		case errors.Is(err, jetstream.ErrStreamNotFound), isAPI && apiErr.Code < 500:
			b.checkStream(err)
			return 0, false, fail(err)
		}
		// No answer, or "try later": a stream leader lost, an election.
		// Sent again (the same id) until PublishTimeout.
		b.checkStream(err)
		b.metrics.publishRetries.Inc()
		pause()
	}
}

// record is what every attempt to store a record sends: its body, its
// first message's sender, how many messages it holds, its message id
// and TTL.
type record struct {
	data       []byte
	from       uuid.UUID
	count      int
	msgID, ttl string
}

// attemptResult is what one attempt to store a record found: its first
// message's seq when stored; else why not, and whether it was sent.
type attemptResult struct {
	first     uint64
	duplicate bool
	sent      bool
	// stream is the room's last stream sequence the attempt counted on.
	stream uint64
	err    error
}

// attempt tries once to store rec after the room's last message as known
// (seq, stream), or as looked up, within ctx and attemptTimeout.
func (b *Broker) attempt(ctx context.Context, rs *roomState, rec record, known bool, seq, stream uint64) attemptResult {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	if !known {
		last, err := b.lastMsg(ctx, rs.subject)
		if err != nil {
			return attemptResult{stream: stream, err: err}
		}
		seq, stream = last.seq, last.stream
		b.learn(rs, seq, stream)
	}
	m := &nats.Msg{Subject: rs.subject, Data: rec.data, Header: recordHeader(rec.from, rec.count, seq+1)}
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(stream, 10))
	m.Header.Set(jetstream.MsgIDHeader, rec.msgID)
	if rec.ttl != "" {
		m.Header.Set(jetstream.MsgTTLHeader, rec.ttl)
	}
	ack, err := b.js.PublishMsg(ctx, m)
	if err != nil {
		return attemptResult{sent: true, stream: stream, err: err}
	}
	if ack.Duplicate {
		// Stored by an attempt before (or, with a key, by an Append
		// before), maybe under another seq.
		st := b.stream()
		if st == nil {
			return attemptResult{sent: true, stream: stream, err: errNoStream}
		}
		sm, err := st.GetMsg(ctx, ack.Sequence)
		if err != nil {
			return attemptResult{sent: true, stream: stream, err: err}
		}
		if got := decode(sm.Sequence, sm.Header, sm.Data, sm.Time); len(got) > 0 {
			seq = got[0].Seq - 1
		}
	}
	b.learn(rs, seq+uint64(rec.count), ack.Sequence)
	for {
		old := b.ackedLast.Load()
		if ack.Sequence <= old || b.ackedLast.CompareAndSwap(old, ack.Sequence) {
			break
		}
	}
	return attemptResult{first: seq + 1, duplicate: ack.Duplicate, sent: true, stream: stream}
}

// awaitNATS calls f on a goroutine of its own, and waits for it until ctx
// ends (and a moment more, for f to see it end too): f calls nats.go,
// whose calls wait for its connection lock whatever their context says,
// and a reconnection to a hung server holds that lock for up to
// ConnectTimeout (a room's appends then waited 10 s, past
// PublishTimeout). ok is false when f did not return in time; it then
// goes on alone, the broker's WaitGroup counting it.
func awaitNATS[T any](b *Broker, ctx context.Context, f func() T) (T, bool) {
	done := make(chan T, 1)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		done <- f()
	}()
	select {
	case v := <-done:
		return v, true
	case <-ctx.Done():
	}
	t := time.NewTimer(awaitGrace)
	defer t.Stop()
	select {
	case v := <-done:
		return v, true
	case <-t.C:
		var zero T
		return zero, false
	}
}

// awaitGrace is how long awaitNATS waits, once its context has ended, for
// a call that is not held by nats.go's lock to end with it.
const awaitGrace = 100 * time.Millisecond

// errRecordTooBig is store's answer to a record of several appends that
// NATS refused for its size: each of them may still fit alone.
var errRecordTooBig = errors.New("cluster: the record is larger than NATS takes")

// attemptTimeout bounds one attempt to store a message: past it the
// attempt is taken for lost (its server gone) and made again, with the
// same message id.
const attemptTimeout = time.Second

// learn records a room's last message, unless a later one is known.
func (b *Broker) learn(rs *roomState, seq, stream uint64) {
	b.mu.Lock()
	if stream >= rs.lastStream {
		rs.known, rs.lastSeq, rs.lastStream = true, seq, stream
	}
	b.mu.Unlock()
}

// Publish implements broker.Broker.
func (b *Broker) Publish(subject, reply string, data []byte) error {
	if b.tooBig(len(data)) {
		return broker.ErrTooBig
	}
	if !b.up.Load() || b.ctx.Err() != nil {
		return broker.ErrUnavailable
	}
	if b.inflight.Add(1) > maxInflight {
		b.inflight.Add(-1)
		return unavailable(errors.New("too many publishes in flight"))
	}
	b.out <- outbound{msg: &nats.Msg{Subject: subject, Reply: reply, Data: data}} // never blocks: inflight bounds it
	return nil
}

// writer publishes the plain messages queued, in order.
func (b *Broker) writer() {
	defer b.wg.Done()
	for {
		select {
		case <-b.ctx.Done():
			for {
				select {
				case <-b.out:
					b.inflight.Add(-1)
				default:
					return
				}
			}
		case o := <-b.out:
			b.inflight.Add(-1)
			if err := b.nc.PublishMsg(o.msg); err != nil {
				b.log.Debug("NATS publish failed", slog.String("subject", o.msg.Subject), slog.Any("err", err))
				continue
			}
			b.metrics.out.WithLabelValues(kindOf(o.msg.Subject)).Inc()
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

// lastMessage is a room's last stored message; zero when it has none.
type lastMessage struct {
	seq, stream uint64
	sm          broker.StreamMessage
}

// lastMsg looks up subject's last message.
func (b *Broker) lastMsg(ctx context.Context, subject string) (lastMessage, error) {
	stream := b.stream()
	if stream == nil {
		return lastMessage{}, errNoStream
	}
	m, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return lastMessage{}, nil
	}
	if err != nil {
		b.checkStream(err)
		return lastMessage{}, err
	}
	msgs := decode(m.Sequence, m.Header, m.Data, m.Time)
	if len(msgs) == 0 {
		return lastMessage{}, fmt.Errorf("cluster: the last record of %s (stream sequence %d) holds no message whole", subject, m.Sequence)
	}
	sm := msgs[len(msgs)-1]
	return lastMessage{seq: sm.Seq, stream: m.Sequence, sm: sm}, nil
}

// kickTail asks the tail to start again, on the stream as now set up.
func (b *Broker) kickTail() {
	select {
	case b.restartTail <- struct{}{}:
	default:
	}
}

// tailer runs the tail: one ordered consumer of every room's subject,
// from the stream's end when it starts, whose messages go to the rooms
// followed here. It starts again when the stream is made anew; nats.go
// makes the consumer anew after a reconnection, from the last message it
// delivered, so that nothing is skipped.
func (b *Broker) tailer() {
	defer b.wg.Done()
	tailEpoch := "" // the epoch tailLast counts in
	again := false  // start again at once: the tail stalled
	for {
		if !again {
			select {
			case <-b.ctx.Done():
				return
			case <-b.restartTail:
			}
		}
		stalled := again
		again = false
		if b.state.Load() == nil {
			continue
		}
		var cc jetstream.ConsumeContext
		var st *streamState
		// abort is closed when this tail stops: onTail, waiting for its
		// rooms, waits no more.
		var abort chan struct{}
		err := retry(b.ctx, func() error {
			// The stream as now set up: it may be made anew meanwhile.
			st = b.state.Load()
			ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
			defer cancel()
			start := b.tailLast.Load() + 1
			if st.epoch != tailEpoch || start == 1 {
				// A new stream, or the first tail: from its end.
				info, err := st.stream.Info(ctx)
				if err != nil {
					b.checkStream(err)
					return err
				}
				start = info.State.LastSeq + 1
				b.tailLast.Store(start - 1)
				b.ackedLast.Store(0)
				b.lag.restart(start-1, info.State.LastTime)
			}
			cons, err := b.js.OrderedConsumer(ctx, b.cfg.Stream, jetstream.OrderedConsumerConfig{
				FilterSubjects:    []string{subjectRoom + "*"},
				DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
				OptStartSeq:       start,
				InactiveThreshold: time.Minute,
			})
			if err != nil {
				b.tailRefused.Store(b.consumerRefused(err))
				b.checkStream(err)
				return err
			}
			epoch, gen := st.epoch, b.tailGen.Add(1)
			abort = make(chan struct{})
			stopping := abort
			cc, err = cons.Consume(func(m jetstream.Msg) { b.onTail(epoch, gen, stopping, m) },
				// Heartbeats every half second: a tail whose server
				// died (its consumer with it) is made anew on another
				// within about a second, not nats.go's default 30 s
				// of pull expiry.
				jetstream.PullExpiry(3*time.Second), jetstream.PullHeartbeat(500*time.Millisecond),
				// What nats.go holds for the tail, pulled and not yet
				// handed on: while the rooms hold the tail back
				// (onTail), this is all the node reads ahead.
				jetstream.PullMaxMessagesWithBytesLimit(tailPullMessages, b.tailPullBytes()),
				jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
					b.log.Debug("the tail of the stream", slog.Any("err", err))
					b.checkStream(err)
				}))
			return err
		}, b.log, "follow the stream")
		if err != nil {
			return // closing
		}
		tailEpoch = st.epoch
		b.tailRefused.Store(false)
		b.tailAt.Store(time.Now().UnixNano())
		b.tailMu.Lock()
		if stalled {
			b.log.Info("the tail of the stream is made anew", slog.Uint64("from", b.tailLast.Load()+1),
				slog.Duration("after", time.Since(b.tailStopped)))
		}
		b.tailEpoch, b.tailRunning, b.tailStopped = st.epoch, true, time.Time{}
		close(b.tailReady)
		b.tailMu.Unlock()
		tick := time.NewTicker(tailStall / 4)
	wait:
		for {
			select {
			case <-b.ctx.Done():
				break wait
			case <-b.restartTail:
				b.kickTail() // read again by the loop
				break wait
			case <-tick.C:
				// A liveness check of its own: nats.go makes a consumer
				// whose server died anew, but with backoffs of up to 10 s
				// a try, and a consumer that neither delivers nor misses
				// a heartbeat is never made anew. The stream has taken
				// messages past what the tail delivered, for a while: it
				// is made anew, from its last delivery.
				// A tail that its rooms hold back (onTail) is not
				// stalled.
				stored := max(b.ackedLast.Load(), b.streamLast.Load())
				if !b.lag.paused.Load() && stored > b.tailLast.Load() && time.Since(time.Unix(0, b.tailAt.Load())) > tailStall {
					b.metrics.tailRestarts.Inc()
					b.log.Warn("the tail of the stream is stalled: making it anew from its last delivery",
						slog.Uint64("delivered", b.tailLast.Load()), slog.Uint64("stored", stored))
					again = true
					break wait
				}
			}
		}
		tick.Stop()
		b.tailMu.Lock()
		b.tailRunning, b.tailStopped = false, time.Time{}
		if again {
			// Made anew from where it stopped, the same stream: the node
			// stays ready meanwhile. A stream made anew is not ridden
			// out: its rooms' follows start again once the new tail runs.
			b.tailStopped = time.Now()
		}
		b.tailReady = make(chan struct{})
		b.tailMu.Unlock()
		close(abort)
		stop := func() {
			cc.Stop()
			select {
			case <-cc.Closed():
			case <-time.After(5 * time.Second):
			}
		}
		if !again {
			stop()
			continue
		}
		// Stopping a stalled one waits for nats.go's own attempt to make
		// its consumer anew, which a request lost with its server holds
		// for up to 10 s: the new tail does not wait for it (what the old
		// one delivers meanwhile is dropped by its generation). A tail
		// of a stream made anew still waits for the old one to stop
		// (TestClusterStreamLost lost a message without it).
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			stop()
		}()
	}
}

// consumerRefused counts a consumer the server refused for its limit,
// and reports whether err is that.
func (b *Broker) consumerRefused(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeMaximumConsumersLimit {
		b.metrics.consumersRefused.Inc()
		b.log.Warn("NATS refused a consumer: its limit of consumers is reached", slog.String("stream", b.cfg.Stream))
		return true
	}
	return false
}

// FollowRefused implements broker.Broker: NATS refuses the tail its
// consumer.
func (b *Broker) FollowRefused() bool { return b.tailRefused.Load() }

// tailStall is how long the tail may deliver nothing while the stream
// has taken messages past it before it is made anew.
const tailStall = 2 * time.Second

// onTail hands one of the tail's messages to the follows of its room.
// When a follow says it holds as much as it may, onTail waits until it
// has taken it (or stops, or the tail does) before it returns: nats.go
// pulls no more meanwhile, and the node falls behind in the stream,
// which keeps the messages, rather than in its heap (backpressure).
func (b *Broker) onTail(epoch string, gen uint64, stopping <-chan struct{}, m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil || gen != b.tailGen.Load() || md.Sequence.Stream <= b.tailLast.Load() {
		return // a tail stopped for a newer one, or what it delivered already
	}
	b.tailLast.Store(md.Sequence.Stream)
	b.tailAt.Store(time.Now().UnixNano())
	b.lag.delivered(md.Sequence.Stream, md.NumPending, md.Timestamp)
	b.metrics.deliveryDelay.Observe(max(time.Since(md.Timestamp), 0).Seconds())
	b.metrics.in.WithLabelValues(kindRoom).Inc()
	subject := m.Subject()
	var full []fullFollow
	b.mu.Lock()
	if rs := b.rooms[subject]; rs != nil {
		msgs := decode(md.Sequence.Stream, m.Headers(), m.Data(), md.Timestamp)
		if len(msgs) > 0 && md.Sequence.Stream >= rs.lastStream {
			rs.known, rs.lastSeq, rs.lastStream = true, msgs[len(msgs)-1].Seq, md.Sequence.Stream
		}
		for _, f := range rs.follows {
			var taken <-chan struct{}
			for _, sm := range msgs {
				// A follow that says it is full takes the rest of the
				// record all the same: it is bounded (recordMessages),
				// and only the tail may wait.
				if t := f.offer(epoch, md.Sequence.Stream, sm); t != nil {
					taken = t
				}
			}
			if taken != nil {
				full = append(full, fullFollow{ctx: f.ctx, taken: taken})
			}
		}
	}
	b.mu.Unlock()
	if len(full) > 0 {
		b.holdBack(stopping, full)
	}
}

// fullFollow is a follow that holds as much as it may, until taken is
// closed (or ctx ends: the follow was stopped).
type fullFollow struct {
	ctx   context.Context
	taken <-chan struct{}
}

// holdBack waits until every follow of full has taken what it holds, the
// tail stops, or the broker closes.
func (b *Broker) holdBack(stopping <-chan struct{}, full []fullFollow) {
	b.lag.paused.Store(true)
	start := time.Now()
	defer func() {
		b.metrics.tailPaused.Add(time.Since(start).Seconds())
		// The stall check counts from now: the tail delivered nothing
		// meanwhile because it was held.
		b.tailAt.Store(time.Now().UnixNano())
		b.lag.paused.Store(false)
	}()
	for _, f := range full {
		select {
		case <-f.taken:
		case <-f.ctx.Done():
		case <-stopping:
			return
		case <-b.ctx.Done():
			return
		}
	}
}

// offer is the tail's side of a follow: what deliver said (nil, or a
// channel closed once the follower has taken what it holds).
func (f *roomFollow) offer(epoch string, stream uint64, sm broker.StreamMessage) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if epoch != f.epoch {
		return nil // the tail of a stream made anew, this follow of the lost one
	}
	if f.starting || f.repairing {
		if len(f.buf) >= maxFollowBuffer {
			f.overflow, f.buf = true, nil
		}
		if !f.overflow {
			f.buf = append(f.buf, tailMsg{stream: stream, sm: sm})
		}
		return nil
	}
	return f.push(stream, sm)
}

// push delivers one message after the follow's last, or, when messages
// are missing between them, reads those from the stream first: a start
// whose look-up of the room's end was answered by a stream leader still
// applying its log (just elected) would otherwise skip them. It returns
// what deliver did. f.mu is held.
func (f *roomFollow) push(stream uint64, sm broker.StreamMessage) <-chan struct{} {
	// A record holds several messages under one stream sequence: the
	// record at after holds the last one delivered, and maybe more.
	if stream < f.after || sm.Seq <= f.last {
		return nil
	}
	if sm.Seq > f.last+1 {
		f.repairing = true
		f.buf = append(f.buf, tailMsg{stream: stream, sm: sm})
		f.b.wg.Add(1)
		go f.repair(f.last, sm.Seq-1)
		return nil
	}
	full := f.deliver(sm)
	f.last, f.after = sm.Seq, stream
	return full
}

// repair reads the room's messages after from up to to, delivers them,
// then what the tail delivered meanwhile.
func (f *roomFollow) repair(from, to uint64) {
	b := f.b
	defer b.wg.Done()
	room := subjectRoomName(f.subject)
	b.metrics.followRepairs.Inc()
	var got []broker.StreamMessage
	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	defer cancel()
	_ = retry(ctx, func() error {
		res := b.read(ctx, room, from, to, readLimit{history: true})
		if res.Err != nil {
			return res.Err
		}
		got = res.Messages
		if !res.Complete {
			return errors.New("the stream no longer holds them all")
		}
		return nil
	}, b.log, "read what a follow missed in "+room)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx.Err() != nil {
		// The follow was stopped: nobody is left to deliver to, and
		// replaying the buffer would only start this repair again.
		f.buf, f.repairing = nil, false
		return
	}
	if len(got) == 0 || got[0].Seq != from+1 {
		b.log.Warn("a follow missed messages the stream no longer gives: its members see a gap",
			slog.String("room", room), slog.Uint64("after", from), slog.Uint64("up_to", to))
	}
	// What the repair delivers, and the tail's messages it held, are
	// delivered whatever the follower says of its room: they are bounded
	// already (History, maxFollowBuffer), and only the tail may wait.
	for _, sm := range got {
		if sm.Seq > f.last {
			_ = f.deliver(sm)
			f.last = sm.Seq
		}
	}
	// What the stream could not give is given up, as the log says: the
	// message that called for the repair then follows, instead of calling
	// for the same repair again, for ever.
	f.last = max(f.last, to)
	buf := f.buf
	f.buf, f.repairing = nil, false
	for _, t := range buf {
		if !f.repairing {
			_ = f.push(t.stream, t.sm)
		} else {
			f.buf = append(f.buf, t)
		}
	}
}

// waitTail waits until the tail runs, and returns its stream's epoch.
func (b *Broker) waitTail(ctx context.Context) (string, error) {
	for {
		b.tailMu.Lock()
		ready, running, epoch := b.tailReady, b.tailRunning, b.tailEpoch
		b.tailMu.Unlock()
		if running {
			return epoch, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-ready:
		}
	}
}

// Follow implements broker.Broker: the room's follow is fed by the tail,
// from the room's last message as looked up once the follow is in place.
func (b *Broker) Follow(room string, deliver func(broker.StreamMessage) <-chan struct{}, started func(last uint64, epoch string)) func() {
	ctx, cancel := context.WithCancel(b.ctx)
	subject := roomSubject(room)
	f := &roomFollow{deliver: deliver, b: b, ctx: ctx, subject: subject}
	b.follows.Add(1)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.follow(ctx, subject, f, started)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			b.follows.Add(-1)
			b.mu.Lock()
			defer b.mu.Unlock()
			if rs := b.rooms[subject]; rs != nil {
				for i, g := range rs.follows {
					if g == f {
						rs.follows = append(rs.follows[:i], rs.follows[i+1:]...)
						break
					}
				}
				b.forgetLocked(rs)
			}
		})
	}
}

var errFollowOverflow = errors.New("the room's messages came faster than its end could be looked up")

// follow puts f in place with the tail, looks the room's last message
// up, and starts f after it (trying again until it can, or ctx ends).
func (b *Broker) follow(ctx context.Context, subject string, f *roomFollow, started func(uint64, string)) {
	registered := false
	_ = retry(ctx, func() error {
		epoch, err := b.waitTail(ctx)
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.epoch, f.starting, f.buf, f.overflow = epoch, true, nil, false
		f.mu.Unlock()
		if !registered {
			b.mu.Lock()
			if ctx.Err() != nil {
				b.mu.Unlock()
				return ctx.Err()
			}
			rs := b.roomLocked(subject)
			rs.follows = append(rs.follows, f)
			b.mu.Unlock()
			registered = true
		}
		opCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		last, err := b.lastMsg(opCtx, subject)
		if err != nil {
			return err
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.overflow {
			return errFollowOverflow
		}
		if f.epoch != b.Epoch() {
			return errors.New("the stream was made anew")
		}
		// Under f.mu: the tail waits, so that started comes first and
		// then what the tail had, then what it has next.
		started(last.seq, f.epoch)
		f.starting, f.after, f.last = false, last.stream, last.seq
		buf := f.buf
		f.buf = nil
		// Delivered whatever the follower says of its room, as a
		// repair's are: buf is bounded (maxFollowBuffer).
		for _, t := range buf {
			if !f.repairing {
				_ = f.push(t.stream, t.sm)
			} else {
				f.buf = append(f.buf, t)
			}
		}
		return nil
	}, b.log, "follow room "+subjectRoomName(subject))
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

// Read implements broker.Broker: the room's history, its last History
// messages.
func (b *Broker) Read(room string, after, upto uint64, done func(broker.ReadResult)) {
	b.readAsync(room, after, upto, readLimit{history: true}, done)
}

// Replay implements broker.Broker: what the stream keeps of the room
// (StreamPerRoom messages within HistoryTTL), not only its history, so
// that a member whose node fell behind, or who was away for more than
// History messages, recovers; within limit, what may be held for it.
func (b *Broker) Replay(room string, after, upto uint64, limit broker.ReplayLimit, done func(broker.ReadResult)) {
	b.readAsync(room, after, upto, readLimit{replay: limit}, done)
}

// readLimit says what a read returns: the history (the last History
// messages), or a replay of everything kept, within its limit.
type readLimit struct {
	history bool
	replay  broker.ReplayLimit
}

func (b *Broker) readAsync(room string, after, upto uint64, limit readLimit, done func(broker.ReadResult)) {
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
		// A read that finds no stream leader (an election, a leadership
		// handed over by a node stopping) is tried again while it may.
		res := b.read(ctx, room, after, upto, limit)
		for wait := 25 * time.Millisecond; res.Err != nil && b.cfg.Replicas > 1 && ctx.Err() == nil; wait = min(2*wait, 400*time.Millisecond) {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			if ctx.Err() == nil {
				res = b.read(ctx, room, after, upto, limit)
			}
		}
		<-b.reads
		if res.Err != nil {
			res.Err = unavailable(res.Err)
		}
		res.Epoch = b.Epoch()
		done(res)
	}()
}

// read reads the room's messages after after up to upto: those within
// HistoryTTL, the last History of them (or, for a replay, all of them
// within its limit), or the room's last message alone when the room
// keeps its latest value and nothing younger is left.
func (b *Broker) read(ctx context.Context, room string, after, upto uint64, limit readLimit) broker.ReadResult {
	subject := roomSubject(room)
	var res broker.ReadResult
	last, err := b.lastMsg(ctx, subject)
	if err != nil {
		return broker.ReadResult{Err: err}
	}
	res.Last = last.seq
	if upto == 0 || upto > last.seq {
		upto = last.seq
	}
	if after >= upto {
		res.Complete = after <= last.seq
		return res
	}
	if b.cfg.History <= 0 {
		return res // no history kept: incomplete unless nothing was missed
	}
	stream := b.stream()
	if stream == nil {
		return broker.ReadResult{Err: errNoStream}
	}
	kept := lastN[broker.StreamMessage]{n: b.cfg.History}
	bytes := 0
	if !limit.history {
		// A room's seqs are contiguous: how many there are to replay is
		// known before anything is read.
		if limit.replay.Over(int(min(upto-after, math.MaxInt32)), 0) {
			return res // incomplete: more than the member can be handed
		}
		kept.n = int(min(upto-after, uint64(b.cfg.StreamPerRoom)))
	}
	cutoff := time.Now().Add(-b.cfg.HistoryTTL)
	if last.sm.At.After(cutoff) {
		// Only the last History messages are history: older ones are
		// dropped as newer ones are read, so that a read holds at most
		// History of them however many are stored.
		if err := b.scan(ctx, stream, subject, cutoff, last.stream, func(sm broker.StreamMessage) {
			if sm.Seq > after && sm.Seq <= upto && !(!limit.history && limit.replay.Over(0, bytes)) {
				// A replay past its byte limit keeps nothing more: it
				// is answered incomplete.
				kept.push(sm)
				bytes += len(sm.Msg)
			}
		}); err != nil {
			return broker.ReadResult{Err: err}
		}
	} else if b.cfg.Latest != nil && b.cfg.Latest(room) && last.seq > after && last.seq <= upto {
		kept.push(last.sm)
	}
	if !limit.history && limit.replay.Over(0, bytes) {
		return res // incomplete: more bytes than the member can be handed
	}
	res.Messages = kept.slice()
	res.Complete = !kept.dropped && len(res.Messages) > 0 && res.Messages[0].Seq == after+1
	return res
}

// scan calls f with subject's messages stored since from, up to stream
// sequence end, in order.
func (b *Broker) scan(ctx context.Context, stream jetstream.Stream, subject string, from time.Time, end uint64, f func(broker.StreamMessage)) error {
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     subject,
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &from,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 10 * time.Second,
		MemoryStorage:     true,
	})
	if err != nil {
		b.consumerRefused(err)
		b.checkStream(err)
		return err
	}
	defer func() {
		delCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = stream.DeleteConsumer(delCtx, cons.CachedInfo().Name)
	}()
	// The consumer may sit on a replica still catching up: what it has
	// runs out before end. It is given a little time to get there.
	behind := time.Now().Add(2 * time.Second)
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return err
		}
		n, done, pending := 0, false, uint64(0)
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if md.Sequence.Stream <= end {
				for _, sm := range decode(md.Sequence.Stream, m.Headers(), m.Data(), md.Timestamp) {
					f(sm)
				}
			}
			done = done || md.Sequence.Stream >= end
			pending = md.NumPending
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
		switch {
		case done:
			return nil
		case n > 0 && pending > 0:
			continue
		case time.Now().After(behind):
			return nil // what there is: the read says incomplete
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
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
