package questionnaire

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lobby/lobby/actors/questionnaire/store"
	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// Config configures a Service.
type Config struct {
	// Store keeps the questionnaires; required. The Service does not close
	// it; close it after Stop.
	Store store.Store
	// Linger is how long a questionnaire with no sockets stays in memory
	// before it is stopped. Zero means 30 s.
	Linger time.Duration
	// MaxParticipants is how many participant identities one
	// questionnaire issues (NewParticipant). Zero means
	// DefaultMaxParticipants; negative, no limit.
	MaxParticipants int
	// Log receives the questionnaires' logs. Nil means slog.Default().
	Log *slog.Logger
	// Props are the props options of the registry and the questionnaires
	// (the node's dispatcher).
	Props []actor.PropsOption
}

// Service is a node's questionnaires: the registry actor and its
// questionnaire actors, the calls the transport makes (Create,
// Questionnaire, AuthorizePresenter, Results), and the presenter and
// participant socket actors. Its methods are safe for concurrent use; the
// calls run the store on the caller's goroutine (an HTTP handler's), never
// on an actor's.
type Service struct {
	store    store.Store
	root     *actor.RootContext
	registry *actor.PID
	// calls counts the goroutines that call the store for actors
	// (goStore); Stop waits for them.
	calls sync.WaitGroup
	// ctx is the context of every store call the actors make; Stop
	// cancels it at its deadline.
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
	// maxParticipants is Config.MaxParticipants, with its default.
	maxParticipants int
	// secret signs participant tokens: the store's, read by Start.
	secret []byte
}

// Start reads the participant token secret from c.Store (making it
// there the first time), then spawns the registry at root. A store that
// cannot give the secret within 10 s fails it, and nothing is spawned.
func Start(root *actor.RootContext, c Config) (*Service, error) {
	if c.Linger <= 0 {
		c.Linger = 30 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	switch {
	case c.MaxParticipants == 0:
		c.MaxParticipants = DefaultMaxParticipants
	case c.MaxParticipants < 0:
		c.MaxParticipants = math.MaxInt32
	}
	ctx, cancel := context.WithTimeout(context.Background(), secretTimeout)
	secret, err := participantSecret(ctx, c.Store)
	cancel()
	if err != nil {
		return nil, err
	}
	s := &Service{store: c.Store, root: root, maxParticipants: c.MaxParticipants, secret: secret}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.registry = root.SpawnPrefix(actor.PropsFromProducer(func() actor.Actor {
		return &questionnaires{
			store:    c.Store,
			storeCtx: s.ctx,
			goStore:  s.goStore,
			linger:   c.Linger,
			log:      c.Log,
			// Questionnaires run with the registry's options and the
			// default mailbox, like rooms.
			opts:    c.Props,
			running: make(map[string]*questionnaireEntry),
		}
		// The registry's props decide what becomes of a questionnaire that
		// fails (protoactor asks the parent): it is stopped.
	}, append(append([]actor.PropsOption(nil), c.Props...), actor.WithSupervisor(stopQuestionnaire))...), "questionnaires")
	return s, nil
}

// Presenter makes the presenter actor of questionnaire id for env's
// connection. The caller has checked the presenter token
// (AuthorizePresenter).
func (s *Service) Presenter(env socket.Env, id string) actor.Actor {
	return &presenter{s.socket(env, messages.JoinQuestionnaire{ID: id, Presenter: true})}
}

// Participant makes the participant actor of questionnaire id for env's
// connection; participantID is the client's own id.
func (s *Service) Participant(env socket.Env, id, participantID string) actor.Actor {
	return &participant{s.socket(env, messages.JoinQuestionnaire{ID: id, Participant: participantID})}
}

func (s *Service) socket(env socket.Env, join messages.JoinQuestionnaire) questionnaireSocket {
	return questionnaireSocket{registry: s.registry, conn: env.Conn, hb: env.Heartbeat, log: env.Log, join: join,
		pending: socket.Hold{Budget: env.Held}}
}

// Stop stops the registry, and with it every questionnaire (each writes
// what it has queued), and waits for every store call the actors started.
// Those writes, and any still in flight, are cut short when ctx ends, so
// that a store that does not answer cannot hold a shutdown past its
// deadline. Calling it again does nothing.
func (s *Service) Stop(ctx context.Context) {
	s.once.Do(func() {
		defer s.cancel()
		stop := context.AfterFunc(ctx, s.cancel)
		defer stop()
		// A timeout means an actor is stuck in Receive; nothing better
		// can be done than to go on.
		_ = s.root.PoisonFuture(s.registry).Wait()
		s.calls.Wait()
	})
}
