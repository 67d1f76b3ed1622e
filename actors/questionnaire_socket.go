package actors

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lobby/lobby/messages"
)

// questionnaireSocket is what the presenter and participant actors share:
// it joins the questionnaire through the registry, holds the client's
// frames until the questionnaire has it, writes the frames it is sent,
// answers frames over the rate limit, and keeps the connection alive.
// Each actor embeds it and adds what its role's frames mean.
type questionnaireSocket struct {
	// Static after construction.
	registry *actor.PID
	conn     Conn
	hb       heartbeat
	log      *slog.Logger
	// join is the socket's JoinQuestionnaire, sent on start; its leave
	// carries the same fields.
	join messages.JoinQuestionnaire

	// questionnaire is nil until the questionnaire answers
	// QuestionnaireJoined; frames the client sends before that wait in
	// pending, so that none overtakes another.
	questionnaire *actor.PID
	pending       []*messages.ClientMessage
	// strikes counts the client's frames over its rate limit in a row.
	strikes int
}

// receive handles the messages both roles handle alike, and hands the
// client's frames, decoded, to handle, in the order they came.
func (s *questionnaireSocket) receive(ctx actor.Context, handle func(actor.Context, questionnaireFrame)) {
	switch m := ctx.Message().(type) {
	case *messages.ClientMessage:
		if s.questionnaire == nil {
			s.hold(m)
			return
		}
		s.fromClient(ctx, m, handle)
	case *messages.WsMessage:
		s.conn.Send(m.JSON, false)
	case *messages.QuestionnaireJoined:
		s.questionnaire = m.Questionnaire
		for _, p := range s.pending {
			s.fromClient(ctx, p, handle)
		}
		s.pending = nil
	case *heartbeatTick:
		s.hb.tick(s.conn)
	case *messages.Close:
		s.conn.Close(m.Code, m.Reason)
	case *actor.Started:
		s.join.Socket = ctx.Self()
		ctx.Send(s.registry, &s.join)
		s.hb.start(ctx)
	case *actor.Stopping:
		s.hb.stop()
		ctx.Send(s.registry, &messages.LeaveQuestionnaire{ID: s.join.ID, Socket: ctx.Self(),
			Presenter: s.join.Presenter, Participant: s.join.Participant})
	}
}

func (s *questionnaireSocket) hold(m *messages.ClientMessage) {
	if len(s.pending) >= maxPending {
		s.conn.Close(ClosePolicyViolation, "too many messages before join")
		return
	}
	s.pending = append(s.pending, m)
}

// fromClient decodes a client frame for handle, or answers it with an
// error frame.
func (s *questionnaireSocket) fromClient(ctx actor.Context, m *messages.ClientMessage, handle func(actor.Context, questionnaireFrame)) {
	if m.RateLimited {
		s.strikes++
		if s.strikes > maxRateStrikes {
			s.conn.Close(ClosePolicyViolation, ReasonRateLimit)
			return
		}
		s.sendError(codeRateLimited, "too many frames: slow down, this frame was ignored")
		return
	}
	s.strikes = 0
	if m.Binary {
		s.sendError(codeBinary, "questionnaire frames are JSON text frames")
		return
	}
	f, ferr := decodeQuestionnaireFrame(m.Data)
	if ferr != nil {
		s.sendError(ferr.code, ferr.message)
		return
	}
	handle(ctx, f)
}

func (s *questionnaireSocket) sendError(code, message string) {
	s.conn.Send(appendQuestionnaireError(nil, code, message), false)
}
