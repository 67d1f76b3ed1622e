package store

import (
	"context"
	"errors"
	"time"
)

// Errors a Store returns. Others are the database's, wrapped.
var (
	// ErrNotFound is returned for a questionnaire id that was never created.
	ErrNotFound = errors.New("store: no such questionnaire")
	// ErrExists is returned by Create for an id already taken.
	ErrExists = errors.New("store: questionnaire id already taken")
	// ErrFull is returned by a write the store has no room for: it is at
	// its size limit, or its disk is full. Reads still work.
	ErrFull = errors.New("store: full")
	// ErrParticipantLimit is returned by AddParticipant for a
	// questionnaire that has issued its limit of participant identities.
	ErrParticipantLimit = errors.New("store: the questionnaire has all the participants it may have")
)

// NoQuestion is State.Current and Results.Current before the first show.
const NoQuestion = -1

// Store keeps questionnaires. Its contract:
//
//   - a method that returns nil has made its change durable: it survives
//     the process's crash or restart (not necessarily a power loss);
//   - Apply writes all of its Changes or none of them;
//   - one participant has at most one answer per question: a later one
//     replaces it;
//   - a questionnaire's definition (title, questions, options, token
//     hash) never changes after Create.
//
// Methods are safe for concurrent use. Close ends the Store; no method may
// be called after it.
type Store interface {
	// Create stores a new questionnaire, with no answers, no current
	// question, not closed. q.ID must be new (else ErrExists).
	Create(ctx context.Context, q Questionnaire) error
	// Questionnaire returns a questionnaire's definition, or ErrNotFound.
	Questionnaire(ctx context.Context, id string) (Questionnaire, error)
	// State returns what changes apart from the answers: the current
	// question, the closed flag, each question's timer, reveal and hidden
	// entries, or ErrNotFound.
	State(ctx context.Context, id string) (State, error)
	// Tally counts a questionnaire's answers: one AnswerCount for each
	// group of answers to a question that are alike (same option, option
	// set, value or text), in no particular order; ErrNotFound is not
	// returned, an unknown id has no answers. Its size grows with the
	// distinct answers, not with the answers: the live tallies and the
	// exported results are counted from it (package questionnaire), so
	// that they are one count and a million answers are not loaded.
	Tally(ctx context.Context, id string) ([]AnswerCount, error)
	// Answers returns one participant's answers, ordered by question.
	Answers(ctx context.Context, id, participant string) ([]Answer, error)
	// Apply writes c in one transaction, or ErrNotFound, and returns, for
	// each of c.Answers, the answer it replaced (nil for a first answer),
	// so that a tally can take it back. Answers must name questions and
	// options the questionnaire has.
	Apply(ctx context.Context, id string, c Changes) ([]*Answer, error)
	// AddParticipant counts one more participant identity issued for a
	// questionnaire: ErrParticipantLimit when it has limit already,
	// ErrNotFound for an unknown one.
	AddParticipant(ctx context.Context, id string, limit int) error
	// Secret returns the secret called name, making it (size random
	// bytes) the first time: it is kept with the questionnaires, so that
	// what it signed stays valid after a restart.
	Secret(ctx context.Context, name string, size int) ([]byte, error)
	// Close releases the store.
	Close() error
}

// Questionnaire is a questionnaire's definition.
type Questionnaire struct {
	ID    string
	Title string
	// Questions are in the order the presenter shows them; a question's
	// index in this slice is its number on the wire.
	Questions []Question
	// TokenHash is the SHA-256 of the presenter token; the token itself is
	// never stored.
	TokenHash []byte
	Created   time.Time
}

// The kinds of question (SPEC.md, "Question kinds, timers, reveal,
// export").
const (
	// KindSingle: pick one option.
	KindSingle = "single"
	// KindMulti: pick one or more options, at most MaxChoices.
	KindMulti = "multi"
	// KindScale: a whole number from Min to Max.
	KindScale = "scale"
	// KindText: a short text, at most MaxLength characters.
	KindText = "text"
)

// Question is one question: its text, its kind and what the kind needs.
// A field that its kind does not use is zero.
type Question struct {
	Text string
	// Kind is one of the Kind constants. Questions stored before kinds
	// existed read as KindSingle.
	Kind string
	// Options are a single or multi question's options, in order.
	Options []string
	// MaxChoices is how many options a multi question's answer may pick.
	MaxChoices int
	// Min and Max bound a scale question's values.
	Min, Max int
	// Labels are a scale question's words for Min and Max, or nil.
	Labels []string
	// MaxLength is how many characters a text question's answer may have.
	MaxLength int
}

// NoOption is Answer.Option for an answer that is not to a single
// question.
const NoOption = -1

// Answer is one participant's answer to one question. Which fields count
// is the question's kind's: the others are zero.
type Answer struct {
	Participant string
	Question    int
	// Option is a single question's option, NoOption for other kinds.
	Option int
	// Options are a multi question's options, in increasing order.
	Options []int
	// Value is a scale question's value.
	Value int
	// Text is a text question's answer.
	Text string
}

// State is what changes in a questionnaire.
type State struct {
	// Current is the question shown, NoQuestion before the first show.
	Current int
	Closed  bool
	// Questions holds each question's state, one per question.
	Questions []QuestionState
}

// AnswerCount is how many answers to a question are alike: Answer is one
// of them, without its Participant.
type AnswerCount struct {
	Answer
	Count int
}

// QuestionState is what changes in one question.
type QuestionState struct {
	// ClosesAt is when the question's timer closes it to answers, to the
	// millisecond; zero for no timer.
	ClosesAt time.Time
	// Revealed is set once the presenter has shown participants the
	// question's results.
	Revealed bool
	// Hidden are the text entries the presenter hid, as their grouping
	// keys, in increasing order.
	Hidden []string
}

// Hide is a text entry the presenter hid from a question's tally.
type Hide struct {
	Question int
	// Key is the entry's grouping key (package questionnaire's textKey).
	Key string
}

// Changes are what one Apply writes: answers first, in order (a later
// answer of the same participant to the same question replaces an earlier
// one), then hidden entries and reveals, then the current question with
// its timer, and the closed flag.
type Changes struct {
	Answers []Answer
	Hide    []Hide
	// Reveal lists questions whose results participants are now shown.
	Reveal []int
	// SetCurrent, when true, makes Current the question shown, and
	// ClosesAt its timer (zero: none, which also clears an earlier one).
	SetCurrent bool
	Current    int
	ClosesAt   time.Time
	// Close, when true, closes the questionnaire; it is never reopened.
	Close bool
}

// Empty reports whether c changes nothing.
func (c Changes) Empty() bool {
	return len(c.Answers) == 0 && len(c.Hide) == 0 && len(c.Reveal) == 0 && !c.SetCurrent && !c.Close
}
