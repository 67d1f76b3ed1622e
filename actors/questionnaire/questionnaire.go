package questionnaire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lobby/lobby/actors/questionnaire/store"
	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// questionnaire is the actor for one questionnaire, and the model for an
// actor type that keeps state in a store. It owns the questionnaire's live
// state: the current question, the closed flag, the tallies (counted by
// the store when it starts), the answers of the participants connected
// now (read from the store as each joins), and its
// presenter and participant sockets (socket actors of their own kinds,
// presenter.go and participant.go, which turn their clients' frames into
// the typed messages of messages/questionnaire.go).
//
// # Store calls off the workers
//
// A store call blocks, and every actor of the node runs on a few worker
// goroutines (actors/internal/dispatch): a write inside Receive would hold up every
// socket queued behind it. So the questionnaire never calls the store in
// Receive. It queues each change a client asks for (answer, show, close)
// and has one write in flight at a time, on a goroutine of its own
// (Service.goStore), which sends the result back as a message (changesWritten).
// Everything queued while a write is in flight goes into the next one: under
// load, one transaction carries many answers (a group commit).
//
// That keeps the contract simple to check:
//
//   - an answer is acknowledged, tallied and shown to nobody before it is
//     in the store: the committed state below changes only in written, on
//     the store's answer;
//   - changes are written and take effect in the order they arrived, so a
//     participant's later answer always wins;
//   - a change is checked (closed? current question? in range?) when its
//     batch is formed, against the state the changes before it leave, and
//     refused with an error frame there; a failed write refuses its whole
//     batch (code store_failed) and changes nothing.
//
// # Lifecycle
//
// The registry (registry.go) spawns it on the first socket that
// joins, and stops it when it has reported itself idle: no sockets for
// linger, nothing queued or in flight. Its mailbox is protoactor's default,
// unbounded, on the workers: its Receive never waits, and a bounded
// mailbox would block the sockets that send to it. What a client can make
// grow is bounded by maxQueuedChanges. A panic in Receive (a bug) closes
// its sockets 1011 and stops it; a client that reconnects gets a fresh
// actor rebuilt from the store. The registry's supervisor stops, never
// restarts, a questionnaire: a restarted one would have forgotten its
// sockets.
type questionnaire struct {
	// Static after construction.
	id      string
	store   store.Store
	goStore func(func())
	// storeCtx bounds every store call: the node cancels it when its
	// shutdown's deadline passes.
	storeCtx context.Context
	// lingerFor is how long it waits, idle, before it reports itself so.
	lingerFor time.Duration
	log       *slog.Logger

	// def is the questionnaire's definition, set once loaded.
	def store.Questionnaire
	// loaded is set when the store has answered the load; joins wait in
	// waiting until then. loadErr is the load's error: every socket is
	// then closed at once.
	loaded  bool
	loadErr error
	waiting []*messages.JoinQuestionnaire

	// The committed state: what the store holds and clients were told.
	current int // store.NoQuestion before the first show
	closed  bool
	// answers holds each connected participant's answer per question
	// (nil for none), for the frames that show a participant its own
	// answer; loading holds those whose answers the store is still
	// reading (participantLoaded): they are sent nothing until then.
	// Only connected participants are held, so that memory follows the
	// audience in the room, not every answer ever given (issue 21,
	// finding 7: a million answers took 1.17 GB). tallies counts every
	// answer, one per question: moved by each answer written, the store
	// saying which answer it replaced; questions holds each question's
	// timer, reveal and hidden entries (the latter also in its tally).
	answers   map[string][]*store.Answer
	loading   map[string]bool
	tallies   []*tally
	questions []store.QuestionState

	// Sockets: presenters by their actor's id, participants by their own
	// id (a participant has one socket; a new one replaces the old).
	presenters   map[string]*actor.PID
	participants map[string]*actor.PID
	// countQueued is set while a countChanged is in the mailbox.
	countQueued bool

	// The write pipeline: changes not yet written, and the batch being
	// written (nil when none).
	queue    []any
	inflight *changesWritten

	// linger wakes an idle questionnaire; see checkIdle.
	linger *time.Timer
	// timer wakes the questionnaire when the current question's timer is
	// over (questionTimerOver); announced is the closing time last
	// announced, so that it is announced once.
	timer     *time.Timer
	announced time.Time
	// broken is set by a panic: the state may be half-changed, so nothing
	// more is written.
	broken bool
}

