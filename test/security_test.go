package test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/lobby/lobby/transport"
)

func TestOversizedFrameCloses1009(t *testing.T) {
	ts := startServer(t, transport.Config{MaxMessageBytes: 1024})
	a := join(t, ts, "/ws/big")
	b := join(t, ts, "/ws/big")
	a.expect(b.id + " just joined!")
	b.send(strings.Repeat("y", 1024)) // at the limit: fine
	b.expect(broadcastFrame(b.id, `"`+strings.Repeat("y", 1024)+`"`, "big"))
	a.expect(broadcastFrame(b.id, `"`+strings.Repeat("y", 1024)+`"`, "big"))

	b.send(strings.Repeat("z", 1025))
	b.expectClose(websocket.StatusMessageTooBig, "read limited at 1025 bytes")
	a.expect(b.id + " disconnected.")
	waitMetric(t, ts, `lobby_disconnects_total{reason="message_too_big"}`, 1)
}

func TestFloodIsAnsweredThenClosed(t *testing.T) {
	t.Run("lobby.v1: error frames, then 1008", func(t *testing.T) {
		ts := startServer(t, transport.Config{Rate: 1, RateBurst: 5})
		c := joinJSON(t, ts, "/ws/flood")
		for i := range 5 {
			c.sendJSON(`{"type":"broadcast","msg":` + string(rune('0'+i)) + `}`)
			if f := c.nextOf("message"); f.Seq != uint64(i+1) {
				t.Fatalf("within the burst got %s", f.raw)
			}
		}
		c.sendJSON(`{"type":"broadcast","msg":"over","ref":"r9"}`)
		if f := c.next(); f.Type != "error" || f.Code != "rate_limited" || string(f.Ref) != `"r9"` {
			t.Fatalf("over the rate got %s, want a rate_limited error with ref r9", f.raw)
		}
		// It goes on: closed.
		for range 30 {
			if err := c.ws.Write(t.Context(), websocket.MessageText, []byte(`{"type":"broadcast","msg":1}`)); err != nil {
				break
			}
		}
		c.expectClose(websocket.StatusPolicyViolation, "rate limit")
		waitMetric(t, ts, `lobby_disconnects_total{reason="rate_limit"}`, 1)
		if got := metricValue(t, ts, `lobby_rate_limited_total`); got < 21 {
			t.Errorf("lobby_rate_limited_total = %v, want at least 21", got)
		}
	})
	t.Run("text protocol: 1008 at once", func(t *testing.T) {
		ts := startServer(t, transport.Config{Rate: 1, RateBurst: 3})
		c := join(t, ts, "/ws/flood")
		for range 3 {
			c.send("ok")
			c.expect(broadcastFrame(c.id, `"ok"`, "flood"))
		}
		c.send("one too many")
		c.expectClose(websocket.StatusPolicyViolation, "rate limit")
	})
}

func TestConnectionCap(t *testing.T) {
	ts := startServer(t, transport.Config{MaxConnections: 2})
	a := join(t, ts, "/ws/cap")
	dial(t, ts, "/echo")
	status, body := httpDo(t, "GET", ts.url("/ws/cap"), nil, upgradeHeader())
	expectJSONError(t, status, body, http.StatusServiceUnavailable, "over_capacity")
	// A place frees up when a client leaves.
	_ = a.ws.Close(websocket.StatusNormalClosure, "")
	eventually(t, "the freed place to be taken", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, ts.wsURL("/ws/cap"), nil)
		if err != nil {
			return false
		}
		_ = ws.CloseNow()
		return true
	})
	if got := metricValue(t, ts, `lobby_upgrades_refused_total{reason="over_capacity"}`); got < 1 {
		t.Errorf("over_capacity refusals = %v, want at least 1", got)
	}
}

