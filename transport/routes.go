package transport

import (
	"net/http"
	"net/http/pprof"
	"strconv"

	"github.com/lobby/lobby/messages"
)

func (s *Server) routes() http.Handler {
	mux := s.mux
	mux.HandleFunc("GET /ws/{room}", s.serveRoom)
	mux.HandleFunc("GET /ws/{$}", s.serveRoom)
	// GET /{room} with an Upgrade header joins the room (the seed's route
	// shape); a plain GET is a web UI page or file (transport/web.go).
	mux.HandleFunc("GET /{room}", s.serveRoomOrPage)
	mux.HandleFunc("GET /{$}", s.serveWeb)
	mux.HandleFunc("GET /vendor/", s.serveWeb)
	mux.HandleFunc("GET /echo", s.serveEcho)
	mux.HandleFunc("POST /rooms/{room}/broadcast", s.publishRoute(s.publishRoom))
	mux.HandleFunc("POST /dailyDashBoard", s.publishRoute(s.publishDashboard))
	mux.HandleFunc("GET /rooms", s.listRooms)
	mux.HandleFunc("GET /rooms/{room}", s.getRoom)
	mux.HandleFunc("GET /rooms/{room}/history", s.getHistory)
	mux.HandleFunc("POST /sessions/{id}/send", s.publishRoute(s.sendDirect))
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	return jsonMuxErrors(mux)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) listRooms(w http.ResponseWriter, r *http.Request) {
	rooms, err := s.node.Rooms(r.Context())
	if err != nil {
		writeUnavailable(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"rooms": rooms})
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
		writeError(w, http.StatusNotFound, "unknown_room", "no room "+name)
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
			writeError(w, http.StatusBadRequest, "invalid_since", "since must be a message sequence number (0 or more)")
			return
		}
	}
	h, err := s.node.History(r.Context(), name, since)
	if err != nil {
		writeUnavailable(w, err)
		return
	}
	if !h.Found {
		writeError(w, http.StatusNotFound, "unknown_room", "no room "+name)
		return
	}
	writeJSON(w, http.StatusOK, historyBody{Room: name, Epoch: h.Epoch, Seq: h.Seq, Complete: h.Complete, Messages: h.Entries})
}

func writeUnavailable(w http.ResponseWriter, err error) {
	writeError(w, http.StatusServiceUnavailable, "unavailable", "the lobby did not answer: "+err.Error())
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
