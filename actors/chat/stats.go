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
	// JoinsFollowRefused and PublishesFollowRefused count the joins
	// (subscribes included) and HTTP publishes refused at once because
	// the node could follow no room (broker.Broker.FollowRefused).
	// Written by the lobby.
	JoinsFollowRefused, PublishesFollowRefused atomic.Uint64
	// ReplaysTooLong counts recoveries answered recovered:false because
	// they were longer than Config.Replay. Written by the rooms.
	ReplaysTooLong atomic.Uint64
	SubscriptionStats
}

// SubscriptionStats are the lobby.v1 subscriptions' gauge and counters.
type SubscriptionStats struct {
	// Subscriptions is the number of (connection, room) memberships on
	// this node, a single-room connection's one included. Written by the
	// lobby.
	Subscriptions atomic.Int64
	// The subscribes refused, by reason: already a member, over
	// Join.MaxSubscriptions, not allowed by the token, and over the
	// node's MaxRooms. Written by the sessions.
	RefusedAlready, RefusedTooMany, RefusedForbidden, RefusedRoomLimit atomic.Uint64
}

// refused counts a subscribe refused with error code code.
func (s *Stats) refused(code string) {
	switch code {
	case codeAlreadySubscribed:
		s.RefusedAlready.Add(1)
	case codeTooManySubscriptions:
		s.RefusedTooMany.Add(1)
	case codeForbidden:
		s.RefusedForbidden.Add(1)
	case codeRoomLimit:
		s.RefusedRoomLimit.Add(1)
	}
}
