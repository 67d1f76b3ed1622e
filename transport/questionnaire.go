package transport

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/actors/questionnaire/store"
	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// The questionnaire's routes (PROTOCOL.md, "Questionnaire routes"): create, read,
// results, and the presenter's and participants' sockets. Everything they
// decide is the actors' (actors/questionnaires.go); these handlers read
// requests and write answers.

// maxQuestionnaireBytes bounds a POST /questionnaires body.
const maxQuestionnaireBytes = 64 << 10

// questionnaireBody is POST /questionnaires's body and
// GET /questionnaires/{id}'s answer (with id).
type questionnaireBody struct {
	ID        string         `json:"id,omitempty"`
	Title     string         `json:"title"`
	Questions []questionBody `json:"questions"`
}

// questionBody is one question. Pointers are nil for a setting not
// given (POST) or that the kind does not have (GET).
type questionBody struct {
	Text string `json:"text"`
	// Kind is single (also when not given), multi, scale or text.
	Kind    string   `json:"kind,omitempty"`
	Options []string `json:"options,omitempty"`
	// Max is how many options a multi question lets be picked, or a
	// scale's highest value.
	Max       *int     `json:"max,omitempty"`
	Min       *int     `json:"min,omitempty"`
	Labels    []string `json:"labels,omitempty"`
	MaxLength *int     `json:"max_length,omitempty"`
}

// questionBodyOf is question q as GET /questionnaires/{id} shows it: its
// kind, and the settings of its kind.
func questionBodyOf(q store.Question) questionBody {
	b := questionBody{Text: q.Text, Kind: q.Kind}
	switch q.Kind {
	case store.KindSingle:
		// A single question has options, even when a client sent none
		// (refused at create): an empty list, never a missing field.
		b.Options = q.Options
	case store.KindMulti:
		b.Options, b.Max = q.Options, &q.MaxChoices
	case store.KindScale:
		b.Min, b.Max, b.Labels = &q.Min, &q.Max, q.Labels
	case store.KindText:
		b.MaxLength = &q.MaxLength
	}
	return b
}

// definitionBody is GET /questionnaires/{id}'s answer: the questionnaire,
// and the server's public URL (Config.PublicURL) for the participants'
// link, when it has one.
type definitionBody struct {
	questionnaireBody
	PublicURL string `json:"public_url,omitempty"`
}

// createdBody is POST /questionnaires's answer.
type createdBody struct {
	ID             string `json:"id"`
	PresenterToken string `json:"presenter_token"`
	ParticipantURL string `json:"participant_url"`
	PresenterURL   string `json:"presenter_url"`
}

// resultsBody is GET /questionnaires/{id}/results's answer.
type resultsBody struct {
	ID string `json:"id"`
	// Current is the question shown, null before the first show.
	Current *int `json:"current"`
	Closed  bool `json:"closed"`
	// Results holds each question's counts, as before kinds: per option
	// (single, multi), per value (scale), [] for text.
	Results [][]int `json:"results"`
	// Questions holds each question's kind and tally fields.
	Questions []questionResultsBody `json:"questions"`
}

// questionResultsBody is one question's results: its kind and its tally's
// fields (PROTOCOL.md, "Questionnaire frames"), every text entry rather
// than a tally's 50.
type questionResultsBody struct {
	Kind     string `json:"kind"`
	Answered int    `json:"answered"`
	// Counts are per option or per value from Min; absent for text.
	Counts []int `json:"counts,omitempty"`
	// Min is a scale's lowest value, the value of Counts[0].
	Min *int `json:"min,omitempty"`
	// Mean is a scale's mean, null with no answers; absent for other
	// kinds (see MarshalJSON).
	Mean  *float64   `json:"mean"`
	Words []wordBody `json:"words,omitempty"`
	// Closed is true once the question takes no more answers.
	Closed bool `json:"closed"`
	// ClosesAt is its timer's end (Unix ms), absent without one.
	ClosesAt int64 `json:"closes_at,omitempty"`
	Revealed bool  `json:"revealed"`
	// scale is set for a scale question, whose mean is always present.
	scale bool
}

