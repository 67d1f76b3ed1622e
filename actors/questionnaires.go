package actors

import (
	"context"

	"github.com/lobby/lobby/actors/questionnaire"
	"github.com/lobby/lobby/actors/questionnaire/store"
)

// The questionnaire's calls, for the transport: package questionnaire's,
// or ErrNoStore on a node that serves none.

// Errors and values of the questionnaire calls (package questionnaire).
var (
	ErrNoStore              = questionnaire.ErrNoStore
	ErrUnknownQuestionnaire = questionnaire.ErrUnknownQuestionnaire
	ErrWrongToken           = questionnaire.ErrWrongToken
	// ErrParticipantLimit: the questionnaire has issued every
	// participant identity it may (Config.MaxParticipants).
	ErrParticipantLimit = questionnaire.ErrParticipantLimit
	// ErrWrongParticipantToken: a participant token this server did not
	// issue for that participant and questionnaire.
	ErrWrongParticipantToken = questionnaire.ErrWrongParticipantToken
)

type (
	InvalidQuestionnaireError = questionnaire.InvalidQuestionnaireError
	NewQuestionnaire          = questionnaire.NewQuestionnaire
	NewQuestion               = questionnaire.NewQuestion
	CreatedQuestionnaire      = questionnaire.CreatedQuestionnaire
	QuestionnaireResults      = questionnaire.Results
	QuestionResults           = questionnaire.QuestionResults
	Word                      = questionnaire.Word
	ParticipantIdentity       = questionnaire.ParticipantIdentity
)

// NewParticipant issues a participant identity for questionnaire id: an
// id and the token its socket needs. ErrUnknownQuestionnaire for none,
// ErrParticipantLimit when it has issued all it may.
func (n *Node) NewParticipant(ctx context.Context, id string) (ParticipantIdentity, error) {
	if n.questionnaires == nil {
		return ParticipantIdentity{}, ErrNoStore
	}
	return n.questionnaires.NewParticipant(ctx, id)
}

// AuthorizeParticipant returns nil when token is the one issued with
// participant for questionnaire id, else ErrWrongParticipantToken.
func (n *Node) AuthorizeParticipant(id, participant, token string) error {
	if n.questionnaires == nil {
		return ErrNoStore
	}
	return n.questionnaires.AuthorizeParticipant(id, participant, token)
}

// CreateQuestionnaire validates and stores a new questionnaire, with a new
// id and presenter token. An invalid one is an *InvalidQuestionnaireError.
func (n *Node) CreateQuestionnaire(ctx context.Context, nq NewQuestionnaire) (CreatedQuestionnaire, error) {
	if n.questionnaires == nil {
		return CreatedQuestionnaire{}, ErrNoStore
	}
	return n.questionnaires.Create(ctx, nq)
}

// Questionnaire returns a questionnaire's definition, or
// ErrUnknownQuestionnaire.
func (n *Node) Questionnaire(ctx context.Context, id string) (store.Questionnaire, error) {
	if n.questionnaires == nil {
		return store.Questionnaire{}, ErrNoStore
	}
	return n.questionnaires.Questionnaire(ctx, id)
}

// AuthorizePresenter returns nil when token is the questionnaire's
// presenter token, ErrWrongToken when it is not, ErrUnknownQuestionnaire
// when there is no such questionnaire.
func (n *Node) AuthorizePresenter(ctx context.Context, id, token string) error {
	if n.questionnaires == nil {
		return ErrNoStore
	}
	return n.questionnaires.AuthorizePresenter(ctx, id, token)
}

// QuestionnaireResults returns the results of every question of a
// questionnaire, for its presenter: the errors are AuthorizePresenter's.
func (n *Node) QuestionnaireResults(ctx context.Context, id, token string) (QuestionnaireResults, error) {
	if n.questionnaires == nil {
		return QuestionnaireResults{}, ErrNoStore
	}
	return n.questionnaires.Results(ctx, id, token)
}
