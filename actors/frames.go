package actors

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/google/uuid"
)

// clientFrame is a lobby.v1 client's frame:
// {"type":"broadcast","msg":..,"ref":..}, {"type":"direct","to":..,"msg":..,"ref":..}
// or {"type":"members","ref":..}.
type clientFrame struct {
	Type string          `json:"type"`
	Msg  json.RawMessage `json:"msg"`
	To   string          `json:"to"`
	Ref  json.RawMessage `json:"ref"`
	// to is To parsed, for a direct frame.
	to uuid.UUID
}

// frameError is a client frame's fault, answered with an error frame.
// Its codes are part of the protocol: clients may switch on them.
type frameError struct {
	code    string
	message string
}

// Error codes of the lobby.v1 protocol.
const (
	codeInvalidJSON    = "invalid_json"
	codeInvalidFrame   = "invalid_frame"
	codeUnknownType    = "unknown_type"
	codeMissingMsg     = "missing_msg"
	codeInvalidTo      = "invalid_to"
	codeUnknownSession = "unknown_session"
	codeBinary         = "binary_unsupported"
	codeRateLimited    = "rate_limited"
	codeUnavailable    = "unavailable"
	codeTooBig         = "message_too_big"
)

// Client frame types.
const (
	frameTypeBroadcast = "broadcast"
	frameTypeDirect    = "direct"
	frameTypeMembers   = "members"
)

// maxRefBytes bounds a frame's ref, which the server echoes.
const maxRefBytes = 256

const (
	errNotAnObject = "a frame is a JSON object with a string type"
	errNoMsg       = "a broadcast or direct frame needs a msg"
)

// decodeClientFrame parses one lobby.v1 client frame. On failure it returns
// the frame's ref when the frame was good enough to carry one.
func decodeClientFrame(data []byte) (clientFrame, *frameError) {
	var f clientFrame
	if !json.Valid(data) {
		return f, &frameError{codeInvalidJSON, "the frame is not valid JSON"}
	}
	// json.Valid accepts invalid UTF-8 inside strings; copied into the
	// room's text frames it would make every browser in the room drop its
	// connection, again on every recovery. Such a frame is refused, not
	// repaired: a JSON message is relayed exactly as sent or not at all.
	if !utf8.Valid(data) {
		return f, &frameError{codeInvalidJSON, "the frame is not valid UTF-8"}
	}
	if err := json.Unmarshal(data, &f); err != nil {
		// Valid JSON of the wrong shape: keep the ref if it can be had.
		var refOnly struct {
			Ref json.RawMessage `json:"ref"`
		}
		if json.Unmarshal(data, &refOnly) == nil && len(refOnly.Ref) <= maxRefBytes {
			f.Ref = refOnly.Ref
		}
		return f, &frameError{codeInvalidFrame, errNotAnObject}
	}
	if len(f.Ref) > maxRefBytes {
		f.Ref = nil
		return f, &frameError{codeInvalidFrame, "ref is longer than 256 bytes"}
	}
	if bytes.Equal(f.Ref, []byte("null")) {
		f.Ref = nil
	}
	switch f.Type {
	case frameTypeBroadcast:
		if f.Msg == nil {
			return f, &frameError{codeMissingMsg, errNoMsg}
		}
	case frameTypeDirect:
		if f.Msg == nil {
			return f, &frameError{codeMissingMsg, errNoMsg}
		}
		id, err := uuid.Parse(f.To)
		if err != nil || len(f.To) != 36 {
			return f, &frameError{codeInvalidTo, "to must be a session id (a UUID)"}
		}
		f.to = id
	case frameTypeMembers:
	case "":
		return f, &frameError{codeInvalidFrame, errNotAnObject}
	default:
		return f, &frameError{codeUnknownType, "unknown frame type " + truncate(f.Type, 32) + "; want broadcast, direct or members"}
	}
	return f, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