type wordBody struct {
	Text  string `json:"text"`
	Count int    `json:"count"`
}

// MarshalJSON leaves mean out for the kinds that have none.
func (b questionResultsBody) MarshalJSON() ([]byte, error) {
	type plain questionResultsBody
	if b.scale {
		return json.Marshal(plain(b))
	}
	return json.Marshal(struct {
		plain
		Mean *float64 `json:"mean,omitempty"`
	}{plain: plain(b)})
}

// resultsBodyOf is res as GET /questionnaires/{id}/results answers it.
func resultsBodyOf(id string, res actors.QuestionnaireResults) resultsBody {
	body := resultsBody{ID: id, Closed: res.Closed,
		Results: make([][]int, len(res.Questions)), Questions: make([]questionResultsBody, len(res.Questions))}
	if res.Current != store.NoQuestion {
		body.Current = &res.Current
	}
	for i, qr := range res.Questions {
		body.Results[i] = qr.Counts
		if body.Results[i] == nil {
			body.Results[i] = []int{}
		}
		b := questionResultsBody{Kind: qr.Question.Kind, Answered: qr.Answered, Counts: qr.Counts, Mean: qr.Mean,
			Closed: qr.Closed, Revealed: qr.Revealed, scale: qr.Question.Kind == store.KindScale}
		if b.scale {
			b.Min = &qr.Question.Min
		}
		if !qr.ClosesAt.IsZero() {
			b.ClosesAt = qr.ClosesAt.UnixMilli()
		}
		if qr.Question.Kind == store.KindText {
			b.Words = make([]wordBody, len(qr.Words))
			for j, w := range qr.Words {
				b.Words[j] = wordBody{Text: w.Text, Count: w.Count}
			}
		}
		body.Questions[i] = b
	}
	return body
}

// createQuestionnaire is POST /questionnaires. Like every POST route it
// needs the publish token when the server has one.
func (s *Server) createQuestionnaire(w http.ResponseWriter, r *http.Request) {
	// Each create is a row that stays; one address may not make the store
	// grow by 250 MB a minute (issue 21, finding 6).
	if ok, wait, _ := s.creates.allow(remoteAddr(r, s.cfg.TrustProxy), time.Now()); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
		writeError(w, http.StatusTooManyRequests, codeRateLimited, "too many questionnaires created from this address; retry later")
		return
	}
	var body questionnaireBody
	if !readQuestionnaireBody(w, r, &body) {
		return
	}
	nq := actors.NewQuestionnaire{Title: body.Title, Questions: make([]actors.NewQuestion, len(body.Questions))}
	for i, q := range body.Questions {
		nq.Questions[i] = actors.NewQuestion{Text: q.Text, Kind: q.Kind, Options: q.Options,
			Max: q.Max, Min: q.Min, Labels: q.Labels, MaxLength: q.MaxLength}
	}
	created, err := s.node.CreateQuestionnaire(r.Context(), nq)
	var invalid *actors.InvalidQuestionnaireError
	switch {
	case errors.As(err, &invalid):
		writeError(w, http.StatusBadRequest, codeInvalidQuestionnaire, invalid.Reason)
		return
	case errors.Is(err, store.ErrFull):
		s.storeIsFull(r, err)
		writeError(w, http.StatusInsufficientStorage, codeStoreFull, "the questionnaire store is full: no new questionnaire can be stored; those made go on")
		return
	case err != nil:
		s.storeFailed(w, r, err)
		return
	}
	w.Header().Set("Location", "/questionnaires/"+created.ID)
	s.storeAnswered()
	writeJSON(w, http.StatusCreated, createdBody{
		ID:             created.ID,
		PresenterToken: created.PresenterToken,
		ParticipantURL: "/q/" + created.ID,
		PresenterURL:   "/q/" + created.ID + "/present",
	})
}