func TestPublishToken(t *testing.T) {
	ts := startServer(t, transport.Config{PublishToken: "s3cret"})
	member := join(t, ts, "/ws/news")
	tests := []struct {
		name   string
		header http.Header
		status int
	}{
		{name: "missing", header: nil, status: 401},
		{name: "wrong", header: http.Header{"Authorization": {"Bearer s3cre7"}}, status: 401},
		{name: "prefix of the right one", header: http.Header{"Authorization": {"Bearer s3c"}}, status: 401},
		{name: "not bearer", header: http.Header{"Authorization": {"Basic s3cret"}}, status: 401},
		{name: "right", header: http.Header{"Authorization": {"Bearer s3cret"}}, status: 200},
		{name: "scheme in any case", header: http.Header{"Authorization": {"bearer s3cret"}}, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/rooms/news/broadcast", "/dailyDashBoard", "/sessions/" + member.id + "/send"} {
				status, body := httpDo(t, "POST", ts.url(path), []byte(`[]`), tt.header)
				if tt.status == 401 {
					expectJSONError(t, status, body, 401, "unauthorized")
				} else if status != tt.status {
					t.Fatalf("POST %s: %d %s, want %d", path, status, body, tt.status)
				}
			}
		})
	}
	// 4 refused cases x 3 routes, each counted.
	if got := metricValue(t, ts, `lobby_http_rejected_total{code="401"}`); got != 12 {
		t.Errorf(`lobby_http_rejected_total{code="401"} = %v, want 12`, got)
	}
	// Only the authorized publishes reached the member: two rounds of three.
	for range 2 {
		member.expect(broadcastFrame(mustPublisherID(t, ts, "s3cret"), `[]`, "news"))
		member.readText() // dailyNews is another room; this is the direct send
	}
}

func TestClientJWT(t *testing.T) {
	secret := []byte("jwt-secret-for-tests")
	ts := startServer(t, transport.Config{JWTSecret: string(secret)})
	sign := func(claims jwt.MapClaims, method jwt.SigningMethod, key any) string {
		tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	future := time.Now().Add(time.Hour).Unix()
	good := sign(jwt.MapClaims{"exp": future, "rooms": []string{"news", "team-*"}}, jwt.SigningMethodHS256, secret)
	tests := []struct {
		name   string
		path   string
		header http.Header
		status int
		code   string
	}{
		{name: "no token", path: "/ws/news", status: 401, code: "unauthorized"},
		{name: "garbage", path: "/ws/news?token=abc", status: 401, code: "unauthorized"},
		{name: "expired", path: "/ws/news?token=" + sign(jwt.MapClaims{"exp": time.Now().Add(-time.Minute).Unix(), "rooms": []string{"news"}}, jwt.SigningMethodHS256, secret), status: 401, code: "unauthorized"},
		{name: "no exp", path: "/ws/news?token=" + sign(jwt.MapClaims{"rooms": []string{"news"}}, jwt.SigningMethodHS256, secret), status: 401, code: "unauthorized"},
		{name: "wrong secret", path: "/ws/news?token=" + sign(jwt.MapClaims{"exp": future, "rooms": []string{"news"}}, jwt.SigningMethodHS256, []byte("other")), status: 401, code: "unauthorized"},
		{name: "other algorithm", path: "/ws/news?token=" + sign(jwt.MapClaims{"exp": future, "rooms": []string{"news"}}, jwt.SigningMethodHS512, secret), status: 401, code: "unauthorized"},
		{name: "alg none", path: "/ws/news?token=" + sign(jwt.MapClaims{"exp": future, "rooms": []string{"news"}}, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType), status: 401, code: "unauthorized"},
		{name: "wrong room", path: "/ws/sports?token=" + good, status: 403, code: "forbidden"},
		{name: "no rooms claim", path: "/ws/news?token=" + sign(jwt.MapClaims{"exp": future}, jwt.SigningMethodHS256, secret), status: 403, code: "forbidden"},
		{name: "pattern does not match", path: "/ws/team?token=" + good, status: 403, code: "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := upgradeHeader()
			for k, v := range tt.header {
				h[k] = v
			}
			status, body := httpDo(t, "GET", ts.url(tt.path), nil, h)
			expectJSONError(t, status, body, tt.status, tt.code)
		})
	}
	// The right token, by query, by header, and by pattern.
	join(t, ts, "/ws/news?token="+good)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, ts.wsURL("/ws/team-blue"), &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + good}}})
	if err != nil {
		t.Fatalf("connect with the token in a header: %v", err)
	}
	_ = ws.CloseNow()
	dial(t, ts, "/echo?token="+good)
}

