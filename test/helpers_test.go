package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/lobby/lobby/actors/questionnaire/store"
	"github.com/lobby/lobby/transport"
)

// This file holds every helper that more than one test file uses: the
// servers a test starts (in process and the real binary), the WebSocket
// clients it dials, reading frames with a deadline, HTTP requests, and
// waiting for an event with a deadline. Helpers that serve one file only
// stay beside its tests; the browser's driver is in browser_test.go.

// waitFor bounds every wait in these tests: long enough for a loaded CI
// machine, short enough that a lost message fails the test instead of
// hanging it.
const waitFor = 10 * time.Second

// binDir is the directory TestMain makes for this run's build of
// cmd/lobby. It is set before any test runs and not changed after.
var binDir string

// buildLobbyOnce builds cmd/lobby into binDir the first time a test needs
// the binary; every later test of the run, and every -count repetition,
// runs the same file.
var buildLobbyOnce = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(binDir, "lobby")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/lobby")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/lobby: %w\n%s", err, out)
	}
	return bin, nil
})

// TestMain fails the package when any goroutine outlives the tests: every
// server a test starts must stop everything it started. It also owns the
// directory the binary is built into, and removes it when the run ends.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lobby-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	goleak.VerifyTestMain(m, append(natsStoreLeftovers, goleak.Cleanup(func(code int) {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(code)
	}))...)
}

// natsStoreLeftovers are the two goroutines of a JetStream store that an
// in-process nats-server (2.15.3) can leave behind after Shutdown and
// WaitForShutdown have returned (seen once in CI, in a test that starts
// no NATS: a store's state flusher and the access-time ticker it keeps
// alive, nothing else of a server). A server a test leaves running shows
// its accept loops and is still caught.
var natsStoreLeftovers = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).flushStreamStateLoop"),
	goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server/ats.Register.func1"),
}

// buildLobby returns the path of cmd/lobby, built once per test run.
func buildLobby(t testing.TB) string {
	t.Helper()
	bin, err := buildLobbyOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

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
	if cfg.CreateRate == 0 {
		// Likewise questionnaires: TestQuestionnaireCreateRate tests it.
		cfg.CreateRate = -1
	}
	if cfg.ParticipantRate == 0 {
		// And participant identities: TestParticipantIdentityRate.
		cfg.ParticipantRate = -1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := transport.New(cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, addr: ln.Addr().String(), served: make(chan error, 1)}
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

// qServer is a test server with a questionnaire store in dir.
type qServer struct {
	*testServer
	store     *store.SQLite
	closeOnce sync.Once
}

// startQServer starts a server on the store in dir; the store is closed
// when the test ends, after the server has stopped.
func startQServer(t *testing.T, dir string, cfg transport.Config) *qServer {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	qs := &qServer{store: st}
	t.Cleanup(func() { qs.closeStore(t) })
	cfg.Questionnaires = st
	qs.testServer = startServer(t, cfg)
	return qs
}

// restart stops the server, closes its store, and starts a new server on
// the same data directory: what a restart of the process does.
func (qs *qServer) restart(t *testing.T, dir string) *qServer {
	t.Helper()
	qs.stop(t)
	qs.closeStore(t)
	return startQServer(t, dir, transport.Config{})
}

func (qs *qServer) closeStore(t *testing.T) {
	qs.closeOnce.Do(func() {
		if err := qs.store.Close(); err != nil {
			t.Error(err)
		}
	})
}

// testLogger writes the server's logs to t.Log until the test ends.
func testLogger(t testing.TB) *slog.Logger { return newLevelLogger(t, slog.LevelDebug) }

// quietLogger keeps the connections' log lines of tests with hundreds of
// clients out of the test output.
func quietLogger(t *testing.T) *slog.Logger { return newLevelLogger(t, slog.LevelWarn) }

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

var listeningRE = regexp.MustCompile(`msg="lobby listening" addr=(\S+)`)

// binaryServer is the real binary, run by a test.
type binaryServer struct {
	cmd  *exec.Cmd
	addr string
	// exited receives Wait's result; a test that reads it puts it back
	// for the cleanup.
	exited chan error
}

// startBinary runs bin with args and env (added to the test's
// environment), waits for it to log its address, and kills it when the
// test ends.
func startBinary(t *testing.T, bin string, args []string, env ...string) *binaryServer {
	t.Helper()
	cmd := exec.Command(bin, args...)
	// The questionnaires' store goes in a directory of the test's own,
	// unless env says otherwise (the last of a repeated variable wins).
	cmd.Env = append(append(os.Environ(), "LOBBY_DATA_DIR="+t.TempDir()), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &binaryServer{cmd: cmd, exited: make(chan error, 1)}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-b.exited
	})

	addrCh := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		dumping := false // after SIGQUIT: the goroutine dump, logged whole
		for sc.Scan() {
			line := sc.Text()
			if dumping = dumping || strings.HasPrefix(line, "SIGQUIT"); dumping {
				t.Logf("%s: %s", filepath.Base(bin), line)
				continue
			}
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				addrCh <- m[1]
			}
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
				t.Logf("%s: %s", filepath.Base(bin), line)
			}
		}
	}()
	go func() {
		<-logDone // Wait must not run before the pipe is drained
		b.exited <- cmd.Wait()
	}()
	select {
	case b.addr = <-addrCh:
	case <-time.After(waitFor):
		t.Fatal("the binary did not log its address")
	}
	return b
}

