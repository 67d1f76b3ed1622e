package broker

import (
	"slices"
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
			b.Append(room, publisher, msg, func(seq uint64, err error) {
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
