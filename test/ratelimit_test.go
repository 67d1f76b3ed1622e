package test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/transport"
)

// TestControlFrameFloodsAreClosed: pings and pongs never reach the session
// and its frame rate limit, but they cost the server all the same; a client
// that floods them is closed 1008.
func TestControlFrameFloodsAreClosed(t *testing.T) {
	for _, tt := range []struct {
		name   string
		opcode byte
	}{
		{name: "pings", opcode: 0x9},
		{name: "pongs", opcode: 0xA},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, transport.Config{Config: actors.Config{Logger: quietLogger(t)}, ControlRate: 10, ControlBurst: 50})
			other := join(t, ts, "/ws/ctl")
			c, tcp := dialRaw(t, ts, "/ws/ctl")
			other.readText() // c joined
			// 1 000 masked, empty control frames written straight to the
			// socket, as a flooding client would.
			frame := []byte{0x80 | tt.opcode, 0x80, 1, 2, 3, 4}
			if _, err := tcp.Write(bytes.Repeat(frame, 1000)); err != nil {
				t.Fatal(err)
			}
			c.expectClose(websocket.StatusPolicyViolation, "too many control frames")
			waitMetric(t, ts, `lobby_disconnects_total{reason="rate_limit"}`, 1)
			// The room saw it leave, and goes on.
			other.expect(c.id + " disconnected.")
		})
	}
	t.Run("within the budget", func(t *testing.T) {
		ts := startServer(t, transport.Config{Config: actors.Config{Logger: quietLogger(t)}, ControlRate: 10, ControlBurst: 50})
		c, tcp := dialRaw(t, ts, "/ws/ctl")
		if _, err := tcp.Write(bytes.Repeat([]byte{0x8A, 0x80, 1, 2, 3, 4}, 40)); err != nil {
			t.Fatal(err)
		}
		c.send("still here")
		if got := c.readText(); !strings.Contains(got, "still here") {
			t.Fatalf("got %q", got)
		}
	})
}