// readQuestionnaireBody decodes a body of at most maxQuestionnaireBytes
// into v: one JSON object with no unknown fields. On failure it has
// answered the request.
func readQuestionnaireBody(w http.ResponseWriter, r *http.Request, v any) bool {
	raw, ok := readLimited(w, r, maxQuestionnaireBytes, fmt.Sprintf("a questionnaire is at most %d bytes of JSON", maxQuestionnaireBytes))
	if !ok {
		return false
	}
	// Refused like every other JSON input (see readJSONBody), not repaired
	// by the decoder behind the creator's back.
	if err := messages.CheckJSON(raw); err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidJSON, "the body is "+err.Error())
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidBody,
			`the body is {"title":"..","questions":[{"text":"..","kind":"single|multi|scale|text","options":["..",".."]}]}: `+err.Error())
		return false
	}
	return true
}

// getQuestionnaire is GET /questionnaires/{id}: the questions, for anyone.
func (s *Server) getQuestionnaire(w http.ResponseWriter, r *http.Request) {
	q, err := s.node.Questionnaire(r.Context(), r.PathValue("id"))
	if err != nil {
		s.questionnaireError(w, r, err)
		return
	}
	s.storeAnswered()
	body := definitionBody{questionnaireBody: questionnaireBody{ID: q.ID, Title: q.Title, Questions: make([]questionBody, len(q.Questions))},
		PublicURL: s.cfg.PublicURL}
	for i, question := range q.Questions {
		body.Questions[i] = questionBodyOf(question)
	}
	writeJSON(w, http.StatusOK, body)
}

// getQuestionnaireResults is GET /questionnaires/{id}/results, for the
// presenter: Authorization: Bearer <presenter token>.
func (s *Server) getQuestionnaireResults(w http.ResponseWriter, r *http.Request) {
	res, ok := s.questionnaireResults(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, resultsBodyOf(r.PathValue("id"), res))
}

// getQuestionnaireResultsCSV is GET /questionnaires/{id}/results.csv, for
// the presenter (the token as for /results): a header row, then one row
// per question and option, value or text entry, with its count.
func (s *Server) getQuestionnaireResultsCSV(w http.ResponseWriter, r *http.Request) {
	res, ok := s.questionnaireResults(w, r)
	if !ok {
		return
	}
	def, err := s.node.Questionnaire(r.Context(), r.PathValue("id"))
	if err != nil {
		s.questionnaireError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="questionnaire-`+def.ID+`.csv"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"question", "kind", "question_text", "entry", "count"})
	for i, qr := range res.Questions {
		q := def.Questions[i]
		row := func(entry string, count int) {
			_ = cw.Write([]string{strconv.Itoa(i), q.Kind, csvCell(q.Text), csvCell(entry), strconv.Itoa(count)})
		}
		switch q.Kind {
		case store.KindScale:
			for j, n := range qr.Counts {
				row(strconv.Itoa(q.Min+j), n)
			}
		case store.KindText:
			for _, word := range qr.Words {
				row(word.Text, word.Count)
			}
		default:
			for j, n := range qr.Counts {
				row(q.Options[j], n)
			}
		}
	}
	// A write error is the client's connection gone: nothing to tell it.
	cw.Flush()
}

// csvCell is a text as a CSV cell a spreadsheet shows and does not run: a
// cell starting with =, +, -, @, a tab or a carriage return is read as a
// formula by Excel, LibreOffice and Sheets, so it gets a leading '
// (OWASP's "CSV injection"). A participant's text must not become a
// formula on the presenter's machine.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// questionnaireResults reads a questionnaire's results for its presenter,
// or answers the request with why not.
func (s *Server) questionnaireResults(w http.ResponseWriter, r *http.Request) (actors.QuestionnaireResults, bool) {
	token, _ := bearer(r)
	res, err := s.node.QuestionnaireResults(r.Context(), r.PathValue("id"), token)
	if err != nil {
		if token == "" && errors.Is(err, actors.ErrWrongToken) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lobby questionnaire"`)
			writeError(w, http.StatusUnauthorized, codeUnauthorized, "this route needs Authorization: Bearer <presenter token>")
			return res, false
		}
		s.questionnaireError(w, r, err)
		return res, false
	}
	s.storeAnswered()
	return res, true
}

