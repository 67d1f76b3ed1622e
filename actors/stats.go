package actors

import "sync/atomic"

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
	// HistoryBytes is what the rooms' histories hold, in bytes of memory.
	// Written by the history budget.
	HistoryBytes atomic.Int64
	// HistoryEvicted counts history entries dropped to keep the node under
	// Config.HistoryBudget. Written by the history budget.
	HistoryEvicted atomic.Uint64
	// ClusterDropped counts text-protocol frames dropped because the
	// cluster was unavailable (that protocol has no error frame to say
	// so). Written by the rooms of a clustered node.
	ClusterDropped atomic.Uint64
}