// TestConnectRatePerAddress: the frame rate is per connection, so connects
// are limited per address; a proxy's forwarded address counts only when
// the server is told to trust it.
func TestConnectRatePerAddress(t *testing.T) {
	connect := func(ts *testServer, header http.Header) (int, http.Header, []byte) {
		t.Helper()
		h := upgradeHeader()
		for k, v := range header {
			h[k] = v
		}
		req, err := http.NewRequest("GET", ts.url("/ws/c"), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body := new(bytes.Buffer)
		if resp.StatusCode != http.StatusSwitchingProtocols {
			_, _ = body.ReadFrom(resp.Body)
		}
		return resp.StatusCode, resp.Header, body.Bytes()
	}
	t.Run("direct", func(t *testing.T) {
		ts := startServer(t, transport.Config{Config: actors.Config{Logger: quietLogger(t)}, ConnectRate: 0.5, ConnectBurst: 3})
		for i := range 3 {
			if status, _, body := connect(ts, nil); status != http.StatusSwitchingProtocols {
				t.Fatalf("connect %d: %d %s", i, status, body)
			}
		}
		status, header, body := connect(ts, http.Header{"X-Forwarded-For": {"203.0.113.9"}})
		expectJSONError(t, status, body, http.StatusTooManyRequests, "rate_limited")
		if s, err := strconv.Atoi(header.Get("Retry-After")); err != nil || s < 1 {
			t.Fatalf("Retry-After %q, want whole seconds", header.Get("Retry-After"))
		}
		if got := metricValue(t, ts, `lobby_upgrades_refused_total{reason="connect_rate"}`); got != 1 {
			t.Fatalf("connect_rate refusals %v, want 1", got)
		}
	})
	t.Run("behind a trusted proxy", func(t *testing.T) {
		ts := startServer(t, transport.Config{Config: actors.Config{Logger: quietLogger(t)}, ConnectRate: 0.5, ConnectBurst: 2, TrustProxy: true})
		for _, addr := range []string{"203.0.113.1", "203.0.113.2"} {
			for i := range 2 {
				// The proxy appends the address it saw to what the client sent.
				xff := http.Header{"X-Forwarded-For": {"10.9.9.9, " + addr}}
				if status, _, body := connect(ts, xff); status != http.StatusSwitchingProtocols {
					t.Fatalf("%s connect %d: %d %s", addr, i, status, body)
				}
			}
			status, _, body := connect(ts, http.Header{"X-Forwarded-For": {addr}})
			expectJSONError(t, status, body, http.StatusTooManyRequests, "rate_limited")
		}
		// Two IPv6 addresses of one /64 share a budget.
		for _, addr := range []string{"2001:db8::1", "2001:db8::2"} {
			if status, _, body := connect(ts, http.Header{"X-Real-Ip": {addr}}); status != http.StatusSwitchingProtocols {
				t.Fatalf("%s: %d %s", addr, status, body)
			}
		}
		status, _, body := connect(ts, http.Header{"X-Real-Ip": {"2001:db8::3"}})
		expectJSONError(t, status, body, http.StatusTooManyRequests, "rate_limited")
	})
}

// TestReconnectsDoNotRefillTheFrameBurst: the frame rate is per
// connection, so a client that reconnects after each burst would get a
// fresh one every time. A connection starts with the share of its frame
// burst that its address's connect budget has left.
func TestReconnectsDoNotRefillTheFrameBurst(t *testing.T) {
	ts := startServer(t, transport.Config{Config: actors.Config{Logger: quietLogger(t)}, Rate: 0.01, RateBurst: 20, ConnectRate: 0.01, ConnectBurst: 4})
	var accepted []int
	for range 4 {
		c := joinJSON(t, ts, "/ws/again")
		n := 0
		for {
			c.sendJSON(`{"type":"broadcast","msg":1}`)
			f := c.next()
			for f.Type == "joined" || f.Type == "left" {
				f = c.next()
			}
			if f.Type == "error" && f.Code == "rate_limited" {
				break
			}
			if f.Type != "message" {
				t.Fatalf("got %s", f.raw)
			}
			n++
			if n > 20 {
				t.Fatalf("more than the burst accepted")
			}
		}
		accepted = append(accepted, n)
		_ = c.ws.Close(websocket.StatusNormalClosure, "")
	}
	// 20, 15, 10, 5: each connect from the address leaves a quarter less.
	if want := []int{20, 15, 10, 5}; !slices.Equal(accepted, want) {
		t.Fatalf("frames accepted per connection %v, want %v", accepted, want)
	}
}

// TestOneSendersBurstDoesNotCloseItsReaders: a text client sends 150 frames
// of 64 KiB, inside the frame burst. Its readers, reading as fast as they
// can, must not be closed as slow consumers: the byte budget stops the
// sender first. With control characters, which the text protocol sends
// escaped six times over, likewise.
func TestOneSendersBurstDoesNotCloseItsReaders(t *testing.T) {
	for _, tt := range []struct {
		name string
		fill byte
	}{
		{name: "letters", fill: 'x'},
		{name: "control characters", fill: 0x01},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, transport.Config{Config: actors.Config{Logger: quietLogger(t)}})
			room := "/ws/burst"
			var readers []*client
			for range 20 {
				readers = append(readers, join(t, ts, room))
			}
			sender := join(t, ts, room)
			payload := bytes.Repeat([]byte{tt.fill}, 64<<10)

			var wg sync.WaitGroup
			got := make([]int, len(readers))
			for i, r := range readers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Each reader reads until it sees the sender leave.
					for {
						_, data, err := r.ws.Read(t.Context())
						if err != nil {
							t.Errorf("reader %d: %v after %d frames", i, err, got[i])
							return
						}
						if string(data) == sender.id+" disconnected." {
							return
						}
						if bytes.HasPrefix(data, []byte(`{"id":"`+sender.id)) {
							got[i]++
						}
					}
				}()
			}
			for range 150 {
				if err := sender.ws.Write(t.Context(), websocket.MessageText, payload); err != nil {
					break // closed for its rate
				}
			}
			sender.expectClose(websocket.StatusPolicyViolation, "rate limit")
			wg.Wait()
			for i, n := range got {
				if n == 0 || n != got[0] {
					t.Fatalf("reader %d got %d frames, reader 0 %d: every reader gets what was sent", i, n, got[0])
				}
			}
			if v := metricValue(t, ts, `lobby_disconnects_total{reason="slow_consumer"}`); v != 0 {
				t.Fatalf("%v readers closed as slow consumers", v)
			}
			t.Logf("each reader got %d frames before the sender was closed", got[0])
		})
	}
}

