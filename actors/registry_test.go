package actors

import (
	"runtime"
	"testing"

	"github.com/lobby/lobby/actors/internal/procreg"
	"github.com/lobby/lobby/actors/socket/sockettest"
)

func registryCount(n *Node) int {
	total := 0
	for _, b := range n.system.ProcessRegistry.LocalPIDs.LocalPIDs {
		total += b.Count()
	}
	return total
}

// TestRegistryStaysSmall: a node's process registry has procreg.Buckets
// buckets, still finds what the actor system registered before the swap,
// forgets stopped actors, and a node that has started and stopped
// thousands of sessions holds well under protoactor's 18 MB of maps.
func TestRegistryStaysSmall(t *testing.T) {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	n := newTestNode(t, Config{History: -1})
	if got := len(n.system.ProcessRegistry.LocalPIDs.LocalPIDs); got != procreg.Buckets {
		t.Fatalf("registry has %d buckets, want %d", got, procreg.Buckets)
	}
	for _, id := range []string{"deadletter", "eventstream"} {
		if _, ok := n.system.ProcessRegistry.GetLocal(id); !ok {
			t.Fatalf("%q lost in the registry swap", id)
		}
	}
	start := registryCount(n)
	for range 3000 {
		c := sockettest.NewConn()
		pid := n.Spawn(n.SessionProps(c, Join{Room: "r"}))
		c.Next(t) // welcome: the session is registered and in its room
		n.Stop(pid)
	}
	if got := registryCount(n); got > start+1 { // +1: the room, if it still lingers
		t.Fatalf("registry holds %d processes after every session stopped, started with %d", got, start)
	}

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("live heap grew %d KB", grew>>10)
	if grew > 3<<20 {
		t.Fatalf("a node that served 3 000 sessions holds %d KB of live heap, want < 3 MB", grew>>10)
	}
}
