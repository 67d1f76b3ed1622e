package transport

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lobby/lobby/messages"
)

// publishRoute wraps every POST route: a POST from a web page of another
// origin is refused (checkPostOrigin); with Config.PublishToken set, a
// request needs "Authorization: Bearer <token>"; and every request the
// route refuses, for whatever reason, is counted by its status in
// lobby_http_rejected_total.
//
// While the request is served, what has been read of its body is charged
// against the node's body budget (Config.BodyBudget), no more than an
// eighth of which one address may hold: stalled uploads hold only what
// they sent, and cannot shut everybody else out.
func (s *Server) publishRoute(h http.HandlerFunc) http.HandlerFunc {
	want := []byte(s.cfg.PublishToken)
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if sw.status >= 400 {
				s.metrics.httpRejected.WithLabelValues(strconv.Itoa(sw.status)).Inc()
			}
		}()
		if err := s.checkPostOrigin(r); err != nil {
			writeError(sw, http.StatusForbidden, codeForbiddenOrigin, err.Error())
			return
		}
		if len(want) > 0 {
			got, ok := bearer(r)
			// ConstantTimeCompare leaks only the length, not where a guess
			// first differs.
			if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
				sw.Header().Set("WWW-Authenticate", `Bearer realm="lobby publish"`)
				writeError(sw, http.StatusUnauthorized, codeUnauthorized, "this route needs Authorization: Bearer <publish token>")
				return
			}
		}
		// Bodies are read whole before they are handled: bound the bytes
		// read at once across requests, by what has been read, so that a
		// body that stalls holds only what it sent (issue 21, finding 9).
		body := &chargedBody{ReadCloser: r.Body, budget: &s.bodies, addr: remoteAddr(r, s.cfg.TrustProxy)}
		r.Body = body
		defer body.release()
		h(sw, r)
	}
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// checkPostOrigin refuses a POST that a web page of another origin sent:
// with the default set-up (loopback, no publish token) any page the user
// visits could otherwise publish with fetch(..., {mode: "no-cors"}).
// Publishers that are not browsers send neither header and are not
// affected.
func (s *Server) checkPostOrigin(r *http.Request) error {
	if r.Header.Get("Origin") != "" {
		return s.checkOrigin(r)
	}
	// A browser sends Origin with every POST; Sec-Fetch-Site is a second
	// witness for a request that lost it on the way.
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return errors.New("a cross-site request may not publish")
	}
	return nil
}

// readRoute wraps the routes that read a room (its members, its history)
// and GET /rooms: with client auth on (Config.JWTSecret), what a client may
// not join it may not read either. A room route needs a client token that
// allows the room, or the publish token; GET /rooms, which names every
// room, needs the publish token.
func (s *Server) readRoute(h http.HandlerFunc, perRoom bool) http.HandlerFunc {
	if s.cfg.JWTSecret == "" {
		return h
	}
	publish := []byte(s.cfg.PublishToken)
	return func(w http.ResponseWriter, r *http.Request) {
		if got, ok := bearer(r); ok && len(publish) > 0 && subtle.ConstantTimeCompare([]byte(got), publish) == 1 {
			h(w, r)
			return
		}
		if !perRoom {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lobby publish"`)
			writeError(w, http.StatusUnauthorized, codeUnauthorized, "with client auth on, listing rooms needs Authorization: Bearer <publish token>")
			return
		}
		room := r.PathValue("room")
		if !messages.ValidRoom(room) {
			writeError(w, http.StatusBadRequest, codeInvalidRoom, messages.InvalidRoomText)
			return
		}
		if err := s.checkClientToken(r, room); err != nil {
			if errors.Is(err, errForbiddenRoom) {
				writeError(w, http.StatusForbidden, codeForbidden, "the token does not allow room "+room)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="lobby"`)
			writeError(w, http.StatusUnauthorized, codeUnauthorized, err.Error())
			return
		}
		h(w, r)
	}
}

// checkHost enforces Config.RestrictHosts.
func (s *Server) checkHost(r *http.Request) bool {
	if !s.cfg.RestrictHosts {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil && ip.IsLoopback() {
		return true
	}
	for _, p := range s.cfg.AllowedHosts {
		if ok, err := path.Match(strings.ToLower(p), host); err == nil && ok {
			return true
		}
	}
	return false
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// clientClaims are the claims of a client's JWT.
type clientClaims struct {
	// Rooms lists the rooms the token allows: names, or patterns such as
	// "news-*" (path.Match syntax).
	Rooms []string `json:"rooms"`
	// Name, when set, is the client's display name in every room: the
	// token's word, which a client's own name does not replace.
	Name string `json:"name"`
	jwt.RegisteredClaims
}

// errForbiddenRoom is a valid token whose rooms claim does not allow the room.
var errForbiddenRoom = errors.New("transport: token does not allow this room")

// checkClientToken enforces Config.JWTSecret on a WebSocket connect to room
// ("" for a route with no room: any valid token will do). The token comes
// from ?token= or "Authorization: Bearer".
func (s *Server) checkClientToken(r *http.Request, room string) error {
	_, err := s.clientToken(r, room)
	return err
}

// clientToken is checkClientToken that also returns the token's claims;
// nil claims and no error when client auth is off.
func (s *Server) clientToken(r *http.Request, room string) (*clientClaims, error) {
	if s.cfg.JWTSecret == "" {
		return nil, nil
	}
	raw := r.URL.Query().Get("token")
	if raw == "" {
		raw, _ = bearer(r)
	}
	if raw == "" {
		return nil, errors.New("a token is needed: ?token=<JWT> or Authorization: Bearer <JWT>")
	}
	claims, err := parseClientToken(raw, []byte(s.cfg.JWTSecret), time.Now())
	if err != nil {
		return nil, err
	}
	if room != "" && !roomAllowed(claims.Rooms, room) {
		return nil, errForbiddenRoom
	}
	return claims, nil
}

// maxTokenBytes bounds the token a client may send; real ones are far smaller.
const maxTokenBytes = 4096

func parseClientToken(raw string, secret []byte, now time.Time) (*clientClaims, error) {
	if len(raw) > maxTokenBytes {
		return nil, fmt.Errorf("token longer than %d bytes", maxTokenBytes)
	}
	claims := &clientClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return nil, fmt.Errorf("invalid token: %w", err)
	}
	return claims, nil
}

func roomAllowed(patterns []string, room string) bool {
	for _, p := range patterns {
		if ok, err := path.Match(p, room); err == nil && ok {
			return true
		}
	}
	return false
}

// checkOrigin allows a browser's connect from the server's own origin, or
// from an origin Config.AllowedOrigins lists (host patterns, path.Match
// syntax, as coder/websocket's OriginPatterns). Clients that send no Origin
// are not browsers and are allowed.
func (s *Server) checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("malformed Origin header %q", origin)
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	for _, p := range s.cfg.AllowedOrigins {
		if ok, err := path.Match(strings.ToLower(p), strings.ToLower(u.Host)); err == nil && ok {
			return nil
		}
	}
	return fmt.Errorf("origin %q is not allowed; start the server with --allowed-origins to allow it", u.Host)
}
