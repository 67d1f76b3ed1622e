package messages

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidRoom(t *testing.T) {
	tests := []struct {
		name, room string
		want       bool
	}{
		{name: "plain", room: "news", want: true},
		{name: "every kind of character", room: "A-z_0.9", want: true},
		{name: "64 characters", room: strings.Repeat("r", 64), want: true},
		{name: "empty", room: ""},
		{name: "65 characters", room: strings.Repeat("r", 65)},
		{name: "slash", room: "a/b"},
		{name: "space", room: "a b"},
		{name: "not ASCII", room: "café"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidRoom(tt.room); got != tt.want {
				t.Fatalf("ValidRoom(%q) = %v, want %v", tt.room, got, tt.want)
			}
		})
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct {
		name, in string
		want     bool
	}{
		{name: "none", in: "", want: true},
		{name: "plain", in: "Ada", want: true},
		{name: "not ASCII", in: "Zoë ☕", want: true},
		{name: "32 characters", in: strings.Repeat("é", 32), want: true},
		{name: "33 characters", in: strings.Repeat("é", 33)},
		{name: "control character", in: "a\x07"},
		{name: "newline", in: "a\nb"},
		{name: "C1 control", in: "a\u0085"},
		{name: "bidi override", in: "a\u202eb"},
		{name: "line separator", in: "a\u2028b"},
		{name: "invalid UTF-8", in: "a\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := CleanName(tt.in)
			if ok != tt.want || ok && got != tt.in {
				t.Fatalf("CleanName(%q) = %q, %v; want %v", tt.in, got, ok, tt.want)
			}
		})
	}
}

func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"Ada", "a\x07", "\u202e", strings.Repeat("x", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := CleanName(in)
		if ok && (!utf8.ValidString(got) || utf8.RuneCountInString(got) > MaxNameRunes || strings.ContainsAny(got, "\x00\n\r\t")) {
			t.Fatalf("accepted %q", in)
		}
	})
}
