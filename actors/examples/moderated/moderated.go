// Package moderated is a room policy: in the rooms whose names start with
// Prefix, a message that holds one of Words is refused. Register it in
// one line,
//
//	cfg.Policy = moderated.Policy{Prefix: "kids-", Words: []string{"darn"}}
//
// and every room asks it, in the room's turn, before a message goes to
// anyone. A refused sender is answered in its own protocol: a lobby.v1
// error frame with code "moderated" (and its ref), a text frame, or an
// HTTP 403 {"error":"moderated",...}.
package moderated

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/google/uuid"

	"github.com/lobby/lobby/messages"
)

// Code is the refusal's error code.
const Code = "moderated"

// Policy implements chat.Policy.
type Policy struct {
	// Prefix picks the moderated rooms; "" moderates every room.
	Prefix string
	// Words are refused wherever they appear in a message, in any case.
	Words []string
}

// Accept implements chat.Policy.
func (p Policy) Accept(room string, _ uuid.UUID, msg json.RawMessage) *messages.Refusal {
	if !strings.HasPrefix(room, p.Prefix) {
		return nil
	}
	lower := bytes.ToLower(msg)
	for _, w := range p.Words {
		if w != "" && bytes.Contains(lower, []byte(strings.ToLower(w))) {
			return &messages.Refusal{Code: Code, Message: "this room is moderated: the message was not sent"}
		}
	}
	return nil
}
