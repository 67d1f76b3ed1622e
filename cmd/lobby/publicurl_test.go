package main

import (
	"io"
	"strings"
	"testing"
)

// TestPublicURL: --public-url takes an http or https address, without its
// trailing slash, and refuses anything else with a message naming the
// flag.
func TestPublicURL(t *testing.T) {
	tests := []struct {
		name, value, want, err string
	}{
		{name: "unset", value: "", want: ""},
		{name: "host and port", value: "http://192.168.1.20:8081", want: "http://192.168.1.20:8081"},
		{name: "trailing slash", value: "https://poll.example.com/", want: "https://poll.example.com"},
		{name: "behind a path", value: "https://example.com/lobby/", want: "https://example.com/lobby"},
		{name: "no scheme", value: "192.168.1.20:8081", err: "want http://host[:port]"},
		{name: "ws scheme", value: "ws://example.com", err: "want http://host[:port]"},
		{name: "no host", value: "http://", err: "want http://host[:port]"},
		{name: "query", value: "http://example.com/?a=b", err: "no user, query or fragment"},
		{name: "user", value: "http://me@example.com", err: "no user, query or fragment"},
		{name: "not a URL", value: "http://[::1", err: "--public-url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions([]string{"--public-url", tt.value}, io.Discard)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "--public-url") {
					t.Fatalf("--public-url %q: %v, want an error saying %q", tt.value, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.server.PublicURL != tt.want {
				t.Fatalf("--public-url %q: %q, want %q", tt.value, o.server.PublicURL, tt.want)
			}
		})
	}
}
