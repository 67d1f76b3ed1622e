package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/transport"
)

func TestWelcomeIsAUUIDAndUnique(t *testing.T) {
	ts := startServer(t, transport.Config{})
	a := join(t, ts, "/ws/r") // join checks the line and the UUID
	b := join(t, ts, "/ws/r2")
	if a.id == b.id {
		t.Fatalf("two sessions got the same id %s", a.id)
	}
}

func TestJoinedNoticeReachesOthersOnly(t *testing.T) {
	ts := startServer(t, transport.Config{})
	a := join(t, ts, "/ws/r")
	b := join(t, ts, "/ws/r")
	a.expect(b.id + " just joined!")

	// B's next frame must be its own broadcast, not a notice of itself.
	b.send("hi")
	b.expect(broadcastFrame(b.id, `"hi"`, "r"))
	a.expect(broadcastFrame(b.id, `"hi"`, "r"))
}

func TestBroadcastShapeKeyOrderAndEscaping(t *testing.T) {
	ts := startServer(t, transport.Config{})
	a := join(t, ts, "/ws/room-1.x_y")
	b := join(t, ts, "/ws/room-1.x_y")
	a.expect(b.id + " just joined!")

	tests := []struct {
		name string
		text string
		msg  string // the JSON the frame must carry
	}{
		{name: "plain", text: "hello", msg: `"hello"`},
		{name: "quotes and backslash", text: `say "hi" \o/`, msg: `"say \"hi\" \\o/"`},
		{name: "control characters", text: "a\nb\tc\x01", msg: `"a\nb\tc\u0001"`},
		{name: "html is not escaped", text: "<b>&</b>", msg: `"<b>&</b>"`},
		{name: "unicode", text: "héllo ✓ 😀", msg: `"héllo ✓ 😀"`},
		{name: "invalid utf-8", text: "a\xffb", msg: `"a` + "\ufffd" + `b"`},
		{name: "looks like JSON", text: `{"x":1}`, msg: `"{\"x\":1}"`},
		{name: "empty", text: "", msg: `""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.send(tt.text)
			want := broadcastFrame(a.id, tt.msg, "room-1.x_y")
			a.expect(want) // the sender is included
			b.expect(want)
		})
	}
}

func TestThousandMessagesArriveInOrderAtThreeReceivers(t *testing.T) {
	// The burst is sent as fast as the client can write, far above the
	// default inbound rate limit, so the limit is off; and at a moment when
	// the CPUs are busy with the sender a member's writer may be hundreds
	// of frames behind without its client being slow, so the queue holds
	// the whole burst. This test is about order; the rate limit and the
	// slow-consumer bound have tests of their own.
	ts := startServer(t, transport.Config{SendQueue: 1000, Rate: -1})
	sender := join(t, ts, "/ws/order")
	var receivers []*client
	for range 3 {
		r := join(t, ts, "/ws/order")
		sender.expect(r.id + " just joined!")
		for _, earlier := range receivers {
			earlier.expect(r.id + " just joined!")
		}
		receivers = append(receivers, r)
	}

	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, len(receivers)+1)
	for _, c := range append(receivers, sender) {
		wg.Go(func() {
			for i := range n {
				want := broadcastFrame(sender.id, fmt.Sprintf(`"m-%d"`, i), "order")
				if got := c.readText(); got != want {
					errs <- fmt.Errorf("receiver %s: message %d is %q, want %q", c.id, i, got, want)
					return
				}
			}
		})
	}
	for i := range n {
		sender.send(fmt.Sprintf("m-%d", i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestBinaryIsEchoedToTheSenderOnly(t *testing.T) {
	ts := startServer(t, transport.Config{})
	a := join(t, ts, "/ws/bin")
	b := join(t, ts, "/ws/bin")
	a.expect(b.id + " just joined!")

	payload := []byte{0, 1, 2, 0xff, 'x'}
	ctx := t.Context()
	if err := a.ws.Write(ctx, websocket.MessageBinary, payload); err != nil {
		t.Fatal(err)
	}
	typ, data := a.read()
	if typ != websocket.MessageBinary || string(data) != string(payload) {
		t.Fatalf("sender got %v %q, want its binary frame back", typ, data)
	}
	// B gets the next text broadcast first: nothing of A's binary frame.
	a.send("after")
	b.expect(broadcastFrame(a.id, `"after"`, "bin"))
}

func TestRoomsAreIsolated(t *testing.T) {
	ts := startServer(t, transport.Config{})
	a := join(t, ts, "/ws/one")
	b := join(t, ts, "/ws/two")
	a.send("for one")
	a.expect(broadcastFrame(a.id, `"for one"`, "one"))
	b.send("for two")
	// B's first frame after its welcome is its own message: nothing from
	// room one leaked in.
	b.expect(broadcastFrame(b.id, `"for two"`, "two"))
}

func TestDisconnectedNotice(t *testing.T) {
	ts := startServer(t, transport.Config{})
	a := join(t, ts, "/ws/bye")
	b := join(t, ts, "/ws/bye")
	a.expect(b.id + " just joined!")
	if err := b.ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
	a.expect(b.id + " disconnected.")
}

func TestSeedRouteShapeAndDefaultRoom(t *testing.T) {
	ts := startServer(t, transport.Config{})
	a := join(t, ts, "/topic") // GET /{room} with an Upgrade header
	b := join(t, ts, "/ws/topic")
	a.expect(b.id + " just joined!")

	c := join(t, ts, "/ws/")
	d := join(t, ts, "/ws/lobby")
	c.expect(d.id + " just joined!")
	c.send("x")
	d.expect(broadcastFrame(c.id, `"x"`, "lobby"))
}

func TestEcho(t *testing.T) {
	ts := startServer(t, transport.Config{})
	c := dial(t, ts, "/echo")
	c.send("ping me")
	c.expect("ping me")
	if err := c.ws.Write(t.Context(), websocket.MessageBinary, []byte{9, 8, 7}); err != nil {
		t.Fatal(err)
	}
	typ, data := c.read()
	if typ != websocket.MessageBinary || string(data) != "\x09\x08\x07" {
		t.Fatalf("got %v %q, want the binary frame back", typ, data)
	}
}

func TestSilentClientIsClosedAndItsRoomTold(t *testing.T) {
	ts := startServer(t, transport.Config{Config: actors.Config{Heartbeat: 50_000_000, ClientTimeout: 300_000_000}})
	a := join(t, ts, "/ws/hb")
	// B reads its welcome, then never reads again, so it never answers a
	// ping.
	b := join(t, ts, "/ws/hb")
	a.expect(b.id + " just joined!")
	a.expect(b.id + " disconnected.")

	// A, which reads (and so answers pings), is still connected.
	a.send("still here")
	a.expect(broadcastFrame(a.id, `"still here"`, "hb"))
}

// TestClientAnsweringPingsStaysConnected: the server's pings and the
// client's pongs bypass coder/websocket's own ping machinery (see
// transport/wsconn/wire.go); a client that answers them must outlive many client
// timeouts, and its own pings must be answered.
func TestClientAnsweringPingsStaysConnected(t *testing.T) {
	ts := startServer(t, transport.Config{Config: actors.Config{Heartbeat: 50 * time.Millisecond, ClientTimeout: 300 * time.Millisecond}})
	pings := make(chan struct{}, 1)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, ts.wsURL("/ws/pong"), &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool {
			select {
			case pings <- struct{}{}:
			default:
			}
			return true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	frames := make(chan string, 16)
	go func() {
		defer close(frames)
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			frames <- string(data)
		}
	}()
	id, ok := strings.CutPrefix(<-frames, "your id is ")
	if !ok {
		t.Fatal("no welcome")
	}
	// 20 pings at 50 ms: over three times the client timeout (which is
	// loose enough for a loaded CI machine to answer within).
	for i := range 20 {
		select {
		case <-pings:
		case f, ok := <-frames:
			t.Fatalf("after %d pings: frame %q (open=%v), want only pings", i, f, ok)
		case <-ctx.Done():
			t.Fatalf("only %d pings came", i)
		}
	}
	if err := ws.Ping(ctx); err != nil {
		t.Fatalf("the server did not answer the client's ping: %v", err)
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if f := <-frames; f != broadcastFrame(id, `"still here"`, "pong") {
		t.Fatalf("got %q, want the broadcast back", f)
	}
}

// TestFramesSentWithTheHandshakeAreRead: a client may send frames right
// behind its upgrade request, in the same TCP segment; the server has read
// them along with the request and must not lose them, and must take a pong
// among them out of the stream.
func TestFramesSentWithTheHandshakeAreRead(t *testing.T) {
	ts := startServer(t, transport.Config{})
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitFor))
	masked := func(op byte, payload string) []byte {
		key := []byte{7, 1, 3, 9}
		f := []byte{0x80 | op, 0x80 | byte(len(payload))}
		f = append(f, key...)
		for i := range len(payload) {
			f = append(f, payload[i]^key[i%4])
		}
		return f
	}
	req := "GET /ws/early HTTP/1.1\r\nHost: " + ts.addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	out := append([]byte(req), masked(0x1, "first")...)
	out = append(out, masked(0xA, "")...) // an unsolicited pong
	out = append(out, masked(0x1, "second")...)
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	readFrame := func() string {
		t.Helper()
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			t.Fatal(err)
		}
		n := int(h[1] & 0x7f)
		if n == 126 {
			var ext [2]byte
			if _, err := io.ReadFull(br, ext[:]); err != nil {
				t.Fatal(err)
			}
			n = int(ext[0])<<8 | int(ext[1])
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			t.Fatal(err)
		}
		return string(p)
	}
	id, ok := strings.CutPrefix(readFrame(), "your id is ")
	if !ok {
		t.Fatal("no welcome")
	}
	for _, want := range []string{"first", "second"} {
		if got := readFrame(); got != broadcastFrame(id, `"`+want+`"`, "early") {
			t.Fatalf("got %q, want the broadcast of %q", got, want)
		}
	}
}
