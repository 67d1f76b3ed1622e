// Command lobby runs the Lobby server.
//
// Every flag has an environment twin (--addr / LOBBY_ADDR, ...); a flag
// given on the command line wins over its environment variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lobby/lobby/actors/questionnaire/store"
	"github.com/lobby/lobby/transport"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "lobby:", err)
		os.Exit(1)
	}
}

// options are the command line's settings.
type options struct {
	addr            string
	logLevel        string
	logFormat       string
	insecurePublish bool
	allowedOrigins  string
	allowedHosts    string
	publishOnly     string
	pprof           bool
	dataDir         string
	storeMaxBytes   int64
	gcMinHeap       int64
	// rateBytes is --rate-bytes, a whole number of bytes so that --help
	// shows 1048576, not 1.048576e+06.
	rateBytes int64
	server    transport.Config
	cluster   clusterOptions
}

// newFlagSet defines every flag, bound to o. The defaults of the server's
// settings are transport.DefaultConfig's, so that a flag and the zero
// value of its field mean the same (settings_test.go checks it).
func newFlagSet(o *options, stderr io.Writer) *flag.FlagSet {
	d := transport.DefaultConfig()
	fs := flag.NewFlagSet("lobby", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8081", "address to serve on (host:port)")
	fs.DurationVar(&o.server.Heartbeat, "heartbeat", d.Heartbeat, "how often to ping each WebSocket client")
	fs.DurationVar(&o.server.ClientTimeout, "client-timeout", d.ClientTimeout, "close a client that has not answered for this long")
	fs.IntVar(&o.server.SendQueue, "send-queue", d.SendQueue, "frames queued per client before it is closed as a slow consumer (1008)")
	fs.IntVar(&o.server.SendQueueBytes, "send-queue-bytes", d.SendQueueBytes, "bytes queued per client before it is closed as a slow consumer (1008)")
	fs.DurationVar(&o.server.WriteTimeout, "write-timeout", d.WriteTimeout, "close a client whose socket takes longer than this to take one frame")
	fs.Int64Var(&o.server.MaxMessageBytes, "max-message-bytes", d.MaxMessageBytes, "largest frame a client may send (larger closes it with 1009)")
	fs.Int64Var(&o.server.MaxPublishBytes, "max-publish-bytes", d.MaxPublishBytes, "largest HTTP publish body (larger is answered 413)")
	fs.IntVar(&o.server.History, "history", d.History, "messages each room keeps for recovery and /rooms/{room}/history (negative: none)")
	fs.DurationVar(&o.server.HistoryTTL, "history-ttl", d.HistoryTTL, "how long a room keeps a message")
	fs.DurationVar(&o.server.IdempotencyWindow, "idempotency-window", d.IdempotencyWindow, "how long a publish's Idempotency-Key is remembered: the same key to the same room within it is stored and delivered once (at most --history-ttl; with NATS, the stream's window of duplicates)")
	fs.IntVar(&o.server.HistoryBytes, "history-bytes", d.HistoryBytes, "bytes one room's history may hold, messages and frames counted, however many messages")
	fs.Int64Var(&o.server.BodyBudget, "body-budget", d.BodyBudget, "bytes of HTTP request bodies read at once, all requests together; a POST past it is answered 503")
	fs.IntVar(&o.server.HistoryBudget, "history-budget", d.HistoryBudget, "bytes all rooms' histories may hold together, messages and frames counted; past it the oldest entries go first (negative: no budget)")
	fs.IntVar(&o.server.MaxRooms, "max-rooms", d.MaxRooms, "rooms kept at once; a join that would create one more is closed 1013, a publish answered 503")
	fs.IntVar(&o.server.HeldBudget, "held-budget", d.HeldBudget, "bytes of frames all clients together may send before their join completes (joins wait while a cluster's stream is out of reach); past it a client is closed 1013 \"server busy\"")
	fs.IntVar(&o.server.MaxSubscriptions, "max-subscriptions", d.MaxSubscriptions, "rooms one lobby.v1 connection may be in at once; a subscribe past it is answered with error too_many_subscriptions")
	fs.IntVar(&o.server.MaxConnections, "max-connections", d.MaxConnections, "WebSocket connections served at once (more are answered 503)")
	fs.Float64Var(&o.server.Rate, "rate", d.Rate, "frames per second each client may send (negative: no limit)")
	fs.IntVar(&o.server.RateBurst, "rate-burst", d.RateBurst, "frames a client may send at once above --rate")
	fs.Int64Var(&o.rateBytes, "rate-bytes", int64(d.RateBytes), "bytes per second each client may send, in frame payloads (negative: no limit)")
	fs.IntVar(&o.server.RateBytesBurst, "rate-bytes-burst", d.RateBytesBurst, "bytes a client may send at once above --rate-bytes (0: --send-queue-bytes/8, at least --max-message-bytes)")
	fs.Float64Var(&o.server.ControlRate, "control-rate", d.ControlRate, "control frames (pings, pongs) per second each client may send; more close it 1008 (negative: no limit)")
	fs.IntVar(&o.server.ControlBurst, "control-burst", d.ControlBurst, "control frames a client may send at once above --control-rate")
	fs.Float64Var(&o.server.ConnectRate, "connect-rate", d.ConnectRate, "WebSocket connects per second from one address (an IPv6 /64); more are answered 429 (negative: no limit)")
	fs.IntVar(&o.server.ConnectBurst, "connect-burst", d.ConnectBurst, "connects one address may make at once above --connect-rate")
	fs.Float64Var(&o.server.CreateRate, "create-rate", d.CreateRate, "questionnaires one address (an IPv6 /64) may create per second; more are answered 429 (negative: no limit)")
	fs.IntVar(&o.server.CreateBurst, "create-burst", d.CreateBurst, "questionnaires one address may create at once above --create-rate")
	fs.Float64Var(&o.server.ParticipantRate, "participant-rate", d.ParticipantRate, "questionnaire participant identities one address (an IPv6 /64) may get per second; more are answered 429 (negative: no limit)")
	fs.IntVar(&o.server.ParticipantBurst, "participant-burst", d.ParticipantBurst, "participant identities one address may get at once above --participant-rate (an audience often shares one address)")
	fs.IntVar(&o.server.MaxParticipants, "max-participants", d.MaxParticipants, "participant identities one questionnaire issues; more are answered 503 questionnaire_full (negative: no limit)")
	fs.BoolVar(&o.server.OpenParticipants, "open-participants", d.OpenParticipants, "let participant sockets in with an id of their own and no token, as before identities were issued (anyone may then stuff votes)")
	fs.StringVar(&o.server.PublicURL, "public-url", d.PublicURL, "address participants reach the server at (http[s]://host[:port]), for the questionnaire's participant link and QR code (empty: the address the presenter's browser used)")
	fs.BoolVar(&o.server.TrustProxy, "trust-proxy", d.TrustProxy, "take the client's address from X-Forwarded-For (its last entry) or X-Real-IP, as set by a reverse proxy in front")
	fs.StringVar(&o.server.PublishToken, "publish-token", d.PublishToken, "bearer token every POST route needs (empty: publishing is open)")
	fs.BoolVar(&o.insecurePublish, "insecure-publish", false, "serve a non-loopback address without --publish-token")
	fs.StringVar(&o.server.JWTSecret, "jwt-secret", d.JWTSecret, "HS256 secret: WebSocket clients then need a JWT with exp and a rooms claim")
	fs.StringVar(&o.allowedOrigins, "allowed-origins", "", "comma-separated browser origin hosts allowed besides the server's own (patterns such as *.example.com)")
	fs.StringVar(&o.allowedHosts, "allowed-hosts", "", "comma-separated Host names the server answers to besides loopback ones (patterns such as *.example.com); on a loopback --addr any other Host is refused (DNS rebinding)")
	fs.StringVar(&o.publishOnly, "publish-only-rooms", "dailyNews", "comma-separated rooms only HTTP publishers may send into: their members read (empty: members may send in every room)")
	fs.BoolVar(&o.pprof, "pprof", false, "serve net/http/pprof under /debug/pprof/")
	fs.DurationVar(&o.server.QuestionnaireLinger, "questionnaire-linger", d.QuestionnaireLinger, "how long a questionnaire with no sockets stays in memory")
	fs.StringVar(&o.dataDir, "data-dir", "./lobby-data", "directory of the questionnaire database (created if missing)")
	fs.Int64Var(&o.storeMaxBytes, "store-max-bytes", store.DefaultMaxBytes, "bytes the questionnaire database may grow to; past nine tenths of it creates are answered 507, the rest is kept for answers")
	fs.DurationVar(&o.server.DrainTimeout, "drain-timeout", d.DrainTimeout, "on SIGINT/SIGTERM, how long to drain before closing every socket at once")
	fs.Int64Var(&o.gcMinHeap, "gc-min-heap", defaultGCMinHeap, "bytes of heap the garbage collector lets a small live heap grow to before it collects (0: Go's default; ignored when GOGC is set)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	addClusterFlags(fs, &o.cluster)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: lobby [flags]\n\nLobby serves WebSocket rooms and an HTTP publish API.\nEvery flag can also be set by the environment variable shown.\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(fs.Output(), "  --%s (%s, default %q)\n    \t%s\n", f.Name, envName(f.Name), f.DefValue, f.Usage)
		})
	}

	return fs
}

