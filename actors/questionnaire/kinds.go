package questionnaire

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/lobby/lobby/actors/questionnaire/store"
)

// The kinds of question (SPEC.md, "Question kinds, timers, reveal,
// export"): what a question of each kind may be created with, and what an
// answer to it may be. Tallies are in tally.go.

// Bounds of the kinds, besides the options' (MinOptions, MaxOptions).
const (
	// MinScale and MaxScale bound a scale's values; DefaultScaleMin and
	// DefaultScaleMax are a scale's when it gives none.
	MinScale        = 0
	MaxScale        = 10
	DefaultScaleMin = 1
	DefaultScaleMax = 5
	// MaxTextLength is the longest a text question's max_length may be;
	// DefaultTextLength is its max_length when it gives none.
	MaxTextLength     = 280
	DefaultTextLength = 80
	// MaxLabelChars bounds a scale's labels.
	MaxLabelChars = MaxOptionChars
)

// NewQuestion is one question a presenter asks to create. Pointers are
// nil for a setting not given, which then takes its default.
type NewQuestion struct {
	Text string
	// Kind is "" (single) or one of store's Kind constants.
	Kind    string
	Options []string
	// Max is, for multi, how many options may be picked (default all);
	// for scale, its highest value (default 5).
	Max *int
	// Min is a scale's lowest value (default 1).
	Min *int
	// Labels are a scale's words for its lowest and highest values.
	Labels []string
	// MaxLength is how many characters a text answer may have (default 80).
	MaxLength *int
}

// validateQuestion checks question i and returns it as stored, with its
// defaults filled in, or the reason it is refused.
func validateQuestion(i int, nq NewQuestion) (store.Question, string) {
	if err := checkText(fmt.Sprintf("question %d's text", i), nq.Text, MaxQuestionChars); err != "" {
		return store.Question{}, err
	}
	q := store.Question{Text: nq.Text, Kind: nq.Kind}
	if q.Kind == "" {
		q.Kind = store.KindSingle
	}
	// notFor names the first setting given that the kind has no use for:
	// a setting silently dropped would be a surprise later.
	notFor := func(settings map[string]bool) string {
		for _, name := range []string{"options", "max", "min", "labels", "max_length"} {
			if settings[name] {
				return fmt.Sprintf("question %d is a %s question: %s is not one of its settings", i, q.Kind, name)
			}
		}
		return ""
	}
	given := map[string]bool{"options": nq.Options != nil, "max": nq.Max != nil, "min": nq.Min != nil,
		"labels": nq.Labels != nil, "max_length": nq.MaxLength != nil}
	switch q.Kind {
	case store.KindSingle, store.KindMulti:
		if err := checkOptions(i, nq.Options); err != "" {
			return store.Question{}, err
		}
		q.Options = nq.Options
		given["options"] = false
		if q.Kind == store.KindMulti {
			q.MaxChoices = len(q.Options)
			if nq.Max != nil {
				if *nq.Max < 1 || *nq.Max > len(q.Options) {
					return store.Question{}, fmt.Sprintf("question %d's max is %d: a multi question lets 1 to its %d options be picked",
						i, *nq.Max, len(q.Options))
				}
				q.MaxChoices = *nq.Max
			}
			given["max"] = false
		}
	case store.KindScale:
		q.Min, q.Max = DefaultScaleMin, DefaultScaleMax
		if nq.Min != nil {
			q.Min = *nq.Min
		}
		if nq.Max != nil {
			q.Max = *nq.Max
		}
		if q.Min < MinScale || q.Max > MaxScale || q.Min >= q.Max {
			return store.Question{}, fmt.Sprintf("question %d's scale is %d to %d: a scale has whole numbers min < max from %d to %d",
				i, q.Min, q.Max, MinScale, MaxScale)
		}
		if nq.Labels != nil {
			if len(nq.Labels) != 2 {
				return store.Question{}, fmt.Sprintf("question %d has %d labels: a scale's labels are [low, high]", i, len(nq.Labels))
			}
			for j, l := range nq.Labels {
				if err := checkText(fmt.Sprintf("question %d's label %d", i, j), l, MaxLabelChars); err != "" {
					return store.Question{}, err
				}
			}
			q.Labels = nq.Labels
		}
		given["min"], given["max"], given["labels"] = false, false, false
	case store.KindText:
		q.MaxLength = DefaultTextLength
		if nq.MaxLength != nil {
			if *nq.MaxLength < 1 || *nq.MaxLength > MaxTextLength {
				return store.Question{}, fmt.Sprintf("question %d's max_length is %d: a text answer is 1 to %d characters",
					i, *nq.MaxLength, MaxTextLength)
			}
			q.MaxLength = *nq.MaxLength
		}
		given["max_length"] = false
	default:
		return store.Question{}, fmt.Sprintf("question %d's kind %q is not single, multi, scale or text", i, trimForReason(nq.Kind))
	}
	if err := notFor(given); err != "" {
		return store.Question{}, err
	}
	return q, ""
}

