package transport

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

func (s *Server) routes() http.Handler {
	mux := s.mux
	mux.HandleFunc("GET /ws", s.serveSubscriptions)
	mux.HandleFunc("GET /ws/{room}", s.serveRoom)
	mux.HandleFunc("GET /ws/{$}", s.serveRoom)
	// GET /{room} with an Upgrade header joins the room (the seed's route
	// shape); a plain GET is a web UI page or file (transport/web.go).
	mux.HandleFunc("GET /{room}", s.serveRoomOrPage)
	mux.HandleFunc("GET /{$}", s.serveWeb)
	mux.HandleFunc("GET /vendor/", s.serveWeb)
	mux.HandleFunc("POST /rooms/{room}/broadcast", s.publishRoute(s.publishRoom))
	mux.HandleFunc("POST /dailyDashBoard", s.publishRoute(s.publishDashboard))
	mux.HandleFunc("GET /rooms", s.readRoute(s.listRooms, false))
	mux.HandleFunc("GET /rooms/{room}", s.readRoute(s.getRoom, true))
	mux.HandleFunc("GET /rooms/{room}/history", s.readRoute(s.getHistory, true))
	mux.HandleFunc("GET /rooms/{room}/events", s.serveEvents)
	mux.HandleFunc("OPTIONS /rooms/{room}/events", s.eventsPreflight)
	mux.HandleFunc("POST /sessions/{id}/send", s.publishRoute(s.sendDirect))
	if s.cfg.Questionnaires != nil {
		// The web pages of a questionnaire are under /q/; these are its API.
		mux.HandleFunc("POST /questionnaires", s.publishRoute(s.createQuestionnaire))
		mux.HandleFunc("GET /questionnaires/{id}", s.getQuestionnaire)
		mux.HandleFunc("GET /questionnaires/{id}/results", s.getQuestionnaireResults)
		mux.HandleFunc("GET /questionnaires/{id}/results.csv", s.getQuestionnaireResultsCSV)
		mux.HandleFunc("GET /questionnaires/{id}/presenter", s.servePresenter)
		mux.HandleFunc("GET /questionnaires/{id}/participant", s.serveParticipant)
		mux.HandleFunc("POST /questionnaires/{id}/participants", s.newParticipant)
		// Its pages (transport/web/q-*.html); /q/... has a slash, so
		// GET /{room} never takes them for a room.
		mux.HandleFunc("GET /q/new", s.servePage("/q-new.html"))
		mux.HandleFunc("GET /q/{id}", s.servePage("/q-participant.html"))
		mux.HandleFunc("GET /q/{id}/present", s.servePage("/q-presenter.html"))
	}
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	// The socket kinds come last, so that one that asks for a path of
	// Lobby's own is the one refused.
	for _, k := range s.node.Sockets() {
		s.handleKind(mux, k)
	}
	return s.hostGuard(jsonMuxErrors(mux))
}

// handleKind serves socket kind k at its path. A path that is not an
// absolute ServeMux path, or that one of Lobby's routes already has (or
// /debug/pprof/, which EnablePprof may add later), is a mistake in the
// kind's code: it is logged as an error and the kind is not served,
// rather than taking the server down or falling through to GET /{room}.
func (s *Server) handleKind(mux *http.ServeMux, k socket.Kind) {
	if !strings.HasPrefix(k.Path, "/") || strings.ContainsAny(k.Path, " \t") || strings.HasPrefix(k.Path, "/debug/pprof/") {
		s.log.Error("socket kind not served: its path must start with / and hold no space, and not be under /debug/pprof/",
			slog.String("kind", k.Name), slog.String("path", k.Path))
		return
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("socket kind not served: its path is taken or malformed",
				slog.String("kind", k.Name), slog.String("path", k.Path), slog.Any("err", r))
		}
	}()
	mux.HandleFunc("GET "+k.Path, s.serveKind(k))
}

