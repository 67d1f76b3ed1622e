package chat

import "sync/atomic"

// Stats are the rooms' gauges and counters, for metrics. Each field is
// written by one actor only, the one named, and may be read by anyone at
// any time: they are copies of actor state published for reading, not
// state that actors share.
type Stats struct {
	// Rooms is the number of rooms alive. Written by the lobby.
	Rooms atomic.Int64
	// RoomsRefused counts joins and publishes refused because the node had
	// LobbyConfig.MaxRooms rooms. Written by the lobby.
	RoomsRefused atomic.Uint64
	// RoomsEvicted counts rooms that lived only for their history,
	// stopped to make room for a new one (their history stays). Written
	// by the lobby.
	RoomsEvicted atomic.Uint64
	// ClusterDropped counts text-protocol frames dropped because the
	// cluster was unavailable (that protocol has no error frame to say
	// so). Written by the rooms.
	ClusterDropped atomic.Uint64
}
