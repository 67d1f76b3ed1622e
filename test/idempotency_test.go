package test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// The idempotency tests post the same Idempotency-Key twice (issue 21,
// "Cluster faults" 5: a publisher that retried after a 503 stored its
// message twice), on one node and across the nodes of a cluster.

// keyedAnswer is a publish route's answer.
type keyedAnswer struct {
	Room      string `json:"room"`
	ID        string `json:"id"`
	Seq       uint64 `json:"seq"`
	Delivered int    `json:"delivered"`
	Duplicate bool   `json:"duplicate"`
}

// postKeyed publishes body to path on ts with key as its
// Idempotency-Key, and wants a 200.
func postKeyed(t *testing.T, ts *testServer, path, key, body string) keyedAnswer {
	t.Helper()
	status, resp := httpDo(t, "POST", ts.url(path), []byte(body), http.Header{"Idempotency-Key": {key}})
	if status != http.StatusOK {
		t.Fatalf("POST %s with key %q: %d %s", path, key, status, resp)
	}
	var a keyedAnswer
	if err := json.Unmarshal(resp, &a); err != nil || a.Seq == 0 {
		t.Fatalf("POST %s answered %s (%v)", path, resp, err)
	}
	return a
}

// checkIdempotent posts one key to one room through every node in turn:
// the first answer stores it, every later one says duplicate with the
// same seq. A member on the first and on the last node receives it
// once, history holds it once, and the same key in another room is a
// message of its own.
func checkIdempotent(t *testing.T, nodes []*testServer, room string) {
	t.Helper()
	first, last := nodes[0], nodes[len(nodes)-1]
	members := []*jsonClient{joinJSON(t, first, "/ws/"+room), joinJSON(t, last, "/ws/"+room)}
	const key = "order-4711"
	orig := postKeyed(t, first, "/rooms/"+room+"/broadcast", key, `{"n":1}`)
	if orig.Duplicate || orig.Delivered == 0 {
		t.Fatalf("the first publish answered %+v", orig)
	}
	for i, n := range append(nodes, first) {
		again := postKeyed(t, n, "/rooms/"+room+"/broadcast", key, `{"n":1}`)
		if !again.Duplicate || again.Seq != orig.Seq || again.Room != room {
			t.Fatalf("retry %d (node %s) answered %+v, want duplicate of %+v", i, n.addr, again, orig)
		}
	}
	// A publish with another key after the retries is the very next
	// seq: none of them was stored.
	marker := postKeyed(t, last, "/rooms/"+room+"/broadcast", "marker-1", `"marker"`)
	if marker.Duplicate || marker.Seq != orig.Seq+1 {
		t.Fatalf("the publish after the retries answered %+v, want seq %d", marker, orig.Seq+1)
	}
	for i, m := range members {
		if f := m.nextOf("message"); f.Seq != orig.Seq || string(f.Msg) != `{"n":1}` {
			t.Fatalf("member %d: first message %s, want seq %d", i, f.raw, orig.Seq)
		}
		if f := m.nextOf("message"); f.Seq != marker.Seq || string(f.Msg) != `"marker"` {
			t.Fatalf("member %d: second message %s, want the marker (seq %d): the key was delivered twice", i, f.raw, marker.Seq)
		}
	}
	for _, n := range nodes {
		waitRoomSeq(t, n, room, marker.Seq)
		if got := historyMessages(t, n, room); got != 2 {
			t.Fatalf("history of %s on %s holds %d messages, want 2", room, n.addr, got)
		}
	}
	// The same key in another room, and on the statistics route, is a
	// message of each.
	other := postKeyed(t, last, "/rooms/"+room+"-other/broadcast", key, `{"n":1}`)
	if other.Duplicate || other.Room != room+"-other" {
		t.Fatalf("the key in another room answered %+v", other)
	}
	stats := postKeyed(t, first, "/dailyDashBoard", key, `[{"product_line":"a","total_trx":1}]`)
	if stats.Duplicate {
		t.Fatalf("the key on /dailyDashBoard answered %+v", stats)
	}
	if again := postKeyed(t, last, "/dailyDashBoard", key, `[{"product_line":"a","total_trx":1}]`); !again.Duplicate || again.Seq != stats.Seq {
		t.Fatalf("the key again on /dailyDashBoard answered %+v, want duplicate of %+v", again, stats)
	}
	if got := metricValue(t, first, "lobby_publish_duplicates_total"); got < 1 {
		t.Fatalf("lobby_publish_duplicates_total %v on the first node", got)
	}
}

func TestIdempotentPublishMemory(t *testing.T) {
	ts := &testServer{addr: startBinary(t, buildLobby(t), []string{"--addr", "127.0.0.1:0", "--connect-rate", "-1"}).addr}
	checkIdempotent(t, []*testServer{ts}, "keyed")
}

func TestIdempotentPublishCluster(t *testing.T) {
	c := startCluster(t, 2)
	checkIdempotent(t, []*testServer{c.node(0), c.node(1)}, "keyed")
}

func TestIdempotentPublishDurable(t *testing.T) {
	ts := &testServer{addr: startDurable(t, t.TempDir()).addr}
	checkIdempotent(t, []*testServer{ts}, "keyed")
}

func TestIdempotentPublishPeers(t *testing.T) {
	pc := startPeers(t, 3)
	checkIdempotent(t, []*testServer{pc.node(0), pc.node(1), pc.node(2)}, "keyed")
}

// TestIdempotencyKeyRefused: a key that is empty, too long, not visible
// ASCII, or given twice is 400 invalid_idempotency_key, on both publish
// routes, and nothing is published.
func TestIdempotencyKeyRefused(t *testing.T) {
	ts := &testServer{addr: startBinary(t, buildLobby(t), []string{"--addr", "127.0.0.1:0", "--connect-rate", "-1"}).addr}
	tests := []struct {
		name string
		keys []string
	}{
		{"empty", []string{""}},
		{"too long", []string{strings.Repeat("k", 65)}},
		{"space", []string{"a b"}},
		{"tab", []string{"a\tb"}},
		{"not ascii", []string{"clé"}},
		{"twice", []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/rooms/refused/broadcast", "/dailyDashBoard"} {
				status, body := httpDo(t, "POST", ts.url(path), []byte(`[]`), http.Header{"Idempotency-Key": tt.keys})
				expectJSONError(t, status, body, http.StatusBadRequest, "invalid_idempotency_key")
			}
		})
	}
	if got := historyMessages(t, ts, "refused"); got != 0 {
		t.Fatalf("a refused key published %d messages", got)
	}
	// The longest key there may be is taken.
	if a := postKeyed(t, ts, "/rooms/refused/broadcast", strings.Repeat("k", 64), `"ok"`); a.Duplicate {
		t.Fatalf("answered %+v", a)
	}
}
