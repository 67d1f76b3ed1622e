package chat

import (
	"encoding/json"
	"testing"

	"github.com/lobby/lobby/actors/broker"
)

// TestFollowBoxIsBounded: a follow's box tells its broker to wait once
// it holds maxFollowBox messages or maxFollowBoxBytes, and the room's
// take lets the broker go on.
func TestFollowBoxIsBounded(t *testing.T) {
	tests := []struct {
		name string
		size int // bytes per message
		full int // the put that fills the box
	}{
		{name: "by count", size: 10, full: maxFollowBox},
		{name: "by bytes", size: 64 << 10, full: maxFollowBoxBytes / (64 << 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &follow{}
			f.calling(true) // the room drains on return: no followWake to send
			msg := json.RawMessage(make([]byte, tt.size))
			for i := 1; i < tt.full; i++ {
				if taken := f.put(nil, nil, broker.StreamMessage{Seq: uint64(i), Msg: msg}); taken != nil {
					t.Fatalf("put %d of %d-byte messages: full already", i, tt.size)
				}
			}
			taken := f.put(nil, nil, broker.StreamMessage{Seq: uint64(tt.full), Msg: msg})
			if taken == nil {
				t.Fatalf("put %d of %d-byte messages: not full", tt.full, tt.size)
			}
			select {
			case <-taken:
				t.Fatal("the broker may go on before the room took the box")
			default:
			}
			if got := len(f.take()); got != tt.full {
				t.Fatalf("took %d messages, want %d", got, tt.full)
			}
			select {
			case <-taken:
			default:
				t.Fatal("the room took the box and the broker still waits")
			}
			if again := f.put(nil, nil, broker.StreamMessage{Seq: uint64(tt.full + 1), Msg: msg}); again != nil {
				t.Fatal("an emptied box is full")
			}
		})
	}
}
