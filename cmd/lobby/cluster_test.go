package main

import (
	"strings"
	"testing"
)

// TestClusterOptionsCheck: settings that do not go together are refused
// with a message that says what to do.
func TestClusterOptionsCheck(t *testing.T) {
	tests := []struct {
		name string
		c    clusterOptions
		want string // part of the error; "" for none
	}{
		{name: "memory", c: clusterOptions{}},
		{name: "durable", c: clusterOptions{durable: true}},
		{name: "durable peers", c: clusterOptions{durable: true, peers: "a:1,b:1", peerAddr: "c:1"}},
		{name: "nats url", c: clusterOptions{urls: "nats://x:4222"}},
		{name: "durable and nats url", c: clusterOptions{durable: true, urls: "nats://x:4222"}, want: "does not go with --nats-url"},
		{name: "peers without durable", c: clusterOptions{peers: "a:1"}, want: "add --durable"},
		{name: "peers without peer-addr", c: clusterOptions{durable: true, peers: "a:1"}, want: "--peers needs --peer-addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.check()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
	if got := peersWithSelf([]string{"a:1", "b:1"}, "c:1"); len(got) != 3 {
		t.Fatalf("peersWithSelf: %v", got)
	}
	if got := peersWithSelf([]string{"a:1", "c:1"}, "c:1"); len(got) != 2 {
		t.Fatalf("peersWithSelf counts itself twice: %v", got)
	}
}