// maxQueuedChanges bounds the changes waiting for the store. Past it,
// a change is refused with code busy: a store that slow would otherwise
// let the queue grow without bound.
const maxQueuedChanges = 10_000

// storeTimeout bounds one store call.
const storeTimeout = 5 * time.Second

// Reasons a questionnaire closes its sockets with (transport/PROTOCOL.md,
// "Close codes").
var (
	// Replaced closes a participant's older socket when the same
	// participant connects again.
	Replaced = socket.Reason{Code: socket.CloseNormal, Text: "replaced", Label: "replaced"}
	// StoreUnavailable closes the sockets of a questionnaire whose state
	// could not be read from the store.
	StoreUnavailable = socket.Reason{Code: socket.CloseInternalError, Text: "store unavailable", Label: "internal_error"}
	// unknownQuestionnaire closes a socket for an id no questionnaire has.
	unknownQuestionnaire = socket.Reason{Code: socket.ClosePolicyViolation, Text: "unknown questionnaire", Label: "policy"}
)

// loaded carries the store's answer to a questionnaire's load.
// Questionnaire's load goroutine → Questionnaire.
type questionnaireLoaded struct {
	def    store.Questionnaire
	state  store.State
	counts []store.AnswerCount
	err    error
}

// participantLoaded carries the store's answer to the read of a
// participant's answers, started when it joined. Its goroutine →
// Questionnaire.
type participantLoaded struct {
	participant string
	answers     []store.Answer
	err         error
}

// changesWritten carries one batch of changes, and, in done, the store's
// answer to its write. The write goroutine → Questionnaire.
type changesWritten struct {
	changes store.Changes
	// batch holds the batch's messages (*messages.SubmitAnswer,
	// *messages.ShowQuestion, *messages.CloseQuestionnaire), in order.
	batch []any
	// done receives the write's error (nil for success), once; replaced
	// is then set: for each of changes.Answers, the answer it replaced.
	done     chan error
	replaced []*store.Answer
}

// countChanged asks the questionnaire to tell its presenters how many
// participants are connected. It sends it to itself when that number
// changes, once until it is handled: a burst of connects already in the
// mailbox makes one frame.
type countChanged struct{}

// questionTimerOver tells the questionnaire that the current question's
// timer may be over. Sent by its timer.
type questionTimerOver struct{}

// questionnaireLingerOver tells an idle questionnaire that it has lingered.
// Sent by its timer.
type questionnaireLingerOver struct{}

// questionnaireIdle tells the registry that a questionnaire has had no
// sockets for its linger and nothing left to write. Questionnaire →
// Registry, which stops it unless a socket is on its way to it.
type questionnaireIdle struct {
	id  string
	pid *actor.PID
}

func newQuestionnaire(id string, s store.Store, storeCtx context.Context, goStore func(func()), linger time.Duration, log *slog.Logger) *questionnaire {
	return &questionnaire{
		id:           id,
		store:        s,
		goStore:      goStore,
		storeCtx:     storeCtx,
		lingerFor:    linger,
		log:          log.With(slog.String("questionnaire", id)),
		current:      store.NoQuestion,
		answers:      make(map[string][]*store.Answer),
		loading:      make(map[string]bool),
		presenters:   make(map[string]*actor.PID),
		participants: make(map[string]*actor.PID),
	}
}

