package chat

import (
	"bytes"
	"encoding/json"

	"github.com/google/uuid"

	"github.com/lobby/lobby/actors/socket"
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

// Error codes of the lobby.v1 protocol, besides the shared ones of
// package socket (invalid_json, invalid_frame, unknown_type,
// binary_unsupported, rate_limited).
const (
	codeMissingMsg     = "missing_msg"
	codeInvalidTo      = "invalid_to"
	codeUnknownSession = "unknown_session"
	codeUnavailable    = "unavailable"
	codeTooBig         = "message_too_big"
	codeStoreFull      = "store_full"
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
func decodeClientFrame(data []byte) (clientFrame, *socket.FrameError) {
	var f clientFrame
	if ferr := socket.CheckFrame(data); ferr != nil {
		return f, ferr
	}
	if err := json.Unmarshal(data, &f); err != nil {
		// Valid JSON of the wrong shape: keep the ref if it can be had.
		var refOnly struct {
			Ref json.RawMessage `json:"ref"`
		}
		if json.Unmarshal(data, &refOnly) == nil && len(refOnly.Ref) <= maxRefBytes {
			f.Ref = refOnly.Ref
		}
		return f, socket.NewFrameError(socket.CodeInvalidFrame, errNotAnObject)
	}
	if len(f.Ref) > maxRefBytes {
		f.Ref = nil
		return f, socket.NewFrameError(socket.CodeInvalidFrame, "ref is longer than 256 bytes")
	}
	if bytes.Equal(f.Ref, []byte("null")) {
		f.Ref = nil
	}
	switch f.Type {
	case frameTypeBroadcast:
		if f.Msg == nil {
			return f, socket.NewFrameError(codeMissingMsg, errNoMsg)
		}
	case frameTypeDirect:
		if f.Msg == nil {
			return f, socket.NewFrameError(codeMissingMsg, errNoMsg)
		}
		id, err := uuid.Parse(f.To)
		if err != nil || len(f.To) != 36 {
			return f, socket.NewFrameError(codeInvalidTo, "to must be a session id (a UUID)")
		}
		f.to = id
	case frameTypeMembers:
	case "":
		return f, socket.NewFrameError(socket.CodeInvalidFrame, errNotAnObject)
	default:
		return f, socket.NewFrameError(socket.CodeUnknownType, "unknown frame type "+socket.Truncate(f.Type, 32)+"; want broadcast, direct or members")
	}
	return f, nil
}
