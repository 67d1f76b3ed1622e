package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures the NATS server a --durable node runs in its
// own process.
type EmbeddedConfig struct {
	// Dir holds the JetStream store. Required.
	Dir string
	// ClusterAddr is host:port the server listens on for its peers'
	// routes; empty: no cluster, and no port at all (the node reaches its
	// server in process).
	ClusterAddr string
	// Peers are the other servers' ClusterAddr (their host:port); this
	// server's own may be among them.
	Peers []string
	// ClusterName names the NATS cluster; every peer must use the same.
	// Empty means "lobby".
	ClusterName string
	// Name names this server among its peers, and must stay the same
	// across its restarts (JetStream knows its peers by it). Empty means
	// "lobby" alone, and one made of ClusterAddr in a cluster.
	Name string
	// Logger receives the server's warnings and errors. Nil means
	// slog.Default().
	Logger *slog.Logger
	// MinFree is the free space the store's file system must keep: past
	// it appends are refused (broker.ErrStoreFull) before the disk is
	// full, since nats-server turns JetStream off for good when a write
	// fails for want of space. Zero means 64 MiB; negative, no check.
	MinFree int64
	// ReadyTimeout bounds the wait for the server to accept connections.
	// Zero means 10 s.
	ReadyTimeout time.Duration
}

// Embedded is a NATS server with JetStream running in this process: the
// store of a --durable node, and with peers one of a NATS cluster. Give
// it to Connect in Config.Embedded; shut it down after the broker closed.
type Embedded struct {
	srv     *server.Server
	dir     string
	minFree int64
	// token authenticates this process to its server's client port (a
	// clustered server has one); empty without.
	token     string
	clustered bool

	// checked is when the free space was last looked at (Unix ns), room
	// what it said: looked at no more often than every freeCheckEvery.
	checked atomic.Int64
	room    atomic.Bool
}

// freeCheckEvery is how often the free space is looked at, at most.
const freeCheckEvery = 100 * time.Millisecond

// hasRoom reports whether the store's file system keeps MinFree free.
func (e *Embedded) hasRoom() bool {
	if e.minFree < 0 {
		return true
	}
	now := time.Now().UnixNano()
	if last := e.checked.Load(); now-last < int64(freeCheckEvery) && last != 0 {
		return e.room.Load()
	}
	e.checked.Store(now)
	free, ok := freeBytes(e.dir)
	room := !ok || free >= uint64(e.minFree)
	e.room.Store(room)
	return room
}

// StartEmbedded starts a NATS server with its JetStream store in c.Dir
// and waits until it accepts connections. A server with peers is ready
// once started; its JetStream answers once a majority of the peers is up.
func StartEmbedded(c EmbeddedConfig) (*Embedded, error) {
	if c.Dir == "" {
		return nil, errors.New("cluster: the embedded NATS server needs a store directory")
	}
	if c.ClusterName == "" {
		c.ClusterName = "lobby"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MinFree == 0 {
		c.MinFree = 64 << 20
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 10 * time.Second
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: the store directory: %w", err)
	}
	opts := &server.Options{
		ServerName: c.Name,
		JetStream:  true,
		StoreDir:   c.Dir,
		// The node reaches its server in process (nats.InProcessServer):
		// no client port to open, to secure or to collide.
		DontListen: true,
		NoSigs:     true,
		// A node's messages may be as large as its publish body limit.
		MaxPayload: 8 << 20,
	}
	if c.ClusterAddr != "" {
		host, portStr, err := net.SplitHostPort(c.ClusterAddr)
		if err != nil {
			return nil, fmt.Errorf("cluster: --peer-addr %q: want host:port: %w", c.ClusterAddr, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port < 0 || port > 65535 {
			return nil, fmt.Errorf("cluster: --peer-addr %q: the port is not a port number", c.ClusterAddr)
		}
		opts.Cluster = server.ClusterOpts{Name: c.ClusterName, Host: host, Port: port}
		// nats-server starts its routes only once its client listener is
		// up: a clustered server has one, on a random loopback port, with
		// a token of its own, so that only this process connects to it.
		opts.DontListen = false
		opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
		opts.Authorization = randomToken()
		// A clean stop hands this server's stream and meta leaderships
		// to its peers first (lame duck mode), so that a rolling restart
		// waits on no election; 2 s for the hand-over, then it stops.
		opts.LameDuckDuration = 2 * time.Second
		opts.LameDuckGracePeriod = 100 * time.Millisecond
		var routes []string
		for _, p := range c.Peers {
			if _, _, err := net.SplitHostPort(p); err != nil {
				return nil, fmt.Errorf("cluster: --peers %q: want host:port: %w", p, err)
			}
			routes = append(routes, "nats://"+p)
		}
		if len(routes) > 0 {
			opts.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}
		if opts.ServerName == "" {
			opts.ServerName = "lobby-" + strings.NewReplacer(":", "-", ".", "-", "[", "", "]", "").Replace(c.ClusterAddr)
		}
	} else if opts.ServerName == "" {
		opts.ServerName = "lobby"
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: the embedded NATS server: %w", err)
	}
	srv.SetLoggerV2(&natsLogger{log: c.Logger.With(slog.String("component", "nats-server"))}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(c.ReadyTimeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("cluster: the embedded NATS server did not start in %s (is %s free?)", c.ReadyTimeout, c.ClusterAddr)
	}
	if c.ClusterAddr != "" && srv.ClusterAddr() == nil {
		// nats-server logs a route port it cannot bind and runs on,
		// alone: refused here instead.
		srv.Shutdown()
		return nil, fmt.Errorf("cluster: --peer-addr %s: cannot listen for peers (in use?)", c.ClusterAddr)
	}
	e := &Embedded{srv: srv, dir: c.Dir, minFree: c.MinFree, token: opts.Authorization, clustered: c.ClusterAddr != ""}
	// Room until a check says otherwise: an Append that finds the first
	// check under way (checked set, room not yet) must not be refused.
	e.room.Store(true)
	return e, nil
}

// Shutdown stops the server, its store written; one of a cluster hands
// its leaderships to its peers first.
func (e *Embedded) Shutdown() {
	if e.clustered {
		e.srv.LameDuckShutdown()
	}
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// ClusterAddr is where the server listens for its peers, nil without.
func (e *Embedded) ClusterAddr() net.Addr { return e.srv.ClusterAddr() }

// Dir is the store's directory.
func (e *Embedded) Dir() string { return filepath.Clean(e.dir) }

// natsLogger passes the server's warnings and errors to slog; its
// notices (start-up banners, routes) at debug.
type natsLogger struct{ log *slog.Logger }

func (l *natsLogger) logf(level slog.Level, format string, v ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

func (l *natsLogger) Noticef(format string, v ...any) { l.logf(slog.LevelDebug, format, v...) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.logf(slog.LevelWarn, format, v...) }
func (l *natsLogger) Fatalf(format string, v ...any)  { l.logf(slog.LevelError, format, v...) }

// Errorf logs at error level but for a peer not reachable yet: peers
// start one after the other, and a peer down is the readiness's to say.
func (l *natsLogger) Errorf(format string, v ...any) {
	level := slog.LevelError
	if strings.HasPrefix(format, "Error trying to connect to route") {
		level = slog.LevelDebug
	}
	l.logf(level, format, v...)
}
func (l *natsLogger) Debugf(format string, v ...any) { l.logf(slog.LevelDebug-4, format, v...) }
func (l *natsLogger) Tracef(format string, v ...any) { l.logf(slog.LevelDebug-8, format, v...) }

// randomToken is a secret no other process can guess.
func randomToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