// client is one WebSocket client of a test.
type client struct {
	t  testing.TB
	ws *websocket.Conn
	// id is the session id from the welcome line, for room members.
	id string
}

// dialWS opens a WebSocket to path on ts with opts (nil: the defaults),
// lifts the read limit, and closes the connection when the test ends.
func dialWS(t testing.TB, ts *testServer, path string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, ts.wsURL(path), opts)
	if err != nil {
		t.Fatalf("dial %s: %v (response %v)", path, err, resp)
	}
	ws.SetReadLimit(-1)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return ws
}

func dial(t testing.TB, ts *testServer, path string) *client {
	t.Helper()
	return &client{t: t, ws: dialWS(t, ts, path, nil)}
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

// dialRaw dials a room and returns the client with its TCP connection, so
// that a test can break the connection under it.
func dialRaw(t *testing.T, ts *testServer, path string) (*client, *net.TCPConn) {
	t.Helper()
	var tcp *net.TCPConn
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			tcp = c.(*net.TCPConn)
		}
		return c, err
	}}}
	c := &client{t: t, ws: dialWS(t, ts, path, &websocket.DialOptions{HTTPClient: hc})}
	c.id = strings.TrimPrefix(c.readText(), "your id is ")
	return c, tcp
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

// expect reads the next frame and fails unless it is exactly want. A
// lobby.v1 message frame's ts, which no test can know, is checked to be
// a recent time and left out of the comparison unless want has one.
func (c *client) expect(want string) {
	c.t.Helper()
	got := c.readText()
	if strings.HasPrefix(want, `{"type":"message",`) && !strings.Contains(want, `"ts":`) {
		got = stripTS(c.t, got)
	}
	if got != want {
		c.t.Fatalf("got frame\n  %q\nwant\n  %q", got, want)
	}
}

var tsRE = regexp.MustCompile(`,"ts":(\d+)`)

