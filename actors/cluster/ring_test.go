package cluster

import (
	"slices"
	"testing"
)

// TestLastN checks that a history read keeps only the last n messages
// while it reads, in order, and never holds more than n.
func TestLastN(t *testing.T) {
	for _, tc := range []struct{ n, pushed int }{{0, 5}, {1, 0}, {1, 3}, {5, 3}, {5, 5}, {5, 6}, {100, 10_000}, {7, 10_000}} {
		l := lastN[int]{n: tc.n}
		for i := range tc.pushed {
			l.push(i)
			if len(l.buf) > tc.n || cap(l.buf) > max(tc.n, 8) {
				t.Fatalf("n %d: holds %d (cap %d) after %d pushes", tc.n, len(l.buf), cap(l.buf), i+1)
			}
		}
		var want []int
		for i := max(0, tc.pushed-tc.n); i < tc.pushed; i++ {
			want = append(want, i)
		}
		if got := l.slice(); !slices.Equal(got, want) {
			t.Fatalf("n %d, %d pushed: %v, want %v", tc.n, tc.pushed, got, want)
		}
		if l.dropped != (tc.pushed > tc.n) {
			t.Fatalf("n %d, %d pushed: dropped %v", tc.n, tc.pushed, l.dropped)
		}
	}
}
