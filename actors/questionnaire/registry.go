package questionnaire

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lobby/lobby/actors/questionnaire/store"
	"github.com/lobby/lobby/messages"
)

// questionnaires is the registry of questionnaire actors: it spawns one
// (as its child) on the first socket that joins a questionnaire, forwards
// the questionnaire's joins and leaves, and stops it when it reports
// itself idle and no socket is on its way to it. It is to questionnaires
// what the lobby is to rooms; only joins and leaves pass through it.
type questionnaires struct {
	store   store.Store
	goStore func(func())
	// storeCtx is the context of the questionnaires' store calls: the
	// node cancels it when its shutdown's deadline passes.
	storeCtx context.Context
	linger   time.Duration
	log      *slog.Logger
	opts     []actor.PropsOption
	running  map[string]*questionnaireEntry
}

type questionnaireEntry struct {
	pid *actor.PID
	// sockets counts the joins forwarded minus the leaves: when it is 0,
	// no join is on its way to the questionnaire.
	sockets int
}

func (r *questionnaires) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.JoinQuestionnaire:
		e, ok := r.running[m.ID]
		if !ok {
			e = &questionnaireEntry{pid: r.spawn(ctx, m.ID)}
			r.running[m.ID] = e
		}
		e.sockets++
		ctx.Send(e.pid, m)
	case *messages.LeaveQuestionnaire:
		if e, ok := r.running[m.ID]; ok {
			e.sockets--
			ctx.Send(e.pid, m)
		}
	case *questionnaireIdle:
		if e, ok := r.running[m.id]; ok && e.pid.Equal(m.pid) && e.sockets == 0 {
			ctx.Poison(e.pid)
			delete(r.running, m.id)
		}
	case *actor.Terminated:
		// A questionnaire that stopped itself (after a panic): forget it,
		// the next socket gets a fresh one.
		for id, e := range r.running {
			if e.pid.Equal(m.Who) {
				delete(r.running, id)
			}
		}
	}
}

// stopQuestionnaire is the supervisor of questionnaires: a failure that
// escapes a questionnaire's Receive stops it. Restarting it (protoactor's
// default) would make a fresh actor that has forgotten its sockets.
var stopQuestionnaire = actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.StopDirective })

func (r *questionnaires) spawn(ctx actor.Context, id string) *actor.PID {
	props := actor.PropsFromProducer(func() actor.Actor {
		return newQuestionnaire(id, r.store, r.storeCtx, r.goStore, r.linger, r.log)
	}, r.opts...)
	return ctx.SpawnPrefix(props, "questionnaire-"+id)
}

// Errors of the questionnaire calls.
var (
	// ErrNoStore is returned when the node has no questionnaire store.
	ErrNoStore = errors.New("questionnaire: no questionnaire store")
	// ErrUnknownQuestionnaire is returned for an id no questionnaire has.
	ErrUnknownQuestionnaire = errors.New("questionnaire: unknown questionnaire")
	// ErrWrongToken is returned for a presenter token that is not the
	// questionnaire's.
	ErrWrongToken = errors.New("questionnaire: wrong presenter token")
)

// InvalidQuestionnaireError says what is wrong with a questionnaire a
// client asked to create.
type InvalidQuestionnaireError struct {
	// Reason is a sentence for the client.
	Reason string
}

func (e *InvalidQuestionnaireError) Error() string {
	return "questionnaire: invalid questionnaire: " + e.Reason
}

// Bounds of a questionnaire, in characters (Unicode code points).
const (
	MaxQuestions      = 100
	MinOptions        = 2
	MaxOptions        = 10
	MaxTitleChars     = 200
	MaxQuestionChars  = 500
	MaxOptionChars    = 200
	questionnaireIDLn = 16
)

// NewQuestionnaire is what a presenter asks to create.
type NewQuestionnaire struct {
	Title     string
	Questions []NewQuestion
}

// CreatedQuestionnaire is a questionnaire just created.
type CreatedQuestionnaire struct {
	ID string
	// PresenterToken is the presenter's secret; only its hash is stored,
	// so this is the one time it is seen.
	PresenterToken string
}

// validateQuestionnaire returns nq's questions as stored, with their
// defaults filled in, or an *InvalidQuestionnaireError saying the first
// thing wrong with nq.
func validateQuestionnaire(nq NewQuestionnaire) ([]store.Question, error) {
	invalid := func(reason string) error {
		return &InvalidQuestionnaireError{Reason: reason}
	}
	if err := checkText("title", nq.Title, MaxTitleChars); err != "" {
		return nil, invalid(err)
	}
	if n := len(nq.Questions); n < 1 || n > MaxQuestions {
		return nil, invalid(fmt.Sprintf("a questionnaire has 1 to %d questions, not %d", MaxQuestions, n))
	}
	questions := make([]store.Question, len(nq.Questions))
	for i, q := range nq.Questions {
		var err string
		if questions[i], err = validateQuestion(i, q); err != "" {
			return nil, invalid(err)
		}
	}
	return questions, nil
}

