package test

import (
	"net/http"
	"testing"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/transport"
)

// invalidUTF8 is a JSON string that json.Valid accepts but that is not
// UTF-8: copied into a text frame it makes a browser drop the connection.
const invalidUTF8 = "\"\xff\xfe\""

// TestInvalidUTF8IsRefusedAndNoFrameCarriesIt sends invalid UTF-8 every way
// a client or publisher can, and checks that no member is sent a text frame
// that is not UTF-8: JSON input is refused with invalid_json, the text
// protocol's text is repaired with U+FFFD.
func TestInvalidUTF8IsRefusedAndNoFrameCarriesIt(t *testing.T) {
	ts := startServer(t, transport.Config{})
	text := join(t, ts, "/ws/utf")
	v1 := joinJSON(t, ts, "/ws/utf")
	text.readText() // v1 joined

	// lobby.v1 broadcast and direct frames: an error, the socket stays.
	for _, f := range []string{
		`{"type":"broadcast","msg":` + invalidUTF8 + `,"ref":"b"}`,
		`{"type":"direct","to":"` + text.id + `","msg":` + invalidUTF8 + `,"ref":"d"}`,
	} {
		v1.sendJSON(f)
		got := v1.next()
		if got.Type != "error" || got.Code != "invalid_json" {
			t.Fatalf("sent %q, got %s, want an invalid_json error", f, got.raw)
		}
	}

	// HTTP publish, dashboard and direct send: 400 invalid_json.
	for _, path := range []string{"/rooms/utf/broadcast", "/dailyDashBoard", "/sessions/" + text.id + "/send"} {
		body := []byte(invalidUTF8)
		if path == "/dailyDashBoard" {
			body = []byte(`[{"product_line":` + invalidUTF8 + `}]`)
		}
		status, resp := httpDo(t, "POST", ts.url(path), body, nil)
		expectJSONError(t, status, resp, http.StatusBadRequest, "invalid_json")
	}

	// A text-protocol client's text is relayed with U+FFFD in place of the
	// bad bytes, to both protocols.
	text.send("a\xffb")
	want := broadcastFrame(text.id, `"a`+"\ufffd"+`b"`, "utf")
	text.expect(want)
	if f := v1.next(); f.Type != "message" || string(f.Msg) != `"a`+"\ufffd"+`b"` || f.Seq != 1 {
		t.Fatalf("lobby.v1 member got %s, want the repaired message with seq 1", f.raw)
	}

	// Nothing refused above reached history: its only message is the
	// repaired one, and the answer is UTF-8.
	status, body := httpDo(t, "GET", ts.url("/rooms/utf/history"), nil, nil)
	if status != http.StatusOK || !utf8.Valid(body) {
		t.Fatalf("history: %d %q", status, body)
	}
	if got := scanSeqs(t, body); len(got) != 1 || got[0] != 1 {
		t.Fatalf("history seqs %v, want [1]", got)
	}

	// The echo actor repairs text too; binary frames are its own business.
	echo := dial(t, ts, "/echo")
	echo.send("x\xfey")
	if got := echo.readText(); got != "x\ufffdy" {
		t.Fatalf("echo sent back %q", got)
	}
	if err := echo.ws.Write(t.Context(), websocket.MessageBinary, []byte{0xff}); err != nil {
		t.Fatal(err)
	}
	if typ, got := echo.read(); typ != websocket.MessageBinary || string(got) != "\xff" {
		t.Fatalf("echo sent back %v %q", typ, got)
	}
}
