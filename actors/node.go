package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/actors/broker"
	"github.com/lobby/lobby/actors/chat"
	"github.com/lobby/lobby/actors/echo"
	"github.com/lobby/lobby/actors/internal/dispatch"
	"github.com/lobby/lobby/actors/internal/procreg"
	"github.com/lobby/lobby/actors/questionnaire"
	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// ErrStopped is returned by Node's calls once Shutdown has begun.
var ErrStopped = errors.New("actors: node stopped")

// ErrNoAnswer is returned by Node's calls that got no answer in time (at
// most 10 s, or the context's deadline): what they asked for may still
// be done, a publish stored and delivered.
var ErrNoAnswer = errors.New("actors: no answer in time")

// Node runs one actor system with its lobby. All its methods are safe for
// concurrent use.
type Node struct {
	cfg    Config
	log    *slog.Logger
	system *actor.ActorSystem
	lobby  *actor.PID
	// broker keeps the rooms' streams: Config.Broker, or the node's own
	// MemoryBroker (memory), which Shutdown closes.
	broker broker.Broker
	memory *broker.MemoryBroker
	// bridge is the cluster bridge actor; nil on a single node.
	bridge  *actor.PID
	stats   *Stats
	workers *dispatch.Workers
	// wheel ticks the socket actors' heartbeats.
	wheel *socket.Wheel
	// socketOpts are the props options of this node's socket actors.
	socketOpts []actor.PropsOption

	// questionnaires is nil when the node serves none.
	questionnaires *questionnaire.Service
}

// NewNode starts an actor system, its lobby actor and, with
// Config.Questionnaires, the questionnaires. It fails only when the
// questionnaires' store cannot give what they need to start (their
// participant token secret); the node is then stopped again.
func NewNode(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	// protoactor logs dead letters at info, and a frame racing a session's
	// stop is a normal dead letter; only its warnings are worth our log.
	systemLog := slog.New(minLevel{cfg.Logger.Handler(), slog.LevelWarn}).With(slog.String("component", "protoactor"))
	system := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return systemLog }),
		// The dead-letter log throttle keeps a goroutine for one interval
		// after each burst; a short one lets a stopped node leave none.
		actor.WithDeadLetterThrottleInterval(50*time.Millisecond))
	procreg.Shrink(system)
	w := dispatch.Start(dispatch.Default(), socketThroughput)
	n := &Node{cfg: cfg, log: cfg.Logger, system: system, workers: w, socketOpts: socketActorOpts(w),
		stats: &Stats{Held: socket.NewHoldBudget(int64(cfg.HeldBudget))}, wheel: socket.NewWheel(system.Root, cfg.Heartbeat)}
	// The lobby and the rooms run on the workers too, before the socket
	// actors (dispatch.Workers.First), with protoactor's default ring
	// mailbox: they live long, and a ring is the cheaper queue.
	onWorkers := actor.WithDispatcher(w.First())
	n.broker = cfg.Broker
	if n.broker == nil {
		n.memory = broker.NewMemoryBroker(broker.MemoryBrokerConfig{History: cfg.History, HistoryTTL: cfg.HistoryTTL,
			HistoryBytes: cfg.HistoryBytes, HistoryBudget: cfg.HistoryBudget, Stats: &n.stats.MemoryStats,
			Latest: RoomSet(cfg.LatestRooms), IdempotencyWindow: cfg.IdempotencyWindow})
		n.broker = n.memory
	}
	n.startLobby(onWorkers)
	if cfg.Questionnaires != nil {
		q, err := questionnaire.Start(system.Root, questionnaire.Config{Store: cfg.Questionnaires,
			Linger: cfg.QuestionnaireLinger, MaxParticipants: cfg.MaxParticipants, Log: cfg.Logger, Props: []actor.PropsOption{onWorkers}})
		if err != nil {
			n.Shutdown(context.Background())
			return nil, fmt.Errorf("start questionnaires: %w", err)
		}
		n.questionnaires = q
	}
	return n, nil
}

// Stats are the node's gauges and counters, for metrics.
func (n *Node) Stats() *Stats { return n.stats }

// socketThroughput is how many messages a socket actor handles before its
// worker moves on. protoactor's default lets a busy mailbox run 300 messages
// before it yields; a session handed a burst would then queue 300 frames
// before its connection's writer (a goroutine it just woke) gets to run,
// and overflow a 256-frame queue that the writer would have drained in one
// syscall. Yielding every 16 messages lets the writer keep up.
const socketThroughput = 16

