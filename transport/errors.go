package transport

import (
	"encoding/json"
	"net/http"
)

// errorBody is every route's error answer:
// {"error":"<code>","message":"<human text>"}.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorBody{Error: code, Message: message})
}

// writeClusterUnavailable answers a publish or send that a clustered node
// could not get acknowledged by the cluster: it may not have been sent,
// or it was and its acknowledgement was lost.
func writeClusterUnavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "unavailable",
		"the cluster is unavailable: the message may not have been delivered (or it was, and its acknowledgement was lost); retry later")
}

// writeClusterTooBig answers a publish or send too big for the cluster's
// NATS (its max_payload): nothing was sent.
func writeClusterTooBig(w http.ResponseWriter) {
	writeError(w, http.StatusRequestEntityTooLarge, "body_too_large",
		"the body is larger than the cluster can carry (NATS max_payload, less room for headers): nothing was sent")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	// The status is sent; an encoding error here is a client gone away.
	_ = json.NewEncoder(w).Encode(v)
}

// jsonMuxErrors serves mux, answering the requests no route takes (404, 405)
// with a JSON error instead of ServeMux's plain text.
func jsonMuxErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern == "" {
			h.ServeHTTP(&muxErrorWriter{ResponseWriter: w}, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// muxErrorWriter turns ServeMux's own error answer into a JSON one; it keeps
// the status and headers such as Allow and drops the plain-text body.
type muxErrorWriter struct {
	http.ResponseWriter
	wrote bool
}

func (m *muxErrorWriter) WriteHeader(status int) {
	if m.wrote {
		return
	}
	m.wrote = true
	code, msg := "not_found", "no such route"
	switch status {
	case http.StatusMethodNotAllowed:
		code, msg = "method_not_allowed", "method not allowed on this route"
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		m.ResponseWriter.WriteHeader(status)
		return
	}
	m.Header().Del("Content-Length")
	writeError(m.ResponseWriter, status, code, msg)
}

func (m *muxErrorWriter) Write(p []byte) (int, error) {
	if !m.wrote {
		m.WriteHeader(http.StatusOK)
	}
	return len(p), nil
}
