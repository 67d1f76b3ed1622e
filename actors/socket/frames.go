package socket

import (
	"encoding/json"

	"github.com/lobby/lobby/messages"
)

// FrameError is a client frame's fault, answered with an error frame in
// the socket's protocol. Its Code is part of the protocol: clients may
// switch on it (transport/PROTOCOL.md, "Errors").
type FrameError struct {
	Code    string
	Message string
}

// NewFrameError is the fault code, explained by message.
func NewFrameError(code, message string) *FrameError {
	return &FrameError{Code: code, Message: message}
}

// Error codes every JSON protocol of Lobby's shares (lobby.v1 and the
// questionnaire's).
const (
	CodeInvalidJSON  = "invalid_json"
	CodeInvalidFrame = "invalid_frame"
	CodeUnknownType  = "unknown_type"
	CodeBinary       = "binary_unsupported"
	CodeRateLimited  = "rate_limited"
)

// CheckFrame is the first check of a JSON client frame: valid JSON, and
// valid UTF-8.
func CheckFrame(data []byte) *FrameError {
	switch messages.CheckJSON(data) {
	case nil:
		return nil
	case messages.ErrNotUTF8:
		return NewFrameError(CodeInvalidJSON, "the frame is not valid UTF-8")
	default:
		return NewFrameError(CodeInvalidJSON, "the frame is not valid JSON")
	}
}

// Truncate cuts s, which a client sent, to at most n bytes of whole
// runes, for an error message that quotes it.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// AppendErrorFrame encodes a JSON protocol's error frame,
// {"type":"error","ref":..,"code":..,"message":..}, the ref only when given.
func AppendErrorFrame(dst []byte, ref json.RawMessage, code, message string) []byte {
	dst = append(dst, `{"type":"error",`...)
	dst = AppendRef(dst, ref)
	dst = append(dst, `"code":`...)
	dst = AppendJSONString(dst, code)
	dst = append(dst, `,"message":`...)
	dst = AppendJSONString(dst, message)
	return append(dst, '}')
}

// AppendRef appends `"ref":<ref>,` when there is a ref.
func AppendRef(dst []byte, ref json.RawMessage) []byte {
	if ref == nil {
		return dst
	}
	dst = append(dst, `"ref":`...)
	dst = append(dst, ref...)
	return append(dst, ',')
}
