package transport

import (
	"regexp"
	"strings"
	"testing"

	"github.com/lobby/lobby/messages"
)

func TestValidRoom(t *testing.T) {
	tests := []struct {
		name string
		room string
		want bool
	}{
		{name: "letters", room: "lobby", want: true},
		{name: "all allowed characters", room: "A-z_0.9", want: true},
		{name: "64 characters", room: strings.Repeat("a", 64), want: true},
		{name: "one character", room: "x", want: true},
		{name: "empty", room: "", want: false},
		{name: "65 characters", room: strings.Repeat("a", 65), want: false},
		{name: "space", room: "a b", want: false},
		{name: "slash", room: "a/b", want: false},
		{name: "non-ASCII", room: "café", want: false},
		{name: "NUL", room: "a\x00", want: false},
		{name: "quote", room: `a"`, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messages.ValidRoom(tt.room); got != tt.want {
				t.Fatalf("messages.ValidRoom(%q) = %v, want %v", tt.room, got, tt.want)
			}
		})
	}
}

var roomRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// FuzzValidRoom checks validRoom against the contract's definition.
func FuzzValidRoom(f *testing.F) {
	for _, s := range []string{"lobby", "", "a b", strings.Repeat("z", 64), strings.Repeat("z", 65), "é", "a\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := messages.ValidRoom(s), roomRE.MatchString(s); got != want {
			t.Fatalf("messages.ValidRoom(%q) = %v, want %v", s, got, want)
		}
	})
}