// servePresenter is GET /questionnaires/{id}/presenter?token=<presenter
// token>: the presenter's socket. A wrong token is refused 403 before the
// upgrade. The presenter token replaces --jwt-secret's JWT here.
func (s *Server) servePresenter(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	authorize := func(w http.ResponseWriter, r *http.Request) bool {
		token := r.URL.Query().Get("token")
		if token == "" {
			token, _ = bearer(r)
		}
		if token == "" {
			s.refuse(w, r, refusedUnauthorized, http.StatusUnauthorized, codeUnauthorized, "the presenter's socket needs ?token=<presenter token>")
			return false
		}
		if err := s.node.AuthorizePresenter(r.Context(), id, token); err != nil {
			s.refuseQuestionnaire(w, r, err)
			return false
		}
		return true
	}
	s.serveSocket(w, r, socketRoute{kind: "presenter", authorize: authorize, sharedAddress: true}, func(conn socket.Conn, _ messages.Protocol) (*actor.Props, uuid.UUID) {
		return s.node.PresenterProps(conn, id), uuid.Nil
	})
}

// participantBody is POST /questionnaires/{id}/participants's answer.
type participantBody struct {
	Participant string `json:"participant"`
	Token       string `json:"token"`
}

// newParticipant is POST /questionnaires/{id}/participants: a new
// participant identity, an id and the token its socket needs. The page
// asks once and keeps both (localStorage), so that a reload or a
// reconnect is the same participant. Like taking part, it needs only the
// questionnaire's id, not the publish token; what bounds it is the rate
// of one address (Config.ParticipantRate, generous: an audience often
// shares one) and the identities one questionnaire issues
// (--max-participants): a script can no longer be 5 000 voters (issue
// 21, finding 7). A cross-site page may not ask for one (checkPostOrigin).
func (s *Server) newParticipant(w http.ResponseWriter, r *http.Request) {
	if err := s.checkPostOrigin(r); err != nil {
		writeError(w, http.StatusForbidden, codeForbiddenOrigin, err.Error())
		return
	}
	if ok, wait, _ := s.participants.allow(remoteAddr(r, s.cfg.TrustProxy), time.Now()); !ok {
		s.metrics.participantsRefused.WithLabelValues(participantsRateLimited).Inc()
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
		writeError(w, http.StatusTooManyRequests, codeRateLimited, "too many participants from this address; retry later")
		return
	}
	p, err := s.node.NewParticipant(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, actors.ErrParticipantLimit):
		s.metrics.participantsRefused.WithLabelValues(participantsFull).Inc()
		writeError(w, http.StatusServiceUnavailable, codeQuestionnaireFull, "this questionnaire has all the participants it may have (--max-participants)")
		return
	case errors.Is(err, store.ErrFull):
		s.storeIsFull(r, err)
		writeError(w, http.StatusInsufficientStorage, codeStoreFull, "the questionnaire store is full")
		return
	case err != nil:
		s.questionnaireError(w, r, err)
		return
	}
	s.storeAnswered()
	s.metrics.participantsIssued.Inc()
	writeJSON(w, http.StatusCreated, participantBody{Participant: p.ID, Token: p.Token})
}

