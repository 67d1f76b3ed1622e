package transport

import (
	"testing"

	"github.com/lobby/lobby/actors"
)

func TestFrameTypeAndSeq(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		typ   string
		seq   uint64
		ok    bool
	}{
		{name: "message", frame: `{"type":"message","id":"x","room":"r","seq":42,"msg":{"seq":7}}`, typ: "message", seq: 42, ok: true},
		{name: "seq only inside msg", frame: `{"type":"message","id":"x","room":"r","msg":{"a":1,"seq":7}}`, typ: "message"},
		{name: "welcome", frame: `{"type":"welcome","id":"x"}`, typ: "welcome"},
		{name: "not a frame", frame: `[1]`},
		{name: "empty type", frame: `{"type":""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := frameType([]byte(tt.frame)); got != tt.typ {
				t.Fatalf("type %q, want %q", got, tt.typ)
			}
			seq, ok := frameSeq([]byte(tt.frame))
			if ok != tt.ok || seq != tt.seq {
				t.Fatalf("seq %d %v, want %d %v", seq, ok, tt.seq, tt.ok)
			}
		})
	}
}

func TestParseLastEventID(t *testing.T) {
	tests := []struct {
		name, id, epoch string
		since           uint64
		bad             bool
	}{
		{name: "plain", id: "ab12-7", epoch: "ab12", since: 7},
		{name: "epoch with a dash", id: "a-b-7", epoch: "a-b", since: 7},
		{name: "no dash", id: "17", bad: true},
		{name: "no seq", id: "ab-", bad: true},
		{name: "not a number", id: "ab-x1", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var j actors.Join
			err := parseLastEventID(tt.id, &j)
			if (err != nil) != tt.bad {
				t.Fatalf("error %v, want bad %v", err, tt.bad)
			}
			if !tt.bad && (!j.Recover || j.Epoch != tt.epoch || j.Since != tt.since) {
				t.Fatalf("join %+v, want epoch %q since %d", j, tt.epoch, tt.since)
			}
		})
	}
}

func FuzzParseLastEventID(f *testing.F) {
	for _, s := range []string{"ab-1", "-", "x-18446744073709551616", "a-b-c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		var j actors.Join
		if parseLastEventID(id, &j) == nil && len(j.Epoch) > maxEpochLen {
			t.Fatalf("accepted an epoch of %d bytes", len(j.Epoch))
		}
	})
}
