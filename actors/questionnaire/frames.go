package questionnaire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/lobby/lobby/actors/questionnaire/store"
	"github.com/lobby/lobby/actors/socket"
)

// The questionnaire's wire frames (transport/PROTOCOL.md, "Questionnaire
// frames"), JSON text frames both ways. Client frames are decoded here, by
// the socket actors; server frames are appended by hand, in a fixed key
// order, like chat's lobby.v1 frames.

// questionnaireFrame is a presenter's or a participant's frame:
// {"type":"show","question":i[,"seconds":s]}, {"type":"close"},
// {"type":"reveal","question":i}, {"type":"hide","question":i,"text":..}
// or {"type":"answer","question":i, and one of "option":k,
// "options":[k,..], "value":v or "text":..}.
type questionnaireFrame struct {
	Type     string  `json:"type"`
	Question *int    `json:"question"`
	Option   *int    `json:"option"`
	Options  []int   `json:"options"`
	Value    *int    `json:"value"`
	Text     *string `json:"text"`
	Seconds  *int    `json:"seconds"`
}

// Questionnaire client frame types.
const (
	frameTypeShow   = "show"
	frameTypeClose  = "close"
	frameTypeReveal = "reveal"
	frameTypeHide   = "hide"
	frameTypeAnswer = "answer"
)

// Bounds of a show's timer, in seconds.
const (
	MinTimerSeconds = 1
	MaxTimerSeconds = 3600
)

// Error codes of the questionnaire frames, besides lobby.v1's
// invalid_json, invalid_frame, unknown_type, binary_unsupported and
// rate_limited, and the answers' (kinds.go). Clients may switch on them.
const (
	// codeOutOfRange: a question, option or value the questionnaire does
	// not have, or a timer out of bounds.
	codeOutOfRange = "out_of_range"
	// codeNotCurrent: an answer to a question that is not the one shown.
	codeNotCurrent = "not_current"
	// codeClosed: the questionnaire is closed.
	codeClosed = "closed"
	// codeStoreFailed: the store could not write the change; nothing
	// changed, the client may retry.
	codeStoreFailed = "store_failed"
	// codeBusy: too many changes are waiting for the store; retry later.
	codeBusy = "busy"
)

// decodeQuestionnaireFrame parses one client frame of either role; the
// socket actor refuses the types its role may not send. Indexes are only
// checked to be numbers of 0 or more: the questionnaire actor knows its
// questions and options.
func decodeQuestionnaireFrame(data []byte) (questionnaireFrame, *socket.FrameError) {
	var f questionnaireFrame
	if ferr := socket.CheckFrame(data); ferr != nil {
		return f, ferr
	}
	if err := json.Unmarshal(data, &f); err != nil || f.Type == "" {
		return questionnaireFrame{}, socket.NewFrameError(socket.CodeInvalidFrame,
			"a frame is a JSON object with a string type, whole numbers for question, option, options, value and seconds, and a string text")
	}
	switch f.Type {
	case frameTypeShow:
		if f.Question == nil {
			return f, socket.NewFrameError(socket.CodeInvalidFrame, "show needs a question index")
		}
		if f.Seconds != nil && (*f.Seconds < MinTimerSeconds || *f.Seconds > MaxTimerSeconds) {
			return f, socket.NewFrameError(codeOutOfRange,
				fmt.Sprintf("a show's seconds are %d to %d, not %d", MinTimerSeconds, MaxTimerSeconds, *f.Seconds))
		}
	case frameTypeReveal:
		if f.Question == nil {
			return f, socket.NewFrameError(socket.CodeInvalidFrame, "reveal needs a question index")
		}
	case frameTypeHide:
		if f.Question == nil || f.Text == nil {
			return f, socket.NewFrameError(socket.CodeInvalidFrame, "hide needs a question index and the text of the entry")
		}
	case frameTypeAnswer:
		given := 0
		for _, set := range []bool{f.Option != nil, f.Options != nil, f.Value != nil, f.Text != nil} {
			if set {
				given++
			}
		}
		if f.Question == nil || given != 1 {
			return f, socket.NewFrameError(socket.CodeInvalidFrame,
				"answer needs a question index and one of option (single), options (multi), value (scale) or text (text)")
		}
		if len(f.Options) > MaxOptions {
			return f, socket.NewFrameError(codeInvalidAnswer, fmt.Sprintf("an answer picks at most %d options", MaxOptions))
		}
	case frameTypeClose:
	default:
		return f, socket.NewFrameError(socket.CodeUnknownType, "unknown frame type "+strconv.Quote(socket.Truncate(f.Type, 32)))
	}
	if f.Question != nil && *f.Question < 0 || f.Option != nil && *f.Option < 0 || f.Value != nil && *f.Value < 0 {
		return f, socket.NewFrameError(codeOutOfRange, "question and option indexes and values start at 0")
	}
	return f, nil
}

