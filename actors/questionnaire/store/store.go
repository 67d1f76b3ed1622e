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
	// State returns everything that changes: the current question, the
	// closed flag and every answer (ordered by participant, then
	// question), or ErrNotFound.
	State(ctx context.Context, id string) (State, error)
	// Results counts the answers to every question, or ErrNotFound.
	Results(ctx context.Context, id string) (Results, error)
	// Apply writes c in one transaction, or ErrNotFound. Answers must name
	// questions and options the questionnaire has.
	Apply(ctx context.Context, id string, c Changes) error
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

// Question is one question with its options, in order.
type Question struct {
	Text    string
	Options []string
}

// Answer is one participant's answer to one question.
type Answer struct {
	Participant string
	Question    int
	Option      int
}

// State is what changes in a questionnaire.
type State struct {
	// Current is the question shown, NoQuestion before the first show.
	Current int
	Closed  bool
	Answers []Answer
}

// Results are a questionnaire's answer counts.
type Results struct {
	// Current is the question shown, NoQuestion before the first show.
	Current int
	Closed  bool
	// Counts holds, per question, the number of answers per option.
	Counts [][]int
}

// Changes are what one Apply writes: answers first, in order (a later
// answer of the same participant to the same question replaces an earlier
// one), then the current question and the closed flag.
type Changes struct {
	Answers []Answer
	// SetCurrent, when true, makes Current the question shown.
	SetCurrent bool
	Current    int
	// Close, when true, closes the questionnaire; it is never reopened.
	Close bool
}

// Empty reports whether c changes nothing.
func (c Changes) Empty() bool { return len(c.Answers) == 0 && !c.SetCurrent && !c.Close }