func (q *questionnaire) Receive(ctx actor.Context) {
	defer q.recoverPanic(ctx)
	switch m := ctx.Message().(type) {
	case *messages.JoinQuestionnaire:
		q.join(ctx, m)
	case *messages.LeaveQuestionnaire:
		q.leave(ctx, m)
	case *messages.SubmitAnswer, *messages.ShowQuestion, *messages.CloseQuestionnaire,
		*messages.RevealResults, *messages.HideEntry:
		q.enqueue(ctx, m)
	case *questionTimerOver:
		q.timerOver(ctx)
	case *changesWritten:
		q.written(ctx, m, <-m.done)
		q.startWrite(ctx)
		q.checkIdle(ctx)
	case *questionnaireLoaded:
		q.load(ctx, m)
	case *participantLoaded:
		q.participantLoaded(ctx, m)
	case *countChanged:
		q.countQueued = false
		q.tellPresenters(ctx, q.countFrame())
	case *questionnaireLingerOver:
		if q.idle() {
			ctx.Send(ctx.Parent(), &questionnaireIdle{id: q.id, pid: ctx.Self()})
		}
	case *actor.Started:
		q.startLoad(ctx)
	case *actor.Stopping:
		if q.linger != nil {
			q.linger.Stop()
		}
		if q.timer != nil {
			q.timer.Stop()
		}
		q.flush(ctx)
	}
}

// startLoad reads the questionnaire from the store, off the workers.
func (q *questionnaire) startLoad(ctx actor.Context) {
	root, self, st, id := ctx.ActorSystem().Root, ctx.Self(), q.store, q.id
	q.goStore(func() {
		sctx, cancel := context.WithTimeout(q.storeCtx, storeTimeout)
		defer cancel()
		res := &questionnaireLoaded{}
		if res.def, res.err = st.Questionnaire(sctx, id); res.err == nil {
			if res.state, res.err = st.State(sctx, id); res.err == nil {
				res.counts, res.err = st.Tally(sctx, id)
			}
		}
		root.Send(self, res)
	})
}

// load rebuilds the live state from the store's, then lets in the sockets
// that joined meanwhile.
func (q *questionnaire) load(ctx actor.Context, m *questionnaireLoaded) {
	q.loaded = true
	if m.err != nil {
		q.loadErr = m.err
		if !errors.Is(m.err, store.ErrNotFound) {
			q.log.Error("questionnaire could not be loaded; closing its sockets", slog.Any("err", m.err))
		}
		for _, j := range q.waiting {
			q.refuse(ctx, j.Socket, m.err)
		}
		q.waiting = nil
		ctx.Send(ctx.Parent(), &questionnaireIdle{id: q.id, pid: ctx.Self()})
		return
	}
	q.def, q.current, q.closed = m.def, m.state.Current, m.state.Closed
	q.tallies = talliesOf(q.def, m.state, m.counts)
	q.questions = make([]store.QuestionState, len(q.def.Questions))
	for i := range q.questions {
		q.questions[i] = questionState(m.state, i)
	}
	// A timer that ran out while the questionnaire was not in memory (the
	// server was down) is over now: answers are refused from here on,
	// and whoever joins is told. One still running is armed again.
	if q.current != store.NoQuestion && !q.closed {
		q.armTimer(ctx)
	}
	for _, j := range q.waiting {
		q.join(ctx, j)
	}
	q.waiting = nil
	q.checkIdle(ctx)
}

// refuse closes a socket that cannot join: the questionnaire is unknown,
// or its store failed.
func (q *questionnaire) refuse(ctx actor.Context, pid *actor.PID, err error) {
	if errors.Is(err, store.ErrNotFound) {
		ctx.Send(pid, &messages.Close{Reason: unknownQuestionnaire})
		return
	}
	ctx.Send(pid, &messages.Close{Reason: StoreUnavailable})
}

func (q *questionnaire) join(ctx actor.Context, m *messages.JoinQuestionnaire) {
	switch {
	case !q.loaded:
		q.waiting = append(q.waiting, m)
		return
	case q.loadErr != nil:
		q.refuse(ctx, m.Socket, q.loadErr)
		ctx.Send(ctx.Parent(), &questionnaireIdle{id: q.id, pid: ctx.Self()})
		return
	}
	if q.linger != nil {
		q.linger.Stop()
	}
	ctx.Send(m.Socket, &messages.QuestionnaireJoined{Questionnaire: ctx.Self()})
	if m.Presenter {
		q.presenters[m.Socket.Id] = m.Socket
		// A presenter learns where things stand: the state, then the
		// current question's tally.
		ctx.Send(m.Socket, &messages.WsMessage{JSON: appendState(nil, q.current, q.closed, len(q.participants))})
		if q.current != store.NoQuestion {
			ctx.Send(m.Socket, &messages.WsMessage{JSON: q.tallyFrame(q.current)})
		}
		return
	}
	if old, ok := q.participants[m.Participant]; ok && !old.Equal(m.Socket) {
		// The same participant again (a reload, a second tab): the newer
		// socket takes over, and the count stays.
		ctx.Send(old, &messages.Close{Reason: Replaced})
	} else {
		q.countChange(ctx)
	}
	q.participants[m.Participant] = m.Socket
	_, held := q.answers[m.Participant]
	switch {
	case q.loading[m.Participant]:
		// participantLoaded greets the newest socket.
	case held || q.closed:
		// A closed questionnaire shows no answer: nothing to read.
		q.greet(ctx, m.Participant, m.Socket)
	default:
		q.loadParticipant(ctx, m.Participant)
	}
}

