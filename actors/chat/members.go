package chat

import (
	"iter"

	"github.com/google/uuid"

	"github.com/lobby/lobby/messages"
)

// joinOrder is a room's members in the order they joined, as the protocol
// lists them (a welcome's members, a members answer), with a leave in O(1)
// amortised time: a room of tens of thousands with members coming and
// going must not move every later member on each leave. Both the room and
// the cluster room keep their members in one.
//
// A leave makes a hole (a zero T) instead of moving every later member;
// the holes are squeezed out, keeping the order, once they outnumber the
// members, so that iterating never costs more than twice the members.
type joinOrder[T interface{ key() uuid.UUID }] struct {
	list  []T
	index map[uuid.UUID]int
	n     int
}

// len is the number of members, holes not counted.
func (o *joinOrder[T]) len() int { return o.n }

// add appends v, unless a member with its key is in already. The nil
// uuid marks a hole and is never a member (a remote id can come from
// another node's malformed presence message).
func (o *joinOrder[T]) add(v T) bool {
	id := v.key()
	if _, ok := o.index[id]; ok || id == uuid.Nil {
		return false
	}
	if o.index == nil {
		o.index = make(map[uuid.UUID]int)
	}
	o.index[id] = len(o.list)
	o.list = append(o.list, v)
	o.n++
	return true
}

// get returns the member with key id, or nil. The pointer is valid until
// the next add or remove.
func (o *joinOrder[T]) get(id uuid.UUID) *T {
	i, ok := o.index[id]
	if !ok {
		return nil
	}
	return &o.list[i]
}

// remove takes the member with key id out, leaving a hole.
func (o *joinOrder[T]) remove(id uuid.UUID) (T, bool) {
	var zero T
	i, ok := o.index[id]
	if !ok {
		return zero, false
	}
	gone := o.list[i]
	o.list[i] = zero
	delete(o.index, id)
	o.n--
	if holes := len(o.list) - o.n; holes > o.n {
		o.squeeze()
	}
	return gone, true
}

// squeeze removes the holes, keeping the join order.
func (o *joinOrder[T]) squeeze() {
	kept := o.list[:0]
	for _, v := range o.list {
		if v.key() != uuid.Nil {
			o.index[v.key()] = len(kept)
			kept = append(kept, v)
		}
	}
	clear(o.list[len(kept):])
	o.list = kept
	if o.n == 0 {
		// A room that emptied gives its grown slice back.
		o.list = nil
	}
}

// all yields every member in join order; the pointers are valid until
// the next add or remove.
func (o *joinOrder[T]) all() iter.Seq[*T] {
	return func(yield func(*T) bool) {
		for i := range o.list {
			if o.list[i].key() == uuid.Nil {
				continue
			}
			if !yield(&o.list[i]) {
				return
			}
		}
	}
}

// appendIDs appends the members' keys in join order to ids.
func (o *joinOrder[T]) appendIDs(ids []uuid.UUID) []uuid.UUID {
	for v := range o.all() {
		ids = append(ids, (*v).key())
	}
	return ids
}

// speakers counts a room's members per protocol, so that a frame is
// encoded only for the protocols someone in the room speaks. The room
// and the cluster room keep one each and build their frames through it.
type speakers struct{ text, json int }

// count adds n members (1, or -1 for a leave) speaking p.
func (s *speakers) count(p messages.Protocol, n int) {
	if p == messages.ProtocolJSON {
		s.json += n
	} else {
		s.text += n
	}
}

// messageFrame is a room message's frame, in every protocol spoken.
func (s speakers) messageFrame(e *entry, room string) *messages.WsMessage {
	frame := &messages.WsMessage{}
	if s.text > 0 {
		frame.Data = e.textFrame(room)
	}
	if s.json > 0 {
		frame.JSON = e.jsonFrame(room)
	}
	return frame
}

// presenceFrame is the notice that id joined or left (kind "joined" or
// "left"), in every protocol spoken.
func (s speakers) presenceFrame(kind string, id uuid.UUID, room, name string) *messages.WsMessage {
	frame := &messages.WsMessage{}
	if s.text > 0 {
		if kind == "joined" {
			frame.Data = appendJoined(nil, id)
		} else {
			frame.Data = appendDisconnected(nil, id)
		}
	}
	if s.json > 0 {
		frame.JSON = appendV1Presence(nil, kind, id, room, name)
	}
	return frame
}
