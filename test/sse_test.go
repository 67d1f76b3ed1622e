package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/transport"
)

// sseEvent is one server-sent event: its name, id and data.
type sseEvent struct {
	name, id, data string
	// comment is a comment line's text (": ping"), for an event that is
	// only that.
	comment string
}

// sseStream reads GET /rooms/{room}/events.
type sseStream struct {
	t      *testing.T
	resp   *http.Response
	lines  chan string
	cancel context.CancelFunc
}

// openEvents opens path's event stream with header, and fails unless it
// is a 200 text/event-stream.
func openEvents(t *testing.T, ts *testServer, path string, header http.Header) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", ts.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: %d %s %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	s := &sseStream{t: t, resp: resp, lines: make(chan string, 1024), cancel: cancel}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
	for range s.lines {
	}
}

// next reads the next event (comments included, as events of their own).
// ok is false when the stream has ended.
func (s *sseStream) next() (ev sseEvent, ok bool) {
	s.t.Helper()
	deadline := time.NewTimer(waitFor)
	defer deadline.Stop()
	for {
		select {
		case line, more := <-s.lines:
			if !more {
				return ev, false
			}
			switch {
			case line == "":
				if ev != (sseEvent{}) {
					return ev, true
				}
			case strings.HasPrefix(line, ":"):
				ev.comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "id: "):
				ev.id = line[len("id: "):]
			case strings.HasPrefix(line, "data: "):
				if ev.data != "" {
					s.t.Fatalf("an event with two data lines: %q then %q", ev.data, line)
				}
				ev.data = line[len("data: "):]
			case strings.HasPrefix(line, "retry: "):
			default:
				s.t.Fatalf("unexpected line %q", line)
			}
		case <-deadline.C:
			s.t.Fatal("timed out waiting for an event")
		}
	}
}

// nextEvent reads until an event named name, skipping comments and
// others, and decodes its data.
func (s *sseStream) nextEvent(name string) (sseEvent, frame) {
	s.t.Helper()
	for {
		ev, ok := s.next()
		if !ok {
			s.t.Fatalf("the stream ended while waiting for a %s event", name)
		}
		if ev.name != name {
			continue
		}
		var f frame
		if err := json.Unmarshal([]byte(ev.data), &f); err != nil {
			s.t.Fatalf("%s event's data %q: %v", name, ev.data, err)
		}
		f.raw = ev.data
		return ev, f
	}
}

func publishTo(t *testing.T, ts *testServer, room, body string) {
	t.Helper()
	status, resp := httpDo(t, "POST", ts.url("/rooms/"+room+"/broadcast"), []byte(body), nil)
	if status != http.StatusOK {
		t.Fatalf("publish: %d %s", status, resp)
	}
}

