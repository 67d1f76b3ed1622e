package actors

import (
	"sync/atomic"

	"github.com/lobby/lobby/actors/broker"
)

// Stats are a node's gauges and counters, for metrics. Each field is
// written by one actor only, the one named, and may be read by anyone at
// any time: they are copies of actor state published for reading, not
// state that actors share.
type Stats struct {
	// Rooms is the number of rooms alive. Written by the lobby.
	Rooms atomic.Int64
	// RoomsRefused counts joins and publishes refused because the node had
	// Config.MaxRooms rooms. Written by the lobby.
	RoomsRefused atomic.Uint64
	// MemoryStats are the HistoryBytes and HistoryEvicted of a node's
	// own MemoryBroker (zero with Config.Broker). Written by the broker.
	broker.MemoryStats
	// ClusterDropped counts text-protocol frames dropped because the
	// cluster was unavailable (that protocol has no error frame to say
	// so). Written by the rooms of a clustered node.
	ClusterDropped atomic.Uint64
}