// TestQuestionnaireSocketsShareAnAddress: an audience joins a questionnaire
// all at once, often from behind one venue's address, so its sockets are
// not held to the per-address connect rate that rooms are; and they speak
// no subprotocol, so a client asking for lobby.v1 is not told they do.
func TestQuestionnaireSocketsShareAnAddress(t *testing.T) {
	qs := startQServer(t, t.TempDir(), transport.Config{Config: actors.Config{Logger: quietLogger(t)}, ConnectRate: 0.01, ConnectBurst: 2})
	c := createQuestionnaire(t, qs.testServer, threeQuestions)
	for i := range 10 {
		p := dialParticipant(t, qs.testServer, c, fmt.Sprintf("p%d", i))
		if p.ws.Subprotocol() != "" {
			t.Fatalf("participant socket speaks %q", p.ws.Subprotocol())
		}
	}
	// Rooms still are: two connects, then 429.
	join(t, qs.testServer, "/ws/r")
	join(t, qs.testServer, "/ws/r")
	status, body := httpDo(t, "GET", qs.url("/ws/r"), nil, upgradeHeader())
	expectJSONError(t, status, body, http.StatusTooManyRequests, "rate_limited")

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, qs.wsURL("/echo"), &websocket.DialOptions{Subprotocols: []string{transport.SubprotocolJSON}})
	if err == nil {
		if ws.Subprotocol() != "" {
			t.Fatalf("echo speaks %q", ws.Subprotocol())
		}
		_ = ws.CloseNow()
	} else if !strings.Contains(err.Error(), "429") {
		t.Fatalf("echo: %v", err)
	}
}

// maskedFrame is a client frame: first byte b0 (FIN and opcode), payload
// masked with the key 1 2 3 4.
func maskedFrame(b0 byte, payload string) []byte {
	key := [4]byte{1, 2, 3, 4}
	f := append([]byte{b0, 0x80 | byte(len(payload))}, key[:]...)
	for i := range len(payload) {
		f = append(f, payload[i]^key[i%4])
	}
	return f
}

// TestFragmentFloodsAreClosed: a message that is never finished, sent in
// empty fragments, reaches neither the read limit nor the frame rate,
// which count messages; past wsconn.MaxFragments fragments the client is
// closed 1008, and the room goes on. A message in a few fragments is a
// message like any other.
func TestFragmentFloodsAreClosed(t *testing.T) {
	ts := startServer(t, transport.Config{Config: actors.Config{Logger: quietLogger(t)}})

	t.Run("a message in fragments", func(t *testing.T) {
		other := join(t, ts, "/ws/frag")
		c, tcp := dialRaw(t, ts, "/ws/frag")
		other.readText()               // c joined
		msg := maskedFrame(0x01, "fr") // text, not final
		for _, part := range []string{"ag", "me", "nt", "ed"} {
			msg = append(msg, maskedFrame(0x00, part)...)
		}
		msg = append(msg, maskedFrame(0x80, "!")...) // the final continuation
		if _, err := tcp.Write(msg); err != nil {
			t.Fatal(err)
		}
		if got := c.readText(); !strings.Contains(got, `"fragmented!"`) {
			t.Fatalf("got %q, want the message put together", got)
		}
		other.readText()
	})
	t.Run("endless empty fragments", func(t *testing.T) {
		other := join(t, ts, "/ws/flood")
		c, tcp := dialRaw(t, ts, "/ws/flood")
		other.readText() // c joined
		flood := maskedFrame(0x01, "")
		flood = append(flood, bytes.Repeat(maskedFrame(0x00, ""), 10_000)...)
		if _, err := tcp.Write(flood); err != nil {
			t.Fatal(err)
		}
		c.expectClose(websocket.StatusPolicyViolation, "too many fragments")
		waitMetric(t, ts, `lobby_disconnects_total{reason="rate_limit"}`, 1)
		other.expect(c.id + " disconnected.")
	})
}