// loadParticipant reads a participant's answers, off the workers: the
// frames that show it a question carry its own answer.
func (q *questionnaire) loadParticipant(ctx actor.Context, participant string) {
	q.loading[participant] = true
	root, self, st, id := ctx.ActorSystem().Root, ctx.Self(), q.store, q.id
	q.goStore(func() {
		sctx, cancel := context.WithTimeout(q.storeCtx, storeTimeout)
		defer cancel()
		res := &participantLoaded{participant: participant}
		res.answers, res.err = st.Answers(sctx, id, participant)
		root.Send(self, res)
	})
}

// participantLoaded holds a participant's answers, read from the store,
// and greets it. Answers written since it joined are newer than what the
// read may have seen: they stay.
func (q *questionnaire) participantLoaded(ctx actor.Context, m *participantLoaded) {
	delete(q.loading, m.participant)
	pid, ok := q.participants[m.participant]
	if !ok {
		delete(q.answers, m.participant)
		q.checkIdle(ctx)
		return
	}
	if m.err != nil {
		q.log.Error("participant's answers could not be read; closing its socket", slog.Any("err", m.err))
		ctx.Send(pid, &messages.Close{Reason: StoreUnavailable})
		return
	}
	mine := q.participantAnswers(m.participant)
	for i := range m.answers {
		a := &m.answers[i]
		if a.Question >= 0 && a.Question < len(mine) && mine[a.Question] == nil {
			mine[a.Question] = a
		}
	}
	q.greet(ctx, m.participant, pid)
}

// greet tells a participant that joined where things stand.
func (q *questionnaire) greet(ctx actor.Context, participant string, pid *actor.PID) {
	switch {
	case q.closed:
		ctx.Send(pid, &messages.WsMessage{JSON: closedFrame})
	case q.current != store.NoQuestion:
		question := q.def.Questions[q.current]
		frame := appendQuestionPrefix(nil, q.current, question)
		frame = appendQuestionAnswer(frame, q.answerOf(participant, q.current), question.Kind)
		frame = appendQuestionEnd(frame, q.questions[q.current].ClosesAt)
		ctx.Send(pid, &messages.WsMessage{JSON: frame})
		// A late participant learns what the others were told: that the
		// question's timer is over, and its results if they were shown.
		if q.questionClosed(q.current, time.Now()) {
			ctx.Send(pid, &messages.WsMessage{JSON: appendQuestionClosed(nil, q.current)})
		}
		if q.questions[q.current].Revealed {
			ctx.Send(pid, &messages.WsMessage{JSON: q.resultsFrame(q.current)})
		}
	}
}

// greeted reports whether a participant has been greeted: one whose
// answers are still being read is sent nothing else, its greeting will
// say everything.
func (q *questionnaire) greeted(participant string) bool {
	return !q.loading[participant]
}

func (q *questionnaire) leave(ctx actor.Context, m *messages.LeaveQuestionnaire) {
	if !q.loaded {
		for i, j := range q.waiting {
			if j.Socket.Equal(m.Socket) {
				q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
				break
			}
		}
		return
	}
	if m.Presenter {
		delete(q.presenters, m.Socket.Id)
	} else if cur, ok := q.participants[m.Participant]; ok && cur.Equal(m.Socket) {
		// Only the participant's current socket counts: a replaced one
		// leaves after its successor joined.
		delete(q.participants, m.Participant)
		delete(q.answers, m.Participant)
		q.countChange(ctx)
	}
	if q.loadErr != nil {
		ctx.Send(ctx.Parent(), &questionnaireIdle{id: q.id, pid: ctx.Self()})
		return
	}
	q.checkIdle(ctx)
}

