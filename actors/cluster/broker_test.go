package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lobby/lobby/actors/broker"
)

const waitFor = 20 * time.Second

// startServer starts an embedded NATS server with its store in a temp
// dir, shut down when the test ends.
func startServer(t *testing.T, dir string) *Embedded {
	t.Helper()
	e, err := StartEmbedded(EmbeddedConfig{Dir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{}, &slog.HandlerOptions{Level: slog.LevelError}))
}

type testWriter struct{}

func (testWriter) Write(p []byte) (int, error) { return len(p), nil }

// connect connects a Broker to e, closed when the test ends.
func connect(t *testing.T, e *Embedded, cfg Config) *Broker {
	t.Helper()
	cfg.Embedded = e
	cfg.Logger = quiet()
	if cfg.History == 0 {
		cfg.History = 100
	}
	b, err := Connect(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	deadline := time.Now().Add(waitFor)
	for b.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the broker did not get ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return b
}

// appendSync appends msg and waits for its seq.
func appendSync(t *testing.T, b *Broker, room, msg string) uint64 {
	t.Helper()
	type res struct {
		seq uint64
		err error
	}
	ch := make(chan res, 1)
	b.Append(room, uuid.New(), json.RawMessage(msg), "", func(seq uint64, _ bool, err error) { ch <- res{seq, err} })
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("append to %s: %v", room, r.err)
		}
		return r.seq
	case <-time.After(waitFor):
		t.Fatalf("append to %s: no answer", room)
	}
	return 0
}

// follower collects a Follow's deliveries.
type follower struct {
	mu      sync.Mutex
	started chan uint64
	got     []broker.StreamMessage
	more    chan struct{}
	stop    func()
}

func follow(b *Broker, room string) *follower {
	f := &follower{started: make(chan uint64, 1), more: make(chan struct{}, 1)}
	f.stop = b.Follow(room, func(sm broker.StreamMessage) <-chan struct{} {
		f.mu.Lock()
		f.got = append(f.got, sm)
		f.mu.Unlock()
		select {
		case f.more <- struct{}{}:
		default:
		}
		return nil
	}, func(last uint64, _ string) { f.started <- last })
	return f
}

func (f *follower) waitStarted(t *testing.T) uint64 {
	t.Helper()
	select {
	case last := <-f.started:
		return last
	case <-time.After(waitFor):
		t.Fatal("the follow did not start")
	}
	return 0
}

// wait waits until n messages were delivered, and returns them.
func (f *follower) wait(t *testing.T, n int) []broker.StreamMessage {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		f.mu.Lock()
		got := append([]broker.StreamMessage(nil), f.got...)
		f.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-f.more:
		case <-deadline:
			t.Fatalf("%d messages delivered, want %d", len(got), n)
		}
	}
}

// Two nodes append to one room at once: the room's seqs are 1, 2, 3…
// with none skipped and none twice, and every follow delivers them in
// that order (issue 21, finding 10: stream sequences were not contiguous).
func TestRoomSeqsAreContiguousAcrossNodes(t *testing.T) {
	e := startServer(t, t.TempDir())
	a, b := connect(t, e, Config{}), connect(t, e, Config{})
	fa, fb := follow(a, "news"), follow(b, "news")
	if last := fa.waitStarted(t); last != 0 {
		t.Fatalf("a new room's last seq is %d, want 0", last)
	}
	fb.waitStarted(t)
	const each = 50
	var wg sync.WaitGroup
	seqs := make(chan uint64, 2*each)
	for i, node := range []*Broker{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				// Another room in between, so that stream sequences and
				// room seqs part ways.
				appendSync(t, node, "other", `1`)
				seqs <- appendSync(t, node, "news", fmt.Sprintf(`{"node":%d,"n":%d}`, i, j))
			}
		}()
	}
	wg.Wait()
	close(seqs)
	acked := map[uint64]bool{}
	for s := range seqs {
		if acked[s] {
			t.Fatalf("seq %d acked twice", s)
		}
		acked[s] = true
	}
	for s := uint64(1); s <= 2*each; s++ {
		if !acked[s] {
			t.Fatalf("seq %d never acked; acked %v", s, acked)
		}
	}
	for name, f := range map[string]*follower{"a": fa, "b": fb} {
		got := f.wait(t, 2*each)
		for i, sm := range got {
			if sm.Seq != uint64(i+1) {
				t.Fatalf("follow on %s: delivery %d has seq %d, want %d", name, i, sm.Seq, i+1)
			}
			if sm.At.IsZero() {
				t.Fatalf("follow on %s: delivery %d has no time", name, i)
			}
		}
	}
	// A follow started now starts at the end, and reads agree.
	fc := follow(b, "news")
	if last := fc.waitStarted(t); last != 2*each {
		t.Fatalf("a new follow starts after %d, want %d", last, 2*each)
	}
	fc.stop()
	done := make(chan broker.ReadResult, 1)
	a.Read("news", 2*each-5, 0, func(r broker.ReadResult) { done <- r })
	r := <-done
	if r.Err != nil || !r.Complete || r.Last != 2*each || len(r.Messages) != 5 || r.Messages[0].Seq != 2*each-4 {
		t.Fatalf("read after %d: %+v", 2*each-5, r)
	}
	fa.stop()
	fb.stop()
}

