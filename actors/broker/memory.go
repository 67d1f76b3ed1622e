package broker

import (
	"container/heap"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// MemoryBroker is the Broker of a node on its own, the default: each
// room's stream lives in this process, numbered 1, 2, 3… under an epoch of
// its own, with its history bounded by the room limits (count, age, bytes)
// and all rooms' histories together by a byte budget, charged as each
// message is appended, so that the total never passes it whatever the
// rooms' mailboxes hold. A stream is forgotten once it has no history and
// no follower; the room then starts again under a new epoch.
//
// Every callback is called before the call that causes it returns, on the
// caller's goroutine: a room's append is acknowledged and delivered
// without waiting on anything. Several nodes in one process may share one
// MemoryBroker (its Publish and Subscribe carry their presence and direct
// messages), which is how the bridge is tested without NATS.
type MemoryBroker struct {
	mu      sync.Mutex
	limits  historyLimits
	budget  int // 0: none
	latest  func(string) bool
	stats   *MemoryStats
	streams map[string]*memStream
	// byAge orders the streams that hold history by their oldest entry:
	// the next to expire, and the first to lose an entry to the budget.
	byAge  streamHeap
	total  int
	expiry *time.Timer
	closed bool

	subs map[*memSub]struct{}

	// keys are the idempotency keys of the appends within window, node
	// wide, each with its message's seq; keyOrder is their order of
	// arrival (keyHead its first), which is also their order of expiry.
	// At most maxIdempotencyKeys are kept: past it the oldest is
	// forgotten before its window ends.
	window   time.Duration
	keys     map[idempotencyKey]keySeen
	keyOrder []keyArrival
	keyHead  int
}

// maxIdempotencyKeys bounds the idempotency keys a MemoryBroker keeps:
// with keys of 64 bytes they held 17 MiB, measured (about 270 bytes a
// key with the map's and the queue's overhead). A publisher
// past 65 536 keyed publishes a window (546 a second, for 2 min) has its
// oldest keys forgotten early, counted in MemoryStats.KeysEvicted.
const maxIdempotencyKeys = 1 << 16

type idempotencyKey struct{ room, key string }

type keySeen struct {
	seq uint64
	at  time.Time
}

type keyArrival struct {
	k  idempotencyKey
	at time.Time
}

// MemoryBrokerConfig bounds what a MemoryBroker keeps.
type MemoryBrokerConfig struct {
	// History, HistoryTTL and HistoryBytes bound one room's history; a
	// History of 0 keeps none. HistoryBudget bounds all rooms' together
	// (0: no bound). See Config.
	History       int
	HistoryTTL    time.Duration
	HistoryBytes  int
	HistoryBudget int
	// Latest says which rooms keep their last message past HistoryTTL
	// (their latest value). Nil means none.
	Latest func(room string) bool
	// Stats, when set, is kept told of what the histories hold; nil keeps
	// the broker's own.
	Stats *MemoryStats
	// IdempotencyWindow is how long an append's idempotency key is
	// remembered (Broker.Append). Zero means DefaultIdempotencyWindow.
	IdempotencyWindow time.Duration
}

// MemoryStats are a MemoryBroker's gauges and counters, for metrics:
// written by the broker under its mutex, read by anyone at any time.
type MemoryStats struct {
	// HistoryBytes is what the rooms' histories hold, in bytes of memory.
	HistoryBytes atomic.Int64
	// HistoryEvicted counts history entries dropped to keep the histories
	// under the budget.
	HistoryEvicted atomic.Uint64
	// KeysEvicted counts idempotency keys forgotten before their window
	// ended, to keep at most maxIdempotencyKeys.
	KeysEvicted atomic.Uint64
}

type memStream struct {
	name    string
	epoch   string
	last    uint64
	hist    history
	follows []*memFollow
	index   int // in byAge; -1 when not there
}

type memFollow struct {
	deliver func(StreamMessage) <-chan struct{}
}

// NewMemoryBroker makes a MemoryBroker. Close stops its expiry timer and
// its subscriptions.
func NewMemoryBroker(c MemoryBrokerConfig) *MemoryBroker {
	if c.Stats == nil {
		c.Stats = &MemoryStats{}
	}
	if c.IdempotencyWindow <= 0 {
		c.IdempotencyWindow = DefaultIdempotencyWindow
	}
	return &MemoryBroker{
		limits:  historyLimits{count: c.History, ttl: c.HistoryTTL, bytes: c.HistoryBytes},
		budget:  c.HistoryBudget,
		latest:  c.Latest,
		stats:   c.Stats,
		streams: make(map[string]*memStream),
		subs:    make(map[*memSub]struct{}),
		window:  c.IdempotencyWindow,
		keys:    make(map[idempotencyKey]keySeen),
	}
}

// Close stops the broker: its timer, and its subscriptions' goroutines.
func (b *MemoryBroker) Close() {
	b.mu.Lock()
	b.closed = true
	if b.expiry != nil {
		b.expiry.Stop()
	}
	subs := b.subs
	b.subs = map[*memSub]struct{}{}
	b.mu.Unlock()
	for s := range subs {
		s.stop()
	}
}

// Epoch implements Broker: each room has its own.
func (b *MemoryBroker) Epoch() string { return "" }

// Up implements Broker: a process is always up to itself.
func (b *MemoryBroker) Up() bool { return true }

// Ready implements Broker: always ready.
func (b *MemoryBroker) Ready() error { return nil }

// FollowRefused implements Broker: a process never refuses itself.
func (b *MemoryBroker) FollowRefused() bool { return false }

// Watch implements Broker: Up never changes.
func (b *MemoryBroker) Watch(func(bool)) {}

// WatchEpoch implements Broker: a stream is never lost while it is used.
func (b *MemoryBroker) WatchEpoch(func(string)) {}

// stream returns room's stream, made if need be. b.mu is held.
func (b *MemoryBroker) stream(room string) *memStream {
	s, ok := b.streams[room]
	if !ok {
		limits := b.limits
		limits.keepLast = b.latest != nil && b.latest(room)
		s = &memStream{name: room, epoch: uuid.NewString()[:8], hist: history{limits: limits}, index: -1}
		b.streams[room] = s
	}
	return s
}

// Append implements Broker.
func (b *MemoryBroker) Append(room string, from uuid.UUID, msg json.RawMessage, key string, done func(uint64, bool, error)) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if key != "" {
		b.expireKeys(now)
		if seen, ok := b.keys[idempotencyKey{room: room, key: key}]; ok {
			done(seen.seq, true, nil)
			return
		}
	}
	s := b.stream(room)
	s.last++
	e := &entry{seq: s.last, at: now, id: from, msg: msg}
	if key != "" {
		b.rememberKey(idempotencyKey{room: room, key: key}, e.seq, now)
	}
	before := s.hist.bytes
	s.hist.add(e, now)
	b.changed(s, before)
	b.enforceBudget()
	// Published once the budget holds again: a scrape never sees the
	// moment between the charge and the eviction it calls for.
	b.stats.HistoryBytes.Store(int64(b.total))
	sm := StreamMessage{Seq: e.seq, From: from, Msg: msg, At: now}
	for _, f := range s.follows {
		// Delivered in the caller's turn, which takes it at once: no
		// follow holds more than this message, and what deliver says
		// of its room for more is moot.
		_ = f.deliver(sm)
	}
	done(e.seq, false, nil)
	b.forgetIfUnused(s)
}