// presenceChange makes sure presenters hear of the new participant count
// once the messages already in the mailbox are handled.
func (q *questionnaire) countChange(ctx actor.Context) {
	if len(q.presenters) == 0 || q.countQueued {
		return
	}
	q.countQueued = true
	ctx.Send(ctx.Self(), &countChanged{})
}

// presenceFrame is what presenters are sent when the participant count
// changes: the current question's tally, or the state before any show.
func (q *questionnaire) countFrame() []byte {
	if q.current == store.NoQuestion {
		return appendState(nil, q.current, q.closed, len(q.participants))
	}
	return q.tallyFrame(q.current)
}

// enqueue queues a client's change for the store.
func (q *questionnaire) enqueue(ctx actor.Context, m any) {
	if len(q.queue) >= maxQueuedChanges {
		q.sendError(ctx, changeSender(m), codeBusy, "too many changes are waiting to be stored; try again")
		return
	}
	q.queue = append(q.queue, m)
	q.startWrite(ctx)
}

// changeSender is the socket that asked for a change.
func changeSender(m any) *actor.PID {
	switch m := m.(type) {
	case *messages.SubmitAnswer:
		return m.From
	case *messages.ShowQuestion:
		return m.From
	case *messages.CloseQuestionnaire:
		return m.From
	case *messages.RevealResults:
		return m.From
	case *messages.HideEntry:
		return m.From
	}
	return nil
}

// startWrite writes what is queued, unless a write is in flight (written
// calls it again). Each change is checked against the state the changes
// before it leave; a refused change is answered now and not written.
func (q *questionnaire) startWrite(ctx actor.Context) {
	if q.inflight != nil || len(q.queue) == 0 || q.broken {
		return
	}
	w, rest := q.plan(ctx, q.queue)
	q.queue = rest
	if len(w.batch) == 0 {
		return
	}
	q.inflight = w
	root, self, st, id := ctx.ActorSystem().Root, ctx.Self(), q.store, q.id
	q.goStore(func() {
		sctx, cancel := context.WithTimeout(q.storeCtx, storeTimeout)
		defer cancel()
		var err error
		w.replaced, err = st.Apply(sctx, id, w.changes)
		w.done <- err
		root.Send(self, w)
	})
}

// plan checks queued changes in order and makes the batch of those that
// pass; the others are refused with an error frame. A batch holds at most
// one show (Changes has one current question and one timer): the changes
// from a second show on are returned, to be written next.
func (q *questionnaire) plan(ctx actor.Context, queued []any) (w *changesWritten, rest []any) {
	w = &changesWritten{done: make(chan error, 1)}
	current, closed := q.current, q.closed
	var closesAt time.Time
	if current != store.NoQuestion {
		closesAt = q.questions[current].ClosesAt
	}
	now := time.Now()
	for n, m := range queued {
		code, msg := "", ""
		switch m := m.(type) {
		case *messages.SubmitAnswer:
			var a store.Answer
			a, code, msg = q.checkAnswer(m, current, closed, timerOver(closesAt, now))
			if code == "" {
				w.changes.Answers = append(w.changes.Answers, a)
			}
		case *messages.ShowQuestion:
			switch {
			case w.changes.SetCurrent:
				return w, queued[n:]
			case closed:
				code, msg = codeClosed, "the questionnaire is closed"
			case m.Question >= len(q.def.Questions):
				code, msg = q.noSuchQuestion(m.Question)
			default:
				current, closesAt = m.Question, time.Time{}
				if m.Seconds > 0 {
					// To the millisecond, as the store and the frames have it.
					closesAt = time.UnixMilli(now.Add(time.Duration(m.Seconds) * time.Second).UnixMilli())
				}
				w.changes.SetCurrent, w.changes.Current, w.changes.ClosesAt = true, m.Question, closesAt
			}
		case *messages.RevealResults:
			if m.Question >= len(q.def.Questions) {
				code, msg = q.noSuchQuestion(m.Question)
			} else {
				w.changes.Reveal = append(w.changes.Reveal, m.Question)
			}
		case *messages.HideEntry:
			switch {
			case m.Question >= len(q.def.Questions):
				code, msg = q.noSuchQuestion(m.Question)
			case q.def.Questions[m.Question].Kind != store.KindText:
				code, msg = socket.CodeInvalidFrame, fmt.Sprintf("question %d is not a text question: only text entries are hidden", m.Question)
			case textKey(m.Text) == "":
				code, msg = socket.CodeInvalidFrame, "hide needs the text of the entry"
			case utf8.RuneCountInString(m.Text) > 2*MaxTextLength:
				// No entry is longer than an answer, white space aside.
				code, msg = socket.CodeInvalidFrame, "no entry is that long"
			default:
				w.changes.Hide = append(w.changes.Hide, store.Hide{Question: m.Question, Key: textKey(m.Text)})
			}
		case *messages.CloseQuestionnaire:
			if closed {
				code, msg = codeClosed, "the questionnaire is closed already"
			} else {
				closed, w.changes.Close = true, true
			}
		}
		if code != "" {
			q.sendError(ctx, changeSender(m), code, msg)
			continue
		}
		w.batch = append(w.batch, m)
	}
	return w, nil
}