// serveParticipant is GET
// /questionnaires/{id}/participant?participant=<id>&token=<token>: a
// participant's socket, with the identity POST
// /questionnaires/{id}/participants issued (403 before the upgrade
// without its token). The page keeps both, so that a reconnect keeps its
// answers. With Config.OpenParticipants, an id of the client's own and no
// token are let in too. Taking part needs only the questionnaire's id,
// which is its participants' link: --jwt-secret does not apply.
func (s *Server) serveParticipant(w http.ResponseWriter, r *http.Request) {
	id, participant := r.PathValue("id"), r.URL.Query().Get("participant")
	token := r.URL.Query().Get("token")
	authorize := func(w http.ResponseWriter, r *http.Request) bool {
		if !validParticipant(participant) {
			s.refuse(w, r, refusedBadRequest, http.StatusBadRequest, codeInvalidParticipant, invalidParticipantMessage)
			return false
		}
		if token == "" && !s.cfg.OpenParticipants {
			s.refuse(w, r, refusedForbidden, http.StatusForbidden, codeInvalidParticipantToken,
				"a participant socket needs ?participant=<id>&token=<token>, as POST /questionnaires/{id}/participants issues them")
			return false
		}
		if token != "" {
			if err := s.node.AuthorizeParticipant(id, participant, token); err != nil {
				if errors.Is(err, actors.ErrWrongParticipantToken) {
					s.refuse(w, r, refusedForbidden, http.StatusForbidden, codeInvalidParticipantToken,
						"that is not the token issued with this participant id for this questionnaire")
				} else {
					s.storeFailed(w, r, err)
				}
				return false
			}
		}
		if _, err := s.node.Questionnaire(r.Context(), id); err != nil {
			s.refuseQuestionnaire(w, r, err)
			return false
		}
		return true
	}
	s.serveSocket(w, r, socketRoute{kind: "participant", authorize: authorize, sharedAddress: true}, func(conn socket.Conn, _ messages.Protocol) (*actor.Props, uuid.UUID) {
		return s.node.ParticipantProps(conn, id, participant), uuid.Nil
	})
}

// questionnaireError answers an HTTP request that a questionnaire call
// refused.
func (s *Server) questionnaireError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, actors.ErrUnknownQuestionnaire):
		writeError(w, http.StatusNotFound, codeUnknownQuestionnaire, "no questionnaire "+r.PathValue("id"))
	case errors.Is(err, actors.ErrWrongToken):
		writeError(w, http.StatusForbidden, codeForbidden, "that is not this questionnaire's presenter token")
	default:
		s.storeFailed(w, r, err)
	}
}

// refuseQuestionnaire is questionnaireError for a WebSocket connect, which
// is also counted and logged as a refused upgrade.
func (s *Server) refuseQuestionnaire(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, actors.ErrUnknownQuestionnaire):
		s.refuse(w, r, refusedNotFound, http.StatusNotFound, codeUnknownQuestionnaire, "no questionnaire "+r.PathValue("id"))
	case errors.Is(err, actors.ErrWrongToken):
		s.refuse(w, r, refusedForbidden, http.StatusForbidden, codeForbidden, "that is not this questionnaire's presenter token")
	default:
		s.storeFailed(w, r, err)
	}
}

// storeFailed answers 500 for a store that failed, and logs why: the
// client is told only that it did. A store that fails fails every call:
// the first failure is an error in the log, the rest debug lines, until
// it answers again (storeAnswered), so that a full disk does not write
// an error line per request (issue 21, finding 6).
func (s *Server) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	if s.storeDown.CompareAndSwap(false, true) {
		s.log.Error("questionnaire store failed; its next failures are logged at debug until it answers again",
			slog.String("path", r.URL.Path), slog.Any("err", err))
	} else {
		s.log.Debug("questionnaire store failed", slog.String("path", r.URL.Path), slog.Any("err", err))
	}
	writeError(w, http.StatusInternalServerError, codeStoreError, "the questionnaire store failed; the server's log says why")
}

// storeIsFull logs a full store once, as storeFailed logs a failing one:
// every create would find it full.
func (s *Server) storeIsFull(r *http.Request, err error) {
	if s.storeFull.CompareAndSwap(false, true) {
		s.log.Warn("questionnaire store is full; creates are refused until it has room (see --store-max-bytes)",
			slog.String("path", r.URL.Path), slog.Any("err", err))
	}
}

// storeAnswered notes a store call that succeeded.
func (s *Server) storeAnswered() {
	if s.storeDown.CompareAndSwap(true, false) {
		s.log.Info("questionnaire store answers again")
	}
	if s.storeFull.CompareAndSwap(true, false) {
		s.log.Info("questionnaire store has room again")
	}
}
