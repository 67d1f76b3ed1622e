package questionnaire

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/lobby/lobby/actors/questionnaire/store"
	"github.com/lobby/lobby/actors/socket"
)

// MaxTallyWords is how many text entries a tally frame carries, the most
// frequent: a word cloud of more is unreadable, and a frame of every
// answer to a text question would grow with the audience. Results carry
// every entry.
const MaxTallyWords = 50

// tally counts the answers to one question. The questionnaire actor keeps
// one per question, moved by each answer (add, and remove for the answer
// it replaces); Service.Results makes them from the store's state, so the
// live tally and the exported results are counted by one piece of code.
type tally struct {
	q store.Question
	// answered counts the participants who answered.
	answered int
	// counts are per option (single, multi) or per value from q.Min
	// (scale).
	counts []int
	// sum is the sum of a scale's values.
	sum int
	// entries are a text question's answers by textKey; hidden holds the
	// keys the presenter hid.
	entries map[string]*entry
	hidden  map[string]bool
}

// entry is one text entry of a tally: answers with the same textKey.
type entry struct {
	text  string
	count int
}

// Word is a text entry of a tally, for Results.
type Word struct {
	Text  string
	Count int
}

func newTally(q store.Question, hidden []string) *tally {
	t := &tally{q: q}
	switch q.Kind {
	case store.KindScale:
		t.counts = make([]int, q.Max-q.Min+1)
	case store.KindText:
		t.entries = make(map[string]*entry)
		t.hidden = make(map[string]bool, len(hidden))
		for _, k := range hidden {
			t.hidden[k] = true
		}
	default:
		t.counts = make([]int, len(q.Options))
	}
	return t
}

// add counts a sign times (the store's tally gives many alike answers at
// once), or takes it back (sign < 0). a has been checked
// against the question (checkAnswerValue) or comes from the store, which
// holds only checked answers; a value off the question is ignored rather
// than trusted to index.
func (t *tally) add(a *store.Answer, sign int) {
	t.answered += sign
	switch t.q.Kind {
	case store.KindSingle:
		if a.Option >= 0 && a.Option < len(t.counts) {
			t.counts[a.Option] += sign
		}
	case store.KindMulti:
		for _, o := range a.Options {
			if o >= 0 && o < len(t.counts) {
				t.counts[o] += sign
			}
		}
	case store.KindScale:
		if i := a.Value - t.q.Min; i >= 0 && i < len(t.counts) {
			t.counts[i] += sign
			t.sum += sign * a.Value
		}
	case store.KindText:
		key := textKey(a.Text)
		e := t.entries[key]
		if e == nil {
			e = &entry{text: textShown(a.Text)}
			t.entries[key] = e
		}
		e.count += sign
		if e.count <= 0 {
			delete(t.entries, key)
		}
	}
}

// hide drops the entry with key from the tally and its results.
func (t *tally) hide(key string) {
	if t.hidden != nil {
		t.hidden[key] = true
	}
}

// mean is a scale's mean value, rounded to 2 decimals; ok is false with
// no answers.
func (t *tally) mean() (m float64, ok bool) {
	if t.q.Kind != store.KindScale || t.answered == 0 {
		return 0, false
	}
	return math.Round(float64(t.sum)/float64(t.answered)*100) / 100, true
}

// words are a text question's visible entries, most frequent first (then
// by text, so that the order is stable), at most limit (0: all).
func (t *tally) words(limit int) []Word {
	words := make([]Word, 0, len(t.entries))
	keys := make([]string, 0, len(t.entries))
	for k, e := range t.entries {
		if !t.hidden[k] {
			words = append(words, Word{Text: e.text, Count: e.count})
			keys = append(keys, k)
		}
	}
	order := make([]int, len(words))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(words[b].Count, words[a].Count); c != 0 {
			return c
		}
		return cmp.Compare(keys[a], keys[b])
	})
	if limit > 0 && len(order) > limit {
		order = order[:limit]
	}
	sorted := make([]Word, len(order))
	for i, j := range order {
		sorted[i] = words[j]
	}
	return sorted
}

