package actors

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
)

// TestRoomMembersKeepJoinOrder: leaves make holes that are squeezed out
// later; whatever the leaves, the members are listed in join order and
// found by id.
func TestRoomMembersKeepJoinOrder(t *testing.T) {
	r := newRoom("order", historyLimits{}, nil)
	pid := &actor.PID{Id: "m"}
	var want []uuid.UUID
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 5000 {
		if len(want) > 0 && rng.IntN(3) == 0 {
			i := rng.IntN(len(want))
			if _, ok := r.remove(want[i]); !ok {
				t.Fatalf("step %d: member %d not found", step, i)
			}
			want = slices.Delete(want, i, i+1)
		} else {
			id := uuid.New()
			r.add(member{id: id, pid: pid})
			want = append(want, id)
		}
		if got := r.memberIDs(); !slices.Equal(got, want) || r.present != len(want) {
			t.Fatalf("step %d: members %d, want %d in join order", step, len(got), len(want))
		}
		if holes := len(r.members) - r.present; holes > r.present {
			t.Fatalf("step %d: %d holes for %d members", step, holes, r.present)
		}
	}
	if _, ok := r.remove(uuid.New()); ok {
		t.Fatal("removed a member that never joined")
	}
}