// trimForReason cuts a client's text short enough to quote in a reason.
func trimForReason(s string) string {
	if utf8.RuneCountInString(s) > 32 {
		return string([]rune(s)[:32]) + "…"
	}
	return s
}

// checkOptions says what is wrong with question i's options, or "".
func checkOptions(i int, options []string) string {
	if n := len(options); n < MinOptions || n > MaxOptions {
		return fmt.Sprintf("question %d has %d options; a question has %d to %d", i, n, MinOptions, MaxOptions)
	}
	seen := make(map[string]int, len(options))
	for j, o := range options {
		if err := checkText(fmt.Sprintf("question %d's option %d", i, j), o, MaxOptionChars); err != "" {
			return err
		}
		// Options that look alike are one option to the audience.
		key := strings.ToLower(visible(o))
		if k, dup := seen[key]; dup {
			return fmt.Sprintf("question %d's options %d and %d look the same", i, k, j)
		}
		seen[key] = j
	}
	return ""
}

// Error codes of answers checked against their question's kind, besides
// codeOutOfRange.
const (
	// codeInvalidAnswer: an answer of the wrong shape for its question's
	// kind, a text that is blank or too long, options picked twice or
	// too many.
	codeInvalidAnswer = "invalid_answer"
	// codeQuestionClosed: an answer to a question whose timer is over.
	codeQuestionClosed = "question_closed"
)

// answerField is the frame field that carries an answer of each kind.
var answerField = map[string]string{
	store.KindSingle: "option",
	store.KindMulti:  "options",
	store.KindScale:  "value",
	store.KindText:   "text",
}

// checkAnswerValue checks an answer's value against question i of its
// kind, and returns it as stored (without participant), or an error code
// and message.
func checkAnswerValue(i int, q store.Question, a answerValue) (store.Answer, string, string) {
	stored := store.Answer{Question: i, Option: store.NoOption}
	if a.kind != q.Kind {
		return stored, codeInvalidAnswer, fmt.Sprintf("question %d is a %s question: answer it with %s", i, q.Kind, answerField[q.Kind])
	}
	switch q.Kind {
	case store.KindSingle:
		if a.option >= len(q.Options) {
			n := len(q.Options)
			return stored, codeOutOfRange, fmt.Sprintf("option %d does not exist: question %d has %d (0 to %d)", a.option, i, n, n-1)
		}
		stored.Option = a.option
	case store.KindMulti:
		if len(a.options) < 1 || len(a.options) > q.MaxChoices {
			return stored, codeInvalidAnswer, fmt.Sprintf("question %d takes 1 to %d options, not %d", i, q.MaxChoices, len(a.options))
		}
		options := slices.Clone(a.options)
		slices.Sort(options)
		for j, o := range options {
			if o < 0 || o >= len(q.Options) {
				n := len(q.Options)
				return stored, codeOutOfRange, fmt.Sprintf("option %d does not exist: question %d has %d (0 to %d)", o, i, n, n-1)
			}
			if j > 0 && options[j-1] == o {
				return stored, codeInvalidAnswer, fmt.Sprintf("option %d is picked twice", o)
			}
		}
		stored.Options = options
	case store.KindScale:
		if a.value < q.Min || a.value > q.Max {
			return stored, codeOutOfRange, fmt.Sprintf("value %d is off question %d's scale, %d to %d", a.value, i, q.Min, q.Max)
		}
		stored.Value = a.value
	case store.KindText:
		text := strings.TrimSpace(a.text)
		if err := checkText("the answer", text, q.MaxLength); err != "" {
			return stored, codeInvalidAnswer, err
		}
		stored.Text = text
	}
	return stored, "", ""
}

// answerValue is an answer as a participant's frame gives it: kind is the
// kind its field says (option: single, options: multi, value: scale,
// text: text).
type answerValue struct {
	kind    string
	option  int
	options []int
	value   int
	text    string
}

// textKey is the key text answers are grouped by: case and white space
// do not count ("Go  lang" and "go lang" are one entry).
func textKey(text string) string {
	return strings.ToLower(strings.Join(strings.Fields(text), " "))
}

// textShown is how an entry is written on the presenter's screen: the
// first answer that made it, its white space collapsed.
func textShown(text string) string {
	return strings.Join(strings.Fields(text), " ")
}
