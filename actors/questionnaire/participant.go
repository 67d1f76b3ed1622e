package questionnaire

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// participant is the actor behind a participant's socket: its client
// answers the current question ({"type":"answer","question":i,"option":k},
// or options, value, text as the question's kind has it) and is sent each
// question shown, the acknowledgement of each answer, revealed results,
// and closed. The participant's id is one the server issued
// (identity.go; the transport has checked its token, or lets in ids of
// the client's own with --open-participants), kept by the page across
// reloads: the same id keeps its answers.
type participant struct {
	questionnaireSocket
}

func (p *participant) Receive(ctx actor.Context) {
	p.receive(ctx, p.frame)
}

// frame acts on one of the client's frames.
func (p *participant) frame(ctx actor.Context, f questionnaireFrame) {
	if f.Type != frameTypeAnswer {
		p.sendError(socket.CodeUnknownType, "a participant sends answer frames")
		return
	}
	a := answerOf(f)
	ctx.Send(p.questionnaire, &messages.SubmitAnswer{
		Participant: p.join.Participant,
		Question:    *f.Question,
		Kind:        a.kind,
		Option:      a.option,
		Options:     a.options,
		Value:       a.value,
		Text:        a.text,
		From:        ctx.Self(),
	})
}
