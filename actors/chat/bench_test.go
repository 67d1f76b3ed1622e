package chat

import (
	"slices"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
)

// BenchmarkRoomLeave measures the member bookkeeping of a leave and a join
// in a room of 20 000 (not the notices they send, O(members) either way):
// "holes" is the room's, "reindex" the slice delete and re-index of every
// later member it replaced, for the ratio in one run.
//
//	go test ./actors/chat -run '^$' -bench RoomLeave
func BenchmarkRoomLeave(b *testing.B) {
	const size = 20_000
	ids := make([]uuid.UUID, size)
	for i := range ids {
		ids[i] = uuid.New()
	}
	pid := &actor.PID{Id: "member"}
	b.Run("holes", func(b *testing.B) {
		r := newRoom(roomConfig{name: "big", stats: &Stats{}})
		for _, id := range ids {
			r.members.add(member{id: id, pid: pid})
		}
		b.ResetTimer()
		for i := range b.N {
			// The member who joined longest ago leaves and comes back:
			// the worst case for a re-index, a steady churn for holes.
			id := ids[i%size]
			r.members.remove(id)
			r.members.add(member{id: id, pid: pid})
		}
	})
	b.Run("reindex", func(b *testing.B) {
		members := make([]member, 0, size)
		index := make(map[uuid.UUID]int, size)
		for _, id := range ids {
			index[id] = len(members)
			members = append(members, member{id: id, pid: pid})
		}
		b.ResetTimer()
		for i := range b.N {
			id := ids[i%size]
			j := index[id]
			members = slices.Delete(members, j, j+1)
			delete(index, id)
			for k := j; k < len(members); k++ {
				index[members[k].id] = k
			}
			index[id] = len(members)
			members = append(members, member{id: id, pid: pid})
		}
	})
}
