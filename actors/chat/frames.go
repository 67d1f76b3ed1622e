package chat

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/google/uuid"

	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// clientFrame is a lobby.v1 client's frame:
// {"type":"broadcast","room":..,"msg":..,"ref":..,"key":..},
// {"type":"direct","to":..,"msg":..,"ref":..}, {"type":"members","room":..,"ref":..},
// {"type":"subscribe","room":..,"since":N,"epoch":..,"name":..,"ref":..} or
// {"type":"unsubscribe","room":..,"ref":..}. A broadcast's or members'
// room is optional (the connect path's room).
type clientFrame struct {
	Type  string          `json:"type"`
	Msg   json.RawMessage `json:"msg"`
	To    string          `json:"to"`
	Ref   json.RawMessage `json:"ref"`
	Room  string          `json:"room"`
	Since json.RawMessage `json:"since"`
	Epoch string          `json:"epoch"`
	Name  string          `json:"name"`
	// Key is a broadcast's idempotency key, nil for none.
	Key *string `json:"key"`
	// to is To parsed, for a direct frame; since, recover are Since
	// parsed, for a subscribe.
	to      uuid.UUID
	since   uint64
	recover bool
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
	// The subscriptions' (transport/PROTOCOL.md, "Subscriptions").
	codeInvalidRoom          = "invalid_room"
	codeInvalidSince         = "invalid_since"
	codeInvalidEpoch         = "invalid_epoch"
	codeInvalidName          = "invalid_name"
	codeRoomRequired         = "room_required"
	codeNotSubscribed        = "not_subscribed"
	codeAlreadySubscribed    = "already_subscribed"
	codeTooManySubscriptions = "too_many_subscriptions"
	codeForbidden            = "forbidden"
	codeRoomLimit            = "too_many_rooms"
	codeStoreFull            = "store_full"
	// The idempotency keys' (transport/PROTOCOL.md, "Idempotent publishes").
	codeInvalidKey     = "invalid_key"
	codeOutcomeUnknown = "outcome_unknown"
)

// Client frame types.
const (
	frameTypeBroadcast   = "broadcast"
	frameTypeDirect      = "direct"
	frameTypeMembers     = "members"
	frameTypeSubscribe   = "subscribe"
	frameTypeUnsubscribe = "unsubscribe"
)

// maxEpochLen bounds the epoch a client may send back (the transport's
// bound on ?epoch=).
const maxEpochLen = 64

// maxRefBytes bounds a frame's ref, which the server echoes.
const maxRefBytes = 256

const (
	errNotAnObject = "a frame is a JSON object with a string type"
	errNoMsg       = "a broadcast or direct frame needs a msg"
	errInvalidName = "a name is at most 32 characters, none of them a control character"
)

// key is the frame's idempotency key, "" for none.
func (f *clientFrame) key() string {
	if f.Key == nil {
		return ""
	}
	return *f.Key
}

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
	if f.Room != "" && !messages.ValidRoom(f.Room) {
		return f, socket.NewFrameError(codeInvalidRoom, messages.InvalidRoomText)
	}
	switch f.Type {
	case frameTypeBroadcast:
		if f.Msg == nil {
			return f, socket.NewFrameError(codeMissingMsg, errNoMsg)
		}
		if f.Key != nil && !messages.ValidIdempotencyKey(*f.Key) {
			return f, socket.NewFrameError(codeInvalidKey, messages.InvalidIdempotencyKeyText)
		}
	case frameTypeSubscribe:
		if f.Room == "" {
			return f, socket.NewFrameError(codeInvalidRoom, "a subscribe frame needs a room: "+messages.InvalidRoomText)
		}
		if f.Since != nil && !bytes.Equal(f.Since, []byte("null")) {
			n, err := strconv.ParseUint(string(f.Since), 10, 64)
			if err != nil {
				return f, socket.NewFrameError(codeInvalidSince, "since must be a message sequence number (0 or more)")
			}
			f.since, f.recover = n, true
		}
		if len(f.Epoch) > maxEpochLen {
			return f, socket.NewFrameError(codeInvalidEpoch, "epoch is too long")
		}
		name, ok := messages.CleanName(f.Name)
		if !ok {
			return f, socket.NewFrameError(codeInvalidName, errInvalidName)
		}
		f.Name = name
	case frameTypeUnsubscribe:
		if f.Room == "" {
			return f, socket.NewFrameError(codeInvalidRoom, "an unsubscribe frame needs a room: "+messages.InvalidRoomText)
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
		return f, socket.NewFrameError(socket.CodeUnknownType, "unknown frame type "+socket.Truncate(f.Type, 32)+
			"; want broadcast, direct, members, subscribe or unsubscribe")
	}
	return f, nil
}
