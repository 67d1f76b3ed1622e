package chat

import (
	"testing"

	"github.com/google/uuid"

	"github.com/lobby/lobby/actors/socket"
)

func TestTextFrames(t *testing.T) {
	id := uuid.MustParse("0f8fad5b-d9cb-469f-a165-70867728950e")
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{name: "welcome", got: appendWelcome(nil, id), want: "your id is 0f8fad5b-d9cb-469f-a165-70867728950e"},
		{name: "joined", got: appendJoined(nil, id), want: "0f8fad5b-d9cb-469f-a165-70867728950e just joined!"},
		{name: "disconnected", got: appendDisconnected(nil, id), want: "0f8fad5b-d9cb-469f-a165-70867728950e disconnected."},
		{name: "broadcast of text", got: appendBroadcast(nil, id, socket.AppendJSONString(nil, `a "b"`), "r.1"),
			want: `{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","msg":"a \"b\"","room_id":"r.1"}`},
		{name: "broadcast of JSON kept as is", got: appendBroadcast(nil, id, []byte(`{"z": 1, "a": 2.50}`), "r"),
			want: `{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","msg":{"z": 1, "a": 2.50},"room_id":"r"}`},
		{name: "appends to what is there", got: appendJoined([]byte("x"), id), want: "x0f8fad5b-d9cb-469f-a165-70867728950e just joined!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Fatalf("got  %s\nwant %s", tt.got, tt.want)
			}
		})
	}
}

func BenchmarkAppendBroadcast(b *testing.B) {
	id := uuid.New()
	msg := socket.AppendJSONString(nil, "a typical chat line, nothing to escape")
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendBroadcast(buf[:0], id, msg, "room")
	}
}
