package questionnaire

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// presenter is the actor behind a presenter's socket: its client chooses
// the current question ({"type":"show","question":i}) and closes the
// questionnaire ({"type":"close"}), and is sent the state and the tallies.
// The transport has checked the presenter token before the upgrade.
type presenter struct {
	questionnaireSocket
}

func (p *presenter) Receive(ctx actor.Context) {
	p.receive(ctx, p.frame)
}

// frame acts on one of the client's frames.
func (p *presenter) frame(ctx actor.Context, f questionnaireFrame) {
	switch f.Type {
	case frameTypeShow:
		ctx.Send(p.questionnaire, &messages.ShowQuestion{Question: *f.Question, From: ctx.Self()})
	case frameTypeClose:
		ctx.Send(p.questionnaire, &messages.CloseQuestionnaire{From: ctx.Self()})
	default:
		p.sendError(socket.CodeUnknownType, "a presenter sends show or close frames")
	}
}
