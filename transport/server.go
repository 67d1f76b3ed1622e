package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/lobby/lobby/actors"
)

// Config configures a Server. Every field's zero value means its default.
type Config struct {
	// Heartbeat is how often the server pings a WebSocket client.
	// Zero means 5 s.
	Heartbeat time.Duration
	// ClientTimeout is how long a client may go without answering (no
	// frame, no pong) before it is closed. Zero means 10 s.
	ClientTimeout time.Duration
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
	// History is how many messages a room keeps for recovery and
	// GET /rooms/{room}/history. Zero means 100; negative keeps none.
	History int
	// HistoryTTL is how long a room keeps a message. Zero means 5 min.
	HistoryTTL time.Duration
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
	// DrainTimeout bounds Shutdown when its context has no deadline.
	// Zero means 10 s.
	DrainTimeout time.Duration
	// PublisherID is the id HTTP publishes carry as their sender.
	// Zero means a random id chosen at start.
	PublisherID uuid.UUID
	// Logger receives the server's logs. Nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Heartbeat, 5*time.Second)
	def(&c.ClientTimeout, 10*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.DrainTimeout, 10*time.Second)
	if c.SendQueue <= 0 {
		c.SendQueue = 256
	}
	if c.SendQueueBytes <= 0 {
		c.SendQueueBytes = 4 << 20
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 64 << 10
	}
	if c.MaxPublishBytes <= 0 {
		c.MaxPublishBytes = 1 << 20
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 100_000
	}
	if c.Rate == 0 {
		c.Rate = 100
	}
	if c.RateBurst <= 0 {
		c.RateBurst = 200
	}
	if c.PublisherID == uuid.Nil {
		c.PublisherID = uuid.New()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("transport: server closed")

// Server serves Lobby over HTTP and WebSocket. It owns the actor node its
// sockets talk to.
type Server struct {
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

	draining atomic.Bool
	// open counts the WebSocket connections, for MaxConnections.
	open atomic.Int64
	// handlers counts the connections' reader goroutines still running:
	// they outlive http.Server.Shutdown, which knows nothing of hijacked
	// connections.
	handlers sync.WaitGroup

	mu sync.Mutex // guards the fields below
	// conns holds the open WebSocket connections; the server needs them only
	// to close them on shutdown (net/http does the same for its own).
	conns    map[*wsConn]struct{}
	shutdown chan struct{} // closed when Shutdown has finished
	stopping bool
}

// New makes a Server and starts its actor node.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		conns:    make(map[*wsConn]struct{}),
		shutdown: make(chan struct{}),
	}
	s.node = actors.NewNode(actors.Config{
		Heartbeat:     cfg.Heartbeat,
		ClientTimeout: cfg.ClientTimeout,
		History:       cfg.History,
		HistoryTTL:    cfg.HistoryTTL,
		Logger:        cfg.Logger,
	})
	s.metrics = newMetrics(s.roomsGauge)
	web, err := loadWebAssets(webFiles, "web")
	if err != nil {
		// The files are embedded in the binary: this is a build mistake
		// (a file of an unknown type, a page without its file), not input.
		panic(err)
	}
	s.web = web
	s.warnings = rate.NewLimiter(rate.Limit(1), 10)
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
	return s
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
//  2. the lobby refuses joins, the listeners close and idle HTTP
//     connections with them;
//  3. every socket is closed 1001 "server shutting down" after the frames
//     already queued for it;
//  4. if the sockets are not all closed by ctx's deadline (or DrainTimeout
//     when ctx has none), they are closed at once;
//  5. the actors are stopped.
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
	httpErr := s.http.Shutdown(ctx)

	s.mu.Lock()
	for c := range s.conns {
		c.Close(int(closeGoingAway), reasonShutdown)
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
	s.node.Shutdown()
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
	conns := make([]*wsConn, 0, len(s.conns))
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

func (s *Server) track(c *wsConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.conns[c] = struct{}{}
	s.handlers.Add(1)
	return true
}

func (s *Server) untrack(c *wsConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.handlers.Done()
}
