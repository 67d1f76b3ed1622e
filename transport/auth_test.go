package transport

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lobby/lobby/actors"
)

func TestRoomAllowed(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		room     string
		want     bool
	}{
		{name: "exact", patterns: []string{"news"}, room: "news", want: true},
		{name: "glob", patterns: []string{"team-*"}, room: "team-blue", want: true},
		{name: "glob needs its prefix", patterns: []string{"team-*"}, room: "team", want: false},
		{name: "star allows all", patterns: []string{"*"}, room: "anything", want: true},
		{name: "none", patterns: nil, room: "news", want: false},
		{name: "bad pattern is no match", patterns: []string{"[", "news"}, room: "news", want: true},
		{name: "bad pattern alone", patterns: []string{"["}, room: "[", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := roomAllowed(tt.patterns, tt.room); got != tt.want {
				t.Fatalf("roomAllowed(%q, %q) = %v, want %v", tt.patterns, tt.room, got, tt.want)
			}
		})
	}
}

// FuzzParseClientToken feeds arbitrary tokens to the JWT check: it must
// never panic, and must accept nothing but an unexpired HS256 token signed
// with the secret.
func FuzzParseClientToken(f *testing.F) {
	secret := []byte("fuzz-secret")
	now := time.Unix(1_800_000_000, 0)
	good, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": now.Add(time.Hour).Unix(), "rooms": []string{"a"}}).SignedString(secret)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{good, "", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", good + "x", strings.Repeat("a", 5000), "..", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		claims, err := parseClientToken(raw, secret, now)
		if err != nil {
			return
		}
		if claims.ExpiresAt == nil || !claims.ExpiresAt.After(now) {
			t.Fatalf("accepted %q without a future exp", raw)
		}
		tok, _, perr := jwt.NewParser().ParseUnverified(raw, jwt.MapClaims{})
		if perr != nil || tok.Method.Alg() != "HS256" {
			t.Fatalf("accepted %q, which is not HS256", raw)
		}
	})
}

// FuzzRequestParsers feeds arbitrary query strings and header values to the
// parsers that read them before an upgrade.
func FuzzRequestParsers(f *testing.F) {
	for _, s := range []string{"since=3&epoch=ab", "since=-1", "since=99999999999999999999", "epoch=" + strings.Repeat("e", 70) + "&since=1", "%zz", "since=1&since=2", "Bearer x", "bearer", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var j actors.Join
		if err := parseRecovery(s, &j); err == nil && j.Recover && len(j.Epoch) > maxEpochLen {
			t.Fatalf("accepted an epoch of %d bytes", len(j.Epoch))
		}
		r := &http.Request{Header: http.Header{"Authorization": {s}}}
		if tok, ok := bearer(r); ok && (tok == "" || strings.ContainsAny(tok[:1], " ")) {
			t.Fatalf("bearer(%q) = %q", s, tok)
		}
	})
}