func (q *questionnaire) noSuchQuestion(i int) (code, message string) {
	return codeOutOfRange, fmt.Sprintf("question %d does not exist: there are %d (0 to %d)",
		i, len(q.def.Questions), len(q.def.Questions)-1)
}

// checkAnswer checks an answer, given the state the changes before it
// leave (the current question, the closed flag, whether the current
// question's timer is over), and returns it as stored, or says why it is
// refused.
func (q *questionnaire) checkAnswer(m *messages.SubmitAnswer, current int, closed, timerOver bool) (a store.Answer, code, message string) {
	switch {
	case closed:
		return a, codeClosed, "the questionnaire is closed"
	case m.Question >= len(q.def.Questions):
		return a, codeOutOfRange, fmt.Sprintf("question %d does not exist", m.Question)
	case m.Question != current && current == store.NoQuestion:
		return a, codeNotCurrent, "no question is shown yet"
	case m.Question != current:
		return a, codeNotCurrent, fmt.Sprintf("question %d is not the current one; %d is", m.Question, current)
	case timerOver:
		return a, codeQuestionClosed, fmt.Sprintf("question %d's time is up", m.Question)
	}
	a, code, message = checkAnswerValue(m.Question, q.def.Questions[m.Question], answerValue{
		kind: m.Kind, option: m.Option, options: m.Options, value: m.Value, text: m.Text})
	a.Participant = m.Participant
	return a, code, message
}

// written applies a batch the store has answered: on success each change
// takes effect, in order, and clients are told; on failure nothing changes
// and each sender is told.
func (q *questionnaire) written(ctx actor.Context, w *changesWritten, err error) {
	q.inflight = nil
	if err != nil {
		q.log.Error("questionnaire changes not stored", slog.Int("changes", len(w.batch)), slog.Any("err", err))
		for _, m := range w.batch {
			q.sendError(ctx, changeSender(m), codeStoreFailed, "the change could not be stored; nothing changed, try again")
		}
		return
	}
	// Tallies for answers go out once per batch, after its last answer:
	// a thousand answers in one write make one frame, not a thousand.
	tallyDue := false
	answers, replaced := w.changes.Answers, w.replaced
	for _, m := range w.batch {
		switch m := m.(type) {
		case *messages.SubmitAnswer:
			a := &answers[0]
			answers = answers[1:]
			var old *store.Answer
			if len(replaced) > 0 {
				old, replaced = replaced[0], replaced[1:]
			}
			q.record(a, old)
			ctx.Send(m.From, &messages.WsMessage{JSON: appendAnswered(nil, a, q.def.Questions[a.Question].Kind)})
			tallyDue = tallyDue || a.Question == q.current
		case *messages.ShowQuestion:
			q.current = m.Question
			q.questions[m.Question].ClosesAt = w.changes.ClosesAt
			q.armTimer(ctx)
			q.showToParticipants(ctx)
			q.tellPresenters(ctx, q.tallyFrame(q.current))
			tallyDue = false
		case *messages.RevealResults:
			q.questions[m.Question].Revealed = true
			frame := &messages.WsMessage{JSON: q.resultsFrame(m.Question)}
			for participant, pid := range q.participants {
				if q.greeted(participant) {
					ctx.Send(pid, frame)
				}
			}
			q.tellPresenters(ctx, q.tallyFrame(m.Question))
		case *messages.HideEntry:
			q.tallies[m.Question].hide(textKey(m.Text))
			q.tellPresenters(ctx, q.tallyFrame(m.Question))
		case *messages.CloseQuestionnaire:
			q.closed = true
			if q.timer != nil {
				q.timer.Stop()
			}
			frame := &messages.WsMessage{JSON: closedFrame}
			for participant, pid := range q.participants {
				if q.greeted(participant) {
					ctx.Send(pid, frame)
				}
			}
			for _, pid := range q.presenters {
				ctx.Send(pid, frame)
			}
		}
	}
	if tallyDue {
		q.tellPresenters(ctx, q.tallyFrame(q.current))
	}
}

