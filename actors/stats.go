package actors

import (
	"github.com/lobby/lobby/actors/broker"
	"github.com/lobby/lobby/actors/chat"
	"github.com/lobby/lobby/actors/socket"
)

// Stats are a node's gauges and counters, for metrics, each written by
// the one part of the node that owns it and readable by anyone at any
// time.
type Stats struct {
	// The rooms': Rooms, RoomsRefused, ClusterDropped.
	chat.Stats
	// The HistoryBytes and HistoryEvicted of the node's own MemoryBroker
	// (zero with Config.Broker).
	broker.MemoryStats
	// Held is what the node's socket actors hold before they have joined.
	Held *socket.HoldBudget
}
