package socket

import (
	"testing"
	"time"
)

// TestFirstHeartbeatsAreSpread: sockets that connect together must not
// ping together. Their first ticks fall in the second half of the
// interval, and not all at one point of it.
func TestFirstHeartbeatsAreSpread(t *testing.T) {
	const every = 5 * time.Second
	lo, hi := every, time.Duration(0)
	for range 1000 {
		d := firstTick(every)
		if d < every/2 || d > every {
			t.Fatalf("first tick after %v, want within [%v, %v]", d, every/2, every)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	// 1 000 uniform draws over 2.5 s leave a 250 ms gap at either end
	// with odds of 0.9^1000, about 1e-46.
	if lo > every/2+every/20 || hi < every-every/20 {
		t.Fatalf("first ticks span only [%v, %v] of [%v, %v]", lo, hi, every/2, every)
	}
}