// answerOf is the answer a participant's answer frame gives.
func answerOf(f questionnaireFrame) answerValue {
	switch {
	case f.Options != nil:
		return answerValue{kind: store.KindMulti, options: f.Options}
	case f.Value != nil:
		return answerValue{kind: store.KindScale, value: *f.Value}
	case f.Text != nil:
		return answerValue{kind: store.KindText, text: *f.Text}
	}
	return answerValue{kind: store.KindSingle, option: *f.Option}
}

// appendQuestionPrefix encodes a participant's question frame up to its
// answer: {"type":"question","index":i,"text":..,"options":[..], the
// kind's settings for a kind other than single ("kind", and "max";
// "min", "max" and "labels"; or "max_length"), "answer":
// A show encodes it once and finishes it per participant
// (appendQuestionAnswer, appendQuestionEnd).
func appendQuestionPrefix(dst []byte, index int, q store.Question) []byte {
	dst = append(dst, `{"type":"question","index":`...)
	dst = strconv.AppendInt(dst, int64(index), 10)
	dst = append(dst, `,"text":`...)
	dst = socket.AppendJSONString(dst, q.Text)
	dst = append(dst, `,"options":[`...)
	for i, o := range q.Options {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = socket.AppendJSONString(dst, o)
	}
	dst = append(dst, ']')
	// A single question's frame is as it was before kinds, without one.
	switch q.Kind {
	case store.KindMulti:
		dst = append(dst, `,"kind":"multi","max":`...)
		dst = strconv.AppendInt(dst, int64(q.MaxChoices), 10)
	case store.KindScale:
		dst = append(dst, `,"kind":"scale","min":`...)
		dst = strconv.AppendInt(dst, int64(q.Min), 10)
		dst = append(dst, `,"max":`...)
		dst = strconv.AppendInt(dst, int64(q.Max), 10)
		if len(q.Labels) == 2 {
			dst = append(dst, `,"labels":[`...)
			dst = socket.AppendJSONString(dst, q.Labels[0])
			dst = append(dst, ',')
			dst = socket.AppendJSONString(dst, q.Labels[1])
			dst = append(dst, ']')
		}
	case store.KindText:
		dst = append(dst, `,"kind":"text","max_length":`...)
		dst = strconv.AppendInt(dst, int64(q.MaxLength), 10)
	}
	return append(dst, `,"answer":`...)
}

// appendQuestionAnswer appends a participant's answer, as its kind's frame
// field has it (an option, [options], a value or a text), or null for
// none.
func appendQuestionAnswer(dst []byte, a *store.Answer, kind string) []byte {
	if a == nil {
		return append(dst, "null"...)
	}
	return appendAnswerValue(dst, a, kind)
}

func appendAnswerValue(dst []byte, a *store.Answer, kind string) []byte {
	switch kind {
	case store.KindMulti:
		dst = append(dst, '[')
		for i, o := range a.Options {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, int64(o), 10)
		}
		return append(dst, ']')
	case store.KindScale:
		return strconv.AppendInt(dst, int64(a.Value), 10)
	case store.KindText:
		return socket.AppendJSONString(dst, a.Text)
	}
	return strconv.AppendInt(dst, int64(a.Option), 10)
}

// appendQuestionEnd finishes a question frame: "closes_at" (Unix ms) when
// the question has a timer.
func appendQuestionEnd(dst []byte, closesAt time.Time) []byte {
	dst = appendClosesAt(dst, closesAt)
	return append(dst, '}')
}

