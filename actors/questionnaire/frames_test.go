package questionnaire

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lobby/lobby/actors/questionnaire/store"
	"github.com/lobby/lobby/actors/socket"
)

func TestValidateQuestionnaire(t *testing.T) {
	two := []string{"yes", "no"}
	qn := func(text string, options []string) NewQuestion {
		return NewQuestion{Text: text, Options: options}
	}
	one := func(title string, qs ...NewQuestion) NewQuestionnaire {
		return NewQuestionnaire{Title: title, Questions: qs}
	}
	many := func(n int, q NewQuestion) []NewQuestion {
		qs := make([]NewQuestion, n)
		for i := range qs {
			qs[i] = q
		}
		return qs
	}
	tests := []struct {
		name string
		nq   NewQuestionnaire
		want string // in the reason; "" means valid
	}{
		{"one question", one("t", qn("q", two)), ""},
		{"the largest", NewQuestionnaire{Title: strings.Repeat("é", 200), Questions: many(100, qn(strings.Repeat("é", 500),
			[]string{strings.Repeat("x", 200), "b", "c", "d", "e", "f", "g", "h", "i", "j"}))}, ""},
		{"no title", one("", qn("q", two)), "title is empty"},
		{"blank title", one(" \t", qn("q", two)), "title is empty"},
		{"title too long", one(strings.Repeat("é", 201), qn("q", two)), "title is longer than 200"},
		{"no questions", NewQuestionnaire{Title: "t"}, "1 to 100 questions, not 0"},
		{"101 questions", NewQuestionnaire{Title: "t", Questions: many(101, qn("q", two))}, "not 101"},
		{"empty question", one("t", qn("q", two), qn("", two)), "question 1's text is empty"},
		{"question too long", one("t", qn(strings.Repeat("x", 501), two)), "longer than 500"},
		{"one option", one("t", qn("q", []string{"only"})), "question 0 has 1 options"},
		{"eleven options", one("t", qn("q", strings.Split("abcdefghijk", ""))), "has 11 options"},
		{"empty option", one("t", qn("q", []string{"a", ""})), "question 0's option 1 is empty"},
		{"option too long", one("t", qn("q", []string{"a", strings.Repeat("x", 201)})), "longer than 200"},
		{"invalid UTF-8", one("t\xff", qn("q", two)), "not valid UTF-8"},
		{"unknown kind", one("t", NewQuestion{Text: "q", Kind: "ranking", Options: two}), `kind "ranking" is not`},
		{"single with max", one("t", NewQuestion{Text: "q", Options: two, Max: ptr(1)}), "max is not one of its settings"},
		{"multi", one("t", NewQuestion{Text: "q", Kind: "multi", Options: two}), ""},
		{"multi with max", one("t", NewQuestion{Text: "q", Kind: "multi", Options: two, Max: ptr(1)}), ""},
		{"multi max 0", one("t", NewQuestion{Text: "q", Kind: "multi", Options: two, Max: ptr(0)}), "max is 0"},
		{"multi max over options", one("t", NewQuestion{Text: "q", Kind: "multi", Options: two, Max: ptr(3)}), "max is 3"},
		{"multi one option", one("t", NewQuestion{Text: "q", Kind: "multi", Options: []string{"a"}}), "has 1 options"},
		{"multi with min", one("t", NewQuestion{Text: "q", Kind: "multi", Options: two, Min: ptr(1)}), "min is not one"},
		{"scale default", one("t", NewQuestion{Text: "q", Kind: "scale"}), ""},
		{"scale 0 to 10 labelled", one("t", NewQuestion{Text: "q", Kind: "scale", Min: ptr(0), Max: ptr(10), Labels: two}), ""},
		{"scale min = max", one("t", NewQuestion{Text: "q", Kind: "scale", Min: ptr(5), Max: ptr(5)}), "scale is 5 to 5"},
		{"scale over 10", one("t", NewQuestion{Text: "q", Kind: "scale", Max: ptr(11)}), "scale is 1 to 11"},
		{"scale under 0", one("t", NewQuestion{Text: "q", Kind: "scale", Min: ptr(-1)}), "scale is -1 to 5"},
		{"scale min over default max", one("t", NewQuestion{Text: "q", Kind: "scale", Min: ptr(6)}), "scale is 6 to 5"},
		{"scale one label", one("t", NewQuestion{Text: "q", Kind: "scale", Labels: []string{"low"}}), "has 1 labels"},
		{"scale blank label", one("t", NewQuestion{Text: "q", Kind: "scale", Labels: []string{"low", " "}}), "label 1 is empty"},
		{"scale with options", one("t", NewQuestion{Text: "q", Kind: "scale", Options: two}), "options is not one"},
		{"text default", one("t", NewQuestion{Text: "q", Kind: "text"}), ""},
		{"text 280", one("t", NewQuestion{Text: "q", Kind: "text", MaxLength: ptr(280)}), ""},
		{"text 281", one("t", NewQuestion{Text: "q", Kind: "text", MaxLength: ptr(281)}), "max_length is 281"},
		{"text 0", one("t", NewQuestion{Text: "q", Kind: "text", MaxLength: ptr(0)}), "max_length is 0"},
		{"text with options", one("t", NewQuestion{Text: "q", Kind: "text", Options: []string{}}), "options is not one"},
		{"text with labels", one("t", NewQuestion{Text: "q", Kind: "text", Labels: two}), "labels is not one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := validateQuestionnaire(tt.nq)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("valid questionnaire refused: %v", err)
				}
				return
			}
			var invalid *InvalidQuestionnaireError
			if !errors.As(err, &invalid) || !strings.Contains(invalid.Reason, tt.want) {
				t.Fatalf("error %v, want an InvalidQuestionnaireError saying %q", err, tt.want)
			}
		})
	}
}

