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

// Accept implements chat.Policy. It looks in the message's strings as
// they decode, so that an escape such as "d\u0061rn" hides nothing.
func (p Policy) Accept(room string, _ uuid.UUID, msg json.RawMessage) *messages.Refusal {
	if !strings.HasPrefix(room, p.Prefix) {
		return nil
	}
	var v any
	if json.Unmarshal(msg, &v) != nil {
		return nil // the room only gets valid JSON; nothing to look in
	}
	if p.holdsWord(v) {
		return &messages.Refusal{Code: Code, Message: "this room is moderated: the message was not sent"}
	}
	return nil
}

// holdsWord reports whether a string in v, or a key of one of its
// objects, holds one of the words.
func (p Policy) holdsWord(v any) bool {
	switch v := v.(type) {
	case string:
		lower := strings.ToLower(v)
		for _, w := range p.Words {
			if w != "" && strings.Contains(lower, strings.ToLower(w)) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if p.holdsWord(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range v {
			if p.holdsWord(k) || p.holdsWord(e) {
				return true
			}
		}
	}
	return false
}