// rememberKey records k as the key of the message seq. b.mu is held.
func (b *MemoryBroker) rememberKey(k idempotencyKey, seq uint64, now time.Time) {
	if len(b.keys) >= maxIdempotencyKeys {
		b.dropOldestKey()
		b.stats.KeysEvicted.Add(1)
	}
	b.keys[k] = keySeen{seq: seq, at: now}
	b.keyOrder = append(b.keyOrder, keyArrival{k: k, at: now})
}

// expireKeys forgets the keys older than the window. b.mu is held.
func (b *MemoryBroker) expireKeys(now time.Time) {
	for b.keyHead < len(b.keyOrder) && now.Sub(b.keyOrder[b.keyHead].at) >= b.window {
		b.dropOldestKey()
	}
}

// dropOldestKey forgets the oldest key. b.mu is held.
func (b *MemoryBroker) dropOldestKey() {
	if b.keyHead == len(b.keyOrder) {
		return
	}
	a := b.keyOrder[b.keyHead]
	b.keyOrder[b.keyHead] = keyArrival{}
	b.keyHead++
	if seen, ok := b.keys[a.k]; ok && seen.at.Equal(a.at) {
		delete(b.keys, a.k)
	}
	// The queue's dead front is given back once it is half of it.
	if b.keyHead > len(b.keyOrder)/2 {
		n := copy(b.keyOrder, b.keyOrder[b.keyHead:])
		clear(b.keyOrder[n:])
		b.keyOrder, b.keyHead = b.keyOrder[:n], 0
	}
}

