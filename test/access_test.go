package test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/lobby/lobby/transport"
)

// TestCrossSitePostsAreRefused: a POST that a web page of another origin
// sends (fetch with mode no-cors still sends Origin) is refused; publishers
// that are not browsers send no Origin and are served.
func TestCrossSitePostsAreRefused(t *testing.T) {
	ts := startServer(t, transport.Config{AllowedOrigins: []string{"app.example.com"}})
	member := join(t, ts, "/ws/x")
	tests := []struct {
		name   string
		path   string
		header http.Header
		status int
	}{
		{name: "foreign origin", path: "/rooms/x/broadcast", header: http.Header{"Origin": {"http://evil.example"}}, status: 403},
		{name: "foreign origin, dashboard", path: "/dailyDashBoard", header: http.Header{"Origin": {"http://evil.example:8081"}}, status: 403},
		{name: "foreign origin, direct send", path: "/sessions/" + member.id + "/send", header: http.Header{"Origin": {"https://evil.example"}}, status: 403},
		{name: "opaque origin", path: "/rooms/x/broadcast", header: http.Header{"Origin": {"null"}}, status: 403},
		{name: "cross-site fetch without origin", path: "/rooms/x/broadcast", header: http.Header{"Sec-Fetch-Site": {"cross-site"}}, status: 403},
		{name: "no origin", path: "/rooms/x/broadcast", status: 200},
		{name: "same origin", path: "/rooms/x/broadcast", header: http.Header{"Origin": {"http://" + ts.addr}, "Sec-Fetch-Site": {"same-origin"}}, status: 200},
		{name: "allowed origin", path: "/rooms/x/broadcast", header: http.Header{"Origin": {"https://app.example.com"}, "Sec-Fetch-Site": {"cross-site"}}, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(`"` + tt.name + `"`)
			if tt.path == "/dailyDashBoard" {
				body = []byte(`[]`)
			}
			status, resp := httpDo(t, "POST", ts.url(tt.path), body, tt.header)
			if tt.status == 403 {
				expectJSONError(t, status, resp, 403, "forbidden_origin")
				return
			}
			if status != tt.status {
				t.Fatalf("status %d, want %d (%s)", status, tt.status, resp)
			}
		})
	}
	// Only the three allowed publishes reached the member, in order.
	for _, want := range []string{"no origin", "same origin", "allowed origin"} {
		f := member.readText()
		if f != broadcastFrame(mustPublisherID(t, ts, ""), `"`+want+`"`, "x") {
			t.Fatalf("member got %s, want the publish %q", f, want)
		}
	}
}

// TestForeignHostsAreRefused: with RestrictHosts (cmd/lobby sets it on a
// loopback address), a request whose Host is a name that merely resolves to
// 127.0.0.1 (DNS rebinding) is refused, pages, API and upgrades alike.
func TestForeignHostsAreRefused(t *testing.T) {
	ts := startServer(t, transport.Config{RestrictHosts: true, AllowedHosts: []string{"lobby.example.com"}})
	_, port, err := net.SplitHostPort(ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		ok   bool
	}{
		{host: "evil.example:" + port, ok: false},
		{host: "evil.example", ok: false},
		{host: "127.0.0.1.evil.example:" + port, ok: false},
		{host: "localhost.evil.example:" + port, ok: false},
		{host: "127.0.0.1:" + port, ok: true},
		{host: "127.0.0.2:" + port, ok: true},
		{host: "localhost:" + port, ok: true},
		{host: "app.localhost:" + port, ok: true},
		{host: "[::1]:" + port, ok: true},
		{host: "lobby.example.com", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			for _, path := range []string{"/rooms", "/healthz", "/ws/r"} {
				req, err := http.NewRequest("GET", ts.url(path), nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Host = tt.host
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				refused := resp.StatusCode == http.StatusForbidden
				if refused == tt.ok {
					t.Errorf("GET %s with Host %s: %d", path, tt.host, resp.StatusCode)
				}
			}
		})
	}
	// A WebSocket from a rebound page: the browser's Origin and Host agree,
	// and it is still refused.
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, wsResp, err := websocket.Dial(ctx, ts.wsURL("/ws/r"), &websocket.DialOptions{
		Host: "evil.example:" + port, HTTPHeader: http.Header{"Origin": {"http://evil.example:" + port}}})
	if err == nil || wsResp == nil || wsResp.StatusCode != http.StatusForbidden {
		t.Fatalf("rebound WebSocket: %v %v, want 403", wsResp, err)
	}
	if v := metricValue(t, ts, `lobby_http_rejected_total{code="403"}`); v < 1 {
		t.Fatalf("lobby_http_rejected_total{code=\"403\"} = %v", v)
	}
}

// TestReadsNeedClientAuth: with client auth on, reading a room (members,
// history) needs a token that allows the room, or the publish token, and
// listing rooms needs the publish token.
func TestReadsNeedClientAuth(t *testing.T) {
	secret := []byte("jwt-secret-for-tests")
	const publish = "publish-token-for-tests"
	ts := startServer(t, transport.Config{JWTSecret: string(secret), PublishToken: publish})
	sign := func(rooms ...string) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix(), "rooms": rooms}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	news, team := sign("news"), sign("team-*")
	join(t, ts, "/ws/news?token="+news)
	auth := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	tests := []struct {
		name   string
		path   string
		header http.Header
		status int
		code   string
	}{
		{name: "room, no token", path: "/rooms/news", status: 401, code: "unauthorized"},
		{name: "history, no token", path: "/rooms/news/history", status: 401, code: "unauthorized"},
		{name: "room, other rooms' token", path: "/rooms/news", header: auth(team), status: 403, code: "forbidden"},
		{name: "history, other rooms' token", path: "/rooms/news/history?token=" + team, status: 403, code: "forbidden"},
		{name: "room, bad token", path: "/rooms/news?token=abc", status: 401, code: "unauthorized"},
		{name: "room, its token", path: "/rooms/news", header: auth(news), status: 200},
		{name: "history, its token", path: "/rooms/news/history?token=" + news, status: 200},
		{name: "room, publish token", path: "/rooms/news", header: auth(publish), status: 200},
		{name: "list, no token", path: "/rooms", status: 401, code: "unauthorized"},
		{name: "list, a client token", path: "/rooms", header: auth(news), status: 401, code: "unauthorized"},
		{name: "list, publish token", path: "/rooms", header: auth(publish), status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := httpDo(t, "GET", ts.url(tt.path), nil, tt.header)
			if tt.code != "" {
				expectJSONError(t, status, body, tt.status, tt.code)
				return
			}
			if status != tt.status {
				t.Fatalf("status %d, want %d (%s)", status, tt.status, body)
			}
		})
	}
}
