package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
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

type questionBody struct {
	Text    string   `json:"text"`
	Options []string `json:"options"`
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
	Current *int    `json:"current"`
	Closed  bool    `json:"closed"`
	Results [][]int `json:"results"`
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
	nq := actors.NewQuestionnaire{Title: body.Title, Questions: make([]store.Question, len(body.Questions))}
	for i, q := range body.Questions {
		nq.Questions[i] = store.Question{Text: q.Text, Options: q.Options}
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
			`the body is {"title":"..","questions":[{"text":"..","options":["..",".."]}]}: `+err.Error())
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
	body := questionnaireBody{ID: q.ID, Title: q.Title, Questions: make([]questionBody, len(q.Questions))}
	for i, question := range q.Questions {
		body.Questions[i] = questionBody{Text: question.Text, Options: question.Options}
	}
	writeJSON(w, http.StatusOK, body)
}

// getQuestionnaireResults is GET /questionnaires/{id}/results, for the
// presenter: Authorization: Bearer <presenter token>.
func (s *Server) getQuestionnaireResults(w http.ResponseWriter, r *http.Request) {
	token, _ := bearer(r)
	res, err := s.node.QuestionnaireResults(r.Context(), r.PathValue("id"), token)
	if err != nil {
		if token == "" && errors.Is(err, actors.ErrWrongToken) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lobby questionnaire"`)
			writeError(w, http.StatusUnauthorized, codeUnauthorized, "this route needs Authorization: Bearer <presenter token>")
			return
		}
		s.questionnaireError(w, r, err)
		return
	}
	s.storeAnswered()
	body := resultsBody{ID: r.PathValue("id"), Closed: res.Closed, Results: res.Counts}
	if res.Current != store.NoQuestion {
		body.Current = &res.Current
	}
	writeJSON(w, http.StatusOK, body)
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

// serveParticipant is GET /questionnaires/{id}/participant?participant=<id>:
// a participant's socket. The participant id is the client's own (the page
// keeps it in localStorage), so that a reconnect keeps its answers. Taking
// part needs only the questionnaire's id, which is its participants'
// link: --jwt-secret does not apply.
func (s *Server) serveParticipant(w http.ResponseWriter, r *http.Request) {
	id, participant := r.PathValue("id"), r.URL.Query().Get("participant")
	authorize := func(w http.ResponseWriter, r *http.Request) bool {
		if !validParticipant(participant) {
			s.refuse(w, r, refusedBadRequest, http.StatusBadRequest, codeInvalidParticipant, invalidParticipantMessage)
			return false
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
