package main

import (
	"io"
	"testing"
)

// TestHistoryAboveTheSendQueue: a --history longer than --send-queue is
// accepted. It was refused, since a recovering client was sent its
// replay at once and a queue that could not hold it closed the client
// 1008 slow consumer mid-replay; the replay now goes out as the client
// reads it (TestRecoveryLongerThanTheSendQueue in test/).
func TestHistoryAboveTheSendQueue(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "defaults", args: nil},
		{name: "history the queue's size", args: []string{"--history", "256"}},
		{name: "history above the queue", args: []string{"--history", "1000"}},
		{name: "queue below the default history", args: []string{"--send-queue", "32"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseOptions(tt.args, io.Discard); err != nil {
				t.Fatalf("%q: %v, want accepted", tt.args, err)
			}
		})
	}
}