// socketActorOpts are the props options of every actor that serves a
// socket: the node's workers (actors/internal/dispatch). socket.Props
// gives them their mailbox.
func socketActorOpts(w *dispatch.Workers) []actor.PropsOption {
	return []actor.PropsOption{actor.WithDispatcher(w)}
}

// Join says what a new session asks of its room (chat.Join).
type Join = chat.Join

// SessionProps makes the props of a session actor serving conn.
func (n *Node) SessionProps(conn socket.Conn, j Join) *actor.Props {
	env := n.env(conn)
	if j.MaxSubscriptions == 0 {
		j.MaxSubscriptions = n.cfg.MaxSubscriptions
	}
	j.Stats = &n.stats.Stats
	return n.socketProps(conn, func() actor.Actor { return chat.NewSession(env, j) })
}

// Sockets are the socket kinds the node serves besides rooms and
// questionnaires: echo, then Config.Sockets. The transport serves a route
// for each.
func (n *Node) Sockets() []socket.Kind {
	return append([]socket.Kind{echo.Kind}, n.cfg.Sockets...)
}

// SocketProps makes the props of an actor of kind k serving conn; req is
// what the actor may know of the request that opened conn.
func (n *Node) SocketProps(k socket.Kind, conn socket.Conn, req socket.Request) *actor.Props {
	env := n.env(conn)
	env.Log = env.Log.With(slog.String("kind", k.Name))
	env.Request = req
	return n.socketProps(conn, func() actor.Actor { return k.New(env) })
}

// PresenterProps makes the props of a presenter actor serving conn, for
// questionnaire id. The caller has checked the presenter token
// (AuthorizePresenter).
func (n *Node) PresenterProps(conn socket.Conn, id string) *actor.Props {
	env := n.env(conn)
	return n.socketProps(conn, func() actor.Actor { return n.questionnaires.Presenter(env, id) })
}

// ParticipantProps makes the props of a participant actor serving conn,
// for questionnaire id; participantID is the client's own id.
func (n *Node) ParticipantProps(conn socket.Conn, id, participantID string) *actor.Props {
	env := n.env(conn)
	return n.socketProps(conn, func() actor.Actor { return n.questionnaires.Participant(env, id, participantID) })
}

// env is what the node gives a socket actor serving conn.
func (n *Node) env(conn socket.Conn) socket.Env {
	return socket.Env{Conn: conn, Heartbeat: n.heartbeat(), Log: n.log, Lobby: n.lobby, Held: n.stats.Held}
}

// socketProps makes the props of an actor that serves conn, on the
// node's workers with a mailbox that keeps nothing once drained.
func (n *Node) socketProps(conn socket.Conn, produce func() actor.Actor) *actor.Props {
	return socket.Props(conn, n.log, produce, n.socketOpts...)
}

func (n *Node) heartbeat() socket.Heartbeat {
	return socket.Heartbeat{Every: n.cfg.Heartbeat, Timeout: n.cfg.ClientTimeout, Wheel: n.wheel}
}

// Spawn starts an actor from props at the root.
func (n *Node) Spawn(props *actor.Props) *actor.PID {
	return n.system.Root.Spawn(props)
}

// Send delivers msg to pid without waiting.
func (n *Node) Send(pid *actor.PID, msg any) {
	n.system.Root.Send(pid, msg)
}

// Poison stops pid once it has handled the messages already in its
// mailbox, without waiting: the transport waits on the socket.Conn of a socket
// actor (Conn.ActorStopped).
func (n *Node) Poison(pid *actor.PID) {
	n.system.Root.Poison(pid)
}

// Stop stops pid once it has handled the messages already in its mailbox,
// and waits until it has stopped (protoactor gives up waiting after 10 s).
func (n *Node) Stop(pid *actor.PID) {
	// A timeout here means the actor is stuck in Receive; nothing better
	// can be done than to go on.
	_ = n.system.Root.PoisonFuture(pid).Wait()
}

// Publish broadcasts msg, which must be valid JSON, to room's members as sent
// by publisher, and keeps it in the room's history (creating the room if
// need be). With history off, a room that does not exist gets nothing:
// Published is then zero. key, when not "", is the publisher's
// idempotency key (messages.BroadcastMessage.Key): a second publish with
// it to the room within Config.IdempotencyWindow is answered
// Published.Duplicate, and neither stored nor delivered.
func (n *Node) Publish(ctx context.Context, room string, publisher uuid.UUID, key string, msg []byte) (*messages.Published, error) {
	return ask[*messages.Published](ctx, n, &messages.BroadcastMessage{ID: publisher, Msg: msg, RoomID: room, Key: key})
}

