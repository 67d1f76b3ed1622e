package main

import (
	"io"
	"strings"
	"testing"
)

// TestReplayFitsTheSendQueue: a --history that a recovering client's
// replay (its welcome, then up to --history messages) would not fit in
// its --send-queue is refused with a message naming both flags and what
// to set; zero means each flag's default, a negative --history keeps
// none.
func TestReplayFitsTheSendQueue(t *testing.T) {
	tests := []struct {
		name string
		args []string
		err  string // "" for accepted
	}{
		{name: "defaults", args: nil},
		{name: "history just below the queue", args: []string{"--history", "255"}},
		{name: "history the queue's size", args: []string{"--history", "256"}, err: "refusing --history 256 with --send-queue 256"},
		{name: "history above the queue", args: []string{"--history", "1000"}, err: "Raise --send-queue above --history (to 1001 or more), or lower --history below 256"},
		{name: "queue raised with it", args: []string{"--history", "1000", "--send-queue", "1001"}},
		{name: "queue below the default history", args: []string{"--send-queue", "32"}, err: "refusing --history 100 with --send-queue 32"},
		{name: "no history", args: []string{"--history", "-1", "--send-queue", "1"}},
		{name: "zero history is the default", args: []string{"--history", "0", "--send-queue", "100"}, err: "refusing --history 100 with --send-queue 100"},
		{name: "zero queue is the default", args: []string{"--history", "300", "--send-queue", "0"}, err: "refusing --history 300 with --send-queue 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseOptions(tt.args, io.Discard)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("%q: %v, want accepted", tt.args, err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "slow consumer")):
				t.Fatalf("%q: %v, want an error saying %q and why", tt.args, err, tt.err)
			}
		})
	}
}