// TestEventsStream: welcome, joined and left, messages with id
// <epoch>-<seq> and one-line data, pings, then recovery with
// Last-Event-ID after the stream is cut, and with ?since=&epoch=.
func TestEventsStream(t *testing.T) {
	ts := startServer(t, transport.Config{Config: actors.Config{Heartbeat: 200 * time.Millisecond}})
	s := openEvents(t, ts, "/rooms/ev/events", nil)
	ev, w := s.nextEvent("welcome")
	if w.Type != "welcome" || w.Room != "ev" || w.Epoch == "" || ev.id != w.Epoch+"-0" || len(w.Members) != 1 {
		t.Fatalf("welcome %+v %s, want room ev, id <epoch>-0, the stream its one member", ev, w.raw)
	}
	m := joinJSON(t, ts, "/ws/ev")
	if _, f := s.nextEvent("joined"); f.ID != m.id {
		t.Fatalf("joined %s, want %s", f.raw, m.id)
	}
	publishTo(t, ts, "ev", "{\n  \"n\": 1\r\n}")
	ev, f := s.nextEvent("message")
	if ev.id != w.Epoch+"-1" || f.Seq != 1 || f.Room != "ev" || strings.ContainsAny(ev.data, "\r\n") {
		t.Fatalf("message %+v, want id %s-1 and seq 1", ev, w.Epoch)
	}
	var msg struct{ N int }
	if err := json.Unmarshal(f.Msg, &msg); err != nil || msg.N != 1 {
		t.Fatalf("message's msg %s, want n 1", f.Msg)
	}
	for {
		if ev, _ := s.next(); ev.comment == "ping" {
			break
		}
	}
	m.ws.CloseNow()
	if _, f := s.nextEvent("left"); f.ID != m.id {
		t.Fatalf("left %s, want %s", f.raw, m.id)
	}
	s.close()

	publishTo(t, ts, "ev", `{"n":2}`)
	publishTo(t, ts, "ev", `{"n":3}`)
	r := openEvents(t, ts, "/rooms/ev/events", http.Header{"Last-Event-ID": {w.Epoch + "-1"}})
	if ev, f := r.nextEvent("welcome"); !f.Recovered || ev.id != "" {
		t.Fatalf("welcome after Last-Event-ID %+v %s, want recovered and no id (the replay's ids follow)", ev, f.raw)
	}
	for want := uint64(2); want <= 3; want++ {
		if ev, f := r.nextEvent("message"); f.Seq != want || ev.id != fmt.Sprintf("%s-%d", w.Epoch, want) {
			t.Fatalf("replay %+v, want seq %d", ev, want)
		}
	}
	q := openEvents(t, ts, "/rooms/ev/events?since=2&epoch="+w.Epoch, nil)
	if _, f := q.nextEvent("welcome"); !f.Recovered {
		t.Fatalf("welcome after ?since=2 %s, want recovered", f.raw)
	}
	if _, f := q.nextEvent("message"); f.Seq != 3 {
		t.Fatalf("replay %s, want seq 3", f.raw)
	}
	status, body := httpDo(t, "GET", ts.url("/rooms/ev/events"), nil, http.Header{"Last-Event-ID": {"nonsense"}})
	expectJSONError(t, status, body, http.StatusBadRequest, "invalid_since")
	waitMetric(t, ts, "lobby_sse_streams", 2)
}