// Direct sends msg (valid JSON) from publisher to the session with id to.
// DirectResult.Delivered is false when there is no such session.
func (n *Node) Direct(ctx context.Context, to, publisher uuid.UUID, msg []byte) (*messages.DirectResult, error) {
	return ask[*messages.DirectResult](ctx, n, &messages.DirectMessage{ID: publisher, To: to, Msg: msg})
}

// History returns a room's retained messages after since; History.Found is
// false when the room does not exist.
func (n *Node) History(ctx context.Context, room string, since uint64) (*messages.History, error) {
	return ask[*messages.History](ctx, n, &messages.GetHistory{Room: room, Since: since})
}

// Rooms lists at most limit rooms, with their member counts, in name
// order, starting after the name after ("" for the first page). more is
// true when rooms follow the last one listed.
func (n *Node) Rooms(ctx context.Context, after string, limit int) (rooms []messages.RoomSummary, more bool, err error) {
	list, err := ask[*messages.RoomList](ctx, n, &messages.ListRooms{After: after, Limit: limit})
	if err != nil {
		return nil, false, err
	}
	return list.Rooms, list.More, nil
}

// Room describes one room; RoomInfo.Found is false when it does not exist.
func (n *Node) Room(ctx context.Context, name string) (*messages.RoomInfo, error) {
	return ask[*messages.RoomInfo](ctx, n, &messages.GetRoom{Room: name})
}

// ask sends msg to the lobby as a request and waits for an answer of type T,
// until ctx ends (at most 10 s).
func ask[T any](ctx context.Context, n *Node, msg any) (T, error) {
	var zero T
	if n.system.IsStopped() {
		return zero, ErrStopped
	}
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if timeout <= 0 {
		return zero, fmt.Errorf("ask lobby %T: %w: %w", msg, ErrNoAnswer, context.DeadlineExceeded)
	}
	res, err := n.system.Root.RequestFuture(n.lobby, msg, timeout).Result()
	if errors.Is(err, actor.ErrTimeout) {
		return zero, fmt.Errorf("ask lobby %T: %w: %w", msg, ErrNoAnswer, err)
	}
	if err != nil {
		return zero, fmt.Errorf("ask lobby %T: %w", msg, err)
	}
	v, ok := res.(T)
	if err, isErr := res.(error); !ok && isErr {
		return zero, fmt.Errorf("ask lobby %T: %w", msg, err)
	}
	if !ok {
		// The lobby or room stopped between lookup and answer (a dead
		// letter answer), which only happens while shutting down.
		return zero, fmt.Errorf("ask lobby %T: answered %T: %w", msg, res, ErrStopped)
	}
	return v, nil
}

// BeginDrain makes the lobby refuse new members (they are closed with 1001).
// The transport calls it first when shutting down, then closes the
// connections it holds.
func (n *Node) BeginDrain(ctx context.Context) error {
	_, err := ask[struct{}](ctx, n, &chat.BeginDrain{})
	return err
}

// Shutdown stops the lobby, and with it every room, then the
// questionnaire registry, and with it every questionnaire (each writes
// what it has queued), waits for every store call the actors started,
// then stops the actor system. The store may be closed once it returns.
// Socket actors are stopped by whoever spawned them. Calling it again does
// nothing.
//
// The questionnaires write what they hold before they stop; those writes,
// and any still in flight, are cut short when ctx ends, so that a store
// that does not answer cannot hold the shutdown past its deadline.
func (n *Node) Shutdown(ctx context.Context) {
	if n.system.IsStopped() {
		return
	}
	n.Stop(n.lobby)
	if n.bridge != nil {
		n.Stop(n.bridge)
	}
	if n.questionnaires != nil {
		n.questionnaires.Stop(ctx)
	}
	n.system.Shutdown()
	n.wheel.Stop()
	n.workers.Stop()
	if n.memory != nil {
		n.memory.Close()
	}
}

// minLevel is a slog.Handler that drops records below level.
type minLevel struct {
	slog.Handler
	level slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.level}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.level}
}

// RoomSet reports whether a room is one of rooms, for a setting that
// names rooms (Config.LatestRooms, Config.PublishOnlyRooms); nil for
// none, so that the setting costs nothing when it is empty.
func RoomSet(rooms []string) func(room string) bool {
	if len(rooms) == 0 {
		return nil
	}
	return func(room string) bool { return slices.Contains(rooms, room) }
}