// A node that follows many rooms holds one consumer on the stream, not
// one per room: 1 500 rooms followed (past nats-server's default limit of
// 1 000 consumers), and a new room still starts at once (issue 21,
// finding 2).
func TestFollowsShareOneConsumer(t *testing.T) {
	e := startServer(t, t.TempDir())
	b := connect(t, e, Config{})
	const rooms = 1500
	fs := make([]*follower, rooms)
	for i := range fs {
		fs[i] = follow(b, fmt.Sprintf("room-%d", i))
	}
	for _, f := range fs {
		f.waitStarted(t)
	}
	info, err := b.stream().Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers > 1+maxReads {
		t.Fatalf("%d consumers for %d rooms followed; want at most %d", info.State.Consumers, rooms, 1+maxReads)
	}
	start := time.Now()
	f := follow(b, "new-room")
	f.waitStarted(t)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a new room took %s to start", d)
	}
	appendSync(t, b, "room-1499", `"late"`)
	if got := fs[rooms-1].wait(t, 1); string(got[0].Msg) != `"late"` || got[0].Seq != 1 {
		t.Fatalf("room-1499 got %+v", got[0])
	}
	for _, f := range fs {
		f.stop()
	}
	f.stop()
}

// A restart of the server on its store keeps every acknowledged message,
// the epoch and the rooms' seqs.
func TestEmbeddedStoreSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	e, err := StartEmbedded(EmbeddedConfig{Dir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Connect(Config{Embedded: e, History: 100, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		appendSync(t, b, "kept", `"x"`)
	}
	epoch := b.Epoch()
	b.Close()
	e.Shutdown()

	e2 := startServer(t, dir)
	b2 := connect(t, e2, Config{})
	if b2.Epoch() != epoch {
		t.Fatalf("epoch %q after a restart, want %q", b2.Epoch(), epoch)
	}
	if seq := appendSync(t, b2, "kept", `"y"`); seq != 4 {
		t.Fatalf("the first append after a restart has seq %d, want 4", seq)
	}
}

// TestRepairThatFindsNothingGivesUp: a follow that meets a gap the stream
// can no longer fill (here: no history kept) reports it and goes on with
// the message that revealed it, rather than ask for the same repair again
// for ever; and a repair of a follow that was stopped ends with it.
func TestRepairThatFindsNothingGivesUp(t *testing.T) {
	b := connect(t, startServer(t, t.TempDir()), Config{History: -1})
	got := make(chan uint64, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &roomFollow{b: b, ctx: ctx, subject: roomSubject("gap"),
		deliver: func(sm broker.StreamMessage) <-chan struct{} { got <- sm.Seq; return nil }}
	f.mu.Lock()
	f.push(9, broker.StreamMessage{Seq: 3}) // 1 and 2 are nowhere to be read
	f.mu.Unlock()
	select {
	case seq := <-got:
		if seq != 3 {
			t.Fatalf("delivered seq %d, want 3", seq)
		}
	case <-time.After(waitFor):
		t.Fatal("the message that revealed the gap was never delivered")
	}
	f.mu.Lock()
	repairing, last := f.repairing, f.last
	f.mu.Unlock()
	if repairing || last != 3 {
		t.Fatalf("after the repair: repairing %v, last %d; want false, 3", repairing, last)
	}

	stopped, stop := context.WithCancel(context.Background())
	g := &roomFollow{b: b, ctx: stopped, subject: roomSubject("gap"),
		deliver: func(sm broker.StreamMessage) <-chan struct{} {
			t.Errorf("a stopped follow delivered seq %d", sm.Seq)
			return nil
		}}
	stop()
	g.mu.Lock()
	g.push(9, broker.StreamMessage{Seq: 3})
	g.mu.Unlock()
	deadline := time.Now().Add(waitFor)
	for {
		g.mu.Lock()
		repairing, held := g.repairing, len(g.buf)
		g.mu.Unlock()
		if !repairing && held == 0 {
			break // and nothing is left to start another
		}
		if time.Now().After(deadline) {
			t.Fatalf("a stopped follow still repairs (%v), holding %d messages", repairing, held)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSlowFollowHoldsTheTailBack: a follower that says it holds as much
// as it may gets nothing more until it has taken it; meanwhile the node
// falls behind in the stream, not in its heap, and shows it: its lag
// counts the messages it has not delivered, and past MaxLag it is
// unready (ErrBehind) until it has caught up. A tail held back is not
// taken for stalled and made anew.
func TestSlowFollowHoldsTheTailBack(t *testing.T) {
	const hold, total = 10, 100
	b := connect(t, startServer(t, t.TempDir()), Config{MaxLag: 300 * time.Millisecond})
	var (
		mu    sync.Mutex
		got   []uint64
		taken = make(chan struct{})
		full  = true
	)
	more := make(chan struct{}, 1)
	started := make(chan struct{})
	stop := b.Follow("slow", func(sm broker.StreamMessage) <-chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, sm.Seq)
		select {
		case more <- struct{}{}:
		default:
		}
		if full && len(got) >= hold {
			return taken
		}
		return nil
	}, func(uint64, string) { close(started) })
	defer stop()
	<-started
	gen := b.tailGen.Load()
	for i := range total {
		appendSync(t, b, "slow", fmt.Sprintf(`{"n":%d}`, i))
	}
	deadline := time.Now().Add(waitFor)
	for !errors.Is(b.Ready(), broker.ErrBehind) {
		if time.Now().After(deadline) {
			t.Fatalf("Ready %v with the follow held back, want ErrBehind", b.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	n := len(got)
	mu.Unlock()
	if n != hold {
		t.Fatalf("%d messages delivered to a follow that holds %d and took none", n, hold)
	}
	if lag := b.Lag(); lag.Messages != total-hold || lag.Age < 300*time.Millisecond {
		t.Fatalf("lag %+v while held back, want %d messages, older than 300ms", lag, total-hold)
	}

	mu.Lock()
	full = false
	close(taken)
	mu.Unlock()
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= total {
			break
		}
		select {
		case <-more:
		case <-time.After(waitFor):
			t.Fatalf("%d of %d messages delivered after the follow took what it held", n, total)
		}
	}
	mu.Lock()
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("delivery %d has seq %d, want %d", i, seq, i+1)
		}
	}
	mu.Unlock()
	for b.Ready() != nil {
		if time.Now().After(deadline.Add(waitFor)) {
			t.Fatalf("Ready %v once caught up, want nil", b.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if lag := b.Lag(); lag != (Lag{}) {
		t.Fatalf("lag %+v once caught up, want none", lag)
	}
	if g := b.tailGen.Load(); g != gen {
		t.Fatalf("the tail was made anew %d times while it was held back", g-gen)
	}
}

// subjectRecords is how many records the stream holds for room.
func subjectRecords(t *testing.T, b *Broker, room string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	info, err := b.stream().Info(ctx, jetstream.WithSubjectFilter(roomSubject(room)))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[roomSubject(room)]
}

// Appends that queue while one of their room's is being stored are
// stored together, in one record with one acknowledgement, not one
// round trip to the stream each (issue 21, cluster fault 8: a room took
// one message per round trip, and a room's publishers waited for it).
// The first append's answer queues eight more before the appender looks
// at its queue again: they are the next record, whole.
func TestQueuedAppendsShareARecord(t *testing.T) {
	e := startServer(t, t.TempDir())
	b := connect(t, e, Config{})
	f := follow(b, "burst")
	f.waitStarted(t)
	const n = 9
	type answer struct {
		i   int
		seq uint64
		err error
	}
	answers := make(chan answer, n)
	senders := make([]uuid.UUID, n)
	for i := range senders {
		senders[i] = uuid.New()
	}
	appendOne := func(i int, then func()) {
		b.Append("burst", senders[i], json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), "", func(seq uint64, _ bool, err error) {
			if then != nil {
				then()
			}
			answers <- answer{i, seq, err}
		})
	}
	appendOne(0, func() {
		for i := 1; i < n; i++ {
			appendOne(i, nil)
		}
	})
	for range n {
		select {
		case a := <-answers:
			if a.err != nil || a.seq != uint64(a.i+1) {
				t.Fatalf("append %d: seq %d, %v; want seq %d", a.i, a.seq, a.err, a.i+1)
			}
		case <-time.After(waitFor):
			t.Fatal("an append got no answer")
		}
	}
	if got := subjectRecords(t, b, "burst"); got != 2 {
		t.Fatalf("the stream holds %d records of the room, want 2: the first append, then the 8 queued behind it", got)
	}
	// check checks that got are the appends from the one after after on.
	check := func(what string, got []broker.StreamMessage, after int) {
		t.Helper()
		if len(got) != n-after {
			t.Fatalf("%s: %d messages, want %d", what, len(got), n-after)
		}
		for j, sm := range got {
			i := after + j
			if sm.Seq != uint64(i+1) || sm.From != senders[i] || string(sm.Msg) != fmt.Sprintf(`{"n":%d}`, i) || sm.At.IsZero() {
				t.Fatalf("%s: message %d is seq %d from %s %s, want seq %d from %s", what, i, sm.Seq, sm.From, sm.Msg, i+1, senders[i])
			}
		}
	}
	check("the follow", f.wait(t, n), 0)
	for _, after := range []int{0, 1, 4} {
		done := make(chan broker.ReadResult, 1)
		b.Read("burst", uint64(after), 0, func(r broker.ReadResult) { done <- r })
		var r broker.ReadResult
		select {
		case r = <-done:
		case <-time.After(waitFor):
			t.Fatalf("read after %d: no answer in %v", after, waitFor)
		}
		if r.Err != nil || !r.Complete || r.Last != n {
			t.Fatalf("read after %d: %+v", after, r)
		}
		check(fmt.Sprintf("read after %d", after), r.Messages, after)
	}
	// A follow started now starts after the record's last message.
	g := follow(b, "burst")
	if last := g.waitStarted(t); last != n {
		t.Fatalf("a new follow starts after %d, want %d", last, n)
	}
	g.stop()
	f.stop()
}

// Two nodes, four senders each, append to one room as fast as they can,
// each sender's next message as soon as the last is queued, not
// answered: the room's seqs are still 1, 2, 3… with none skipped and
// none twice, every sender's messages keep their order, and records of
// several messages carried them (what a node's appends shared while
// the other node's came first are numbered again, whole).
func TestRecordsKeepSeqsAndSenderOrder(t *testing.T) {
	e := startServer(t, t.TempDir())
	nodes := []*Broker{connect(t, e, Config{}), connect(t, e, Config{})}
	f := follow(nodes[0], "race")
	f.waitStarted(t)
	const senders, each = 4, 150
	var wg sync.WaitGroup
	failed := make(chan error, 1)
	ids := map[uuid.UUID]int{}
	for i, node := range nodes {
		for s := range senders {
			id := uuid.New()
			ids[id] = i*senders + s
			wg.Add(each)
			for n := range each {
				node.Append("race", id, json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)), "", func(_ uint64, _ bool, err error) {
					if err != nil {
						select {
						case failed <- err:
						default:
						}
					}
					wg.Done()
				})
			}
		}
	}
	wg.Wait()
	select {
	case err := <-failed:
		t.Fatalf("an append failed: %v", err)
	default:
	}
	total := 2 * senders * each
	got := f.wait(t, total)
	next := map[uuid.UUID]int{}
	for i, sm := range got {
		if sm.Seq != uint64(i+1) {
			t.Fatalf("delivery %d has seq %d, want %d", i, sm.Seq, i+1)
		}
		var m struct{ N int }
		if err := json.Unmarshal(sm.Msg, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := ids[sm.From]; !ok || m.N != next[sm.From] {
			t.Fatalf("seq %d: sender %d's message %d, want its %d", sm.Seq, ids[sm.From], m.N, next[sm.From])
		}
		next[sm.From]++
	}
	records := subjectRecords(t, nodes[0], "race")
	t.Logf("%d messages in %d records", total, records)
	if records >= uint64(total) {
		t.Fatalf("%d messages took %d records: none shared one", total, records)
	}
	f.stop()
}