// checkText says what is wrong with a text of at most max characters that
// must not be blank, or "".
func checkText(what, s string, max int) string {
	switch {
	case strings.TrimSpace(s) == "":
		return what + " is empty"
	case !utf8.ValidString(s):
		return what + " is not valid UTF-8"
	case utf8.RuneCountInString(s) > max:
		return fmt.Sprintf("%s is longer than %d characters", what, max)
	case visible(s) == "":
		return what + " has no visible character"
	case strings.ContainsFunc(s, func(r rune) bool { return r == 0 || unicode.Is(unicode.Bidi_Control, r) }):
		return what + " holds a control character (NUL, or a bidirectional override)"
	case combiningRun(s) > maxCombining:
		return fmt.Sprintf("%s stacks more than %d combining marks on one character", what, maxCombining)
	}
	return ""
}

// maxCombining is the most combining marks one character may carry: a
// few make a letter (Vietnamese has two), hundreds draw over the page.
const maxCombining = 4

// visible is s without what draws nothing: white space, format and
// control characters, and the blank letters that pass for text (the
// Hangul fillers, the braille blank).
func visible(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r), unicode.In(r, unicode.Cf, unicode.Cc),
			r == '\u2800', r == '\u3164', r == '\u115F', r == '\u1160', r == '\uFFA0':
			return -1
		}
		return r
	}, s)
}

// combiningRun is the longest run of combining marks in s.
func combiningRun(s string) int {
	longest, run := 0, 0
	for _, r := range s {
		if unicode.In(r, unicode.Mn, unicode.Me) {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

// Create validates and stores a new questionnaire, with a new
// id and presenter token. An invalid one is an *InvalidQuestionnaireError.
func (s *Service) Create(ctx context.Context, nq NewQuestionnaire) (CreatedQuestionnaire, error) {
	questions, err := validateQuestionnaire(nq)
	if err != nil {
		return CreatedQuestionnaire{}, err
	}
	token := newPresenterToken()
	q := store.Questionnaire{
		ID:        newQuestionnaireID(),
		Title:     nq.Title,
		Questions: questions,
		TokenHash: hashToken(token),
		Created:   time.Now(),
	}
	if err := s.store.Create(ctx, q); err != nil {
		return CreatedQuestionnaire{}, fmt.Errorf("create questionnaire: %w", err)
	}
	return CreatedQuestionnaire{ID: q.ID, PresenterToken: token}, nil
}

// Questionnaire returns a questionnaire's definition, or
// ErrUnknownQuestionnaire.
func (s *Service) Questionnaire(ctx context.Context, id string) (store.Questionnaire, error) {
	if !validQuestionnaireID(id) {
		return store.Questionnaire{}, ErrUnknownQuestionnaire
	}
	q, err := s.store.Questionnaire(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Questionnaire{}, ErrUnknownQuestionnaire
	}
	return q, err
}

// AuthorizePresenter returns nil when token is the questionnaire's
// presenter token, ErrWrongToken when it is not, ErrUnknownQuestionnaire
// when there is no such questionnaire.
func (s *Service) AuthorizePresenter(ctx context.Context, id, token string) error {
	q, err := s.Questionnaire(ctx, id)
	if err != nil {
		return err
	}
	// Both hashes are 32 bytes: the comparison takes the same time
	// wherever they differ.
	if subtle.ConstantTimeCompare(hashToken(token), q.TokenHash) != 1 {
		return ErrWrongToken
	}
	return nil
}

// Results returns a questionnaire's results, for its presenter: the
// errors are AuthorizePresenter's. They are counted from the store's
// state by the code that counts the live tallies: every answer a
// participant was told is stored is in them, and a hidden entry is not.
func (s *Service) Results(ctx context.Context, id, token string) (Results, error) {
	if err := s.AuthorizePresenter(ctx, id, token); err != nil {
		return Results{}, err
	}
	def, err := s.store.Questionnaire(ctx, id)
	if err == nil {
		var st store.State
		if st, err = s.store.State(ctx, id); err == nil {
			var counts []store.AnswerCount
			if counts, err = s.store.Tally(ctx, id); err == nil {
				return results(def, st, counts, time.Now()), nil
			}
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return Results{}, ErrUnknownQuestionnaire
	}
	return Results{}, err
}

// goStore runs f, which calls the store, on a goroutine of its own: off the
// workers, which a blocking call would hold up. Stop waits for every such
// goroutine before it returns, so the store may be closed then.
func (s *Service) goStore(f func()) { s.calls.Go(f) }

// newQuestionnaireID makes a questionnaire id: 16 characters of a-z 2-7,
// 80 random bits. Anyone with the id may take part, so it is not
// guessable; it is short enough to type from a screen.
func newQuestionnaireID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return strings.ToLower(base32.StdEncoding.EncodeToString(b))
}

// validQuestionnaireID reports whether id could be a questionnaire id:
// checking saves a store lookup for anything else.
func validQuestionnaireID(id string) bool {
	if len(id) != questionnaireIDLn {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// newPresenterToken makes a presenter token: 256 random bits, base64url.
func newPresenterToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is the SHA-256 of a presenter token, which is what the store
// keeps: a copy of the database does not give away the tokens. A token has
// 256 random bits, so a fast hash is enough.
func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
