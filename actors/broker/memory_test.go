package broker

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestHistoryBudgetEvictsOldestFirstAcrossRooms fills three rooms' histories
// one after the other past a broker-wide budget of about ten entries: the
// entries dropped are the oldest, whatever their room, and the total ends
// within the budget. A MemoryBroker charges each append as it stores it,
// so the budget holds as soon as Append returns.
func TestHistoryBudgetEvictsOldestFirstAcrossRooms(t *testing.T) {
	const msgSize = 1000
	one := (&entry{msg: make([]byte, msgSize)}).size()
	budget := 10*one + one/2
	stats := &MemoryStats{}
	b := NewMemoryBroker(MemoryBrokerConfig{History: 100, HistoryTTL: time.Hour, HistoryBytes: 16 << 20, HistoryBudget: budget, Stats: stats})
	defer b.Close()
	msg := []byte(`"` + strings.Repeat("a", msgSize-2) + `"`)
	publisher := uuid.New()
	// a gets 6 entries, then b 6, then c 6: 18 in all, room for 10.
	for _, room := range []string{"a", "b", "c"} {
		for i := range 6 {
			b.Append(room, publisher, msg, "", func(seq uint64, _ bool, err error) {
				if err != nil || seq != uint64(i+1) {
					t.Fatalf("append %d to %s: seq %d, %v", i+1, room, seq, err)
				}
			})
		}
	}
	seqs := func(room string) []uint64 {
		var s []uint64
		b.Read(room, 0, 0, func(res ReadResult) {
			for _, m := range res.Messages {
				s = append(s, m.Seq)
			}
		})
		return s
	}
	a, bb, c := seqs("a"), seqs("b"), seqs("c")
	kept := len(a) + len(bb) + len(c)
	if kept != 10 {
		t.Fatalf("kept a %v b %v c %v: %d entries, want the 10 newest", a, bb, c, kept)
	}
	// Oldest first: a lost everything, b its oldest two, c nothing.
	if len(a) != 0 || !slices.Equal(bb, []uint64{3, 4, 5, 6}) || !slices.Equal(c, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("kept a %v b %v c %v, want a [] b [3 4 5 6] c [1..6]", a, bb, c)
	}
	if got := stats.HistoryEvicted.Load(); got != 8 {
		t.Fatalf("HistoryEvicted = %d, want 8", got)
	}
	if got, want := stats.HistoryBytes.Load(), int64(10*one); got != want {
		t.Fatalf("HistoryBytes = %d, want %d", got, want)
	}
}

// TestMemoryBrokerContract: what a room counts on. Follow starts at the
// stream's end, with its epoch; Append stores, delivers to every follow
// and acknowledges, all before it returns; a stopped follow gets nothing
// more; a stream with no history and no follow is forgotten, and comes
// back under a new epoch.
func TestMemoryBrokerContract(t *testing.T) {
	b := NewMemoryBroker(MemoryBrokerConfig{History: 10, HistoryTTL: time.Hour, HistoryBytes: 1 << 20})
	defer b.Close()
	var got1, got2 []uint64
	var last uint64 = 99
	var epoch string
	stop1 := b.Follow("r", func(m StreamMessage) <-chan struct{} { got1 = append(got1, m.Seq); return nil }, func(l uint64, e string) { last, epoch = l, e })
	if last != 0 || epoch == "" {
		t.Fatalf("a new stream's follow started at %d in epoch %q, want 0 and an epoch", last, epoch)
	}
	stop2 := b.Follow("r", func(m StreamMessage) <-chan struct{} { got2 = append(got2, m.Seq); return nil }, func(uint64, string) {})
	acked := uint64(0)
	b.Append("r", uuid.New(), []byte(`1`), "", func(seq uint64, _ bool, err error) { acked = seq })
	if acked != 1 || !slices.Equal(got1, []uint64{1}) || !slices.Equal(got2, []uint64{1}) {
		t.Fatalf("after Append returned: acked %d, follows got %v and %v; want 1, [1], [1]", acked, got1, got2)
	}
	stop2()
	b.Append("r", uuid.New(), []byte(`2`), "", func(uint64, bool, error) {})
	if !slices.Equal(got1, []uint64{1, 2}) || !slices.Equal(got2, []uint64{1}) {
		t.Fatalf("follows got %v and %v, want [1 2] and [1]: a stopped follow gets nothing", got1, got2)
	}
	var res ReadResult
	b.Read("r", 0, 0, func(r ReadResult) { res = r })
	if res.Last != 2 || !res.Complete || len(res.Messages) != 2 || res.Epoch != epoch || res.Held != 2 {
		t.Fatalf("read %+v, want last 2, complete, 2 messages held, epoch %s", res, epoch)
	}
	stop1()

	// History off: nothing held, and once unfollowed the stream is gone.
	off := NewMemoryBroker(MemoryBrokerConfig{})
	defer off.Close()
	var first string
	stop := off.Follow("r", func(StreamMessage) <-chan struct{} { return nil }, func(_ uint64, e string) { first = e })
	off.Append("r", uuid.New(), []byte(`1`), "", func(uint64, bool, error) {})
	stop()
	var again string
	off.Follow("r", func(StreamMessage) <-chan struct{} { return nil }, func(l uint64, e string) { again = e; last = l })()
	if again == first || last != 0 {
		t.Fatalf("a forgotten stream came back at %d in epoch %q (was %q), want 0 in a new epoch", last, again, first)
	}
}

