package questionnaire

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// presenter is the actor behind a presenter's socket: its client chooses
// the current question ({"type":"show","question":i}, with a timer of
// "seconds"), reveals a question's results to participants
// ({"type":"reveal","question":i}), hides a text entry
// ({"type":"hide","question":i,"text":..}) and closes the questionnaire
// ({"type":"close"}), and is sent the state and the tallies.
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
		show := &messages.ShowQuestion{Question: *f.Question, From: ctx.Self()}
		if f.Seconds != nil {
			show.Seconds = *f.Seconds
		}
		ctx.Send(p.questionnaire, show)
	case frameTypeReveal:
		ctx.Send(p.questionnaire, &messages.RevealResults{Question: *f.Question, From: ctx.Self()})
	case frameTypeHide:
		ctx.Send(p.questionnaire, &messages.HideEntry{Question: *f.Question, Text: *f.Text, From: ctx.Self()})
	case frameTypeClose:
		ctx.Send(p.questionnaire, &messages.CloseQuestionnaire{From: ctx.Self()})
	default:
		p.sendError(socket.CodeUnknownType, "a presenter sends show, reveal, hide or close frames")
	}
}
