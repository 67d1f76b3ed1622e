package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lobby/lobby/actors/questionnaire/store"
	"github.com/lobby/lobby/actors/socket/sockettest"
	"github.com/lobby/lobby/messages"
)

// testStore is the SQLite store with two switches: fail makes every Apply
// fail, loads counts the questionnaires loaded (State calls).
type testStore struct {
	store.Store
	fail  atomic.Bool
	loads atomic.Int32
	// With block set, Apply tells blocked it has begun, waits until its
	// context ends, and sends the context's error to unblocked.
	block     atomic.Bool
	blocked   chan struct{}
	unblocked chan error
	// With holdAnswers set, Answers reads the participant's answers,
	// then waits for a value on it before it returns them: an answer
	// written meanwhile is newer than what it read.
	holdAnswers chan struct{}
	// secrets counts the Secret calls; with secretErr set, Secret fails
	// with it.
	secrets   atomic.Int32
	secretErr error
}

func (s *testStore) Secret(ctx context.Context, name string, size int) ([]byte, error) {
	s.secrets.Add(1)
	if s.secretErr != nil {
		return nil, s.secretErr
	}
	return s.Store.Secret(ctx, name, size)
}

func (s *testStore) Answers(ctx context.Context, id, participant string) ([]store.Answer, error) {
	answers, err := s.Store.Answers(ctx, id, participant)
	if s.holdAnswers != nil {
		<-s.holdAnswers
	}
	return answers, err
}

func (s *testStore) Apply(ctx context.Context, id string, c store.Changes) ([]*store.Answer, error) {
	if s.fail.Load() {
		return nil, errors.New("disk on fire")
	}
	if s.block.Load() {
		s.blocked <- struct{}{}
		<-ctx.Done()
		s.unblocked <- ctx.Err()
		return nil, ctx.Err()
	}
	return s.Store.Apply(ctx, id, c)
}

func (s *testStore) State(ctx context.Context, id string) (store.State, error) {
	s.loads.Add(1)
	return s.Store.State(ctx, id)
}