// record moves the tally by an answer written, and the answer it
// replaced (nil for none), as the store had it; a connected participant
// holds it as its own.
func (q *questionnaire) record(a, old *store.Answer) {
	t := q.tallies[a.Question]
	if old != nil {
		t.add(old, -1)
	}
	t.add(a, 1)
	if _, ok := q.participants[a.Participant]; ok {
		q.participantAnswers(a.Participant)[a.Question] = a
	}
}

// armTimer sets the wake-up for the current question's timer, or stops
// it for a question without one. A timer already over is taken as
// announced: it was, before a restart, or nobody was there to tell.
func (q *questionnaire) armTimer(ctx actor.Context) {
	closesAt := q.questions[q.current].ClosesAt
	switch {
	case closesAt.IsZero():
		if q.timer != nil {
			q.timer.Stop()
		}
	case timerOver(closesAt, time.Now()):
		q.announced = closesAt
	default:
		socket.WakeAfter(ctx, &q.timer, time.Until(closesAt), &questionTimerOver{})
	}
}

// timerOver tells everyone that the current question's timer is over,
// once; a wake-up that came early (a show reset the timer) arms it again.
func (q *questionnaire) timerOver(ctx actor.Context) {
	if q.current == store.NoQuestion || q.closed {
		return
	}
	closesAt := q.questions[q.current].ClosesAt
	switch {
	case closesAt.IsZero() || closesAt.Equal(q.announced):
		return
	case !timerOver(closesAt, time.Now()):
		q.armTimer(ctx)
		return
	}
	q.announced = closesAt
	frame := &messages.WsMessage{JSON: appendQuestionClosed(nil, q.current)}
	for participant, pid := range q.participants {
		if q.greeted(participant) {
			ctx.Send(pid, frame)
		}
	}
	q.tellPresenters(ctx, q.tallyFrame(q.current))
}

// questionClosed reports whether question i takes no more answers at now.
func (q *questionnaire) questionClosed(i int, now time.Time) bool {
	return q.closed || timerOver(q.questions[i].ClosesAt, now)
}

// participantAnswers returns the participant's answers, making them if
// need be.
func (q *questionnaire) participantAnswers(participant string) []*store.Answer {
	mine, ok := q.answers[participant]
	if !ok {
		mine = make([]*store.Answer, len(q.def.Questions))
		q.answers[participant] = mine
	}
	return mine
}

// answerOf is the participant's answer to question, nil for none.
func (q *questionnaire) answerOf(participant string, question int) *store.Answer {
	if mine, ok := q.answers[participant]; ok {
		return mine[question]
	}
	return nil
}

