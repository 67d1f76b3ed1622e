package transport

import (
	"net/http"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/{room}", s.serveRoom)
	mux.HandleFunc("GET /ws/{$}", s.serveRoom)
	mux.HandleFunc("GET /{room}", s.serveRoom)
	mux.HandleFunc("GET /echo", s.serveEcho)
	mux.HandleFunc("POST /rooms/{room}/broadcast", s.publishRoom)
	mux.HandleFunc("POST /dailyDashBoard", s.publishDashboard)
	mux.HandleFunc("GET /rooms", s.listRooms)
	mux.HandleFunc("GET /rooms/{room}", s.getRoom)
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
	name := r.PathValue("room")
	if !validRoom(name) {
		writeError(w, http.StatusBadRequest, "invalid_room", "a room name is 1 to 64 characters of A-Z a-z 0-9 _ . -")
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

func writeUnavailable(w http.ResponseWriter, err error) {
	writeError(w, http.StatusServiceUnavailable, "unavailable", "the lobby did not answer: "+err.Error())
}
