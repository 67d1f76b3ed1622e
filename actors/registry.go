package actors

import (
	"github.com/asynkron/protoactor-go/actor"
	cmap "github.com/orcaman/concurrent-map"
)

// registryBuckets is how many buckets the process registry keeps. protoactor
// hashes every actor id into 1 024 concurrent maps of 32 shards each, 32 768
// Go maps in all. Ids are sequential, so a server that starts and stops
// sessions touches every one of them, and each keeps the table it grew for
// one entry: about 12 MB of pointers (18 MB with the empty maps) that every
// garbage collection marks, for a node that may hold a hundred actors. In
// churn that marking was most of the GC's work and about a tenth of the
// server's CPU. 32 buckets (1 024 maps) keep lock contention negligible on
// any core count we run on, and a map holding a hundred entries at 100 000
// connections is still O(1).
const registryBuckets = 32

// shrinkRegistry replaces system's process registry buckets with
// registryBuckets ones, moving what the system registered while it was
// built (dead letters, the event stream). It must run before anything else
// uses the system: the swap is not synchronised.
func shrinkRegistry(system *actor.ActorSystem) {
	old := system.ProcessRegistry.LocalPIDs
	small := &actor.SliceMap{LocalPIDs: make([]cmap.ConcurrentMap, registryBuckets)}
	for i := range small.LocalPIDs {
		small.LocalPIDs[i] = cmap.New()
	}
	for _, bucket := range old.LocalPIDs {
		for id, proc := range bucket.Items() {
			small.GetBucket(id).Set(id, proc)
		}
	}
	system.ProcessRegistry.LocalPIDs = small
}
