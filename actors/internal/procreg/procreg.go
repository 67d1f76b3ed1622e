package procreg

import (
	"github.com/asynkron/protoactor-go/actor"
	cmap "github.com/orcaman/concurrent-map"
)

// Buckets is how many buckets the process registry keeps. protoactor
// hashes every actor id into 1 024 concurrent maps of 32 shards each, 32 768
// Go maps in all. Ids are sequential, so a server that starts and stops
// sessions touches every one of them, and each keeps the table it grew for
// one entry: about 12 MB of pointers (18 MB with the empty maps) that every
// garbage collection marks, for a node that may hold a hundred actors. In
// churn that marking was most of the GC's work and about a tenth of the
// server's CPU; 32 buckets still cost 3 % of the instructions of a
// connect/close cycle, 8 buckets 1 %. One bucket is one concurrent map with
// its own 32 locked shards: lookups are rare (a PID caches its process
// after the first), spawns and stops spread over the 32 locks, and a shard
// holding thousands of entries at 100 000 connections is still one map
// access.
const Buckets = 1

// Shrink replaces system's process registry buckets with
// Buckets ones, moving what the system registered while it was
// built (dead letters, the event stream). It must run before anything else
// uses the system: the swap is not synchronised.
func Shrink(system *actor.ActorSystem) {
	old := system.ProcessRegistry.LocalPIDs
	small := &actor.SliceMap{LocalPIDs: make([]cmap.ConcurrentMap, Buckets)}
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
