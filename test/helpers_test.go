package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/lobby/lobby/transport"
)

// waitFor bounds every wait in these tests: long enough for a loaded CI
// machine, short enough that a lost message fails the test instead of
// hanging it.
const waitFor = 10 * time.Second

// testServer is a Lobby on 127.0.0.1:0, stopped when the test ends.
type testServer struct {
	srv    *transport.Server
	addr   string
	served chan error
	once   sync.Once
}

func startServer(t testing.TB, cfg transport.Config) *testServer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.ConnectRate == 0 {
		// Tests connect hundreds of clients from 127.0.0.1 at once; the
		// per-address connect rate has tests of its own.
		cfg.ConnectRate = -1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: transport.New(cfg), addr: ln.Addr().String(), served: make(chan error, 1)}
	go func() { ts.served <- ts.srv.Serve(ln) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop shuts the server down and checks that Serve returned as it should.
func (ts *testServer) stop(t testing.TB) {
	t.Helper()
	ts.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-ts.served:
			if !errors.Is(err, transport.ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(waitFor):
			t.Error("Serve did not return after Shutdown")
		}
	})
}

func (ts *testServer) url(path string) string   { return "http://" + ts.addr + path }
func (ts *testServer) wsURL(path string) string { return "ws://" + ts.addr + path }

// testLogger writes the server's logs to t.Log until the test ends.
func testLogger(t testing.TB) *slog.Logger { return newLevelLogger(t, slog.LevelDebug) }

func newLevelLogger(t testing.TB, level slog.Level) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// client is one WebSocket client of a test.
type client struct {
	t  testing.TB
	ws *websocket.Conn
	// id is the session id from the welcome line, for room members.
	id string
}

func dial(t testing.TB, ts *testServer, path string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, ts.wsURL(path), nil)
	if err != nil {
		t.Fatalf("dial %s: %v (response %v)", path, err, resp)
	}
	ws.SetReadLimit(-1)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &client{t: t, ws: ws}
}

// join dials a room route and reads the welcome line.
func join(t testing.TB, ts *testServer, path string) *client {
	t.Helper()
	c := dial(t, ts, path)
	line := c.readText()
	id, ok := strings.CutPrefix(line, "your id is ")
	if !ok {
		t.Fatalf("first frame %q, want \"your id is <uuid>\"", line)
	}
	if _, err := uuid.Parse(id); err != nil {
		t.Fatalf("welcome id %q is not a UUID: %v", id, err)
	}
	c.id = id
	return c
}

func (c *client) read() (websocket.MessageType, []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	typ, data, err := c.ws.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return typ, data
}

func (c *client) readText() string {
	c.t.Helper()
	typ, data := c.read()
	if typ != websocket.MessageText {
		c.t.Fatalf("got a %v frame %q, want text", typ, data)
	}
	return string(data)
}

// expect reads the next frame and fails unless it is exactly want.
func (c *client) expect(want string) {
	c.t.Helper()
	if got := c.readText(); got != want {
		c.t.Fatalf("got frame\n  %q\nwant\n  %q", got, want)
	}
}

func (c *client) send(text string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(text)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// expectClose reads until the server closes, and checks the close code and
// reason.
func (c *client) expectClose(code websocket.StatusCode, reason string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for {
		_, data, err := c.ws.Read(ctx)
		if err == nil {
			c.t.Logf("frame before close: %.100q", data)
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("read ended with %v, want close %d %q", err, code, reason)
		}
		if ce.Code != code || ce.Reason != reason {
			c.t.Fatalf("closed with %d %q, want %d %q", ce.Code, ce.Reason, code, reason)
		}
		return
	}
}

// broadcastFrame is the text protocol's broadcast, as the server must write
// it byte for byte.
func broadcastFrame(id, msgJSON, room string) string {
	return `{"id":"` + id + `","msg":` + msgJSON + `,"room_id":"` + room + `"}`
}

// httpDo sends a request and returns the status and body.
func httpDo(t *testing.T, method, url string, body []byte, header http.Header) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// expectJSONError checks that an answer is a JSON error with status and
// code.
func expectJSONError(t *testing.T, status int, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d (body %s)", status, wantStatus, body)
	}
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	if e.Error != wantCode || e.Message == "" {
		t.Fatalf("error body %s, want error %q with a message", body, wantCode)
	}
}

// eventually polls check until it is true or waitFor passes. For state the
// server exposes only by polling, such as GET /rooms.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitFor)
	defer deadline.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for !check() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-poll.C:
		}
	}
}

// upgradeHeader is what a WebSocket client sends, for plain HTTP requests
// that check the answers given before an upgrade.
func upgradeHeader() http.Header {
	return http.Header{
		"Connection":            {"Upgrade"},
		"Upgrade":               {"websocket"},
		"Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
	}
}

// scanSeqs returns the seqs of a GET /rooms/{room}/history answer's
// messages, in the order listed.
func scanSeqs(t *testing.T, body []byte) []uint64 {
	t.Helper()
	var h struct {
		Messages []struct {
			Seq uint64 `json:"seq"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatalf("history %q: %v", body, err)
	}
	seqs := make([]uint64, len(h.Messages))
	for i, m := range h.Messages {
		seqs[i] = m.Seq
	}
	return seqs
}