// TestMemoryBrokerSubjects: Publish reaches the subscriptions whose
// subject matches, NATS-style ("*" one token, ">" the rest), and none
// after it unsubscribed; Close ends every subscription's goroutine
// (TestMain checks for leaks).
func TestMemoryBrokerSubjects(t *testing.T) {
	b := NewMemoryBroker(MemoryBrokerConfig{})
	defer b.Close()
	got := make(chan string, 16)
	sub := func(subject string) func() {
		unsub, err := b.Subscribe(subject, func(s, _ string, data []byte) { got <- subject + " " + s + " " + string(data) })
		if err != nil {
			t.Fatal(err)
		}
		return unsub
	}
	sub("a.b")
	sub("a.*")
	unsub := sub("a.>")
	if _, err := b.Subscribe("a..b", func(string, string, []byte) {}); err == nil {
		t.Fatal("subscribed to a..b, want an error")
	}
	if err := b.Publish("a.b", "", []byte("1")); err != nil {
		t.Fatal(err)
	}
	var heard []string
	for range 3 {
		select {
		case m := <-got:
			heard = append(heard, m)
		case <-time.After(10 * time.Second):
			t.Fatalf("heard only %q", heard)
		}
	}
	slices.Sort(heard)
	if want := []string{"a.* a.b 1", "a.> a.b 1", "a.b a.b 1"}; !slices.Equal(heard, want) {
		t.Fatalf("heard %q, want %q", heard, want)
	}
	unsub()
	_ = b.Publish("a.c.d", "", []byte("2")) // only a.> matched it, and it is gone
	_ = b.Publish("a.c", "", []byte("3"))   // a.* matches
	select {
	case m := <-got:
		if m != "a.* a.c 3" {
			t.Fatalf("heard %q, want only a.* a.c 3", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a.* did not hear a.c")
	}
	b.Close() // waits for every subscription's goroutine: what they had is in got
	if len(got) != 0 {
		t.Fatalf("heard %q after unsubscribing", <-got)
	}
}

// TestLatestValueOutlivesTheTTL: a room whose latest value is kept holds
// its last message once the others have expired, and does not hold up the
// expiry of other rooms behind it.
func TestLatestValueOutlivesTheTTL(t *testing.T) {
	b := NewMemoryBroker(MemoryBrokerConfig{History: 100, HistoryTTL: 50 * time.Millisecond, HistoryBytes: 1 << 20,
		Latest: func(room string) bool { return room == "stats" }})
	defer b.Close()
	from := uuid.New()
	for _, m := range []string{`1`, `2`, `3`} {
		b.Append("stats", from, []byte(m), "", func(uint64, bool, error) {})
	}
	b.Append("plain", from, []byte(`"x"`), "", func(uint64, bool, error) {})
	read := func(room string, after uint64) (res ReadResult) {
		b.Read(room, after, 0, func(r ReadResult) { res = r })
		return res
	}
	deadline := time.Now().Add(10 * time.Second)
	for read("plain", 0).Held > 0 || read("stats", 0).Held > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("10 s on, plain holds %d and stats %d messages: the ttl is 50 ms", read("plain", 0).Held, read("stats", 0).Held)
		}
		time.Sleep(10 * time.Millisecond) // the expiry runs on the broker's timer: polled
	}
	res := read("stats", 2)
	if len(res.Messages) != 1 || res.Messages[0].Seq != 3 || string(res.Messages[0].Msg) != `3` || !res.Complete || res.Last != 3 {
		t.Fatalf("stats after its ttl: %+v, want its last message alone", res)
	}
	if !res.HeldUntil.After(time.Now().Add(time.Hour)) {
		t.Fatalf("stats is held until %v: its room would stop", res.HeldUntil)
	}
	// The timer goes on for the rooms that expire.
	b.Append("plain", from, []byte(`"y"`), "", func(uint64, bool, error) {})
	for read("plain", 0).Held > 0 {
		if time.Now().After(deadline) {
			t.Fatal("plain's second message never expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIdempotencyKeysAreBounded: a key is remembered per room for the
// window, and at most maxIdempotencyKeys of them: past that the oldest
// is forgotten first and counted, and a retry with it is stored again.
func TestIdempotencyKeysAreBounded(t *testing.T) {
	stats := &MemoryStats{}
	b := NewMemoryBroker(MemoryBrokerConfig{History: 10, HistoryTTL: time.Hour, HistoryBytes: 16 << 20, Stats: stats})
	defer b.Close()
	from := uuid.New()
	appendKeyed := func(room, key string) (seq uint64, dup bool) {
		b.Append(room, from, []byte(`1`), key, func(s uint64, d bool, err error) {
			if err != nil {
				t.Fatalf("append %s %s: %v", room, key, err)
			}
			seq, dup = s, d
		})
		return seq, dup
	}
	tests := []struct {
		name, room, key string
		seq             uint64
		dup             bool
	}{
		{"first", "r", "k0", 1, false},
		{"again", "r", "k0", 1, true},
		{"another room", "s", "k0", 1, false},
		{"another key", "r", "k1", 2, false},
		{"no key", "r", "", 3, false},
		{"no key again", "r", "", 4, false},
	}
	for _, tt := range tests {
		if seq, dup := appendKeyed(tt.room, tt.key); seq != tt.seq || dup != tt.dup {
			t.Fatalf("%s: seq %d duplicate %v, want %d %v", tt.name, seq, dup, tt.seq, tt.dup)
		}
	}
	// Three keys are held; fill up to the bound, then one more.
	for i := 3; i <= maxIdempotencyKeys; i++ {
		appendKeyed("fill", "f"+strconv.Itoa(i))
	}
	if got := stats.KeysEvicted.Load(); got != 1 {
		t.Fatalf("KeysEvicted = %d, want 1", got)
	}
	if len(b.keys) != maxIdempotencyKeys || len(b.keyOrder)-b.keyHead != maxIdempotencyKeys {
		t.Fatalf("%d keys, %d queued, want %d", len(b.keys), len(b.keyOrder)-b.keyHead, maxIdempotencyKeys)
	}
	if _, dup := appendKeyed("r", "k0"); dup {
		t.Fatal("the oldest key outlived the bound")
	}
	if _, dup := appendKeyed("r", "k1"); !dup {
		t.Fatal("a key within the bound was forgotten")
	}
}

// TestIdempotencyKeysExpire: a key older than the window is forgotten.
func TestIdempotencyKeysExpire(t *testing.T) {
	b := NewMemoryBroker(MemoryBrokerConfig{History: 10, HistoryTTL: time.Hour, HistoryBytes: 16 << 20, IdempotencyWindow: 20 * time.Millisecond})
	defer b.Close()
	var dup bool
	// Taken before the key is stored: it is remembered from then on, so
	// it cannot be forgotten less than its window after this.
	start := time.Now()
	b.Append("r", uuid.New(), []byte(`1`), "k", func(uint64, bool, error) {})
	// Retried until it is stored again, as a publisher would.
	for dup = true; dup && time.Since(start) < 5*time.Second; {
		b.Append("r", uuid.New(), []byte(`1`), "k", func(_ uint64, d bool, _ error) { dup = d })
	}
	if dup {
		t.Fatal("the key was remembered well past its window")
	}
	if since := time.Since(start); since < 20*time.Millisecond {
		t.Fatalf("the key was forgotten after %v, within its window", since)
	}
}
