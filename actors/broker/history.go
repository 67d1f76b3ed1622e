package broker

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/google/uuid"
)

// historyLimits bounds what a room retains.
type historyLimits struct {
	// count is the most messages kept; 0 keeps none.
	count int
	// ttl is how long a message is kept.
	ttl time.Duration
	// bytes bounds the messages' total size, so that a few large publishes
	// cannot make a room hold count times their size.
	bytes int
	// keepLast keeps the last message past ttl: the room's latest value.
	keepLast bool
}

// latestRecheck is when a room that holds only its latest value is next
// looked at: it keeps it, but its room need not wait longer than this to
// ask again.
const latestRecheck = 24 * time.Hour

// entry is one message of a room's history.
type entry struct {
	seq uint64
	at  time.Time
	id  uuid.UUID
	msg json.RawMessage
}

// Memory an entry costs besides its message, counted so that its charge is
// what it really holds: each frame adds the sender's id, the room's name
// (at most 64 bytes), the keys and the seq to the message; the entry
// itself, its slot in the history and allocation rounding add the rest.
const (
	frameOverhead = 160
	entryOverhead = 192
)

// size is what an entry is charged against historyLimits.bytes and the
// node's history budget: its message and both the frames a room encodes
// of it (text and lobby.v1), so that the charge never falls short of
// what a message held in this process comes to cost.
func (e *entry) size() int { return 3*len(e.msg) + 2*frameOverhead + entryOverhead }

// history is a room's last messages, oldest first, with consecutive seqs.
// It belongs to its stream, under the MemoryBroker's mutex.
type history struct {
	limits  historyLimits
	entries []*entry
	bytes   int
}

func (h *history) len() int { return len(h.entries) }

func (h *history) add(e *entry, now time.Time) {
	if h.limits.count <= 0 {
		return
	}
	h.entries = append(h.entries, e)
	h.bytes += e.size()
	drop := 0
	for len(h.entries)-drop > h.limits.count || h.bytes > h.limits.bytes && len(h.entries)-drop > 1 {
		h.bytes -= h.entries[drop].size()
		drop++
	}
	h.dropOldest(drop)
	h.expire(now)
}

// expire drops the entries older than the ttl.
func (h *history) expire(now time.Time) {
	drop, keep := 0, 0
	if h.limits.keepLast {
		keep = 1
	}
	for drop < len(h.entries)-keep && now.Sub(h.entries[drop].at) >= h.limits.ttl {
		h.bytes -= h.entries[drop].size()
		drop++
	}
	h.dropOldest(drop)
}

func (h *history) dropOldest(n int) {
	if n == 0 {
		return
	}
	clear(h.entries[:n])
	h.entries = slices.Delete(h.entries, 0, n)
}

// trim drops the oldest entries until bytes are freed or the oldest left
// is newer than notAfter, dropping at least one. It returns how many it
// dropped.
func (h *history) trim(bytes int, notAfter time.Time) int {
	drop, freed := 0, 0
	for drop < len(h.entries) && freed < bytes && (drop == 0 || !h.entries[drop].at.After(notAfter)) {
		freed += h.entries[drop].size()
		drop++
	}
	h.bytes -= freed
	h.dropOldest(drop)
	return drop
}

// since returns the entries after seq since, when they are every message
// after it up to last (the room's last seq); complete is false when the
// history does not reach back that far, and the entries are then what it
// has.
func (h *history) since(since, last uint64) (entries []*entry, complete bool) {
	if since >= last {
		return nil, since == last
	}
	if len(h.entries) == 0 {
		return nil, false
	}
	first := h.entries[0].seq
	if first > since+1 {
		return h.entries, false
	}
	return h.entries[since+1-first:], true
}

// nextExpiry is when the oldest entry expires; a latest value kept alone
// never does, and says when to look again.
func (h *history) nextExpiry() (time.Time, bool) {
	if len(h.entries) == 0 {
		return time.Time{}, false
	}
	at := h.entries[0].at.Add(h.limits.ttl)
	if h.limits.keepLast && len(h.entries) == 1 {
		at = latestValueExpiry
	}
	return at, true
}

// latestValueExpiry is the expiry of a latest value kept alone: later than
// any other, so that it is the last the budget takes.
var latestValueExpiry = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