// parseOptions reads flags from args, each defaulting to its environment
// twin when that is set, then to the built-in default.
func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := newFlagSet(o, stderr)

	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (see --help)", fs.Args())
	}
	if o.gcMinHeap < 0 || o.gcMinHeap > maxGCMinHeap {
		return nil, fmt.Errorf("--gc-min-heap %d: want 0 (Go's default) or a number of bytes up to %d", o.gcMinHeap, int64(maxGCMinHeap))
	}
	publicURL, err := checkPublicURL(o.server.PublicURL)
	if err != nil {
		return nil, err
	}
	o.server.PublicURL = publicURL
	o.server.RateBytes = float64(o.rateBytes)
	// Empty, not nil: --latest-rooms "" keeps no room's latest value.
	o.server.LatestRooms = append([]string{}, splitList(o.cluster.latest)...)
	o.server.AllowedOrigins = splitList(o.allowedOrigins)
	o.server.AllowedHosts = splitList(o.allowedHosts)
	o.server.PublishOnlyRooms = splitList(o.publishOnly)
	loopback, err := isLoopback(o.addr)
	if err != nil {
		return nil, err
	}
	// On a loopback address only local clients can connect, and a web page
	// can reach it only through a name that resolves to 127.0.0.1: refuse
	// names the server was not told it answers to.
	o.server.RestrictHosts = loopback || len(o.server.AllowedHosts) > 0
	if !loopback && o.server.PublishToken == "" && !o.insecurePublish {
		return nil, fmt.Errorf("refusing to serve %s without a publish token: anyone who can reach it could publish to every room. "+
			"Set --publish-token (or LOBBY_PUBLISH_TOKEN), or pass --insecure-publish if that is what you want", o.addr)
	}
	return o, nil
}

