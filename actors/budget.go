package actors

import (
	"container/heap"
	"math"

	"github.com/asynkron/protoactor-go/actor"
)

// historyBudget keeps the rooms' histories, all together, under a byte
// budget (Config.HistoryBudget): each room's own limits (count, age,
// bytes) bound one room, but not how many rooms keep a history at once.
// Rooms report what their history holds after every change; when the total
// is over the budget, the budget asks the room holding the oldest entry to
// drop its oldest entries, then the next, so that entries are evicted
// oldest first across rooms.
//
// One trim is in flight at a time: the room's answer (its next report)
// says what it freed before the budget asks again. The total may run over
// the budget by what is published meanwhile, a mailbox's worth.
type historyBudget struct {
	limit int
	stats *Stats
	total int
	rooms map[string]*roomUsage // by room PID id
	byAge usageHeap
}

// roomUsage is one room's last report.
type roomUsage struct {
	pid   *actor.PID
	bytes int
	// oldest is when the room's oldest entry was added (UnixNano).
	oldest int64
	// trimming is set while a trimHistory is on its way to the room.
	trimming bool
	index    int // in byAge
}

// historyUsage is a room's report of what its history holds. Room → budget.
type historyUsage struct {
	room   *actor.PID
	bytes  int
	oldest int64
	// evicted counts the entries the room dropped for a trimHistory.
	evicted int
}

// trimHistory asks a room to drop its oldest entries until it has freed
// bytes, or its oldest entry is newer than notAfter (UnixNano): another
// room's entries are older then. It drops at least one. Budget → room,
// answered with historyUsage.
type trimHistory struct {
	bytes    int
	notAfter int64
}

func newHistoryBudget(limit int, stats *Stats) *historyBudget {
	return &historyBudget{limit: limit, stats: stats, rooms: make(map[string]*roomUsage)}
}

func (b *historyBudget) Receive(ctx actor.Context) {
	m, ok := ctx.Message().(*historyUsage)
	if !ok {
		return
	}
	if m.evicted > 0 {
		b.stats.HistoryEvicted.Add(uint64(m.evicted))
	}
	u := b.rooms[m.room.Id]
	switch {
	case u == nil && m.bytes == 0:
		return
	case u == nil:
		u = &roomUsage{pid: m.room, bytes: m.bytes, oldest: m.oldest}
		b.rooms[m.room.Id] = u
		heap.Push(&b.byAge, u)
		b.total += m.bytes
	case m.bytes == 0:
		b.total -= u.bytes
		heap.Remove(&b.byAge, u.index)
		delete(b.rooms, m.room.Id)
	default:
		b.total += m.bytes - u.bytes
		u.bytes, u.oldest, u.trimming = m.bytes, m.oldest, false
		heap.Fix(&b.byAge, u.index)
	}
	b.stats.HistoryBytes.Store(int64(b.total))
	b.enforce(ctx)
}

// enforce asks the room with the oldest entry to trim, if the total is
// over the budget and no trim is in flight.
func (b *historyBudget) enforce(ctx actor.Context) {
	if b.total <= b.limit || len(b.byAge) == 0 {
		return
	}
	oldest := b.byAge[0]
	if oldest.trimming {
		return
	}
	notAfter := int64(math.MaxInt64)
	for _, i := range []int{1, 2} { // the heap's next oldest is a child of its root
		if i < len(b.byAge) {
			notAfter = min(notAfter, b.byAge[i].oldest)
		}
	}
	oldest.trimming = true
	ctx.Send(oldest.pid, &trimHistory{bytes: b.total - b.limit, notAfter: notAfter})
}

// usageHeap orders rooms by their oldest entry (container/heap).
type usageHeap []*roomUsage

func (h usageHeap) Len() int           { return len(h) }
func (h usageHeap) Less(i, j int) bool { return h[i].oldest < h[j].oldest }
func (h usageHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *usageHeap) Push(x any) {
	u := x.(*roomUsage)
	u.index = len(*h)
	*h = append(*h, u)
}

func (h *usageHeap) Pop() any {
	old := *h
	u := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return u
}
