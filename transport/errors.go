package transport

import (
	"encoding/json"
	"net/http"
)

// The error codes of every HTTP error answer, the "error" of
// {"error":"<code>","message":"<human text>"}, each with its status and
// when it is given. Clients match on them: they never change.
const (
	// codeUnauthorized is 401: the route needs a token (publish, presenter or client JWT) and the request has none, or a bad one.
	codeUnauthorized = "unauthorized"
	// codeForbidden is 403: the token is valid but does not allow this room or questionnaire.
	codeForbidden = "forbidden"
	// codeForbiddenOrigin is 403: a browser Origin that is neither the server's own nor one --allowed-origins lists.
	codeForbiddenOrigin = "forbidden_origin"
	// codeForbiddenHost is 403: a Host that RestrictHosts refuses (DNS rebinding).
	codeForbiddenHost = "forbidden_host"
	// codeInvalidRoom is 400: a room name that is not 1 to 64 characters of A-Z a-z 0-9 _ . -.
	codeInvalidRoom = "invalid_room"
	// codeInvalidBody is 400: a body that could not be read, is empty, or is not the route's shape.
	codeInvalidBody = "invalid_body"
	// codeInvalidJSON is 400: a body that is not valid JSON, or not valid UTF-8 (messages.CheckJSON).
	codeInvalidJSON = "invalid_json"
	// codeInvalidID is 400: a session id that is not a UUID.
	codeInvalidID = "invalid_id"
	// codeInvalidLimit is 400: a rooms page limit out of range.
	codeInvalidLimit = "invalid_limit"
	// codeInvalidSince is 400: a since that is not a sequence number.
	codeInvalidSince = "invalid_since"
	// codeInvalidEpoch is 400: an epoch too long to be one.
	codeInvalidEpoch = "invalid_epoch"
	// codeInvalidQuery is 400: a query string that does not parse.
	codeInvalidQuery = "invalid_query"
	// codeInvalidHandshake is 400: a WebSocket handshake that RFC 6455 refuses.
	codeInvalidHandshake = "invalid_handshake"
	// codeInvalidQuestionnaire is 400: a questionnaire definition out of its bounds (PROTOCOL.md, "Questionnaire routes").
	codeInvalidQuestionnaire = "invalid_questionnaire"
	// codeInvalidParticipant is 400: a participant id that is missing or malformed.
	codeInvalidParticipant = "invalid_participant"
	// codeInvalidParticipantToken is 403: a participant socket without the token POST /questionnaires/{id}/participants issued with its id, or with another.
	codeInvalidParticipantToken = "invalid_participant_token"
	// codeQuestionnaireFull is 503: the questionnaire has issued --max-participants participant identities.
	codeQuestionnaireFull = "questionnaire_full"
	// codeUnsupportedVersion is 426: a WebSocket version other than 13.
	codeUnsupportedVersion = "unsupported_version"
	// codeUpgradeRequired is 426: a plain HTTP request on a WebSocket route.
	codeUpgradeRequired = "upgrade_required"
	// codeSubprotocolRequired is 400: GET /ws without lobby.v1.
	codeSubprotocolRequired = "subprotocol_required"
	// codeInvalidName is 400: a ?name= that is no display name.
	codeInvalidName = "invalid_name"
	// codeMethodNotAllowed is 405: a method the route does not serve.
	codeMethodNotAllowed = "method_not_allowed"
	// codeNotFound is 404: no route serves the path.
	codeNotFound = "not_found"
	// codeUnknownRoom is 404: no such room.
	codeUnknownRoom = "unknown_room"
	// codeUnknownSession is 404: no such session.
	codeUnknownSession = "unknown_session"
	// codeUnknownQuestionnaire is 404: no such questionnaire.
	codeUnknownQuestionnaire = "unknown_questionnaire"
	// codeBodyTooLarge is 413: a body over the route's limit, or over what the cluster can carry.
	codeBodyTooLarge = "body_too_large"
	// codeRateLimited is 429: too many connects from one address (with Retry-After).
	codeRateLimited = "rate_limited"
	// codeOverCapacity is 503: the server has as many connections, or request bodies, as it takes.
	codeOverCapacity = "over_capacity"
	// codeTooManyRooms is 503: a publish that would create a room past MaxRooms.
	codeTooManyRooms = "too_many_rooms"
	// codeDraining is 503: the server is shutting down.
	codeDraining = "draining"
	// codeUnavailable is 503: the lobby or the cluster did not answer or acknowledge.
	codeUnavailable = "unavailable"
	// codeOutcomeUnknown is 503: a publish was handed to the room and the stream, and no answer came in time: it may have been stored (retry with the same Idempotency-Key).
	codeOutcomeUnknown = "outcome_unknown"
	// codeInvalidIdempotencyKey is 400: an Idempotency-Key that is not 1 to 64 visible ASCII characters, or more than one.
	codeInvalidIdempotencyKey = "invalid_idempotency_key"
	// codeStoreError is 500: the questionnaire store failed.
	codeStoreError = "store_error"
	// codeStoreFull is a store with no room: 503 for a room's message
	// (--durable's disk is full; publishes resume when there is room),
	// 507 for a new questionnaire (--store-max-bytes, or a full disk).
	codeStoreFull = "store_full"
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
	writeError(w, http.StatusServiceUnavailable, codeUnavailable,
		"the cluster is unavailable: the message may not have been delivered (or it was, and its acknowledgement was lost); retry later")
}

// writeOutcomeUnknown answers a publish whose outcome is unknown: the
// message may have been stored, and is then delivered. keyed says the
// request carried an Idempotency-Key, with which a retry is safe.
func writeOutcomeUnknown(w http.ResponseWriter, keyed bool) {
	w.Header().Set("Retry-After", "1")
	msg := "no answer in time: the message may have been stored (and is then delivered); retry with the same Idempotency-Key, which stores it at most once"
	if !keyed {
		msg = "no answer in time: the message may have been stored (and is then delivered); a retry may deliver it twice: send an Idempotency-Key header to make retries safe"
	}
	writeError(w, http.StatusServiceUnavailable, codeOutcomeUnknown, msg)
}

// writeClusterTooBig answers a publish or send too big for the cluster's
// NATS (its max_payload): nothing was sent.
func writeClusterTooBig(w http.ResponseWriter) {
	writeError(w, http.StatusRequestEntityTooLarge, codeBodyTooLarge,
		"the body is larger than the cluster can carry (NATS max_payload, less room for headers): nothing was sent")
}

// writeNotSent answers a publish or direct message the node did not send:
// its ask failed (err), or the cluster did not take it (tooBig,
// unavailable, read only when err is nil). It reports whether it answered.
func writeNotSent(w http.ResponseWriter, err error, failed func() (tooBig, unavailable, full bool)) bool {
	if err != nil {
		writeUnavailable(w, err)
		return true
	}
	switch tooBig, unavailable, full := failed(); {
	case tooBig:
		writeClusterTooBig(w)
	case full:
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, codeStoreFull,
			"the message store is full (the disk under --data-dir has no room): the message was not stored; retry once there is room")
	case unavailable:
		writeClusterUnavailable(w)
	default:
		return false
	}
	return true
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
	code, msg := codeNotFound, "no such route"
	switch status {
	case http.StatusMethodNotAllowed:
		code, msg = codeMethodNotAllowed, "method not allowed on this route"
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