// appendFields appends the tally's fields, each after a comma:
// "counts" (not for text), "mean" (scale, null with no answers), "words"
// (text, at most MaxTallyWords) and "answered".
func (t *tally) appendFields(dst []byte) []byte {
	if t.q.Kind != store.KindText {
		dst = append(dst, `,"counts":[`...)
		for i, n := range t.counts {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, int64(n), 10)
		}
		dst = append(dst, ']')
	}
	if t.q.Kind == store.KindScale {
		dst = append(dst, `,"mean":`...)
		if m, ok := t.mean(); ok {
			dst = strconv.AppendFloat(dst, m, 'f', -1, 64)
		} else {
			dst = append(dst, "null"...)
		}
	}
	if t.q.Kind == store.KindText {
		dst = append(dst, `,"words":[`...)
		for i, w := range t.words(MaxTallyWords) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"text":`...)
			dst = socket.AppendJSONString(dst, w.Text)
			dst = append(dst, `,"count":`...)
			dst = strconv.AppendInt(dst, int64(w.Count), 10)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"answered":`...)
	return strconv.AppendInt(dst, int64(t.answered), 10)
}

// Results are a questionnaire's results, for its presenter.
type Results struct {
	// Current is the question shown, store.NoQuestion before the first
	// show.
	Current int
	Closed  bool
	// Questions holds each question's results, in order.
	Questions []QuestionResults
}

// QuestionResults are one question's results: its tally's fields.
type QuestionResults struct {
	// Question is the question's definition.
	Question store.Question
	Answered int
	// Counts are per option (single, multi) or per value from
	// Question.Min (scale); nil for text.
	Counts []int
	// Mean is a scale's mean, nil with no answers or for other kinds.
	Mean *float64
	// Words are a text question's visible entries, most frequent first,
	// all of them; nil for other kinds.
	Words []Word
	// Closed is set when the question takes no more answers: its timer is
	// over, or the questionnaire is closed.
	Closed bool
	// ClosesAt is when its timer closes it; zero for none.
	ClosesAt time.Time
	Revealed bool
}

// results makes a questionnaire's results from its definition, state and
// the store's counts, as of now.
func results(def store.Questionnaire, st store.State, counts []store.AnswerCount, now time.Time) Results {
	tallies := talliesOf(def, st, counts)
	r := Results{Current: st.Current, Closed: st.Closed, Questions: make([]QuestionResults, len(tallies))}
	for i, t := range tallies {
		qs := questionState(st, i)
		qr := QuestionResults{Question: t.q, Answered: t.answered, Counts: t.counts,
			Closed: st.Closed || timerOver(qs.ClosesAt, now), ClosesAt: qs.ClosesAt, Revealed: qs.Revealed}
		if m, ok := t.mean(); ok {
			qr.Mean = &m
		}
		if t.q.Kind == store.KindText {
			qr.Words = t.words(0)
		}
		r.Questions[i] = qr
	}
	return r
}

// talliesOf makes def's tallies from the store's counts of its answers
// (Store.Tally): a group of alike answers is added at once, so that the
// work follows the distinct answers, not the answers.
func talliesOf(def store.Questionnaire, st store.State, counts []store.AnswerCount) []*tally {
	tallies := make([]*tally, len(def.Questions))
	for i, q := range def.Questions {
		tallies[i] = newTally(q, questionState(st, i).Hidden)
	}
	for i := range counts {
		c := &counts[i]
		if c.Question >= 0 && c.Question < len(tallies) && c.Count > 0 {
			tallies[c.Question].add(&c.Answer, c.Count)
		}
	}
	return tallies
}

// questionState is st's state of question i; a store that has none (a
// questionnaire written before question states) means none is set.
func questionState(st store.State, i int) store.QuestionState {
	if i < len(st.Questions) {
		return st.Questions[i]
	}
	return store.QuestionState{}
}

// timerOver reports whether a timer that closes at closesAt (zero: none)
// is over at now.
func timerOver(closesAt, now time.Time) bool {
	return !closesAt.IsZero() && !now.Before(closesAt)
}