// hostGuard refuses every request for a Host the server does not answer
// to (Config.RestrictHosts), before any route sees it.
func (s *Server) hostGuard(next http.Handler) http.Handler {
	if !s.cfg.RestrictHosts {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.checkHost(r) {
			s.metrics.httpRejected.WithLabelValues("403").Inc()
			writeError(w, http.StatusForbidden, codeForbiddenHost,
				"this server does not answer to host "+strconv.Quote(r.Host)+"; start it with --allowed-hosts to allow it")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	if err := s.node.Ready(); err != nil {
		// A node behind its stream works, but late: a load balancer
		// should send new clients to another.
		status := "cluster unavailable"
		if errors.Is(err, actors.ErrBehind) {
			status = "behind"
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": status, "message": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Pages of GET /rooms.
const (
	defaultRoomsPage = 100
	maxRoomsPage     = 1000
)

// roomsBody is GET /rooms's answer.
type roomsBody struct {
	Rooms []messages.RoomSummary `json:"rooms"`
	// Next, when rooms follow, is the after= of the next page.
	Next string `json:"next,omitempty"`
}

// listRooms is GET /rooms?limit=&after=: a page of the rooms in name order.
func (s *Server) listRooms(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultRoomsPage
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > maxRoomsPage {
			writeError(w, http.StatusBadRequest, codeInvalidLimit, fmt.Sprintf("limit must be a number from 1 to %d", maxRoomsPage))
			return
		}
		limit = n
	}
	after := q.Get("after")
	if after != "" && !messages.ValidRoom(after) {
		writeError(w, http.StatusBadRequest, codeInvalidRoom, "after: "+messages.InvalidRoomText)
		return
	}
	rooms, more, err := s.node.Rooms(r.Context(), after, limit)
	if err != nil {
		writeUnavailable(w, err)
		return
	}
	body := roomsBody{Rooms: rooms}
	if more {
		body.Next = rooms[len(rooms)-1].Room
	}
	writeJSON(w, http.StatusOK, body)
}

// roomBody is GET /rooms/{room}'s answer.
type roomBody struct {
	Room    string   `json:"room"`
	Members []string `json:"members"`
	Seq     uint64   `json:"seq"`
	Epoch   string   `json:"epoch"`
}

func (s *Server) getRoom(w http.ResponseWriter, r *http.Request) {
	name, ok := roomFromPath(w, r)
	if !ok {
		return
	}
	info, err := s.node.Room(r.Context(), name)
	if err != nil {
		writeUnavailable(w, err)
		return
	}
	if !info.Found {
		writeError(w, http.StatusNotFound, codeUnknownRoom, "no room "+name)
		return
	}
	body := roomBody{Room: info.Room, Members: make([]string, len(info.Members)), Seq: info.Seq, Epoch: info.Epoch}
	for i, id := range info.Members {
		body.Members[i] = id.String()
	}
	writeJSON(w, http.StatusOK, body)
}

// historyBody is GET /rooms/{room}/history's answer.
type historyBody struct {
	Room  string `json:"room"`
	Epoch string `json:"epoch"`
	// Seq is the room's last sequence number.
	Seq uint64 `json:"seq"`
	// Complete is false when the history no longer reaches back to since:
	// messages between since and the first one listed are lost.
	Complete bool                    `json:"complete"`
	Messages []messages.HistoryEntry `json:"messages"`
}

func (s *Server) getHistory(w http.ResponseWriter, r *http.Request) {
	name, ok := roomFromPath(w, r)
	if !ok {
		return
	}
	var since uint64
	if q := r.URL.Query(); q.Has("since") {
		var err error
		if since, err = strconv.ParseUint(q.Get("since"), 10, 64); err != nil {
			writeError(w, http.StatusBadRequest, codeInvalidSince, "since must be a message sequence number (0 or more)")
			return
		}
	}
	h, err := s.node.History(r.Context(), name, since)
	if err != nil {
		writeUnavailable(w, err)
		return
	}
	if !h.Found {
		writeError(w, http.StatusNotFound, codeUnknownRoom, "no room "+name)
		return
	}
	writeHistory(w, historyBody{Room: name, Epoch: h.Epoch, Seq: h.Seq, Complete: h.Complete, Messages: h.Entries})
}

// writeHistory writes a history answer as it goes, entry by entry, where
// writeJSON would encode it whole first: a room's history may hold 16 MiB,
// and a client that does not read its answer would otherwise keep a copy
// of it alive until the write timeout. The messages are the room's own
// bytes, valid JSON, written as they are.
func writeHistory(w http.ResponseWriter, h historyBody) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	head, _ := json.Marshal(struct {
		Room     string `json:"room"`
		Epoch    string `json:"epoch"`
		Seq      uint64 `json:"seq"`
		Complete bool   `json:"complete"`
	}{h.Room, h.Epoch, h.Seq, h.Complete})
	b := bufio.NewWriterSize(w, 16<<10)
	b.Write(head[:len(head)-1])
	b.WriteString(`,"messages":[`)
	for i, e := range h.Messages {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"seq":`)
		b.WriteString(strconv.FormatUint(e.Seq, 10))
		b.WriteString(`,"id":"`)
		b.WriteString(e.ID.String())
		b.WriteString(`","ts":`)
		b.WriteString(strconv.FormatInt(e.TS, 10))
		b.WriteString(`,"msg":`)
		b.Write(e.Msg)
		b.WriteByte('}')
	}
	b.WriteString("]}\n")
	// The status is sent; a write error here is a client gone away, and
	// bufio keeps the first one.
	_ = b.Flush()
}

func writeUnavailable(w http.ResponseWriter, err error) {
	writeError(w, http.StatusServiceUnavailable, codeUnavailable, "the lobby did not answer: "+err.Error())
}

// EnablePprof serves net/http/pprof under /debug/pprof/. Call it before
// Serve.
func (s *Server) EnablePprof() {
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
