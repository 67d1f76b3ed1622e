package socket

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendJSONString(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "plain", in: "hello", want: `"hello"`},
		{name: "empty", in: "", want: `""`},
		{name: "quote and backslash", in: `"\`, want: `"\"\\"`},
		{name: "named controls", in: "\n\r\t", want: `"\n\r\t"`},
		{name: "other controls", in: "\x00\x1f", want: `"\u0000\u001f"`},
		{name: "html left alone", in: "<a&b>", want: `"<a&b>"`},
		{name: "multi-byte UTF-8", in: "é✓😀", want: `"é✓😀"`},
		{name: "invalid byte", in: "a\xffb", want: "\"a\ufffdb\""},
		{name: "truncated sequence", in: "\xe2\x9c", want: "\"\ufffd\ufffd\""},
		{name: "DEL is not a control for JSON", in: "\x7f", want: "\"\x7f\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendJSONString(nil, tt.in)); got != tt.want {
				t.Fatalf("AppendJSONString(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzAppendJSONString checks that any client text becomes a valid JSON
// string that decodes to the text, with invalid UTF-8 replaced byte by
// byte.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "hello", `"\`, "\x00\n\x1f", "a\xffb", "é✓😀", "\xe2\x9c", "<script>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := AppendJSONString(nil, s)
		if !utf8.Valid(enc) {
			t.Fatalf("%q encodes to invalid UTF-8 %q", s, enc)
		}
		var back string
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, enc, err)
		}
		var want strings.Builder
		for i := 0; i < len(s); {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				want.WriteString("\ufffd")
			} else {
				want.WriteString(s[i : i+size])
			}
			i += size
		}
		if back != want.String() {
			t.Fatalf("%q decodes back to %q, want %q", s, back, want.String())
		}
	})
}