// Follow implements Broker.
func (b *MemoryBroker) Follow(room string, deliver func(StreamMessage) <-chan struct{}, started func(uint64, string)) func() {
	b.mu.Lock()
	s := b.stream(room)
	f := &memFollow{deliver: deliver}
	s.follows = append(s.follows, f)
	started(s.last, s.epoch)
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for i, g := range s.follows {
			if g == f {
				s.follows = append(s.follows[:i], s.follows[i+1:]...)
				break
			}
		}
		b.forgetIfUnused(s)
	}
}

// Read implements Broker.
func (b *MemoryBroker) Read(room string, after, upto uint64, done func(ReadResult)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.streams[room]
	if !ok {
		done(ReadResult{Complete: after == 0})
		return
	}
	before := s.hist.bytes
	s.hist.expire(time.Now())
	b.changed(s, before)
	res := ReadResult{Last: s.last, Epoch: s.epoch, Held: s.hist.len()}
	if res.Held > 0 {
		res.HeldUntil = s.hist.entries[res.Held-1].at.Add(b.limits.ttl)
		if recheck := time.Now().Add(latestRecheck); s.hist.limits.keepLast && res.HeldUntil.Before(recheck) {
			res.HeldUntil = recheck
		}
	}
	entries, complete := s.hist.since(after, s.last)
	res.Complete = complete
	for _, e := range entries {
		if upto != 0 && e.seq > upto {
			break
		}
		res.Messages = append(res.Messages, StreamMessage{Seq: e.seq, From: e.id, Msg: e.msg, At: e.at})
	}
	done(res)
	b.forgetIfUnused(s)
}

// Replay implements Broker: a node's history is all it keeps, so it is
// Read, within limit.
func (b *MemoryBroker) Replay(room string, after, upto uint64, limit ReplayLimit, done func(ReadResult)) {
	b.Read(room, after, upto, func(res ReadResult) {
		done(withinLimit(res, limit))
	})
}

// withinLimit is res, or res without its messages and incomplete when
// they are more than limit.
func withinLimit(res ReadResult, limit ReplayLimit) ReadResult {
	bytes := 0
	for _, m := range res.Messages {
		bytes += len(m.Msg)
	}
	if limit.Over(len(res.Messages), bytes) {
		res.Messages, res.Complete = nil, false
	}
	return res
}

// changed accounts for a change of s's history, which held before bytes.
// b.mu is held.
func (b *MemoryBroker) changed(s *memStream, before int) {
	b.total += s.hist.bytes - before
	switch {
	case s.hist.len() == 0 && s.index >= 0:
		heap.Remove(&b.byAge, s.index)
	case s.hist.len() > 0 && s.index < 0:
		heap.Push(&b.byAge, s)
	case s.index >= 0:
		heap.Fix(&b.byAge, s.index)
	}
	if s.hist.bytes <= before { // a growth is published by Append, after enforceBudget
		b.stats.HistoryBytes.Store(int64(b.total))
	}
	b.armExpiry()
}

// enforceBudget drops the oldest entries, whatever their room, until the
// histories fit the budget. b.mu is held.
func (b *MemoryBroker) enforceBudget() {
	if b.budget <= 0 {
		return
	}
	for b.total > b.budget && len(b.byAge) > 0 {
		s := b.byAge[0]
		before := s.hist.bytes
		s.hist.trim(1, time.Time{}) // drops exactly its oldest entry
		b.stats.HistoryEvicted.Add(1)
		b.changed(s, before)
		b.forgetIfUnused(s)
	}
}

