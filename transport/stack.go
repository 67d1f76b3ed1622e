package transport

// growStack grows the calling goroutine's stack to 8 KiB in one step,
// while the goroutine is shallow and the copy is cheap. Goroutines start
// with a 2 KiB stack (less than an idle connection's reader needs to stay
// small is all it may keep), and coder/websocket's read and write paths
// need several KiB: left to itself the stack doubles twice from deep down,
// and each doubling copies the stack and adjusts every frame on it. Stack
// copying was 13% of the server's CPU when clients connect and leave at a
// high rate; the GC shrinks the stack back once the goroutine waits idle.
//
//go:noinline
func growStack() byte {
	// 5 KiB of frame: with the caller's ~1 KiB and the runtime's guard,
	// the new stack needs 8 KiB and no more.
	var pad [5 << 10]byte
	return pad[stackIndex]
}

// growStackForUpgrade grows the handler goroutine's stack to 16 KiB before
// the upgrade, which needs about that much (net/http formats the response
// headers deep down): one copy of a shallow stack instead of two of a deep
// one. It is the handler's first call: a header look-up of the checks
// before the upgrade (net/textproto canonicalising a key) was where the
// stack first doubled, 3 % of the server's CPU when clients connect and
// leave at a high rate.
//
//go:noinline
func growStackForUpgrade() byte {
	var pad [11 << 10]byte
	return pad[stackIndex]
}

// stackIndex, which nothing writes, keeps the compiler from dropping pad.
var stackIndex int
