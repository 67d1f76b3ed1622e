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

func TestHoldBudgetIsNodeWide(t *testing.T) {
	budget := socket.NewHoldBudget(3 << 10)
	a, b := socket.Hold{Budget: budget}, socket.Hold{Budget: budget}
	ca, cb := sockettest.NewConn(), sockettest.NewConn()
	kb := &messages.ClientMessage{Data: make([]byte, 1<<10)}
	for _, h := range []*socket.Hold{&a, &b, &a} {
		if !h.Add(ca, kb) {
			t.Fatal("a frame refused under the budget")
		}
	}
	if b.Add(cb, kb) {
		t.Fatalf("a fourth KiB held past a 3 KiB budget (%d used)", budget.Used())
	}
	if got, want := cb.NextClose(t), "1013 server busy"; got != want {
		t.Fatalf("closed %q, want %q", got, want)
	}
	if got := budget.Used(); got != 2<<10 {
		t.Fatalf("budget used %d after b let go, want a's 2048", got)
	}
	if got := len(a.Take()); got != 2 {
		t.Fatalf("a gave back %d frames, want 2", got)
	}
	if got := budget.Used(); got != 0 {
		t.Fatalf("budget used %d once every Hold is empty", got)
	}
}

func TestHoldKeepsNothingOfARefusedFrame(t *testing.T) {
	var h socket.Hold
	c := sockettest.NewConn()
	big := &messages.ClientMessage{Data: make([]byte, 60<<10), RateLimited: true}
	for i := range socket.MaxHeld {
		if !h.Add(c, big) {
			t.Fatalf("refused frame %d closed the client: what it will never act on counted", i+1)
		}
	}
	small := &messages.ClientMessage{Data: []byte(`{"ref":7}`), RateLimited: true}
	h.Take()
	h.Add(c, small)
	if got := h.Take(); len(got) != 1 || string(got[0].Data) != `{"ref":7}` || !got[0].RateLimited {
		t.Fatalf("a small refused frame is kept whole, to answer its ref; got %+v", got)
	}
}
