package broker

import (
	"slices"
	"testing"
	"time"
)

func TestHistory(t *testing.T) {
	t0 := time.Unix(1000, 0)
	fill := func(limits historyLimits, n int, sizes ...int) *history {
		h := &history{limits: limits}
		for i := 1; i <= n; i++ {
			size := 1
			if i-1 < len(sizes) {
				size = sizes[i-1]
			}
			h.add(&entry{seq: uint64(i), at: t0.Add(time.Duration(i) * time.Second), msg: make([]byte, size)}, t0.Add(time.Duration(i)*time.Second))
		}
		return h
	}
	seqs := func(es []*entry) []uint64 {
		var s []uint64
		for _, e := range es {
			s = append(s, e.seq)
		}
		return s
	}
	big := historyLimits{count: 100, ttl: time.Hour, bytes: 1 << 20}
	// sz is what an entry with a message of n bytes is charged.
	sz := func(n int) int { return (&entry{msg: make([]byte, n)}).size() }
	tests := []struct {
		name     string
		h        *history
		expireAt time.Time
		since    uint64
		last     uint64
		want     []uint64
		complete bool
	}{
		{name: "all kept", h: fill(big, 5), since: 2, last: 5, want: []uint64{3, 4, 5}, complete: true},
		{name: "nothing after last", h: fill(big, 5), since: 5, last: 5, complete: true},
		{name: "since beyond last", h: fill(big, 5), since: 7, last: 5, complete: false},
		{name: "count trims oldest", h: fill(historyLimits{count: 3, ttl: time.Hour, bytes: 1 << 20}, 5), since: 1, last: 5, want: []uint64{3, 4, 5}, complete: false},
		{name: "count trim reaches back", h: fill(historyLimits{count: 3, ttl: time.Hour, bytes: 1 << 20}, 5), since: 2, last: 5, want: []uint64{3, 4, 5}, complete: true},
		{name: "bytes trim oldest", h: fill(historyLimits{count: 100, ttl: time.Hour, bytes: 3 * sz(3)}, 4, 6, 3, 3, 3), since: 0, last: 4, want: []uint64{2, 3, 4}, complete: false},
		{name: "one oversized entry still kept", h: fill(historyLimits{count: 100, ttl: time.Hour, bytes: sz(10)}, 2, 1, 50), since: 1, last: 2, want: []uint64{2}, complete: true},
		{name: "ttl drops old", h: fill(historyLimits{count: 100, ttl: 3 * time.Second, bytes: 1 << 20}, 5), expireAt: t0.Add(7 * time.Second), since: 3, last: 5, want: []uint64{5}, complete: false},
		{name: "nothing kept", h: fill(historyLimits{count: 0}, 5), since: 3, last: 5, complete: false},
		{name: "ttl drops all", h: fill(historyLimits{count: 100, ttl: 3 * time.Second, bytes: 1 << 20}, 5), expireAt: t0.Add(time.Hour), since: 4, last: 5, complete: false},
		{name: "latest value outlives the ttl", h: fill(historyLimits{count: 100, ttl: 3 * time.Second, bytes: 1 << 20, keepLast: true}, 5), expireAt: t0.Add(time.Hour), since: 4, last: 5, want: []uint64{5}, complete: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.expireAt.IsZero() {
				tt.h.expire(tt.expireAt)
			}
			got, complete := tt.h.since(tt.since, tt.last)
			if !slices.Equal(seqs(got), tt.want) || complete != tt.complete {
				t.Fatalf("since(%d) = %v complete %v, want %v complete %v", tt.since, seqs(got), complete, tt.want, tt.complete)
			}
			var bytes int
			for _, e := range tt.h.entries {
				bytes += e.size()
			}
			if bytes != tt.h.bytes {
				t.Fatalf("bytes %d, entries hold %d", tt.h.bytes, bytes)
			}
		})
	}
}