func ptr(n int) *int { return &n }

// TestValidateQuestionnaireDefaults: what a question leaves out is stored
// as its kind's default.
func TestValidateQuestionnaireDefaults(t *testing.T) {
	got, err := validateQuestionnaire(NewQuestionnaire{Title: "t", Questions: []NewQuestion{
		{Text: "a", Options: []string{"x", "y"}},
		{Text: "b", Kind: "multi", Options: []string{"x", "y", "z"}},
		{Text: "c", Kind: "scale"},
		{Text: "d", Kind: "text"},
	}})
	want := []store.Question{
		{Text: "a", Kind: "single", Options: []string{"x", "y"}},
		{Text: "b", Kind: "multi", Options: []string{"x", "y", "z"}, MaxChoices: 3},
		{Text: "c", Kind: "scale", Min: 1, Max: 5},
		{Text: "d", Kind: "text", MaxLength: 80},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("validated %+v (%v), want %+v", got, err, want)
	}
}

// TestCheckAnswerValue: answers of each kind, checked against their
// question.
func TestCheckAnswerValue(t *testing.T) {
	multi := store.Question{Kind: "multi", Options: []string{"a", "b", "c"}, MaxChoices: 2}
	scale := store.Question{Kind: "scale", Min: 1, Max: 5}
	text := store.Question{Kind: "text", MaxLength: 5}
	single := store.Question{Kind: "single", Options: []string{"a", "b"}}
	tests := []struct {
		name     string
		q        store.Question
		a        answerValue
		wantCode string
		want     store.Answer
	}{
		{"single", single, answerValue{kind: "single", option: 1}, "", store.Answer{Option: 1}},
		{"single out of range", single, answerValue{kind: "single", option: 2}, codeOutOfRange, store.Answer{}},
		{"single answered as multi", single, answerValue{kind: "multi", options: []int{1}}, codeInvalidAnswer, store.Answer{}},
		{"multi sorted", multi, answerValue{kind: "multi", options: []int{2, 0}}, "", store.Answer{Option: store.NoOption, Options: []int{0, 2}}},
		{"multi too many", multi, answerValue{kind: "multi", options: []int{0, 1, 2}}, codeInvalidAnswer, store.Answer{}},
		{"multi none", multi, answerValue{kind: "multi", options: []int{}}, codeInvalidAnswer, store.Answer{}},
		{"multi twice", multi, answerValue{kind: "multi", options: []int{1, 1}}, codeInvalidAnswer, store.Answer{}},
		{"multi out of range", multi, answerValue{kind: "multi", options: []int{3}}, codeOutOfRange, store.Answer{}},
		{"scale", scale, answerValue{kind: "scale", value: 5}, "", store.Answer{Option: store.NoOption, Value: 5}},
		{"scale below", scale, answerValue{kind: "scale", value: 0}, codeOutOfRange, store.Answer{}},
		{"scale above", scale, answerValue{kind: "scale", value: 6}, codeOutOfRange, store.Answer{}},
		{"scale answered as text", scale, answerValue{kind: "text", text: "3"}, codeInvalidAnswer, store.Answer{}},
		{"text trimmed", text, answerValue{kind: "text", text: "  héllo "}, "", store.Answer{Option: store.NoOption, Text: "héllo"}},
		{"text too long", text, answerValue{kind: "text", text: "hello!"}, codeInvalidAnswer, store.Answer{}},
		{"text blank", text, answerValue{kind: "text", text: " \u200b "}, codeInvalidAnswer, store.Answer{}},
		{"text with a bidi override", text, answerValue{kind: "text", text: "a\u202eb"}, codeInvalidAnswer, store.Answer{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, code, msg := checkAnswerValue(0, tt.q, tt.a)
			if code != tt.wantCode {
				t.Fatalf("code %q (%s), want %q", code, msg, tt.wantCode)
			}
			if code == "" && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("stored %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestTallyKinds: each kind's tally, an answer replaced, and a hidden
// text entry.
func TestTallyKinds(t *testing.T) {
	scale := newTally(store.Question{Kind: "scale", Min: 1, Max: 5}, nil)
	a, b := &store.Answer{Value: 2}, &store.Answer{Value: 5}
	scale.add(a, 1)
	scale.add(b, 1)
	if got := string(scale.appendFields(nil)); got != `,"counts":[0,1,0,0,1],"mean":3.5,"answered":2` {
		t.Fatalf("scale fields %s", got)
	}
	scale.add(b, -1)
	scale.add(&store.Answer{Value: 3}, 1)
	if got := string(scale.appendFields(nil)); got != `,"counts":[0,1,1,0,0],"mean":2.5,"answered":2` {
		t.Fatalf("scale fields after a changed answer %s", got)
	}
	empty := newTally(store.Question{Kind: "scale", Min: 0, Max: 2}, nil)
	if got := string(empty.appendFields(nil)); got != `,"counts":[0,0,0],"mean":null,"answered":0` {
		t.Fatalf("empty scale fields %s", got)
	}
	text := newTally(store.Question{Kind: "text", MaxLength: 80}, []string{"spam"})
	for _, s := range []string{"Go", "go ", "Rust", "SPAM", "  Big   Data", "big data", "BIG DATA"} {
		text.add(&store.Answer{Text: s}, 1)
	}
	if got := string(text.appendFields(nil)); got != `,"words":[{"text":"Big Data","count":3},{"text":"Go","count":2},{"text":"Rust","count":1}],"answered":7` {
		t.Fatalf("text fields %s", got)
	}
	text.hide("go")
	if w := text.words(0); len(w) != 2 || w[1].Text != "Rust" {
		t.Fatalf("words after hiding go: %+v", w)
	}
	many := newTally(store.Question{Kind: "text", MaxLength: 80}, nil)
	for i := range MaxTallyWords + 10 {
		many.add(&store.Answer{Text: fmt.Sprint("w", i)}, 1)
	}
	if n := len(many.words(MaxTallyWords)); n != MaxTallyWords {
		t.Fatalf("%d words in a tally, want %d", n, MaxTallyWords)
	}
}

func TestDecodeQuestionnaireFrame(t *testing.T) {
	tests := []struct {
		name     string
		frame    string
		wantType string
		wantCode string
	}{
		{"show", `{"type":"show","question":3}`, "show", ""},
		{"close", `{"type":"close"}`, "close", ""},
		{"answer", `{"type":"answer","question":0,"option":9}`, "answer", ""},
		{"extra fields are ignored", `{"type":"close","why":"done"}`, "close", ""},
		{"not JSON", `{`, "", socket.CodeInvalidJSON},
		{"not UTF-8", "{\"type\":\"close\",\"why\":\"\xff\"}", "", socket.CodeInvalidJSON},
		{"a string", `"show"`, "", socket.CodeInvalidFrame},
		{"null", `null`, "", socket.CodeInvalidFrame},
		{"type not a string", `{"type":1}`, "", socket.CodeInvalidFrame},
		{"fraction", `{"type":"show","question":1.5}`, "", socket.CodeInvalidFrame},
		{"exponent", `{"type":"show","question":1e2}`, "", socket.CodeInvalidFrame},
		{"huge", `{"type":"show","question":99999999999999999999}`, "", socket.CodeInvalidFrame},
		{"null question", `{"type":"show","question":null}`, "", socket.CodeInvalidFrame},
		{"negative", `{"type":"show","question":-1}`, "", codeOutOfRange},
		{"unknown", `{"type":"vote"}`, "", socket.CodeUnknownType},
		{"show with a timer", `{"type":"show","question":0,"seconds":3600}`, "show", ""},
		{"show with 0 seconds", `{"type":"show","question":0,"seconds":0}`, "", codeOutOfRange},
		{"show with 3601 seconds", `{"type":"show","question":0,"seconds":3601}`, "", codeOutOfRange},
		{"reveal", `{"type":"reveal","question":2}`, "reveal", ""},
		{"reveal without a question", `{"type":"reveal"}`, "", socket.CodeInvalidFrame},
		{"hide", `{"type":"hide","question":2,"text":"spam"}`, "hide", ""},
		{"hide without text", `{"type":"hide","question":2}`, "", socket.CodeInvalidFrame},
		{"answer options", `{"type":"answer","question":0,"options":[0,2]}`, "answer", ""},
		{"answer value", `{"type":"answer","question":0,"value":3}`, "answer", ""},
		{"answer text", `{"type":"answer","question":0,"text":"hi"}`, "answer", ""},
		{"answer two ways", `{"type":"answer","question":0,"option":1,"value":3}`, "", socket.CodeInvalidFrame},
		{"answer no way", `{"type":"answer","question":0}`, "", socket.CodeInvalidFrame},
		{"answer negative value", `{"type":"answer","question":0,"value":-1}`, "", codeOutOfRange},
		{"answer options not numbers", `{"type":"answer","question":0,"options":["a"]}`, "", socket.CodeInvalidFrame},
		{"answer too many options", `{"type":"answer","question":0,"options":[0,1,2,3,4,5,6,7,8,9,10]}`, "", codeInvalidAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ferr := decodeQuestionnaireFrame([]byte(tt.frame))
			switch {
			case tt.wantCode == "" && ferr != nil:
				t.Fatalf("refused %s: %s %s", tt.frame, ferr.Code, ferr.Message)
			case tt.wantCode == "" && f.Type != tt.wantType:
				t.Fatalf("type %q, want %q", f.Type, tt.wantType)
			case tt.wantCode != "" && (ferr == nil || ferr.Code != tt.wantCode):
				t.Fatalf("decoded %s as %+v (%v), want error %s", tt.frame, f, ferr, tt.wantCode)
			}
		})
	}
}

// FuzzDecodeQuestionnaireFrame: whatever a client sends, the decoder does
// not panic; a frame it accepts has a known type and the indexes that
// type needs, none negative; the error frame it leads to is valid JSON.
func FuzzDecodeQuestionnaireFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"show","question":1}`, `{"type":"close"}`, `{"type":"answer","question":0,"option":2}`,
		`{"type":"answer","question":-1,"option":0}`, `{"type":"show","question":1.5}`, `{"type":"\u0000\xff"}`,
		`[]`, `null`, `{`, ``, `{"type":"answer","question":0,"options":[1,2]}`, `{"type":"answer","question":0,"text":"x"}`,
		`{"type":"show","question":0,"seconds":30}`, `{"type":"hide","question":0,"text":"x"}`, `{"type":"answer","question":9223372036854775807,"option":0}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, ferr := decodeQuestionnaireFrame(data)
		if ferr != nil {
			out := appendQuestionnaireError(nil, ferr.Code, ferr.Message)
			if !json.Valid(out) {
				t.Fatalf("error frame %q is not valid JSON", out)
			}
			return
		}
		switch fr.Type {
		case frameTypeShow:
			if fr.Question == nil || *fr.Question < 0 {
				t.Fatalf("accepted show %+v", fr)
			}
		case frameTypeAnswer:
			if fr.Question == nil || *fr.Question < 0 || fr.Option != nil && *fr.Option < 0 || fr.Value != nil && *fr.Value < 0 {
				t.Fatalf("accepted answer %+v", fr)
			}
			if a := answerOf(fr); a.kind == "" {
				t.Fatalf("accepted answer %+v of no kind", fr)
			}
		case frameTypeReveal, frameTypeHide:
			if fr.Question == nil || *fr.Question < 0 || fr.Type == frameTypeHide && fr.Text == nil {
				t.Fatalf("accepted %+v", fr)
			}
		case frameTypeClose:
		default:
			t.Fatalf("accepted type %q", fr.Type)
		}
	})
}

// TestQuestionnaireServerFramesAreJSON: every server frame is valid JSON,
// whatever the questionnaire's texts hold.
func TestQuestionnaireServerFramesAreJSON(t *testing.T) {
	q := store.Question{Text: "quote \" backslash \\ nul \x00 bad \xff", Kind: "single", Options: []string{"<b>", "\u2028"}}
	scale := store.Question{Text: "s", Kind: "scale", Min: 0, Max: 3, Labels: []string{"\xff", "\""}}
	text := store.Question{Text: "t", Kind: "text", MaxLength: 9}
	multi := store.Question{Text: "m", Kind: "multi", Options: []string{"a", "b"}, MaxChoices: 2}
	words := newTally(text, nil)
	words.add(&store.Answer{Text: "\xff \" \u2028"}, 1)
	single := newTally(q, nil)
	single.add(&store.Answer{Option: 1}, 1)
	closesAt := time.UnixMilli(1_800_000_000_000)
	frames := [][]byte{
		appendQuestionEnd(appendQuestionAnswer(appendQuestionPrefix(nil, 3, q), nil, q.Kind), time.Time{}),
		appendQuestionEnd(appendQuestionAnswer(appendQuestionPrefix(nil, 3, q), &store.Answer{Option: 1}, q.Kind), closesAt),
		appendQuestionEnd(appendQuestionAnswer(appendQuestionPrefix(nil, 0, scale), &store.Answer{Value: 2}, scale.Kind), closesAt),
		appendQuestionEnd(appendQuestionAnswer(appendQuestionPrefix(nil, 0, text), &store.Answer{Text: "\xff"}, text.Kind), closesAt),
		appendQuestionEnd(appendQuestionAnswer(appendQuestionPrefix(nil, 0, multi), &store.Answer{Options: []int{0, 1}}, multi.Kind), closesAt),
		appendTally(nil, 3, single, 7, false, false, time.Time{}),
		appendTally(nil, 3, words, 7, true, true, closesAt),
		appendTally(nil, 3, newTally(scale, nil), 7, true, false, closesAt),
		appendResults(nil, 3, words, true),
		appendQuestionClosed(nil, 2),
		appendAnswered(nil, &store.Answer{Question: 1, Text: "\xff"}, "text"),
		appendAnswered(nil, &store.Answer{Question: 1, Options: []int{1}}, "multi"),
		appendState(nil, store.NoQuestion, false, 0),
		appendState(nil, 2, true, 5),

		closedFrame,
		appendQuestionnaireError(nil, codeClosed, "closed \xff"),
	}
	for _, f := range frames {
		if !json.Valid(f) {
			t.Errorf("invalid JSON: %s", f)
		}
	}
}

// TestSingleFramesAsBefore: a single question's frames are those of the
// Lobby before kinds, with the new fields after the old ones.
func TestSingleFramesAsBefore(t *testing.T) {
	q := store.Question{Text: "Q", Kind: "single", Options: []string{"a", "b"}}
	tl := newTally(q, nil)
	tl.add(&store.Answer{Option: 1}, 1)
	for _, tt := range []struct{ got, want string }{
		{string(appendQuestionEnd(appendQuestionAnswer(appendQuestionPrefix(nil, 0, q), nil, q.Kind), time.Time{})),
			`{"type":"question","index":0,"text":"Q","options":["a","b"],"answer":null}`},
		{string(appendTally(nil, 0, tl, 3, false, false, time.Time{})),
			`{"type":"tally","question":0,"counts":[0,1],"participants":3,"answered":1,"closed":false}`},
		{string(appendAnswered(nil, &store.Answer{Question: 0, Option: 1}, "single")),
			`{"type":"answered","question":0,"option":1}`},
	} {
		if tt.got != tt.want {
			t.Errorf("got  %s\nwant %s", tt.got, tt.want)
		}
	}
}

// FuzzQuestionKinds: whatever settings a question is created with and
// whatever answer comes, validation and the answer check do not panic; a
// question that passes keeps its kind's bounds, an answer that passes
// moves its tally by one participant and back.
func FuzzQuestionKinds(f *testing.F) {
	f.Add("multi", 3, 2, 0, 0, "a", []byte{0, 2}, 1, "hi")
	f.Add("scale", 0, 10, 0, 0, "", []byte{}, 10, "")
	f.Add("text", 0, 0, 0, 280, "", []byte{}, 0, "  Big   data ")
	f.Add("single", 2, 0, 0, 0, "", []byte{1}, 1, "")
	f.Fuzz(func(t *testing.T, kind string, options, maxv, minv, maxLength int, label string, picks []byte, value int, text string) {
		nq := NewQuestion{Text: "q", Kind: kind, Max: &maxv, Min: &minv, MaxLength: &maxLength}
		for i := range min(max(options, 0), 12) {
			nq.Options = append(nq.Options, fmt.Sprint("o", i))
		}
		if label != "" {
			nq.Labels = []string{label, label + "!"}
		}
		q, reason := validateQuestion(0, nq)
		if reason != "" {
			return
		}
		switch q.Kind {
		case "single", "multi":
			if len(q.Options) < MinOptions || len(q.Options) > MaxOptions || q.Kind == "multi" && (q.MaxChoices < 1 || q.MaxChoices > len(q.Options)) {
				t.Fatalf("accepted %+v", q)
			}
		case "scale":
			if q.Min < MinScale || q.Max > MaxScale || q.Min >= q.Max {
				t.Fatalf("accepted %+v", q)
			}
		case "text":
			if q.MaxLength < 1 || q.MaxLength > MaxTextLength {
				t.Fatalf("accepted %+v", q)
			}
		default:
			t.Fatalf("accepted kind %q", q.Kind)
		}
		opts := make([]int, len(picks))
		for i, p := range picks {
			opts[i] = int(p)
		}
		for _, a := range []answerValue{{kind: q.Kind, option: value, options: opts, value: value, text: text}} {
			stored, code, _ := checkAnswerValue(0, q, a)
			if code != "" {
				continue
			}
			tl := newTally(q, nil)
			before := string(tl.appendFields(nil))
			tl.add(&stored, 1)
			if tl.answered != 1 {
				t.Fatalf("answered %d after one answer", tl.answered)
			}
			tl.add(&stored, -1)
			if after := string(tl.appendFields(nil)); after != before || !json.Valid([]byte("{"+after[1:]+"}")) {
				t.Fatalf("tally %s after an answer and its removal, %s before", after, before)
			}
		}
	})
}
