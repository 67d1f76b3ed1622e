package questionnaire

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lobby/lobby/actors/socket"
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
	conn     socket.Conn
	hb       socket.Heartbeat
	log      *slog.Logger
	// join is the socket's JoinQuestionnaire, sent on start; its leave
	// carries the same fields.
	join messages.JoinQuestionnaire

	// questionnaire is nil until the questionnaire answers
	// QuestionnaireJoined; frames the client sends before that wait in
	// pending, so that none overtakes another.
	questionnaire *actor.PID
	pending       socket.Hold
	strikes       socket.Strikes
}

// receive handles the messages both roles handle alike, and hands the
// client's frames, decoded, to handle, in the order they came.
func (s *questionnaireSocket) receive(ctx actor.Context, handle func(actor.Context, questionnaireFrame)) {
	switch m := ctx.Message().(type) {
	case *messages.ClientMessage:
		if s.questionnaire == nil {
			s.pending.Add(s.conn, m)
			return
		}
		s.fromClient(ctx, m, handle)
	case *messages.WsMessage:
		s.conn.Send(m.JSON, false)
	case *messages.QuestionnaireJoined:
		s.questionnaire = m.Questionnaire
		for _, p := range s.pending.Take() {
			s.fromClient(ctx, p, handle)
		}
	case *socket.HeartbeatTick:
		s.hb.Tick(s.conn)
	case *messages.Close:
		s.conn.Close(m.Reason)
	case *actor.Started:
		s.join.Socket = ctx.Self()
		ctx.Send(s.registry, &s.join)
		s.hb.Start(ctx)
	case *actor.Stopping:
		s.hb.Stop()
		s.pending.Take() // gives the node's budget back; nobody is left to answer
		ctx.Send(s.registry, &messages.LeaveQuestionnaire{ID: s.join.ID, Socket: ctx.Self(),
			Presenter: s.join.Presenter, Participant: s.join.Participant})
	}
}

// fromClient decodes a client frame for handle, or answers it with an
// error frame.
func (s *questionnaireSocket) fromClient(ctx actor.Context, m *messages.ClientMessage, handle func(actor.Context, questionnaireFrame)) {
	switch s.strikes.Count(s.conn, m, socket.MaxRateStrikes) {
	case socket.Closed:
		return
	case socket.Warn:
		s.sendError(socket.CodeRateLimited, "too many frames: slow down, this frame was ignored")
		return
	}
	if m.Binary {
		s.sendError(socket.CodeBinary, "questionnaire frames are JSON text frames")
		return
	}
	f, ferr := decodeQuestionnaireFrame(m.Data)
	if ferr != nil {
		s.sendError(ferr.Code, ferr.Message)
		return
	}
	handle(ctx, f)
}

func (s *questionnaireSocket) sendError(code, message string) {
	s.conn.Send(appendQuestionnaireError(nil, code, message), false)
}
