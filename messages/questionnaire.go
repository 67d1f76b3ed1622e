package messages

import "github.com/asynkron/protoactor-go/actor"

// The questionnaire's messages. A presenter or participant socket actor
// joins its questionnaire through the node's questionnaire registry, which
// spawns the questionnaire actor on first use; once joined, the socket
// actor sends its client's frames, as the typed messages below, straight
// to the questionnaire actor, which answers with WsMessage frames (JSON).

// JoinQuestionnaire asks to add a socket to a questionnaire.
// Presenter or Participant socket → Registry → Questionnaire. The
// questionnaire answers the socket with QuestionnaireJoined, then with its
// first frames (the state, the current question, closed).
type JoinQuestionnaire struct {
	// ID is the questionnaire's id.
	ID string
	// Socket is the joining socket actor.
	Socket *actor.PID
	// Presenter is true for a presenter socket; else it is a participant.
	Presenter bool
	// Participant is the participant's own id (empty for a presenter):
	// the same id after a reconnect keeps its answers.
	Participant string
}

// QuestionnaireJoined tells a socket actor that its questionnaire has it.
// Questionnaire → Presenter or Participant socket.
type QuestionnaireJoined struct {
	// Questionnaire is the questionnaire actor; the socket sends its
	// client's frames straight there.
	Questionnaire *actor.PID
}

// LeaveQuestionnaire removes a socket from its questionnaire.
// Presenter or Participant socket (from its Stopping) → Registry →
// Questionnaire: the same path as its JoinQuestionnaire, so it never
// overtakes it.
type LeaveQuestionnaire struct {
	ID          string
	Socket      *actor.PID
	Presenter   bool
	Participant string
}

// ShowQuestion makes question Question the current one: every participant
// is sent it, every presenter its tally. Presenter socket → Questionnaire.
type ShowQuestion struct {
	Question int
	// Seconds, when not 0, closes the question to answers that many
	// seconds after the show (its timer).
	Seconds int
	// From is the presenter socket, which is told if the show is refused.
	From *actor.PID
}

// CloseQuestionnaire closes the questionnaire for good: participants are
// told, answers and shows are refused from then on.
// Presenter socket → Questionnaire.
type CloseQuestionnaire struct {
	From *actor.PID
}

// RevealResults sends every participant question Question's results.
// Presenter socket → Questionnaire.
type RevealResults struct {
	Question int
	From     *actor.PID
}

// HideEntry drops a text entry from question Question's tally and
// results (moderation). Presenter socket → Questionnaire.
type HideEntry struct {
	Question int
	Text     string
	From     *actor.PID
}

// SubmitAnswer is a participant's answer to the current question; a later
// one to the same question replaces it. Participant socket → Questionnaire,
// which writes it to the store before it acknowledges or tallies it.
type SubmitAnswer struct {
	Participant string
	Question    int
	// Kind is the kind of question the answer's frame is for: "single"
	// (Option), "multi" (Options), "scale" (Value) or "text" (Text).
	Kind    string
	Option  int
	Options []int
	Value   int
	Text    string
	// From is the participant socket, which is sent the acknowledgement
	// or the error.
	From *actor.PID
}
