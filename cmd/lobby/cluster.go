package main

import (
	"errors"
	"flag"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/actors/cluster"
	"github.com/lobby/lobby/transport"
)

// clusterOptions are the settings of cluster mode: with a NATS URL the
// node is one of a cluster; with --durable it runs its own NATS server
// (and with --peers, one of a NATS cluster of such nodes); with neither
// it is alone, its rooms in memory.
type clusterOptions struct {
	urls     string
	creds    string
	token    string
	user     string
	password string
	stream   string
	replicas int
	maxLag   time.Duration

	durable  bool
	peers    string
	peerAddr string
	minFree  int64
	latest   string
}

func addClusterFlags(fs *flag.FlagSet, c *clusterOptions) {
	fs.StringVar(&c.urls, "nats-url", "", "comma-separated NATS server URLs: the node joins the cluster of every node using them (empty: a single node, no other service)")
	fs.StringVar(&c.creds, "nats-creds", "", "NATS credentials file (JWT and NKey)")
	fs.StringVar(&c.token, "nats-token", "", "NATS authentication token")
	fs.StringVar(&c.user, "nats-user", "", "NATS user name")
	fs.StringVar(&c.password, "nats-password", "", "NATS password for --nats-user")
	fs.StringVar(&c.stream, "nats-stream", "LOBBY", "JetStream stream holding the rooms' messages (every node of a cluster must use the same)")
	fs.DurationVar(&c.maxLag, "max-stream-lag", 5*time.Second, "in a cluster, how old the oldest stream message this node has not delivered yet may be before /readyz answers 503 \"behind\" (ready again within half of it; 0: never)")
	fs.IntVar(&c.replicas, "nats-replicas", 0, "replicas of the stream: 3 on a 3-server NATS cluster (0: 3 with 3 or more --peers, else 1)")
	fs.BoolVar(&c.durable, "durable", false, "keep every room's history and epoch in --data-dir, in an embedded NATS JetStream: a restart loses no acknowledged message")
	fs.StringVar(&c.peers, "peers", "", "with --durable: comma-separated host:port of the other nodes' --peer-addr; their embedded NATS servers form one cluster with replicated streams")
	fs.StringVar(&c.peerAddr, "peer-addr", "", "with --peers: host:port this node's embedded NATS server listens on for its peers")
	fs.Int64Var(&c.minFree, "durable-min-free", 64<<20, "with --durable: bytes the disk under --data-dir must keep free; below it publishes are refused 503 store_full (negative: no check)")
	fs.StringVar(&c.latest, "latest-rooms", "dailyNews", "comma-separated rooms that keep their last message past --history-ttl (their latest value)")
}

// check refuses settings that do not go together.
func (c clusterOptions) check() error {
	switch {
	case c.durable && c.urls != "":
		return errors.New("--durable runs its own NATS server: it does not go with --nats-url (use --peers to cluster durable nodes)")
	case !c.durable && (c.peers != "" || c.peerAddr != ""):
		return errors.New("--peers and --peer-addr cluster the embedded NATS servers of --durable nodes: add --durable")
	case c.peers != "" && c.peerAddr == "":
		return errors.New("--peers needs --peer-addr, the host:port this node listens on for its peers")
	}
	return nil
}

// connectCluster connects to NATS when --nats-url or --durable is set
// (starting the embedded server for --durable), and adds the broker to
// the server's settings; it returns nils without either. The caller
// closes the broker after the server has shut down, then shuts the
// embedded server down.
func connectCluster(c clusterOptions, dataDir string, srv *transport.Config, log *slog.Logger) (*cluster.Broker, *cluster.Embedded, error) {
	if err := c.check(); err != nil {
		return nil, nil, err
	}
	urls := splitList(c.urls)
	if len(urls) == 0 && !c.durable {
		return nil, nil, nil
	}
	var embedded *cluster.Embedded
	replicas := c.replicas
	if c.durable {
		peers := splitList(c.peers)
		var err error
		embedded, err = cluster.StartEmbedded(cluster.EmbeddedConfig{
			Dir:         filepath.Join(dataDir, "nats"),
			ClusterAddr: c.peerAddr,
			Peers:       peers,
			MinFree:     c.minFree,
			Logger:      log,
		})
		if err != nil {
			return nil, nil, err
		}
		if replicas == 0 {
			replicas = 1
			if n := len(peersWithSelf(peers, c.peerAddr)); n >= 3 {
				replicas = 3
			}
		}
		log.Info("durable: rooms are kept in the embedded NATS JetStream", slog.String("dir", embedded.Dir()),
			slog.String("peer_addr", c.peerAddr), slog.Int("peers", len(peers)), slog.Int("replicas", replicas))
	}
	b, err := cluster.Connect(cluster.Config{
		URLs:       urls,
		Embedded:   embedded,
		Creds:      c.creds,
		Token:      c.token,
		User:       c.user,
		Password:   c.password,
		Stream:     c.stream,
		Replicas:   max(replicas, 1),
		History:    srv.History,
		HistoryTTL: srv.HistoryTTL,
		Latest:     actors.RoomSet(srv.LatestRooms),
		// The node's window of duplicates is the stream's, so that a
		// key is remembered as long by every node.
		IdempotencyWindow: srv.IdempotencyWindow,
		// A durable node's stream is its history: it keeps what
		// --history says, no margin for nodes that fall behind.
		StreamPerRoom:  durablePerRoom(c, srv.History),
		PublishTimeout: publishTimeout(c),
		MaxLag:         maxLag(c.maxLag),
		Logger:         log,
	})
	if err != nil {
		if embedded != nil {
			embedded.Shutdown()
		}
		return nil, nil, err
	}
	srv.Broker = b
	srv.Collectors = append(srv.Collectors, b.Collectors()...)
	return b, embedded, nil
}

// durablePerRoom is what the stream keeps per room: a single durable node
// its history; a cluster 10 000, a margin for a node that falls behind.
func durablePerRoom(c clusterOptions, history int) int {
	if c.durable && c.peers == "" {
		return max(history, 1)
	}
	return 0
}

// maxLag is cluster.Config.MaxLag for --max-stream-lag, whose 0 means
// never unready for lag.
func maxLag(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// peersWithSelf is the peers and this node, each once.
func peersWithSelf(peers []string, self string) []string {
	all := slices.Clone(peers)
	if self != "" && !slices.Contains(all, self) {
		all = append(all, self)
	}
	return all
}

// publishTimeout is how long a publish may wait for the stream: with
// --peers long enough to ride out the election of a new stream leader
// when one is killed (nats-server's raft takes 4 to 9 s), and still
// answered before the node's own 10 s request limit.
func publishTimeout(c clusterOptions) time.Duration {
	if c.peers != "" {
		return 8 * time.Second
	}
	return 0
}
