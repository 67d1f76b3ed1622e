package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/actors/socket"
)

// Config configures a Server. Every field's zero value means its default
// (DefaultConfig).
type Config struct {
	// Config is the actor node's settings: heartbeat, client timeout,
	// history, rooms, questionnaires, logger and broker. The server adds
	// these meanings: History also bounds GET /rooms/{room}/history; a
	// publish that would create a room past MaxRooms is answered 503
	// too_many_rooms; with Broker set, /readyz answers 503 while the
	// broker is disconnected and publishes it cannot store are answered
	// 503 unavailable; Logger receives the server's logs too; Nil
	// Questionnaires means the questionnaire routes are not served (404).
	actors.Config

	// SendQueue is the most frames queued for one client before it is
	// closed as a slow consumer. Zero means 256.
	SendQueue int
	// SendQueueBytes is the most bytes queued for one client before it is
	// closed as a slow consumer. Zero means 4 MiB.
	SendQueueBytes int
	// WriteTimeout bounds the write of one frame; a client that takes
	// longer is closed as a slow consumer. Zero means 10 s.
	WriteTimeout time.Duration
	// MaxMessageBytes is the largest frame a client may send; a larger one
	// closes it with 1009. Zero means 64 KiB.
	MaxMessageBytes int64
	// MaxPublishBytes is the largest HTTP publish body; a larger one is
	// answered 413. Zero means 1 MiB.
	MaxPublishBytes int64
	// BodyBudget bounds the bytes of HTTP request bodies read at once,
	// node-wide: each POST is charged twice what has been read of its body
	// (what a growing buffer may hold) while it is served, and one whose
	// next bytes would take the total past it, or one address's share past
	// an eighth of it, is answered 503. A body that stalls holds only what
	// it sent. Zero means 64 MiB.
	BodyBudget int64
	// MaxConnections is the most WebSocket connections served at once;
	// more are answered 503 before the upgrade. Zero means 100 000.
	MaxConnections int
	// Rate is each client's inbound frame rate, per second; frames over it
	// are answered with an error frame (lobby.v1) and, if the client goes
	// on, close it 1008 "rate limit". Zero means 100; negative, no limit.
	Rate float64
	// RateBurst is how many frames a client may send at once above Rate.
	// Zero means 200.
	RateBurst int
	// RateBytes is each client's inbound byte rate, per second, counted in
	// frame payloads; frames over it are answered as frames over Rate are.
	// Zero means 1 MiB/s; negative, no limit.
	RateBytes float64
	// RateBytesBurst is how many bytes a client may send at once above
	// RateBytes. Zero means SendQueueBytes/8: even escaped six times over
	// (a control character in the text protocol becomes \u00XX), one
	// client's burst then fits in every reader's queue, so that the sender
	// meets the limit and its readers are not closed as slow consumers. It
	// is never less than MaxMessageBytes, or a frame of that size could
	// never be sent.
	RateBytesBurst int
	// ControlRate is how many control frames (pings, pongs) a client may
	// send per second; a client over it is closed 1008 "too many control
	// frames". Zero means 10; negative, no limit.
	ControlRate float64
	// ControlBurst is how many control frames a client may send at once
	// above ControlRate. Zero means 50.
	ControlBurst int
	// ConnectRate is how many WebSocket connects a remote address (an IPv6
	// /64) may make per second; more are answered 429 with Retry-After.
	// Zero means 20; negative, no limit.
	ConnectRate float64
	// ConnectBurst is how many connects an address may make at once above
	// ConnectRate. Zero means 100.
	ConnectBurst int
	// CreateRate is how many questionnaires a remote address (an IPv6
	// /64) may create per second; more are answered 429 with Retry-After.
	// Zero means 0.2 (one every 5 s); negative, no limit.
	CreateRate float64
	// CreateBurst is how many questionnaires an address may create at
	// once above CreateRate. Zero means 20.
	CreateBurst int
	// ParticipantRate is how many participant identities (POST
	// /questionnaires/{id}/participants) a remote address (an IPv6 /64)
	// may get per second; more are answered 429 with Retry-After. Zero
	// means 10; negative, no limit.
	ParticipantRate float64
	// ParticipantBurst is how many participant identities an address may
	// get at once above ParticipantRate: a room's audience often shares
	// one address (a venue's Wi-Fi). Zero means 500.
	ParticipantBurst int
	// OpenParticipants lets a participant socket in with a participant id
	// of its own and no token, as before identities were issued: anyone
	// may then stuff votes. False means a participant needs the token
	// issued with its id.
	OpenParticipants bool
	// PublicURL is the address participants reach the server at
	// (http[s]://host[:port], as phones in the room see it), for the
	// participants' link and QR code on the presenter's page. Empty means
	// the address the presenter's browser used, which is no good for
	// phones when it is 127.0.0.1; the page then warns.
	PublicURL string
	// TrustProxy makes the remote address of a request the last one in its
	// X-Forwarded-For header (or X-Real-IP), as a reverse proxy in front of
	// the server sets it. False means the TCP peer's address: a client
	// could otherwise name any address it likes.
	TrustProxy bool
	// PublishToken, when set, is the bearer token every POST route needs.
	// Empty means publishing is open: keep the server on loopback then.
	PublishToken string
	// JWTSecret, when set, makes a WebSocket connect need an HS256 JWT,
	// signed with it, with exp and a rooms claim allowing the room.
	// Empty means clients need no token.
	JWTSecret string
	// AllowedOrigins are the browser origins (host patterns such as
	// "*.example.com", path.Match syntax) allowed besides the server's
	// own. Empty means same-origin only.
	AllowedOrigins []string
	// RestrictHosts makes the server refuse, 403 forbidden_host, a request
	// whose Host is neither a loopback name or address nor one that
	// AllowedHosts lists: a web page whose name resolves to 127.0.0.1 (DNS
	// rebinding) is then not served. cmd/lobby sets it when serving on a
	// loopback address. False means any Host is answered.
	RestrictHosts bool
	// AllowedHosts are the Host names (patterns such as "*.example.com",
	// path.Match syntax, no port) answered besides loopback ones when
	// RestrictHosts is set. Empty means loopback names and addresses only.
	AllowedHosts []string
	// DrainTimeout bounds Shutdown when its context has no deadline.
	// Zero means 10 s.
	DrainTimeout time.Duration
	// PublisherID is the id HTTP publishes carry as their sender.
	// Zero means a random id chosen at start.
	PublisherID uuid.UUID
	// Collectors are more metrics to serve at /metrics, such as the
	// broker's. Nil means none.
	Collectors []prometheus.Collector
}