// stripTS checks that frame has a ts, when it was accepted (Unix ms), of
// the last minutes, and returns frame without it.
func stripTS(t testing.TB, frame string) string {
	t.Helper()
	m := tsRE.FindStringSubmatchIndex(frame)
	if m == nil {
		t.Fatalf("message frame %q has no ts", frame)
	}
	ms, _ := strconv.ParseInt(frame[m[2]:m[3]], 10, 64)
	if at := time.UnixMilli(ms); time.Since(at) > 10*time.Minute || time.Until(at) > time.Minute {
		t.Fatalf("message frame %q: ts %s is not a recent time", frame, at)
	}
	return frame[:m[0]] + frame[m[1]:]
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

// frame is any lobby.v1 server frame.
type frame struct {
	Type      string            `json:"type"`
	ID        string            `json:"id"`
	Room      string            `json:"room"`
	Epoch     string            `json:"epoch"`
	Seq       uint64            `json:"seq"`
	TS        int64             `json:"ts"`
	Members   []string          `json:"members"`
	Recovered bool              `json:"recovered"`
	Msg       json.RawMessage   `json:"msg"`
	Ref       json.RawMessage   `json:"ref"`
	Code      string            `json:"code"`
	Message   string            `json:"message"`
	Name      string            `json:"name"`
	Names     map[string]string `json:"names"`
	raw       string
}

// jsonClient is a lobby.v1 client, welcomed.
type jsonClient struct {
	*client
	welcome frame
}

// joinJSON dials path asking for lobby.v1 and reads the welcome frame.
func joinJSON(t testing.TB, ts *testServer, path string) *jsonClient {
	t.Helper()
	ws := dialWS(t, ts, path, &websocket.DialOptions{Subprotocols: []string{transport.SubprotocolJSON}})
	if ws.Subprotocol() != transport.SubprotocolJSON {
		t.Fatalf("subprotocol %q, want %q", ws.Subprotocol(), transport.SubprotocolJSON)
	}
	c := &jsonClient{client: &client{t: t, ws: ws}}
	c.welcome = c.next()
	if c.welcome.Type != "welcome" {
		t.Fatalf("first frame %s, want a welcome", c.welcome.raw)
	}
	if _, err := uuid.Parse(c.welcome.ID); err != nil {
		t.Fatalf("welcome id %q: %v", c.welcome.ID, err)
	}
	c.id = c.welcome.ID
	return c
}

// connectWS dials GET /ws (plus query) with lobby.v1 and reads the
// connected frame: a client in no room yet.
func connectWS(t testing.TB, ts *testServer, query string) *jsonClient {
	t.Helper()
	ws := dialWS(t, ts, "/ws"+query, &websocket.DialOptions{Subprotocols: []string{transport.SubprotocolJSON}})
	c := &jsonClient{client: &client{t: t, ws: ws}}
	f := c.next()
	if f.Type != "connected" {
		t.Fatalf("first frame %s, want connected", f.raw)
	}
	if _, err := uuid.Parse(f.ID); err != nil {
		t.Fatalf("connected id %q: %v", f.ID, err)
	}
	c.id = f.ID
	return c
}

// subscribe subscribes c to room (extra: more fields of the frame, each
// with a leading comma) and returns the room's welcome, which must
// carry the subscribe's ref.
func (c *jsonClient) subscribe(room, extra string) frame {
	c.t.Helper()
	ref := `"sub-` + room + `"`
	c.sendJSON(`{"type":"subscribe","room":"` + room + `","ref":` + ref + extra + `}`)
	f := c.nextOf("welcome")
	if f.Room != room || string(f.Ref) != ref || f.ID != c.id {
		c.t.Fatalf("welcome %s, want room %s, ref %s, id %s", f.raw, room, ref, c.id)
	}
	return f
}

// next reads one frame, which must be a JSON object.
func (c *jsonClient) next() frame {
	c.t.Helper()
	text := c.readText()
	var f frame
	if err := json.Unmarshal([]byte(text), &f); err != nil {
		c.t.Fatalf("frame %q is not JSON: %v", text, err)
	}
	f.raw = text
	return f
}

// nextOf reads frames until one of type typ, skipping presence frames
// (joined, left, and the members frame without ref a room sends for a
// burst of them).
func (c *jsonClient) nextOf(typ string) frame {
	c.t.Helper()
	for {
		f := c.next()
		if f.Type == typ {
			return f
		}
		if f.Type != "joined" && f.Type != "left" && (f.Type != "members" || f.Ref != nil) {
			c.t.Fatalf("got %s while waiting for a %s frame", f.raw, typ)
		}
	}
}

func (c *jsonClient) sendJSON(v string) {
	c.t.Helper()
	c.send(v)
}

// httpDo sends a request and returns the status and body.
func httpDo(t testing.TB, method, url string, body []byte, header http.Header) (int, []byte) {
	t.Helper()
	status, b, _ := httpDoHeader(t, method, url, body, header)
	return status, b
}

// httpDoHeader is httpDo, with the answer's header too.
func httpDoHeader(t testing.TB, method, url string, body []byte, header http.Header) (int, []byte, http.Header) {
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
	return resp.StatusCode, b, resp.Header
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

// mustPublisherID learns the server's publisher id from a publish to an
// empty room.
func mustPublisherID(t *testing.T, ts *testServer, token string) string {
	t.Helper()
	status, body := httpDo(t, "POST", ts.url("/rooms/probe/broadcast"), []byte(`0`), http.Header{"Authorization": {"Bearer " + token}})
	if status != 200 {
		t.Fatalf("probe publish: %d %s", status, body)
	}
	_, rest, _ := strings.Cut(string(body), `"id":"`)
	id, _, _ := strings.Cut(rest, `"`)
	return id
}

// metricValue scrapes /metrics and returns one sample's value.
func metricValue(t testing.TB, ts *testServer, sample string) float64 {
	t.Helper()
	v, ok := metricSample(t, ts, sample)
	if !ok {
		t.Fatalf("/metrics has no sample %s", sample)
	}
	return v
}

// metricSample scrapes /metrics for one sample; ok is false when it is not
// there (a labelled counter that never moved).
func metricSample(t testing.TB, ts *testServer, sample string) (v float64, ok bool) {
	t.Helper()
	status, body := httpDo(t, "GET", ts.url("/metrics"), nil, nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d", status)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			if _, err := fmt.Sscan(rest, &v); err != nil {
				t.Fatalf("sample %q: %v", line, err)
			}
			return v, true
		}
	}
	return 0, false
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

// waitMetric waits for a sample to reach want. The server counts a
// disconnect once the session has stopped and its socket is shut, which is
// after the client has seen the close frame.
func waitMetric(t *testing.T, ts *testServer, sample string, want float64) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s to reach %v", sample, want), func() bool { return metricValue(t, ts, sample) == want })
}
