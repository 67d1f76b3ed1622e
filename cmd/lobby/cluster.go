package main

import (
	"flag"
	"log/slog"

	"github.com/lobby/lobby/actors/cluster"
	"github.com/lobby/lobby/transport"
)

// clusterOptions are the settings of cluster mode: with a NATS URL the
// node is one of a cluster, without one it is alone.
type clusterOptions struct {
	urls     string
	creds    string
	token    string
	user     string
	password string
	stream   string
	replicas int
}

func addClusterFlags(fs *flag.FlagSet, c *clusterOptions) {
	fs.StringVar(&c.urls, "nats-url", "", "comma-separated NATS server URLs: the node joins the cluster of every node using them (empty: a single node, no other service)")
	fs.StringVar(&c.creds, "nats-creds", "", "NATS credentials file (JWT and NKey)")
	fs.StringVar(&c.token, "nats-token", "", "NATS authentication token")
	fs.StringVar(&c.user, "nats-user", "", "NATS user name")
	fs.StringVar(&c.password, "nats-password", "", "NATS password for --nats-user")
	fs.StringVar(&c.stream, "nats-stream", "LOBBY", "JetStream stream holding the rooms' messages (every node of a cluster must use the same)")
	fs.IntVar(&c.replicas, "nats-replicas", 1, "replicas of the stream: 3 on a 3-server NATS cluster")
}

// connectCluster connects to NATS when --nats-url is set, and adds the
// broker to the server's settings; it returns nil without one. The caller
// closes the broker after the server has shut down.
func connectCluster(c clusterOptions, srv *transport.Config, log *slog.Logger) (*cluster.Broker, error) {
	urls := splitList(c.urls)
	if len(urls) == 0 {
		return nil, nil
	}
	b, err := cluster.Connect(cluster.Config{
		URLs:       urls,
		Creds:      c.creds,
		Token:      c.token,
		User:       c.user,
		Password:   c.password,
		Stream:     c.stream,
		Replicas:   c.replicas,
		History:    srv.History,
		HistoryTTL: srv.HistoryTTL,
		Logger:     log,
	})
	if err != nil {
		return nil, err
	}
	srv.Broker = b
	srv.Collectors = append(srv.Collectors, b.Collectors()...)
	return b, nil
}