func appendClosesAt(dst []byte, closesAt time.Time) []byte {
	if closesAt.IsZero() {
		return dst
	}
	dst = append(dst, `,"closes_at":`...)
	return strconv.AppendInt(dst, closesAt.UnixMilli(), 10)
}

// appendTally encodes a presenter's
// {"type":"tally","question":i,"counts":[..],"participants":n,...}: the
// tally's fields (tally.appendFields: counts, mean, words, answered),
// "closed" when the question takes no more answers, "closes_at" when it
// has a timer, and "revealed":true once its results were revealed. The frame of a single question starts as it did before
// kinds.
func appendTally(dst []byte, question int, t *tally, participants int, closed, revealed bool, closesAt time.Time) []byte {
	dst = append(dst, `{"type":"tally","question":`...)
	dst = strconv.AppendInt(dst, int64(question), 10)
	fields := t.appendFields(nil)
	// participants comes right after counts, as before kinds: the
	// fields other than answered go first.
	answeredAt := bytes.LastIndex(fields, []byte(`,"answered":`))
	dst = append(dst, fields[:answeredAt]...)
	dst = append(dst, `,"participants":`...)
	dst = strconv.AppendInt(dst, int64(participants), 10)
	dst = append(dst, fields[answeredAt:]...)
	dst = append(dst, `,"closed":`...)
	dst = strconv.AppendBool(dst, closed)
	dst = appendClosesAt(dst, closesAt)
	if revealed {
		dst = append(dst, `,"revealed":true`...)
	}
	return append(dst, '}')
}

// appendResults encodes a participant's
// {"type":"results","question":i,"kind":..,<the tally's fields>,"closed":b},
// sent when the presenter reveals the question.
func appendResults(dst []byte, question int, t *tally, closed bool) []byte {
	dst = append(dst, `{"type":"results","question":`...)
	dst = strconv.AppendInt(dst, int64(question), 10)
	dst = append(dst, `,"kind":`...)
	dst = socket.AppendJSONString(dst, t.q.Kind)
	dst = t.appendFields(dst)
	dst = append(dst, `,"closed":`...)
	dst = strconv.AppendBool(dst, closed)
	return append(dst, '}')
}

// appendQuestionClosed encodes {"type":"question_closed","question":i},
// sent to participants and presenters when a question's timer is over.
func appendQuestionClosed(dst []byte, question int) []byte {
	dst = append(dst, `{"type":"question_closed","question":`...)
	dst = strconv.AppendInt(dst, int64(question), 10)
	return append(dst, '}')
}

// appendState encodes a presenter's
// {"type":"state","current":<i or null>,"closed":b,"participants":n}, the
// frame a presenter gets on connect and whenever the participants connected
// change while no question is shown (transport/PROTOCOL.md,
// "Questionnaire frames").
func appendState(dst []byte, current int, closed bool, participants int) []byte {
	dst = append(dst, `{"type":"state","current":`...)
	if current == store.NoQuestion {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendInt(dst, int64(current), 10)
	}
	dst = append(dst, `,"closed":`...)
	dst = strconv.AppendBool(dst, closed)
	dst = append(dst, `,"participants":`...)
	dst = strconv.AppendInt(dst, int64(participants), 10)
	return append(dst, '}')
}

// appendAnswered encodes a participant's acknowledgement,
// {"type":"answered","question":i,"option":k} (or "options", "value",
// "text", as the question's kind has it), sent once the answer is stored
// (transport/PROTOCOL.md, "Questionnaire frames").
func appendAnswered(dst []byte, a *store.Answer, kind string) []byte {
	dst = append(dst, `{"type":"answered","question":`...)
	dst = strconv.AppendInt(dst, int64(a.Question), 10)
	dst = append(dst, `,"`...)
	dst = append(dst, answerField[kind]...)
	dst = append(dst, `":`...)
	dst = appendAnswerValue(dst, a, kind)
	return append(dst, '}')
}

// closedFrame is {"type":"closed"}, for participants and presenters.
var closedFrame = []byte(`{"type":"closed"}`)

// appendQuestionnaireError encodes {"type":"error","code":..,"message":..}.
func appendQuestionnaireError(dst []byte, code, message string) []byte {
	return socket.AppendErrorFrame(dst, nil, code, message)
}
