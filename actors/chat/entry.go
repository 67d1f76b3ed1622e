package chat

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// entry is one message of a room as the room encodes it, with its frames
// encoded on first use and kept: the text and lobby.v1 members share them.
type entry struct {
	seq  uint64
	at   time.Time
	id   uuid.UUID
	msg  json.RawMessage
	text []byte
	json []byte
}

func (e *entry) textFrame(room string) []byte {
	if e.text == nil {
		e.text = appendBroadcast(nil, e.id, e.msg, room)
	}
	return e.text
}

func (e *entry) jsonFrame(room string) []byte {
	if e.json == nil {
		e.json = appendV1Message(nil, e.id, room, e.seq, e.at.UnixMilli(), e.msg)
	}
	return e.json
}
