package actors

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestHistoryBudgetEvictsOldestFirstAcrossRooms fills three rooms' histories
// one after the other past a node-wide budget of about ten entries: the
// entries dropped are the oldest, whatever their room, and the total ends
// within the budget.
func TestHistoryBudgetEvictsOldestFirstAcrossRooms(t *testing.T) {
	const msgSize = 1000
	one := (&entry{msg: make([]byte, msgSize)}).size()
	budget := 10*one + one/2
	n := newTestNode(t, Config{History: 100, HistoryBudget: budget})
	ctx := context.Background()
	msg := []byte(`"` + string(make([]byte, msgSize-2)) + `"`)
	for i := range msg[1 : len(msg)-1] {
		msg[1+i] = 'a'
	}
	publisher := uuid.New()
	// a gets 6 entries, then b 6, then c 6: 18 in all, room for 10.
	for _, room := range []string{"a", "b", "c"} {
		for range 6 {
			if _, err := n.Publish(ctx, room, publisher, msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	seqs := func(room string) []uint64 {
		h, err := n.History(ctx, room, 0)
		if err != nil {
			t.Fatal(err)
		}
		var s []uint64
		for _, e := range h.Entries {
			s = append(s, e.Seq)
		}
		return s
	}
	// The budget trims one room at a time, after the reports that went
	// over it: wait until it has evicted the 8 entries over it.
	waitUntil(t, "8 entries evicted", func() bool {
		return n.Stats().HistoryEvicted.Load() >= 8 && n.Stats().HistoryBytes.Load() <= int64(budget)
	})
	a, b, c := seqs("a"), seqs("b"), seqs("c")
	kept := len(a) + len(b) + len(c)
	if kept != 10 {
		t.Fatalf("kept a %v b %v c %v: %d entries, want the 10 newest", a, b, c, kept)
	}
	// Oldest first: a lost everything, b its oldest two, c nothing.
	if len(a) != 0 || !slices.Equal(b, []uint64{3, 4, 5, 6}) || !slices.Equal(c, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("kept a %v b %v c %v, want a [] b [3 4 5 6] c [1..6]", a, b, c)
	}
	if got := n.Stats().HistoryEvicted.Load(); got != 8 {
		t.Fatalf("HistoryEvicted = %d, want 8", got)
	}
	if got, want := n.Stats().HistoryBytes.Load(), int64(10*one); got != want {
		t.Fatalf("HistoryBytes = %d, want %d", got, want)
	}
}

// waitUntil polls cond until it is true, failing the test after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-poll.C:
		}
	}
}
