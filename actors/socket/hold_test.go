package socket_test

import (
	"strings"
	"testing"

	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/actors/socket/sockettest"
	"github.com/lobby/lobby/messages"
)

func TestHoldIsBounded(t *testing.T) {
	tests := []struct {
		name string
		size int // bytes per frame
		kept int // frames held before the close
	}{
		{name: "small frames, by count", size: 10, kept: socket.MaxHeld},
		{name: "large frames, by bytes", size: 60 << 10, kept: socket.MaxHeldBytes / (60 << 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h socket.Hold
			c := sockettest.NewConn()
			m := &messages.ClientMessage{Data: []byte(strings.Repeat("x", tt.size))}
			for i := range tt.kept {
				if !h.Add(c, m) {
					t.Fatalf("frame %d refused, want %d held", i+1, tt.kept)
				}
			}
			if h.Add(c, m) {
				t.Fatalf("frame %d held, want the close", tt.kept+1)
			}
			if got, want := c.NextClose(t), "1008 too many messages before join"; got != want {
				t.Fatalf("closed %q, want %q", got, want)
			}
			for range 10 {
				if h.Add(c, m) {
					t.Fatal("a frame held after the close")
				}
			}
			if got := h.Take(); len(got) != 0 {
				t.Fatalf("%d frames still held after the close", len(got))
			}
		})
	}
}
