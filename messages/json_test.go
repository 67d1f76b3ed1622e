package messages

import (
	"testing"
	"unicode/utf8"
)

func TestCheckJSON(t *testing.T) {
	for _, c := range []struct {
		in   string
		want error
	}{
		{`{"a":1}`, nil},
		{`[1,2`, ErrNotJSON},
		{"{\"a\":\"\xff\"}", ErrNotUTF8},
		{``, ErrNotJSON},
	} {
		if got := CheckJSON([]byte(c.in)); got != c.want {
			t.Errorf("CheckJSON(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func FuzzCheckJSON(f *testing.F) {
	f.Add([]byte(`{"type":"broadcast","msg":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if CheckJSON(data) == nil && !utf8.Valid(data) {
			t.Fatalf("accepted invalid UTF-8: %q", data)
		}
	})
}