// showToParticipants sends every participant the current question with
// its own answer. The frame is encoded once up to the answer; those who
// have not answered (most, at a first show) share one frame.
func (q *questionnaire) showToParticipants(ctx actor.Context) {
	question, closesAt := q.def.Questions[q.current], q.questions[q.current].ClosesAt
	prefix := appendQuestionPrefix(nil, q.current, question)
	finish := func(a *store.Answer) *messages.WsMessage {
		frame := appendQuestionAnswer(prefix[:len(prefix):len(prefix)], a, question.Kind)
		return &messages.WsMessage{JSON: appendQuestionEnd(frame, closesAt)}
	}
	unanswered := finish(nil)
	var results *messages.WsMessage
	if q.questions[q.current].Revealed {
		results = &messages.WsMessage{JSON: q.resultsFrame(q.current)}
	}
	for participant, pid := range q.participants {
		if !q.greeted(participant) {
			continue
		}
		frame := unanswered
		if a := q.answerOf(participant, q.current); a != nil {
			frame = finish(a)
		}
		ctx.Send(pid, frame)
		if results != nil {
			ctx.Send(pid, results)
		}
	}
}

func (q *questionnaire) tallyFrame(question int) []byte {
	return appendTally(nil, question, q.tallies[question], len(q.participants),
		q.questionClosed(question, time.Now()), q.questions[question].Revealed, q.questions[question].ClosesAt)
}

func (q *questionnaire) resultsFrame(question int) []byte {
	return appendResults(nil, question, q.tallies[question], q.questionClosed(question, time.Now()))
}

func (q *questionnaire) tellPresenters(ctx actor.Context, frame []byte) {
	msg := &messages.WsMessage{JSON: frame}
	for _, pid := range q.presenters {
		ctx.Send(pid, msg)
	}
}

func (q *questionnaire) sendError(ctx actor.Context, to *actor.PID, code, message string) {
	if to != nil {
		ctx.Send(to, &messages.WsMessage{JSON: appendQuestionnaireError(nil, code, message)})
	}
}

// idle reports whether the questionnaire has nothing to do: no sockets,
// nothing to write.
func (q *questionnaire) idle() bool {
	return q.loaded && len(q.presenters) == 0 && len(q.participants) == 0 && len(q.waiting) == 0 &&
		q.inflight == nil && len(q.queue) == 0
}

// checkIdle arms the linger of an idle questionnaire; when it is over and
// the questionnaire still idle, the registry is told. A timer that fires
// after a join and a leave only shortens the linger: the registry's own
// count of sockets makes stopping safe at any time.
func (q *questionnaire) checkIdle(ctx actor.Context) {
	if !q.idle() {
		return
	}
	socket.WakeAfter(ctx, &q.linger, q.lingerFor, &questionnaireLingerOver{})
}

// flush runs when the questionnaire stops (the node is shutting down, or
// it is idle and has nothing to flush): it waits for the write in flight
// and writes what is queued, so that a change a client was not yet told
// about is not lost either. It is the one place where the questionnaire
// waits on the store in Receive, bounded by storeTimeout and by the
// node's shutdown deadline (storeCtx), and only while stopping.
func (q *questionnaire) flush(ctx actor.Context) {
	if q.broken {
		return
	}
	if q.inflight != nil {
		w := q.inflight
		q.written(ctx, w, <-w.done)
	}
	sctx, cancel := context.WithTimeout(q.storeCtx, storeTimeout)
	defer cancel()
	for len(q.queue) > 0 {
		w, rest := q.plan(ctx, q.queue)
		q.queue = rest
		if len(w.batch) > 0 {
			var err error
			w.replaced, err = q.store.Apply(sctx, q.id, w.changes)
			q.written(ctx, w, err)
		}
	}
}

// recoverPanic is deferred by Receive. A bug that panics closes the
// questionnaire's sockets with 1011 and stops it, instead of letting it
// restart with its sockets forgotten; clients that reconnect get a fresh
// questionnaire, rebuilt from the store.
func (q *questionnaire) recoverPanic(ctx actor.Context) {
	r := recover()
	if r == nil {
		return
	}
	q.broken = true
	q.log.Error("questionnaire actor panicked; closing its sockets",
		slog.String("message", fmt.Sprintf("%T", ctx.Message())), slog.Any("panic", r))
	closing := &messages.Close{Reason: socket.InternalError}
	for _, pid := range q.presenters {
		ctx.Send(pid, closing)
	}
	for _, pid := range q.participants {
		ctx.Send(pid, closing)
	}
	for _, j := range q.waiting {
		ctx.Send(j.Socket, closing)
	}
	ctx.Stop(ctx.Self())
}