// DefaultConfig is the one table of the server's defaults: each field is
// what its zero value means, the node's from actors.DefaultConfig.
// RateBytesBurst (SendQueueBytes/8, at least MaxMessageBytes) and
// PublisherID (random) are zero: their defaults are derived at New.
// cmd/lobby's flags take their defaults from here.
func DefaultConfig() Config {
	return Config{
		Config:           actors.DefaultConfig(),
		SendQueue:        256,
		SendQueueBytes:   4 << 20,
		WriteTimeout:     10 * time.Second,
		MaxMessageBytes:  64 << 10,
		MaxPublishBytes:  1 << 20,
		BodyBudget:       64 << 20,
		MaxConnections:   100_000,
		Rate:             100,
		RateBurst:        200,
		RateBytes:        1 << 20,
		ControlRate:      10,
		ControlBurst:     50,
		ConnectRate:      20,
		ConnectBurst:     100,
		CreateRate:       0.2,
		CreateBurst:      20,
		ParticipantRate:  10,
		ParticipantBurst: 500,
		DrainTimeout:     10 * time.Second,
	}
}

// withDefaults fills the server's own fields from DefaultConfig, and the
// logger, which the server uses too; actors.NewNode fills the rest of the
// node's.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	positive(&c.WriteTimeout, d.WriteTimeout)
	positive(&c.DrainTimeout, d.DrainTimeout)
	positive(&c.SendQueue, d.SendQueue)
	positive(&c.SendQueueBytes, d.SendQueueBytes)
	positive(&c.MaxMessageBytes, d.MaxMessageBytes)
	positive(&c.MaxPublishBytes, d.MaxPublishBytes)
	positive(&c.BodyBudget, d.BodyBudget)
	positive(&c.MaxConnections, d.MaxConnections)
	// Rates are negative for "no limit": only zero takes the default.
	nonZero(&c.Rate, d.Rate)
	positive(&c.RateBurst, d.RateBurst)
	nonZero(&c.RateBytes, d.RateBytes)
	positive(&c.RateBytesBurst, c.SendQueueBytes/8)
	c.RateBytesBurst = max(c.RateBytesBurst, int(min(c.MaxMessageBytes, 1<<30)))
	nonZero(&c.ControlRate, d.ControlRate)
	positive(&c.ControlBurst, d.ControlBurst)
	nonZero(&c.ConnectRate, d.ConnectRate)
	positive(&c.ConnectBurst, d.ConnectBurst)
	nonZero(&c.CreateRate, d.CreateRate)
	positive(&c.CreateBurst, d.CreateBurst)
	nonZero(&c.ParticipantRate, d.ParticipantRate)
	positive(&c.ParticipantBurst, d.ParticipantBurst)
	if c.PublisherID == uuid.Nil {
		c.PublisherID = uuid.New()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// bodyBudget counts the bytes of request bodies being read, bounded by
// limit in all and by perAddr for one remote address (an IPv6 /64).
type bodyBudget struct {
	limit, perAddr int64

	mu     sync.Mutex // guards the fields below
	used   int64
	byAddr map[netip.Prefix]int64
}

// reserve takes n bytes for a body from addr, if they are there.
func (b *bodyBudget) reserve(addr netip.Addr, n int64) bool {
	key := addrKey(addr)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit || b.byAddr[key]+n > b.perAddr {
		return false
	}
	if b.byAddr == nil {
		b.byAddr = make(map[netip.Prefix]int64)
	}
	b.used += n
	b.byAddr[key] += n
	return true
}

// inUse is how many bytes are charged now.
func (b *bodyBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// errBodyBudget is the read error of a body that the body budget has no
// room for.
var errBodyBudget = errors.New("transport: body budget spent")

// chargedBody charges its budget for what is read of it, twice over (a
// buffer that grows by doubling holds up to twice what it read), until
// release.
type chargedBody struct {
	io.ReadCloser
	budget  *bodyBudget
	addr    netip.Addr
	charged int64
}

func (c *chargedBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if n > 0 {
		if !c.budget.reserve(c.addr, 2*int64(n)) {
			return n, errBodyBudget
		}
		c.charged += 2 * int64(n)
	}
	return n, err
}

// release gives back what was charged, once the request is answered.
func (c *chargedBody) release() {
	if c.charged > 0 {
		c.budget.release(c.addr, c.charged)
		c.charged = 0
	}
}

func (b *bodyBudget) release(addr netip.Addr, n int64) {
	key := addrKey(addr)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.byAddr[key] -= n; b.byAddr[key] <= 0 {
		delete(b.byAddr, key)
	}
}

// positive sets *v to def unless it is positive.
func positive[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// nonZero sets *v to def if it is zero.
func nonZero(v *float64, def float64) {
	if *v == 0 {
		*v = def
	}
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("transport: server closed")

// Server serves Lobby over HTTP and WebSocket. It owns the actor node its
// sockets talk to.
type Server struct {
	// storeDown is set while the questionnaire store fails (storeFailed).
	storeDown atomic.Bool
	// storeFull is set while the store refuses creates for want of room (storeIsFull).
	storeFull atomic.Bool

	// Static after construction.
	cfg     Config
	log     *slog.Logger
	node    *actors.Node
	mux     *http.ServeMux
	handler http.Handler
	http    *http.Server

	metrics *metrics
	// web is the web UI's files (transport/web.go).
	web webAssets
	// warnings rate-limits warnings about clients, so that a flood of bad
	// clients cannot flood the log.
	warnings *rate.Limiter
	// connects limits each remote address's connects; nil for no limit.
	connects *connectLimiter
	// creates bounds the questionnaires one address creates
	// (Config.CreateRate).
	creates *connectLimiter
	// participants bounds the participant identities one address gets
	// (Config.ParticipantRate).
	participants *connectLimiter
	// bodies counts the request bodies being read (Config.BodyBudget).
	bodies bodyBudget

	draining atomic.Bool
	// open counts the WebSocket connections, for MaxConnections.
	open atomic.Int64
	// handlers counts the connections' reader goroutines still running:
	// they outlive http.Server.Shutdown, which knows nothing of hijacked
	// connections.
	handlers sync.WaitGroup

	mu sync.Mutex // guards the fields below
	// conns holds the open WebSocket connections and event streams; the
	// server needs them only to close them on shutdown (net/http does the
	// same for its own).
	conns    map[trackedConn]struct{}
	shutdown chan struct{} // closed when Shutdown has finished
	stopping bool
}

// New makes a Server and starts its actor node. It fails when the node
// cannot start (actors.NewNode).
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		conns:    make(map[trackedConn]struct{}),
		shutdown: make(chan struct{}),
	}
	node, err := actors.NewNode(cfg.Config)
	if err != nil {
		return nil, err
	}
	s.node = node
	s.metrics = newMetrics(s.node.Stats(), &s.bodies)
	s.metrics.registry.MustRegister(cfg.Collectors...)
	web, err := loadWebAssets(webFiles, "web")
	if err != nil {
		// The files are embedded in the binary: this is a build mistake
		// (a file of an unknown type, a page without its file), not input.
		panic(err)
	}
	s.web = web
	s.warnings = rate.NewLimiter(rate.Limit(1), 10)
	s.connects = newConnectLimiter(cfg.ConnectRate, cfg.ConnectBurst)
	s.creates = newConnectLimiter(cfg.CreateRate, cfg.CreateBurst)
	s.participants = newConnectLimiter(cfg.ParticipantRate, cfg.ParticipantBurst)
	s.bodies.limit, s.bodies.perAddr = cfg.BodyBudget, max(cfg.BodyBudget/8, cfg.MaxPublishBytes)
	s.mux = http.NewServeMux()
	s.handler = s.routes()
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// ServeHTTP serves one request; it lets tests and embedders mount the server
// on their own http.Server.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Serve accepts connections on ln until Shutdown. It returns ErrServerClosed
// after Shutdown, any other error at once.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return ErrServerClosed
	}
	return fmt.Errorf("serve %s: %w", ln.Addr(), err)
}

// Shutdown drains the server, in this order:
//
//  1. /readyz turns false and new WebSocket upgrades are refused (503);
//  2. the lobby refuses joins;
//  3. the listeners close, and idle HTTP connections with them, while
//     HTTP requests under way are given until the deadline to finish;
//  4. meanwhile, at once, every socket is closed 1001 "server shutting
//     down" after the frames already queued for it: a stalled HTTP
//     request does not hold up the WebSockets;
//  5. if the sockets are not all closed by ctx's deadline (or DrainTimeout
//     when ctx has none), they are closed at once;
//  6. once the HTTP requests are done too (or the deadline has passed),
//     the actors are stopped, and the questionnaires' last writes done.
//
// It returns when all of that is done; calling it again waits for the
// first call. The error is ctx's when the drain had to be cut short.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		<-s.shutdown
		return nil
	}
	s.stopping = true
	s.mu.Unlock()
	defer close(s.shutdown)

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.DrainTimeout)
		defer cancel()
	}
	s.draining.Store(true)
	if err := s.node.BeginDrain(ctx); err != nil {
		s.log.Warn("lobby did not acknowledge the drain", slog.Any("err", err))
	}
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.http.Shutdown(ctx) }()

	s.mu.Lock()
	for c := range s.conns {
		c.Close(socket.ShuttingDown)
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.log.Warn("drain deadline passed; closing the remaining sockets now")
		s.closeAll()
		<-done
	}
	// http.Server.Shutdown returns at ctx's deadline at the latest.
	httpErr := <-httpDone
	s.node.Shutdown(ctx)
	if err == nil && httpErr != nil {
		err = fmt.Errorf("shutdown http: %w", httpErr)
	}
	return err
}

// closeAll closes every connection's TCP connection at once, which ends
// its reader (reads take no context: a cancellable one would cost every
// idle connection a registered callback).
func (s *Server) closeAll() {
	s.mu.Lock()
	conns := make([]trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeTCP()
	}
}

// warn logs a warning about a client unless too many were logged lately.
func (s *Server) warn(msg string, attrs ...any) {
	if s.warnings.Allow() {
		s.log.Warn(msg, attrs...)
	}
}

// trackedConn is a connection the drain closes: a WebSocket (wsConn) or
// an event stream (sseConn).
type trackedConn interface {
	// Close closes it after what is queued.
	Close(socket.Reason)
	// closeTCP closes it at once.
	closeTCP()
}

func (s *Server) track(c trackedConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.conns[c] = struct{}{}
	s.handlers.Add(1)
	return true
}

func (s *Server) untrack(c trackedConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.handlers.Done()
}
