package test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/lobby/lobby/transport"
)

// TestBrowserBroadcastKeys drives lobby.js's broadcasts across reconnects
// in Chromium, its socket through a proxy the test cuts. Every broadcast
// carries an idempotency key: one whose ack the network lost is sent
// again after the reconnect, with its key, and stored once; broadcasts
// made while the client reconnects go out once each, in order, when it
// is live again. Before, both were rejected (disconnected, not_connected)
// and a page that sent them again stored them twice or lost them. Like
// TestBrowser, it skips without Chromium unless CI is set.
func TestBrowserBroadcastKeys(t *testing.T) {
	ts := startServer(t, transport.Config{})
	proxy := startProxy(t, ts.addr)
	b := startBrowser(t)
	base := "http://" + proxy.addr()

	t.Run("AckLost", func(t *testing.T) { testBroadcastAckLost(t, b, ts, proxy, base) })
	t.Run("SentWhileReconnecting", func(t *testing.T) { testBroadcastWhileReconnecting(t, b, ts, proxy, base) })
}

// openLobby opens a page and a single-room lobby.js client in room, live.
func openLobby(t *testing.T, b *browser, base, room string) *tab {
	t.Helper()
	p := b.open(t, "keys-"+room, base+"/status")
	p.waitFor("the page", `() => document.readyState === "complete"`)
	p.waitFor("lobby.js live in "+room, `async (room) => {
		if (!window.__lobby) {
			const { Lobby } = await import("/lobby.js");
			window.__lobby = new Lobby(location.origin, room, {});
		}
		return window.__lobby.state === "live";
	}`, room)
	return p
}

// settled waits for the promise window[name] and returns what it came to:
// its value, or "error <code>".
func settled[T any](t *testing.T, p *tab, name string) T {
	t.Helper()
	p.waitFor(name+" to settle", `async (name) => {
		window[name + "Result"] = JSON.stringify(await Promise.resolve(window[name]).then((v) => v, (err) => "error " + err.code));
		return true;
	}`, name)
	var v T
	if raw := evaluate[string](p, `window.`+name+`Result`); json.Unmarshal([]byte(raw), &v) != nil {
		t.Fatalf("%s came to %s", name, raw)
	}
	return v
}

// historySeqs is the seqs of room's history, in order.
func historySeqs(t *testing.T, ts *testServer, room string) []uint64 {
	t.Helper()
	status, body := httpDo(t, "GET", ts.url("/rooms/"+room+"/history"), nil, nil)
	if status != http.StatusOK {
		t.Fatalf("history of %s: %d %s", room, status, body)
	}
	return scanSeqs(t, body)
}

// testBroadcastAckLost: the server stores a broadcast, and its ack is
// lost with the connection; after the reconnect lobby.js sends it again
// with its key, the server knows the key, and the page's promise
// resolves with the first one's seq. The room holds it once.
func testBroadcastAckLost(t *testing.T, b *browser, ts *testServer, proxy *cutProxy, base string) {
	p := openLobby(t, b, base, "lost")
	proxy.deafen()
	evaluate[bool](p, `(window.__sent = window.__lobby.broadcast({ n: 1 }), true)`)
	waitRoomSeq(t, ts, "lost", 1) // stored; its ack is on its way to nowhere
	if n := proxy.cut(); n == 0 {
		t.Fatal("the proxy had no connection to cut")
	}
	p.waitFor("lobby.js live again", `() => window.__lobby.state === "recovered" || window.__lobby.state === "live"`)
	if got := settled[any](t, p, "__sent"); got != float64(1) {
		t.Fatalf("the broadcast whose ack was lost came to %v, want its seq, 1", got)
	}
	if seqs := historySeqs(t, ts, "lost"); !slices.Equal(seqs, []uint64{1}) {
		t.Fatalf("the room holds seqs %v, want the broadcast once", seqs)
	}
	p.close()
}

// testBroadcastWhileReconnecting: while lobby.js cannot reconnect, the
// page broadcasts three messages; once it is back they go out, each
// once, in the order made.
func testBroadcastWhileReconnecting(t *testing.T, b *browser, ts *testServer, proxy *cutProxy, base string) {
	p := openLobby(t, b, base, "queued")
	proxy.hold()
	if n := proxy.cut(); n == 0 {
		proxy.release()
		t.Fatal("the proxy had no connection to cut")
	}
	p.waitFor("lobby.js reconnecting", `() => window.__lobby.state === "reconnecting"`)
	evaluate[bool](p, `(window.__queued = Promise.all([1, 2, 3].map((n) =>
		window.__lobby.broadcast({ q: n }).then((seq) => seq, (err) => "error " + err.code))), true)`)
	proxy.release()
	if got := settled[[]any](t, p, "__queued"); !slices.Equal(got, []any{float64(1), float64(2), float64(3)}) {
		t.Fatalf("the broadcasts made while reconnecting came to %v, want seqs 1, 2, 3", got)
	}
	status, body := httpDo(t, "GET", ts.url("/rooms/queued/history"), nil, nil)
	if status != http.StatusOK {
		t.Fatalf("history: %d %s", status, body)
	}
	var h struct {
		Messages []struct {
			Seq uint64          `json:"seq"`
			Msg json.RawMessage `json:"msg"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range h.Messages {
		got = append(got, string(m.Msg))
	}
	if want := []string{`{"q":1}`, `{"q":2}`, `{"q":3}`}; !slices.Equal(got, want) {
		t.Fatalf("the room holds %v, want %v: each once, in order", got, want)
	}
	p.close()
}