// isLoopback reports whether addr (host:port) is a loopback address or
// localhost.
func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("--addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var list []string
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			list = append(list, p)
		}
	}
	return list
}

// envName is a flag's environment twin: --send-queue is LOBBY_SEND_QUEUE.
func envName(flagName string) string {
	return "LOBBY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// run is the whole program: options, store, server, serve, wait for a
// signal, drain, close the store. The store is closed last: the server's
// Shutdown stops every actor that writes to it first.
func run(args []string, stderr io.Writer) (err error) {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	o.server.Logger = log
	defer startGCTuner(uint64(o.gcMinHeap))()
	defer startQuietRelease(log, releaseEvery)()

	openCtx, cancelOpen := context.WithTimeout(context.Background(), 30*time.Second)
	questionnaires, err := store.OpenSQLiteLimit(openCtx, o.dataDir, o.storeMaxBytes)
	cancelOpen()
	if err != nil {
		return fmt.Errorf("--data-dir %q: %w", o.dataDir, err)
	}
	defer func() {
		if cerr := questionnaires.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	o.server.Questionnaires = questionnaires

	ln, err := listen(o.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	broker, embedded, err := connectCluster(o.cluster, o.dataDir, &o.server, log)
	if err != nil {
		ln.Close()
		return err
	}
	if embedded != nil {
		// Shut down last: after the broker closed, its store written.
		defer embedded.Shutdown()
	}
	if broker != nil {
		// Closed after the server's Shutdown, which stops the actors
		// that use it: deferred before the drain's defers run.
		defer broker.Close()
	}
	srv, err := transport.New(o.server)
	if err != nil {
		ln.Close()
		return fmt.Errorf("--data-dir %q: %w", o.dataDir, err)
	}
	if o.pprof {
		srv.EnablePprof()
		log.Warn("pprof is served under /debug/pprof/; keep this server off untrusted networks")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("lobby listening", slog.String("addr", ln.Addr().String()), slog.String("data", questionnaires.Path()))

	select {
	case err := <-serveErr:
		// Serve failed before any signal: still stop the actors.
		_ = srv.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	stop()
	log.Info("shutting down", slog.Duration("drain_timeout", o.server.DrainTimeout))
	drainCtx, cancel := context.WithTimeout(context.Background(), o.server.DrainTimeout)
	defer cancel()
	shutdownErr := srv.Shutdown(drainCtx)
	if err := <-serveErr; !errors.Is(err, transport.ErrServerClosed) {
		return err
	}
	if shutdownErr != nil {
		// Sockets were closed at the deadline rather than drained; the
		// server still stopped cleanly.
		log.Warn("drain cut short", slog.Any("err", shutdownErr))
	}
	log.Info("stopped")
	return nil
}

// listen listens on addr without TCP keep-alive: every WebSocket has its
// own heartbeat (a ping every --heartbeat, closed after --client-timeout),
// which finds a dead peer sooner, and idle HTTP connections end after the
// server's idle timeout. Go's default turns keep-alive on for every
// accepted connection, four setsockopt calls each.
func listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(context.Background(), "tcp", addr)
}

// checkPublicURL checks --public-url: an http or https address with a
// host and nothing after the path, returned without a trailing slash, or
// "". The presenter's page builds the participants' link on it.
func checkPublicURL(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("--public-url %q: %w; want http://host[:port] or https://host[:port], as phones reach the server", s, err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return "", fmt.Errorf("--public-url %q: want http://host[:port] or https://host[:port], as phones reach the server", s)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return "", fmt.Errorf("--public-url %q: no user, query or fragment, only scheme, host, port and path", s)
	}
	return strings.TrimRight(s, "/"), nil
}
