package questionnaire

import (
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/lobby/lobby/actors/questionnaire/store"
	"github.com/lobby/lobby/messages"
)

// TestPlanCutsAtASecondShow: a batch carries one show (Changes has one
// current question and one timer), so the changes from a second show on
// wait for the next write, in order; answers are checked against the
// show before them and the timer it sets.
func TestPlanCutsAtASecondShow(t *testing.T) {
	q := newQuestionnaire("q", nil, nil, nil, time.Second, slog.New(slog.DiscardHandler))
	q.loaded = true
	q.def = store.Questionnaire{Questions: []store.Question{
		{Text: "a", Kind: store.KindSingle, Options: []string{"x", "y"}},
		{Text: "b", Kind: store.KindText, MaxLength: 10},
	}}
	q.questions = make([]store.QuestionState, 2)
	q.tallies = talliesOf(q.def, store.State{}, nil)
	show0 := &messages.ShowQuestion{Question: 0, Seconds: 30}
	answer0 := &messages.SubmitAnswer{Participant: "ann", Question: 0, Kind: store.KindSingle, Option: 1}
	show1 := &messages.ShowQuestion{Question: 1}
	answer1 := &messages.SubmitAnswer{Participant: "ann", Question: 1, Kind: store.KindText, Text: " hi "}
	hide := &messages.HideEntry{Question: 1, Text: "Spam  Eggs"}
	before := time.Now()
	w, rest := q.plan(nil, []any{show0, answer0, show1, answer1})
	if !w.changes.SetCurrent || w.changes.Current != 0 || len(w.batch) != 2 ||
		!reflect.DeepEqual(w.changes.Answers, []store.Answer{{Participant: "ann", Question: 0, Option: 1}}) {
		t.Fatalf("first batch %+v", w.changes)
	}
	if got := w.changes.ClosesAt.Sub(before); got < 29*time.Second || got > 31*time.Second {
		t.Fatalf("the timer closes %v after the show, want 30 s", got)
	}
	if !reflect.DeepEqual(rest, []any{show1, answer1}) {
		t.Fatalf("left for the next write: %v", rest)
	}
	q.current, q.questions[0].ClosesAt = 0, w.changes.ClosesAt
	w, rest = q.plan(nil, append(rest, hide))
	want := store.Changes{SetCurrent: true, Current: 1,
		Answers: []store.Answer{{Participant: "ann", Question: 1, Option: store.NoOption, Text: "hi"}},
		Hide:    []store.Hide{{Question: 1, Key: "spam eggs"}}}
	if rest != nil || !reflect.DeepEqual(w.changes, want) {
		t.Fatalf("second batch %+v (rest %v), want %+v", w.changes, rest, want)
	}
}
