package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/lobby/lobby/actors/broker"
	"github.com/lobby/lobby/actors/chat"
)

// startLobby spawns the node's lobby and, on a clustered node, its
// bridge (package chat).
func (n *Node) startLobby(onWorkers actor.PropsOption) {
	cfg := n.cfg
	lobby, bridge, err := chat.Start(n.system.Root, chat.Config{Broker: n.broker, Clustered: cfg.Broker != nil,
		KeepsHistory: cfg.History > 0, MaxRooms: cfg.MaxRooms, Log: cfg.Logger, Stats: &n.stats.Stats,
		Props: []actor.PropsOption{onWorkers}, Policy: cfg.Policy, Residents: cfg.Residents,
		PublishOnly: RoomSet(cfg.PublishOnlyRooms),
		Replay:      broker.ReplayLimit{Messages: max(cfg.MaxReplay, 0), Bytes: max(cfg.MaxReplayBytes, 0)}})
	if err != nil {
		panic("actors: spawn the lobby: " + err.Error()) // a fresh system has no such names
	}
	n.lobby, n.bridge = lobby, bridge
}

// ErrBehind is the node's readiness while it has fallen too far behind
// its cluster's stream (broker.ErrBehind).
var ErrBehind = broker.ErrBehind

// Clustered reports whether the node is one of a cluster (Config.Broker).
func (n *Node) Clustered() bool { return n.cfg.Broker != nil }

// Ready reports nil when the node can serve fully: always on a single
// node; on a clustered one, while its broker is connected, its stream set
// up and the node not too far behind it. Otherwise it says why
// (wrapping broker.ErrUnavailable, or ErrBehind).
func (n *Node) Ready() error {
	if n.cfg.Broker == nil {
		return nil
	}
	return n.cfg.Broker.Ready()
}
