package actors

import (
	"github.com/lobby/lobby/actors/chat"
	"github.com/lobby/lobby/actors/questionnaire"
	"github.com/lobby/lobby/actors/socket"
)

// CloseReasons are the reasons the node's actors close sockets with, for
// the transport to count from the start. An actor type of one's own may
// close with others; they are counted from their first use.
func CloseReasons() []socket.Reason {
	return []socket.Reason{socket.HeartbeatTimeout, socket.RateLimit, socket.InternalError, socket.TooManyBeforeJoin,
		socket.NodeBusy, socket.ShuttingDown, chat.RoomLimit, chat.FollowRefused, questionnaire.Replaced, questionnaire.StoreUnavailable}
}
