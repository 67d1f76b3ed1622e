package questionnaire

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/lobby/lobby/actors/questionnaire/store"
	"github.com/lobby/lobby/actors/socket"
)

func TestValidateQuestionnaire(t *testing.T) {
	two := []string{"yes", "no"}
	qn := func(text string, options []string) store.Question {
		return store.Question{Text: text, Options: options}
	}
	one := func(title string, qs ...store.Question) NewQuestionnaire {
		return NewQuestionnaire{Title: title, Questions: qs}
	}
	many := func(n int, q store.Question) []store.Question {
		qs := make([]store.Question, n)
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateQuestionnaire(tt.nq)
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
		`[]`, `null`, `{`, ``, `{"type":"answer","question":9223372036854775807,"option":0}`,
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
			if fr.Question == nil || fr.Option == nil || *fr.Question < 0 || *fr.Option < 0 {
				t.Fatalf("accepted answer %+v", fr)
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
	q := store.Question{Text: "quote \" backslash \\ nul \x00 bad \xff", Options: []string{"<b>", "\u2028"}}
	frames := [][]byte{
		appendQuestionAnswer(appendQuestionPrefix(nil, 3, q), noAnswer),
		appendQuestionAnswer(appendQuestionPrefix(nil, 3, q), 1),
		appendTally(nil, 3, []int{4, 0}, 7),
		appendState(nil, store.NoQuestion, false, 0),
		appendState(nil, 2, true, 5),
		appendAnswered(nil, 1, 0),
		closedFrame,
		appendQuestionnaireError(nil, codeClosed, "closed \xff"),
	}
	for _, f := range frames {
		if !json.Valid(f) {
			t.Errorf("invalid JSON: %s", f)
		}
	}
}
