package actors

import (
	"log/slog"
	"time"

	"github.com/lobby/lobby/actors/broker"
	"github.com/lobby/lobby/actors/chat"
	"github.com/lobby/lobby/actors/questionnaire/store"
	"github.com/lobby/lobby/actors/socket"
)

// Config configures a Node.
type Config struct {
	// Heartbeat is how often a socket actor checks its client and pings it.
	// Zero means 5 s.
	Heartbeat time.Duration
	// ClientTimeout is how long a client may stay silent (no frame, no
	// pong) before it is closed. Zero means 10 s.
	ClientTimeout time.Duration
	// History is how many messages a room keeps for recovery and the
	// history route. Zero means 100; a negative value keeps none.
	History int
	// HistoryTTL is how long a room keeps a message. Zero means 5 min.
	HistoryTTL time.Duration
	// LatestRooms keep their last message past HistoryTTL, their latest
	// value: a page opened long after the last publish still shows it.
	// Nil means DefaultConfig's (the statistics room, dailyNews); empty,
	// none.
	LatestRooms []string
	// HistoryBytes bounds the memory one room's history holds, however
	// many messages: each counts its message and both its frames. Zero
	// means 16 MiB.
	HistoryBytes int
	// HistoryBudget bounds the memory all rooms' histories hold together,
	// counted as HistoryBytes is; past it the oldest entries, whatever
	// their room, are dropped first. Zero means 256 MiB; negative, no
	// budget but each room's own limits.
	HistoryBudget int
	// IdempotencyWindow is how long a publish's idempotency key is
	// remembered: a publish with the same key to the same room within it
	// is stored and delivered once (Node.Publish). It is at most
	// HistoryTTL (a longer one is cut to it). A node on its own keeps at
	// most 65 536 keys, the oldest forgotten first; a cluster's are
	// JetStream's (the stream's window of duplicates, which a Broker's
	// configuration sets). Zero means 2 min.
	IdempotencyWindow time.Duration
	// MaxRooms is the most rooms the node keeps at once; a join or publish
	// that would create one more is refused (the member is closed 1013
	// "too many rooms"). Zero means 100 000.
	MaxRooms int
	// HeldBudget bounds the bytes of the frames all of the node's socket
	// actors hold before they have joined (socket.HoldBudget); a client
	// that would pass it is closed 1013 "server busy". Zero means 64 MiB.
	HeldBudget int
	// MaxSubscriptions is the most rooms one lobby.v1 connection may be
	// in at once (its connect path's included); a subscribe past it is
	// answered with an error frame too_many_subscriptions. Zero means 100.
	MaxSubscriptions int
	// MaxReplay and MaxReplayBytes bound what a recovering lobby.v1
	// member is replayed: its session hands the replay to the socket as
	// the client reads it (a queue at a time), and holds the rest
	// meanwhile, so these bound that memory, not the client's queue. A
	// recovery longer than that is answered recovered:false (the client
	// refetches). Zero means 10 000 messages (what a cluster's stream
	// keeps of a room) and 8 MiB; negative, no bound.
	MaxReplay      int
	MaxReplayBytes int
	// Questionnaires keeps the questionnaires. Nil means the node serves
	// none: its questionnaire calls return ErrNoStore. The node does not
	// close it; close it after Shutdown.
	Questionnaires store.Store
	// QuestionnaireLinger is how long a questionnaire with no sockets
	// stays in memory before it is stopped. Zero means 30 s.
	QuestionnaireLinger time.Duration
	// MaxParticipants is how many participant identities one
	// questionnaire issues. Zero means 10 000; negative, no limit.
	MaxParticipants int
	// Logger receives the node's logs. Nil means slog.Default().
	Logger *slog.Logger
	// Sockets are actor types of one's own, each serving a WebSocket
	// route (socket.Kind; actors/examples/shout is one). Nil means none
	// besides Lobby's.
	Sockets []socket.Kind
	// Policy, when set, decides whether each room takes each message
	// (chat.Policy; actors/examples/moderated is one). Nil takes every
	// message.
	Policy chat.Policy
	// PublishOnlyRooms are rooms only HTTP publishers (and residents) may
	// send into: their members read, and a member who sends is answered
	// "publish_only". Nil means members may send in every room.
	PublishOnlyRooms []string
	// Residents are bots that live in rooms (chat.Resident;
	// actors/examples/timebot is one). Nil means none.
	Residents []chat.Resident
	// Broker, when set, makes the node one of a cluster: its rooms'
	// messages go through the broker's stream and its bridge actor
	// carries presence and direct messages (actors/chat/bridge.go). The caller owns
	// the broker and closes it after Shutdown. Nil means a single node.
	Broker broker.Broker
}

// DefaultConfig is the one table of the node's defaults: each field is
// what its zero value means. Questionnaires, Logger and Broker are nil:
// their defaults (no questionnaires, slog.Default(), a single node) are
// not values to show. cmd/lobby's flags take their defaults from here.
func DefaultConfig() Config {
	return Config{
		Heartbeat:           5 * time.Second,
		ClientTimeout:       10 * time.Second,
		History:             100,
		HistoryTTL:          5 * time.Minute,
		LatestRooms:         []string{"dailyNews"},
		HistoryBytes:        16 << 20,
		HistoryBudget:       256 << 20,
		IdempotencyWindow:   broker.DefaultIdempotencyWindow,
		MaxRooms:            100_000,
		HeldBudget:          64 << 20,
		MaxSubscriptions:    chat.DefaultMaxSubscriptions,
		MaxReplay:           10_000,
		MaxReplayBytes:      8 << 20,
		QuestionnaireLinger: 30 * time.Second,
		MaxParticipants:     10_000,
	}
}

// withDefaults fills the fields whose zero (or, for durations and sizes,
// negative) value means their default from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Heartbeat <= 0 {
		c.Heartbeat = d.Heartbeat
	}
	if c.ClientTimeout <= 0 {
		c.ClientTimeout = d.ClientTimeout
	}
	if c.History == 0 {
		c.History = d.History
	}
	if c.HistoryTTL <= 0 {
		c.HistoryTTL = d.HistoryTTL
	}
	if c.LatestRooms == nil {
		c.LatestRooms = d.LatestRooms
	}
	if c.HistoryBytes <= 0 {
		c.HistoryBytes = d.HistoryBytes
	}
	if c.HistoryBudget == 0 {
		c.HistoryBudget = d.HistoryBudget
	}
	if c.IdempotencyWindow <= 0 {
		c.IdempotencyWindow = d.IdempotencyWindow
	}
	c.IdempotencyWindow = min(c.IdempotencyWindow, c.HistoryTTL)
	if c.MaxRooms <= 0 {
		c.MaxRooms = d.MaxRooms
	}
	if c.HeldBudget <= 0 {
		c.HeldBudget = d.HeldBudget
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = d.MaxSubscriptions
	}
	if c.MaxReplay == 0 {
		c.MaxReplay = d.MaxReplay
	}
	if c.MaxReplayBytes == 0 {
		c.MaxReplayBytes = d.MaxReplayBytes
	}
	if c.QuestionnaireLinger <= 0 {
		c.QuestionnaireLinger = d.QuestionnaireLinger
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
