package actors

import (
	"github.com/lobby/lobby/actors/chat"
	"github.com/lobby/lobby/actors/questionnaire"
	"github.com/lobby/lobby/actors/socket"
)

// Conn is the transport's side of a socket actor (socket.Conn).
type Conn = socket.Conn

// Close reasons the transport counts disconnects by.
const (
	ReasonHeartbeatTimeout = socket.ReasonHeartbeatTimeout
	ReasonRateLimit        = socket.ReasonRateLimit
	ReasonInternalError    = socket.ReasonInternalError
	ReasonRoomLimit        = chat.ReasonRoomLimit
	ReasonStoreUnavailable = questionnaire.ReasonStoreUnavailable
	ReasonReplaced         = questionnaire.ReasonReplaced
)