func TestOrigins(t *testing.T) {
	dialFrom := func(ts *testServer, origin string) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		ws, resp, err := websocket.Dial(ctx, ts.wsURL("/ws/o"), &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
		if err != nil {
			if resp == nil {
				return 0, err
			}
			return resp.StatusCode, err
		}
		_ = ws.CloseNow()
		return http.StatusSwitchingProtocols, nil
	}
	t.Run("same origin only by default", func(t *testing.T) {
		ts := startServer(t, transport.Config{})
		if status, err := dialFrom(ts, "http://"+ts.addr); status != http.StatusSwitchingProtocols {
			t.Fatalf("same origin: %d %v", status, err)
		}
		if status, _ := dialFrom(ts, "https://evil.example"); status != http.StatusForbidden {
			t.Fatalf("cross origin: %d, want 403", status)
		}
		status, body := httpDo(t, "GET", ts.url("/ws/o"), nil, func() http.Header {
			h := upgradeHeader()
			h.Set("Origin", "https://evil.example")
			return h
		}())
		expectJSONError(t, status, body, http.StatusForbidden, "forbidden_origin")
	})
	t.Run("allowed when configured", func(t *testing.T) {
		ts := startServer(t, transport.Config{AllowedOrigins: []string{"app.example.com", "*.example.org"}})
		for _, origin := range []string{"https://app.example.com", "https://x.example.org", "http://" + ts.addr} {
			if status, err := dialFrom(ts, origin); status != http.StatusSwitchingProtocols {
				t.Errorf("origin %s: %d %v", origin, status, err)
			}
		}
		if status, _ := dialFrom(ts, "https://example.com"); status != http.StatusForbidden {
			t.Errorf("origin example.com: %d, want 403", status)
		}
	})
}

func TestMetricsMoveWithEvents(t *testing.T) {
	ts := startServer(t, transport.Config{})
	if got := metricValue(t, ts, "lobby_connections"); got != 0 {
		t.Fatalf("lobby_connections = %v at start", got)
	}
	a := join(t, ts, "/ws/m")
	b := join(t, ts, "/ws/m")
	a.expect(b.id + " just joined!")
	if got := metricValue(t, ts, "lobby_connections"); got != 2 {
		t.Errorf("lobby_connections = %v, want 2", got)
	}
	if got := metricValue(t, ts, "lobby_rooms"); got != 1 {
		t.Errorf("lobby_rooms = %v, want 1", got)
	}
	a.send("hi")
	a.expect(broadcastFrame(a.id, `"hi"`, "m"))
	b.expect(broadcastFrame(a.id, `"hi"`, "m"))
	if status, _ := httpDo(t, "POST", ts.url("/rooms/m/broadcast"), []byte(`1`), nil); status != 200 {
		t.Fatal("publish failed")
	}
	a.readText()
	b.readText()
	if got := metricValue(t, ts, "lobby_messages_received_total"); got != 2 {
		t.Errorf("lobby_messages_received_total = %v, want 2", got)
	}
	// welcome + joined + 2 + welcome + 2 = 7 frames written.
	eventually(t, "deliveries to be counted", func() bool { return metricValue(t, ts, "lobby_messages_delivered_total") == 7 })
	if got := metricValue(t, ts, "lobby_publish_fanout_seconds_count"); got != 1 {
		t.Errorf("lobby_publish_fanout_seconds_count = %v, want 1", got)
	}
	_ = b.ws.Close(websocket.StatusNormalClosure, "")
	a.expect(b.id + " disconnected.")
	waitMetric(t, ts, `lobby_disconnects_total{reason="client_closed"}`, 1)
	waitMetric(t, ts, "lobby_connections", 1)
	if got := metricValue(t, ts, "lobby_queue_dropped_total"); got != 0 {
		t.Errorf("lobby_queue_dropped_total = %v, want 0", got)
	}
	// Refused publishes are counted by status, whatever refused them.
	httpDo(t, "POST", ts.url("/rooms/m/broadcast"), []byte(`{`), nil)
	httpDo(t, "POST", ts.url("/sessions/"+uuid.NewString()+"/send"), []byte(`1`), nil)
	httpDo(t, "POST", ts.url("/sessions/"+uuid.NewString()+"/send"), []byte(`1`), nil)
	if got := metricValue(t, ts, `lobby_http_rejected_total{code="400"}`); got != 1 {
		t.Errorf(`lobby_http_rejected_total{code="400"} = %v, want 1`, got)
	}
	if got := metricValue(t, ts, `lobby_http_rejected_total{code="404"}`); got != 2 {
		t.Errorf(`lobby_http_rejected_total{code="404"} = %v, want 2`, got)
	}
}
