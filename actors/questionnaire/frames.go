package questionnaire

import (
	"encoding/json"
	"strconv"

	"github.com/lobby/lobby/actors/questionnaire/store"
	"github.com/lobby/lobby/actors/socket"
)

// The questionnaire's wire frames (transport/PROTOCOL.md, "Questionnaire
// frames"), JSON text frames both ways. Client frames are decoded here, by
// the socket actors; server frames are appended by hand, in a fixed key
// order, like chat's lobby.v1 frames.

// questionnaireFrame is a presenter's or a participant's frame:
// {"type":"show","question":i}, {"type":"close"} or
// {"type":"answer","question":i,"option":k}.
type questionnaireFrame struct {
	Type     string `json:"type"`
	Question *int   `json:"question"`
	Option   *int   `json:"option"`
}

// Questionnaire client frame types.
const (
	frameTypeShow   = "show"
	frameTypeClose  = "close"
	frameTypeAnswer = "answer"
)

// Error codes of the questionnaire frames, besides lobby.v1's
// invalid_json, invalid_frame, unknown_type, binary_unsupported and
// rate_limited. Clients may switch on them.
const (
	// codeOutOfRange: a question or option index the questionnaire does
	// not have.
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
			"a frame is a JSON object with a string type, and whole numbers for question and option")
	}
	switch f.Type {
	case frameTypeShow:
		if f.Question == nil {
			return f, socket.NewFrameError(socket.CodeInvalidFrame, "show needs a question index")
		}
	case frameTypeAnswer:
		if f.Question == nil || f.Option == nil {
			return f, socket.NewFrameError(socket.CodeInvalidFrame, "answer needs a question index and an option index")
		}
	case frameTypeClose:
	default:
		return f, socket.NewFrameError(socket.CodeUnknownType, "unknown frame type "+strconv.Quote(socket.Truncate(f.Type, 32)))
	}
	if f.Question != nil && *f.Question < 0 || f.Option != nil && *f.Option < 0 {
		return f, socket.NewFrameError(codeOutOfRange, "question and option indexes start at 0")
	}
	return f, nil
}

// appendQuestionPrefix encodes a participant's question frame up to its
// answer: {"type":"question","index":i,"text":..,"options":[..],"answer":
// A show encodes it once and finishes it per participant
// (appendQuestionAnswer).
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
	return append(dst, `],"answer":`...)
}

// appendQuestionAnswer finishes a question frame with the participant's
// answer, or null for none (noAnswer).
func appendQuestionAnswer(dst []byte, answer int) []byte {
	if answer == noAnswer {
		return append(dst, "null}"...)
	}
	dst = strconv.AppendInt(dst, int64(answer), 10)
	return append(dst, '}')
}

// appendTally encodes a presenter's
// {"type":"tally","question":i,"counts":[..],"participants":n}.
func appendTally(dst []byte, question int, counts []int, participants int) []byte {
	dst = append(dst, `{"type":"tally","question":`...)
	dst = strconv.AppendInt(dst, int64(question), 10)
	dst = append(dst, `,"counts":[`...)
	for i, n := range counts {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, int64(n), 10)
	}
	dst = append(dst, `],"participants":`...)
	dst = strconv.AppendInt(dst, int64(participants), 10)
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
// {"type":"answered","question":i,"option":k}, sent once the answer is
// stored (transport/PROTOCOL.md, "Questionnaire frames").
func appendAnswered(dst []byte, question, option int) []byte {
	dst = append(dst, `{"type":"answered","question":`...)
	dst = strconv.AppendInt(dst, int64(question), 10)
	dst = append(dst, `,"option":`...)
	dst = strconv.AppendInt(dst, int64(option), 10)
	return append(dst, '}')
}

// closedFrame is {"type":"closed"}, for participants and presenters.
var closedFrame = []byte(`{"type":"closed"}`)

// appendQuestionnaireError encodes {"type":"error","code":..,"message":..}.
func appendQuestionnaireError(dst []byte, code, message string) []byte {
	return socket.AppendErrorFrame(dst, nil, code, message)
}