// openTestStore opens a SQLite store in dir, closed when the test ends,
// after any node started later has shut down.
func openTestStore(t *testing.T, dir string) *testStore {
	t.Helper()
	s, err := store.OpenSQLite(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return &testStore{Store: s}
}

// counted is what the store holds of a questionnaire of single questions:
// the current question, the closed flag and the answers per option.
type counted struct {
	Current int
	Closed  bool
	Counts  [][]int
}

func storedCounts(t *testing.T, st store.Store, id string) counted {
	t.Helper()
	def, err := st.Questionnaire(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	state, err := st.State(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	c := counted{Current: state.Current, Closed: state.Closed, Counts: make([][]int, len(def.Questions))}
	for i, q := range def.Questions {
		c.Counts[i] = make([]int, len(q.Options))
	}
	counts, err := st.Tally(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range counts {
		c.Counts[a.Question][a.Option] += a.Count
	}
	return c
}

func lunch() NewQuestionnaire {
	return NewQuestionnaire{Title: "Lunch", Questions: []NewQuestion{
		{Text: "Where?", Options: []string{"canteen", "park", "desk"}},
		{Text: "When?", Options: []string{"noon", "one"}},
	}}
}

func createTest(t *testing.T, n *Node, nq NewQuestionnaire) string {
	t.Helper()
	created, err := n.CreateQuestionnaire(context.Background(), nq)
	if err != nil {
		t.Fatal(err)
	}
	return created.ID
}

// qClient is a presenter or participant socket actor with its fake conn.
type qClient struct {
	t       *testing.T
	n       *Node
	conn    *sockettest.Conn
	pid     *actor.PID
	stopped bool
}

func joinPresenter(t *testing.T, n *Node, id string) *qClient {
	t.Helper()
	c := sockettest.NewConn()
	return newQClient(t, n, c, n.PresenterProps(c, id))
}

func joinParticipant(t *testing.T, n *Node, id, participant string) *qClient {
	t.Helper()
	c := sockettest.NewConn()
	return newQClient(t, n, c, n.ParticipantProps(c, id, participant))
}

func newQClient(t *testing.T, n *Node, c *sockettest.Conn, props *actor.Props) *qClient {
	qc := &qClient{t: t, n: n, conn: c, pid: n.Spawn(props)}
	t.Cleanup(qc.stop)
	return qc
}

// send hands the actor a text frame from its client.
func (c *qClient) send(frame string) {
	c.n.Send(c.pid, &messages.ClientMessage{Data: []byte(frame)})
}

// expect reads the client's next frame and fails unless it is want.
func (c *qClient) expect(want string) {
	c.t.Helper()
	if got := c.conn.Next(c.t); got != want {
		c.t.Fatalf("got frame\n  %s\nwant\n  %s", got, want)
	}
}

// expectPresenter reads a presenter's frames until want, skipping the
// state and tally frames that participants' connects cause (they are
// coalesced, so how many come is not fixed).
func (c *qClient) expectPresenter(want string) {
	c.t.Helper()
	for {
		got := c.conn.Next(c.t)
		if got == want {
			return
		}
		if !strings.HasPrefix(got, `{"type":"state"`) && !strings.HasPrefix(got, `{"type":"tally"`) {
			c.t.Fatalf("presenter got\n  %s\nwhile waiting for\n  %s", got, want)
		}
	}
}

// expectClosed waits for the client's connection to be closed with want
// ("<code> <reason>").
func (c *qClient) expectClosed(want string) {
	c.t.Helper()
	select {
	case got := <-c.conn.Closed:
		if got != want {
			c.t.Fatalf("closed %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		c.t.Fatalf("not closed within 10s; want %q", want)
	}
}

func (c *qClient) stop() {
	if !c.stopped {
		c.stopped = true
		c.n.Stop(c.pid)
	}
}

// TestQuestionnaireShowAnswerTally runs one round: a show reaches every
// participant and the presenter; answers are acknowledged and tallied only
// once stored; a changed answer moves the tally; the store agrees.
func TestQuestionnaireShowAnswerTally(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	n := newTestNode(t, Config{Questionnaires: st})
	id := createTest(t, n, lunch())

	presenter := joinPresenter(t, n, id)
	presenter.expect(`{"type":"state","current":null,"closed":false,"participants":0}`)
	var ps []*qClient
	for i := range 3 {
		ps = append(ps, joinParticipant(t, n, id, fmt.Sprintf("p%d", i)))
	}
	presenter.expectPresenter(`{"type":"state","current":null,"closed":false,"participants":3}`)

	presenter.send(`{"type":"show","question":1}`)
	presenter.expect(`{"type":"tally","question":1,"counts":[0,0],"participants":3,"answered":0,"closed":false}`)
	for _, p := range ps {
		p.expect(`{"type":"question","index":1,"text":"When?","options":["noon","one"],"answer":null}`)
	}

	for i, opt := range []int{0, 1, 1} {
		ps[i].send(fmt.Sprintf(`{"type":"answer","question":1,"option":%d}`, opt))
		ps[i].expect(fmt.Sprintf(`{"type":"answered","question":1,"option":%d}`, opt))
	}
	presenter.expectPresenter(`{"type":"tally","question":1,"counts":[1,2],"participants":3,"answered":3,"closed":false}`)

	// p2 changes its mind: its answer replaces the old one.
	ps[2].send(`{"type":"answer","question":1,"option":0}`)
	ps[2].expect(`{"type":"answered","question":1,"option":0}`)
	presenter.expect(`{"type":"tally","question":1,"counts":[2,1],"participants":3,"answered":3,"closed":false}`)

	if _, err := n.QuestionnaireResults(context.Background(), id, "wrong"); !errors.Is(err, ErrWrongToken) {
		t.Fatalf("results with a wrong token: %v, want ErrWrongToken", err)
	}
	stored := storedCounts(t, st, id)
	if want := (counted{Current: 1, Counts: [][]int{{0, 0, 0}, {2, 1}}}); !reflect.DeepEqual(stored, want) {
		t.Fatalf("stored results %+v, want %+v", stored, want)
	}

	// A participant leaving is counted at once.
	ps[0].stop()
	presenter.expect(`{"type":"tally","question":1,"counts":[2,1],"participants":2,"answered":3,"closed":false}`)
}

// TestQuestionnaireRefusals: bad frames, indexes out of range, answers to
// a question that is not current, and everything after close are answered
// with error frames; the socket stays open and the state unchanged.
func TestQuestionnaireRefusals(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	n := newTestNode(t, Config{Questionnaires: st})
	id := createTest(t, n, lunch())
	presenter := joinPresenter(t, n, id)
	presenter.expect(`{"type":"state","current":null,"closed":false,"participants":0}`)
	p := joinParticipant(t, n, id, "p")
	presenter.expectPresenter(`{"type":"state","current":null,"closed":false,"participants":1}`)

	p.send(`{"type":"answer","question":0,"option":0}`)
	p.expect(`{"type":"error","code":"not_current","message":"no question is shown yet"}`)
	presenter.send(`{"type":"show","question":0}`)
	presenter.expect(`{"type":"tally","question":0,"counts":[0,0,0],"participants":1,"answered":0,"closed":false}`)
	p.expect(`{"type":"question","index":0,"text":"Where?","options":["canteen","park","desk"],"answer":null}`)

	tests := []struct {
		name   string
		client *qClient
		frame  string
		code   string
	}{
		{"not JSON", p, `{"type":`, "invalid_json"},
		{"not an object", p, `[1,2]`, "invalid_frame"},
		{"no type", p, `{"question":0,"option":0}`, "invalid_frame"},
		{"index not a whole number", p, `{"type":"answer","question":0.5,"option":0}`, "invalid_frame"},
		{"index a string", p, `{"type":"answer","question":"0","option":0}`, "invalid_frame"},
		{"answer without option", p, `{"type":"answer","question":0}`, "invalid_frame"},
		{"unknown type", p, `{"type":"dance"}`, "unknown_type"},
		{"participant shows", p, `{"type":"show","question":1}`, "unknown_type"},
		{"negative option", p, `{"type":"answer","question":0,"option":-1}`, "out_of_range"},
		{"option out of range", p, `{"type":"answer","question":0,"option":3}`, "out_of_range"},
		{"question out of range", p, `{"type":"answer","question":2,"option":0}`, "out_of_range"},
		{"not the current question", p, `{"type":"answer","question":1,"option":0}`, "not_current"},
		{"presenter answers", presenter, `{"type":"answer","question":0,"option":0}`, "unknown_type"},
		{"show out of range", presenter, `{"type":"show","question":2}`, "out_of_range"},
		{"show without question", presenter, `{"type":"show"}`, "invalid_frame"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.client.t = t
			tt.client.send(tt.frame)
			got := tt.client.conn.Next(t)
			if !strings.HasPrefix(got, `{"type":"error","code":"`+tt.code+`","message":"`) {
				t.Fatalf("%s answered %s, want an error frame with code %s", tt.frame, got, tt.code)
			}
		})
	}
	p.t, presenter.t = t, t
	select {
	case c := <-p.conn.Closed:
		t.Fatalf("the participant was closed: %s", c)
	default:
	}

	// The socket still works, then close ends it all.
	p.send(`{"type":"answer","question":0,"option":2}`)
	p.expect(`{"type":"answered","question":0,"option":2}`)
	presenter.expect(`{"type":"tally","question":0,"counts":[0,0,1],"participants":1,"answered":1,"closed":false}`)
	presenter.send(`{"type":"close"}`)
	presenter.expect(`{"type":"closed"}`)
	p.expect(`{"type":"closed"}`)
	p.send(`{"type":"answer","question":0,"option":1}`)
	p.expect(`{"type":"error","code":"closed","message":"the questionnaire is closed"}`)
	presenter.send(`{"type":"show","question":1}`)
	presenter.expect(`{"type":"error","code":"closed","message":"the questionnaire is closed"}`)
	presenter.send(`{"type":"close"}`)
	presenter.expect(`{"type":"error","code":"closed","message":"the questionnaire is closed already"}`)

	late := joinParticipant(t, n, id, "late")
	late.expect(`{"type":"closed"}`)
	res := storedCounts(t, st, id)
	if want := (counted{Current: 0, Closed: true, Counts: [][]int{{0, 0, 1}, {0, 0}}}); !reflect.DeepEqual(res, want) {
		t.Fatalf("stored results %+v, want %+v", res, want)
	}
}

// TestQuestionnaireRebuiltFromStore: a new node on the same store (a
// restart) has every answer, the current question and the participant's
// own answer.
func TestQuestionnaireRebuiltFromStore(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	first := newTestNode(t, Config{Questionnaires: st})
	id := createTest(t, first, lunch())
	presenter := joinPresenter(t, first, id)
	presenter.send(`{"type":"show","question":0}`)
	presenter.expectPresenter(`{"type":"tally","question":0,"counts":[0,0,0],"participants":0,"answered":0,"closed":false}`)
	for i, opt := range []int{2, 0, 2} {
		p := joinParticipant(t, first, id, fmt.Sprintf("p%d", i))
		p.expect(`{"type":"question","index":0,"text":"Where?","options":["canteen","park","desk"],"answer":null}`)
		p.send(fmt.Sprintf(`{"type":"answer","question":0,"option":%d}`, opt))
		p.expect(fmt.Sprintf(`{"type":"answered","question":0,"option":%d}`, opt))
		p.stop()
	}
	presenter.stop()
	first.Shutdown(context.Background())

	second := newTestNode(t, Config{Questionnaires: st})
	presenter = joinPresenter(t, second, id)
	presenter.expect(`{"type":"state","current":0,"closed":false,"participants":0}`)
	presenter.expect(`{"type":"tally","question":0,"counts":[1,0,2],"participants":0,"answered":3,"closed":false}`)
	p0 := joinParticipant(t, second, id, "p0")
	p0.expect(`{"type":"question","index":0,"text":"Where?","options":["canteen","park","desk"],"answer":2}`)
	// Its answer is still its own: changing it moves the tally, no double vote.
	p0.send(`{"type":"answer","question":0,"option":1}`)
	p0.expect(`{"type":"answered","question":0,"option":1}`)
	presenter.expectPresenter(`{"type":"tally","question":0,"counts":[1,1,1],"participants":1,"answered":3,"closed":false}`)
}

// TestQuestionnaireReplacesAParticipantsOlderSocket: the same participant
// id connecting again takes over; the older socket is closed 1000
// replaced, and the count does not change.
func TestQuestionnaireReplacesAParticipantsOlderSocket(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	n := newTestNode(t, Config{Questionnaires: st})
	id := createTest(t, n, lunch())
	presenter := joinPresenter(t, n, id)
	presenter.send(`{"type":"show","question":1}`)
	presenter.expectPresenter(`{"type":"tally","question":1,"counts":[0,0],"participants":0,"answered":0,"closed":false}`)

	older := joinParticipant(t, n, id, "same")
	older.expect(`{"type":"question","index":1,"text":"When?","options":["noon","one"],"answer":null}`)
	older.send(`{"type":"answer","question":1,"option":1}`)
	older.expect(`{"type":"answered","question":1,"option":1}`)
	presenter.expectPresenter(`{"type":"tally","question":1,"counts":[0,1],"participants":1,"answered":1,"closed":false}`)

	newer := joinParticipant(t, n, id, "same")
	newer.expect(`{"type":"question","index":1,"text":"When?","options":["noon","one"],"answer":1}`)
	older.expectClosed("1000 replaced")
	older.stop() // what the transport does when the socket has closed
	newer.send(`{"type":"answer","question":1,"option":0}`)
	newer.expect(`{"type":"answered","question":1,"option":0}`)
	presenter.expectPresenter(`{"type":"tally","question":1,"counts":[1,0],"participants":1,"answered":1,"closed":false}`)
}

// TestQuestionnaireAnswerWhileItsAnswersLoad: a participant's answers
// are read from the store when it joins (the actor keeps none of those
// not connected, issue 21, finding 7). An answer it sends before that
// read comes back wins over the read, which may be older; the tally takes
// back the answer the store replaced, not one the actor remembers.
func TestQuestionnaireAnswerWhileItsAnswersLoad(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	n := newTestNode(t, Config{Questionnaires: st})
	id := createTest(t, n, lunch())
	presenter := joinPresenter(t, n, id)
	presenter.send(`{"type":"show","question":1}`)
	presenter.expectPresenter(`{"type":"tally","question":1,"counts":[0,0],"participants":0,"answered":0,"closed":false}`)
	p := joinParticipant(t, n, id, "p")
	p.expect(`{"type":"question","index":1,"text":"When?","options":["noon","one"],"answer":null}`)
	p.send(`{"type":"answer","question":1,"option":0}`)
	p.expect(`{"type":"answered","question":1,"option":0}`)
	p.stop()
	presenter.expectPresenter(`{"type":"tally","question":1,"counts":[1,0],"participants":0,"answered":1,"closed":false}`)

	st.holdAnswers = make(chan struct{})
	p = joinParticipant(t, n, id, "p")
	p.send(`{"type":"answer","question":1,"option":1}`)
	p.expect(`{"type":"answered","question":1,"option":1}`)
	presenter.expectPresenter(`{"type":"tally","question":1,"counts":[0,1],"participants":1,"answered":1,"closed":false}`)
	st.holdAnswers <- struct{}{} // the read, of option 0, returns
	p.expect(`{"type":"question","index":1,"text":"When?","options":["noon","one"],"answer":1}`)
	if stored := storedCounts(t, st, id); !reflect.DeepEqual(stored.Counts, [][]int{{0, 0, 0}, {0, 1}}) {
		t.Fatalf("stored counts %v", stored.Counts)
	}
}

// TestQuestionnaireStoreFailure: a write the store refuses is answered
// store_failed and changes nothing; the questionnaire goes on, and the
// next write counts.
func TestQuestionnaireStoreFailure(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	n := newTestNode(t, Config{Questionnaires: st})
	id := createTest(t, n, lunch())
	presenter := joinPresenter(t, n, id)
	presenter.expect(`{"type":"state","current":null,"closed":false,"participants":0}`)

	st.fail.Store(true)
	presenter.send(`{"type":"show","question":0}`)
	presenter.expect(`{"type":"error","code":"store_failed","message":"the change could not be stored; nothing changed, try again"}`)
	st.fail.Store(false)
	presenter.send(`{"type":"show","question":0}`)
	presenter.expect(`{"type":"tally","question":0,"counts":[0,0,0],"participants":0,"answered":0,"closed":false}`)

	p := joinParticipant(t, n, id, "p")
	p.expect(`{"type":"question","index":0,"text":"Where?","options":["canteen","park","desk"],"answer":null}`)
	st.fail.Store(true)
	p.send(`{"type":"answer","question":0,"option":1}`)
	p.expect(`{"type":"error","code":"store_failed","message":"the change could not be stored; nothing changed, try again"}`)
	st.fail.Store(false)
	p.send(`{"type":"answer","question":0,"option":2}`)
	p.expect(`{"type":"answered","question":0,"option":2}`)
	presenter.expectPresenter(`{"type":"tally","question":0,"counts":[0,0,1],"participants":1,"answered":1,"closed":false}`)
}

// TestQuestionnaireStopsWhenIdle: a questionnaire with no sockets for its
// linger is stopped; the next socket gets a fresh one, loaded from the
// store again, with everything in it.
func TestQuestionnaireStopsWhenIdle(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	n := newTestNode(t, Config{Questionnaires: st, QuestionnaireLinger: time.Millisecond})
	id := createTest(t, n, lunch())
	presenter := joinPresenter(t, n, id)
	presenter.send(`{"type":"show","question":1}`)
	presenter.expectPresenter(`{"type":"tally","question":1,"counts":[0,0],"participants":0,"answered":0,"closed":false}`)
	presenter.stop()
	if loads := st.loads.Load(); loads != 1 {
		t.Fatalf("loaded %d times, want 1", loads)
	}

	// Until the old questionnaire is stopped, a new socket may still find
	// it; once it is, the socket's join spawns and loads a fresh one.
	// Each try leaves the questionnaire idle again; a tick between tries
	// gives its 1 ms linger the time to end, where back-to-back joins
	// would keep finding it busy.
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for st.loads.Load() < 2 {
		select {
		case <-deadline.C:
			t.Fatal("the idle questionnaire was never stopped")
		case <-tick.C:
		}
		p := joinParticipant(t, n, id, "p")
		p.expect(`{"type":"question","index":1,"text":"When?","options":["noon","one"],"answer":null}`)
		p.stop()
	}
}

// TestQuestionnaireUnknownID: a socket for a questionnaire the store does
// not have is closed (the transport answers 404 before that can happen).
func TestQuestionnaireUnknownID(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	n := newTestNode(t, Config{Questionnaires: st})
	p := joinParticipant(t, n, "aaaaaaaaaaaaaaaa", "p")
	p.expectClosed("1008 unknown questionnaire")
}

// TestShutdownCutsStoreWritesAtItsDeadline: a store that does not answer
// cannot hold the node's shutdown past its deadline. The write in flight
// when the deadline passes is cancelled by the shutdown, not left to run
// out its own timeout (which, once per questionnaire, held a 2 s drain for
// 20 s).
func TestShutdownCutsStoreWritesAtItsDeadline(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	st.blocked, st.unblocked = make(chan struct{}, 1), make(chan error, 1)
	n := newTestNode(t, Config{Questionnaires: st})
	id := createTest(t, n, lunch())
	presenter := joinPresenter(t, n, id)
	presenter.expect(`{"type":"state","current":null,"closed":false,"participants":0}`)

	st.block.Store(true)
	presenter.send(`{"type":"show","question":0}`)
	<-st.blocked
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the drain's deadline has passed
	n.Shutdown(ctx)
	if err := <-st.unblocked; !errors.Is(err, context.Canceled) {
		t.Fatalf("the blocked write ended with %v, want the shutdown's cancellation", err)
	}
}

// TestParticipantSecretReadAtStart: the node reads the participant token
// secret once, when it starts, and never again, however many identities
// it issues and checks; a store that cannot give it fails the start with
// an error that says so (it used to fail the first participant's request
// instead, and read the secret under a lock on every call until then).
func TestParticipantSecretReadAtStart(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	n := newTestNode(t, Config{Questionnaires: st})
	if got := st.secrets.Load(); got != 1 {
		t.Fatalf("the node read the secret %d times as it started, want once", got)
	}
	id := createTest(t, n, lunch())
	for range 3 {
		p, err := n.NewParticipant(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.AuthorizeParticipant(id, p.ID, p.Token); err != nil {
			t.Fatalf("the token issued with %s: %v", p.ID, err)
		}
	}
	if got := st.secrets.Load(); got != 1 {
		t.Fatalf("the node read the secret %d times, want once, at its start", got)
	}

	broken := openTestStore(t, t.TempDir())
	broken.secretErr = errors.New("disk on fire")
	node, err := NewNode(Config{Questionnaires: broken, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		node.Shutdown(context.Background())
		t.Fatal("a node whose store cannot give the participant token secret started")
	}
	if msg := err.Error(); !strings.Contains(msg, "participant token secret") || !strings.Contains(msg, "disk on fire") {
		t.Fatalf("the start failed with %q, want it to name the participant token secret and the store's error", msg)
	}
}