// armExpiry makes sure the broker wakes when the oldest entry of all
// expires. b.mu is held.
func (b *MemoryBroker) armExpiry() {
	if len(b.byAge) == 0 || b.closed {
		return
	}
	next, _ := b.byAge[0].hist.nextExpiry()
	d := min(max(time.Until(next), 0), latestRecheck) + time.Millisecond
	if b.expiry == nil {
		b.expiry = time.AfterFunc(d, b.expire)
		return
	}
	b.expiry.Reset(d)
}

func (b *MemoryBroker) expire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	for len(b.byAge) > 0 {
		s := b.byAge[0]
		if next, _ := s.hist.nextExpiry(); next.After(now) {
			break
		}
		before := s.hist.bytes
		s.hist.expire(now)
		b.changed(s, before)
		b.forgetIfUnused(s)
	}
	b.armExpiry()
}

// forgetIfUnused drops a stream with no history and no follower. b.mu is
// held.
func (b *MemoryBroker) forgetIfUnused(s *memStream) {
	if s.hist.len() == 0 && len(s.follows) == 0 && b.streams[s.name] == s {
		delete(b.streams, s.name)
	}
}

// streamHeap orders streams by their oldest entry (container/heap).
type streamHeap []*memStream

func (h streamHeap) Len() int { return len(h) }
func (h streamHeap) Less(i, j int) bool {
	// By expiry: by the oldest entry, the ttl being every room's, except
	// that a latest value kept alone comes last.
	a, _ := h[i].hist.nextExpiry()
	b, _ := h[j].hist.nextExpiry()
	return a.Before(b)
}
func (h streamHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *streamHeap) Push(x any) {
	s := x.(*memStream)
	s.index = len(*h)
	*h = append(*h, s)
}
func (h *streamHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	s.index = -1
	*h = old[:len(old)-1]
	return s
}

// memSub is one subscription: its own goroutine calls handle, so that a
// handler that waits (the bridge's direct messages ask the lobby) holds
// up neither the publisher nor other subscriptions. Its queue is bounded;
// past it a message is dropped, as NATS drops for a slow consumer.
type memSub struct {
	pattern []string
	queue   chan memMsg
	done    chan struct{}
	once    sync.Once
}

type memMsg struct {
	subject, reply string
	data           []byte
}

const memSubQueue = 1024

func (s *memSub) stop() {
	s.once.Do(func() {
		close(s.queue)
		<-s.done
	})
}

// errBadSubject refuses a subject NATS would refuse.
var errBadSubject = errors.New("broker: bad subject")

// Publish implements Broker.
func (b *MemoryBroker) Publish(subject, reply string, data []byte) error {
	tokens := strings.Split(subject, ".")
	msg := memMsg{subject: subject, reply: reply, data: append([]byte(nil), data...)}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if subjectMatches(s.pattern, tokens) {
			select {
			case s.queue <- msg:
			default:
			}
		}
	}
	return nil
}

// Subscribe implements Broker.
func (b *MemoryBroker) Subscribe(subject string, handle func(subject, reply string, data []byte)) (func(), error) {
	if subject == "" || strings.Contains(subject, "..") {
		return nil, errBadSubject
	}
	s := &memSub{pattern: strings.Split(subject, "."), queue: make(chan memMsg, memSubQueue), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for m := range s.queue {
			handle(m.subject, m.reply, m.data)
		}
	}()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		s.stop()
		return func() {}, nil
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
		s.stop()
	}, nil
}

// subjectMatches matches NATS subjects: "*" is one token, a final ">"
// one or more.
func subjectMatches(pattern, tokens []string) bool {
	for i, p := range pattern {
		if p == ">" {
			return len(tokens) > i
		}
		if i >= len(tokens) || p != "*" && p != tokens[i] {
			return false
		}
	}
	return len(pattern) == len(tokens)
}
