package actors

import "github.com/asynkron/protoactor-go/actor"

// Names of a node's lobby and, clustered, its bridge: each needs the
// other's PID, so they are spawned by name.
const (
	clusterLobbyName  = "lobby"
	clusterBridgeName = "bridge"
)

// startLobby spawns the node's lobby and, on a clustered node, its
// bridge. The lobby comes first, so that nothing the bridge tells it is
// lost; it talks to the bridge only once members join.
func (n *Node) startLobby(onWorkers actor.PropsOption) {
	cfg, root := n.cfg, n.system.Root
	var bridgePID *actor.PID
	if cfg.Broker != nil {
		bridgePID = actor.NewPID(n.system.Address(), clusterBridgeName)
	}
	lobby, err := root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return newLobby(lobbyConfig{log: cfg.Logger, keepsHistory: cfg.History > 0, maxRooms: cfg.MaxRooms,
			broker: n.broker, stats: n.stats, roomOpts: []actor.PropsOption{onWorkers}, bridge: bridgePID})
	}, onWorkers), clusterLobbyName)
	if err != nil {
		panic("actors: spawn the lobby: " + err.Error()) // a fresh system has no such name
	}
	n.lobby = lobby
	if cfg.Broker == nil {
		return
	}
	bridge, err := root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return newBridge(cfg.Broker, lobby, cfg.Logger, presenceConfig{})
	}, onWorkers), clusterBridgeName)
	if err != nil {
		panic("actors: spawn the cluster bridge: " + err.Error())
	}
	n.bridge = bridge
}

// Clustered reports whether the node is one of a cluster (Config.Broker).
func (n *Node) Clustered() bool { return n.cfg.Broker != nil }

// Ready reports whether the node can serve fully: always on a single
// node; on a clustered one, while its broker is connected and its stream
// set up.
func (n *Node) Ready() bool { return n.cfg.Broker == nil || n.cfg.Broker.Ready() }