// TestEventsLimits: the stream counts toward --max-connections, needs the
// client JWT, answers other origins only when --allowed-origins lists
// them (CORS), and ends on drain.
func TestEventsLimits(t *testing.T) {
	secret := "jwt-secret-for-tests"
	ts := startServer(t, transport.Config{MaxConnections: 1, JWTSecret: secret, AllowedOrigins: []string{"dash.example"}})
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix(), "rooms": []string{"ok"}}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	status, body := httpDo(t, "GET", ts.url("/rooms/ok/events"), nil, nil)
	expectJSONError(t, status, body, http.StatusUnauthorized, "unauthorized")
	status, body = httpDo(t, "GET", ts.url("/rooms/other/events?token="+tok), nil, nil)
	expectJSONError(t, status, body, http.StatusForbidden, "forbidden")
	status, body = httpDo(t, "GET", ts.url("/rooms/ok/events?token="+tok), nil, http.Header{"Origin": {"http://evil.example"}})
	expectJSONError(t, status, body, http.StatusForbidden, "forbidden_origin")

	// A page's own reader asks first (a preflight), for its headers.
	req, err := http.NewRequest("OPTIONS", ts.url("/rooms/ok/events"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "http://dash.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "authorization")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "http://dash.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	status, body = httpDo(t, "OPTIONS", ts.url("/rooms/ok/events"), nil, http.Header{"Origin": {"http://evil.example"}})
	expectJSONError(t, status, body, http.StatusForbidden, "forbidden_origin")

	s := openEvents(t, ts, "/rooms/ok/events?token="+tok, http.Header{"Origin": {"http://dash.example"}})
	if got := s.resp.Header.Get("Access-Control-Allow-Origin"); got != "http://dash.example" {
		t.Fatalf("Access-Control-Allow-Origin %q, want the allowed origin", got)
	}
	s.nextEvent("welcome")
	status, body = httpDo(t, "GET", ts.url("/rooms/ok/events?token="+tok), nil, nil)
	expectJSONError(t, status, body, http.StatusServiceUnavailable, "over_capacity")

	// The drain ends the stream, after saying why.
	go ts.stop(t)
	var last sseEvent
	for {
		ev, ok := s.next()
		if !ok {
			break
		}
		last = ev
	}
	if last.comment != "closed, server shutting down" {
		t.Fatalf("last of the stream %+v, want the closing comment", last)
	}
}

// TestEventsSlowConsumer: a stream whose client stops reading is ended as
// a slow consumer, and the room goes on.
func TestEventsSlowConsumer(t *testing.T) {
	ts := startServer(t, transport.Config{Config: actors.Config{Logger: quietLogger(t)}, SendQueue: 16, WriteTimeout: time.Second})
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := dialer.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /rooms/slow/events HTTP/1.1\r\nHost: %s\r\n\r\n", ts.addr)
	waitMetric(t, ts, "lobby_sse_streams", 1)
	big := strings.Repeat("y", 8<<10)
	for n := 0; metricValue(t, ts, `lobby_disconnects_total{reason="slow_consumer"}`) == 0; n++ {
		if n == 5000 {
			t.Fatal("the stalled stream was never ended")
		}
		publishTo(t, ts, "slow", fmt.Sprintf(`{"n":%d,"pad":"%s"}`, n, big))
	}
	waitMetric(t, ts, "lobby_sse_streams", 0)
	// The stream's session has left the room, which goes on.
	publishTo(t, ts, "slow", `{"after":true}`)
	status, body := httpDo(t, "GET", ts.url("/rooms/slow"), nil, nil)
	var info struct{ Members []string }
	if err := json.Unmarshal(body, &info); status != http.StatusOK || err != nil || len(info.Members) != 0 {
		t.Fatalf("GET /rooms/slow: %d %s, want no member left", status, body)
	}
}

// TestEventsCurl reads a stream with curl -N, as a user would.
func TestEventsCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no curl on PATH, and CI is set")
		}
		t.Skip("no curl on PATH")
	}
	ts := startServer(t, transport.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	cmd := exec.CommandContext(ctx, curl, "-sN", ts.url("/rooms/curl/events"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	sc := bufio.NewScanner(out)
	want := []string{"event: welcome", "event: message"}
	published := false
	for sc.Scan() && len(want) > 0 {
		line := sc.Text()
		if line == want[0] {
			want = want[1:]
		}
		if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"type":"welcome"`) && !published {
			published = true
			publishTo(t, ts, "curl", `{"from":"curl test"}`)
		}
		if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"from":"curl test"`) {
			if !strings.Contains(line, `"type":"message"`) {
				t.Fatalf("data line %q, want the message frame", line)
			}
		}
	}
	if len(want) > 0 {
		t.Fatalf("curl's output lacked %q", want)
	}
}

// TestClusterEvents: a stream on node 0 gets the messages published on
// node 1, in order, and a member joining on node 1.
func TestClusterEvents(t *testing.T) {
	c := startCluster(t, 2)
	s := openEvents(t, c.node(0), "/rooms/cev/events", nil)
	_, w := s.nextEvent("welcome")
	m := joinJSON(t, c.node(1), "/ws/cev")
	if _, f := s.nextEvent("joined"); f.ID != m.id {
		t.Fatalf("joined %s, want node 1's member %s", f.raw, m.id)
	}
	var last uint64
	for i := 1; i <= 3; i++ {
		publishTo(t, c.node(1), "cev", fmt.Sprintf(`{"n":%d}`, i))
		ev, f := s.nextEvent("message")
		if f.Seq <= last || ev.id != fmt.Sprintf("%s-%d", w.Epoch, f.Seq) {
			t.Fatalf("message %+v after seq %d", ev, last)
		}
		last = f.Seq
	}
}
