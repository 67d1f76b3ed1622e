package chat

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
)

// TestJoinOrder: leaves make holes that are squeezed out later; whatever
// the leaves, the members are listed in join order and found by id, and
// the holes never outnumber the members.
func TestJoinOrder(t *testing.T) {
	var o joinOrder[member]
	pid := &actor.PID{Id: "m"}
	var want []uuid.UUID
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 5000 {
		if len(want) > 0 && rng.IntN(3) == 0 {
			i := rng.IntN(len(want))
			if gone, ok := o.remove(want[i]); !ok || gone.id != want[i] {
				t.Fatalf("step %d: member %d not found", step, i)
			}
			if o.get(want[i]) != nil {
				t.Fatalf("step %d: member %d still found after its leave", step, i)
			}
			want = slices.Delete(want, i, i+1)
		} else {
			id := uuid.New()
			if !o.add(member{id: id, pid: pid}) {
				t.Fatalf("step %d: a new member was refused", step)
			}
			want = append(want, id)
		}
		if got := o.appendIDs(nil); !slices.Equal(got, want) || o.len() != len(want) {
			t.Fatalf("step %d: members %d, want %d in join order", step, len(got), len(want))
		}
		if holes := len(o.list) - o.len(); holes > o.len() {
			t.Fatalf("step %d: %d holes for %d members", step, holes, o.len())
		}
		if len(want) > 0 {
			last := want[len(want)-1]
			if m := o.get(last); m == nil || m.id != last {
				t.Fatalf("step %d: the last member is not found by its id", step)
			}
			if o.add(member{id: last, pid: pid}) {
				t.Fatalf("step %d: a member was added twice", step)
			}
		}
	}
	if _, ok := o.remove(uuid.New()); ok {
		t.Fatal("removed a member that never joined")
	}
	// The nil uuid marks holes: taken for a member, it would be counted
	// and never listed, and a squeeze would leave its index pointing at
	// another member's slot.
	if o.add(member{id: uuid.Nil, pid: pid}) || o.get(uuid.Nil) != nil {
		t.Fatal("the nil uuid was taken for a member")
	}
	for _, id := range want {
		o.remove(id)
	}
	if o.len() != 0 || o.list != nil {
		t.Fatalf("emptied: %d members, %d slots kept", o.len(), len(o.list))
	}
}
