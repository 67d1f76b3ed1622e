package chat

import (
	"log/slog"
	"math"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/actors/broker"
	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// Config is what a node's rooms are made with.
type Config struct {
	// Broker keeps the rooms' streams; required.
	Broker broker.Broker
	// Clustered runs a bridge (bridge.go): the broker connects this node
	// to others, and presence and direct messages cross it.
	Clustered bool
	// KeepsHistory is set when the broker keeps history: a publish to a
	// room nobody is in then creates the room, for who joins later.
	KeepsHistory bool
	// MaxRooms is the most rooms the node keeps at once; a join or
	// publish that would create one more is refused. It must be positive.
	MaxRooms int
	// Log receives the rooms' logs; required.
	Log *slog.Logger
	// Stats, when set, is kept told of the rooms' gauges and counters.
	Stats *Stats
	// Props are the props options of the lobby, the rooms and the bridge
	// (the node's dispatcher).
	Props []actor.PropsOption
	// Policy, when set, decides whether each room takes each message.
	Policy Policy
	// Residents are the bots that live in rooms.
	Residents []Resident
	// PublishOnly reports whether only HTTP publishers (and residents)
	// may send into room: its members read. Nil means any member may send.
	PublishOnly func(room string) bool
	// Replay bounds what a recovering lobby.v1 member is replayed: the
	// replay is held while its client reads it (the session paces it by
	// the client's queue), so this bounds that memory. A recovery past it
	// is answered recovered:false. Zero fields mean no bound.
	Replay broker.ReplayLimit
}

// Names of a node's lobby and, clustered, its bridge: each needs the
// other's PID, so they are spawned by name.
const (
	lobbyName  = "lobby"
	bridgeName = "bridge"
)

// Start spawns the lobby at root and, clustered, its bridge, and returns
// the lobby. The lobby comes first, so that nothing the bridge tells it
// is lost; it talks to the bridge only once members join. Stopping the
// lobby stops every room; stop the bridge after it.
func Start(root *actor.RootContext, c Config) (lobby, bridge *actor.PID, err error) {
	var bridgePID *actor.PID
	if c.Clustered {
		bridgePID = actor.NewPID(root.ActorSystem().Address(), bridgeName)
	}
	lobby, err = root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return newLobby(lobbyConfig{log: c.Log, keepsHistory: c.KeepsHistory, maxRooms: c.MaxRooms,
			broker: c.Broker, stats: c.Stats, roomOpts: c.Props, bridge: bridgePID,
			policy: c.Policy, residents: c.Residents, publishOnly: c.PublishOnly, replay: c.Replay})
	}, c.Props...), lobbyName)
	if err != nil || !c.Clustered {
		return lobby, nil, err
	}
	bridge, err = root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return newBridge(c.Broker, lobby, c.Log, rosterConfig{})
	}, c.Props...), bridgeName)
	return lobby, bridge, err
}

// BeginDrain tells the lobby that the node is shutting down: joins are
// refused from then on (closed 1001). It is answered with struct{}{}.
// Node → Lobby.
type BeginDrain struct{}

// Join says what a new session asks of its room.
type Join struct {
	// ID is the session's id; uuid.Nil means a new random one.
	ID uuid.UUID
	// Room is the room of the connect path; "" (GET /ws, lobby.v1 only)
	// starts the session in no room, to subscribe to rooms.
	Room     string
	Protocol messages.Protocol
	// Recover asks, for a lobby.v1 session, for the messages after Since in
	// epoch Epoch to be replayed first.
	Recover bool
	Since   uint64
	Epoch   string
	// Name is the member's display name (messages.CleanName has checked
	// it); "" for none. FixedName says it comes from the client's token:
	// a subscribe's name does not replace it.
	Name      string
	FixedName bool
	// Allow says whether the client may subscribe to a room (with
	// --jwt-secret, its token's rooms claim); nil allows every room.
	Allow func(room string) bool
	// MaxSubscriptions is the most rooms the session may be in at once,
	// its connect path's included. Zero means DefaultMaxSubscriptions.
	MaxSubscriptions int
	// Stats, when set, counts the session's subscribes refused.
	Stats *Stats
}

// DefaultMaxSubscriptions is Join.MaxSubscriptions's default.
const DefaultMaxSubscriptions = 100

// NewSession makes the session actor of one client: env's connection
// joins j.Room, if any, through env.Lobby, and may subscribe to more.
func NewSession(env socket.Env, j Join) actor.Actor {
	if j.ID == uuid.Nil {
		j.ID = uuid.New()
	}
	if j.MaxSubscriptions <= 0 {
		j.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if j.Stats == nil {
		j.Stats = &Stats{}
	}
	if j.Protocol != messages.ProtocolJSON {
		j.MaxSubscriptions = 1 // the text protocol has no subscribe
	}
	s := &session{
		id:        j.ID,
		home:      j.Room,
		protocol:  j.Protocol,
		name:      j.Name,
		fixedName: j.FixedName,
		allow:     j.Allow,
		maxSubs:   int32(min(j.MaxSubscriptions, math.MaxInt32)),
		stats:     j.Stats,
		lobby:     env.Lobby,
		conn:      env.Conn,
		hb:        env.Heartbeat,
		held:      env.Held,
	}
	if j.Room != "" {
		s.start = &messages.Connect{ID: j.ID, Room: j.Room, Protocol: j.Protocol,
			Recover: j.Recover, Since: j.Since, Epoch: j.Epoch, Name: j.Name}
	}
	return s
}
