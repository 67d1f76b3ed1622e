package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/transport"
)

func TestJSONWelcomeJoinedLeftAndMembers(t *testing.T) {
	ts := startServer(t, transport.Config{})
	a := joinJSON(t, ts, "/ws/v1")
	if a.welcome.Room != "v1" || a.welcome.Epoch == "" || a.welcome.Seq != 0 || a.welcome.Recovered ||
		!slices.Equal(a.welcome.Members, []string{a.id}) {
		t.Fatalf("welcome %s, want room v1, an epoch, seq 0, members [self], recovered false", a.welcome.raw)
	}
	wantKeys := `{"type":"welcome","id":"` + a.id + `","room":"v1","epoch":"` + a.welcome.Epoch + `","seq":0,"members":["` + a.id + `"],"recovered":false}`
	if a.welcome.raw != wantKeys {
		t.Fatalf("welcome\n  %s\nwant\n  %s", a.welcome.raw, wantKeys)
	}

	b := joinJSON(t, ts, "/ws/v1")
	if b.welcome.Epoch != a.welcome.Epoch || !slices.Equal(b.welcome.Members, []string{a.id, b.id}) {
		t.Fatalf("second welcome %s, want the same epoch and members [a b]", b.welcome.raw)
	}
	a.expect(`{"type":"joined","id":"` + b.id + `","room":"v1"}`)

	b.sendJSON(`{"type":"members","ref":"m1"}`)
	b.expect(`{"type":"members","ref":"m1","room":"v1","members":["` + a.id + `","` + b.id + `"]}`)

	if err := b.ws.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	a.expect(`{"type":"left","id":"` + b.id + `","room":"v1"}`)
	a.sendJSON(`{"type":"members","ref":2}`)
	a.expect(`{"type":"members","ref":2,"room":"v1","members":["` + a.id + `"]}`)
}

func TestJSONBroadcastMessageAndAck(t *testing.T) {
	ts := startServer(t, transport.Config{})
	a := joinJSON(t, ts, "/ws/v1")
	b := joinJSON(t, ts, "/ws/v1")
	a.nextOf("joined")

	a.sendJSON(`{"type":"broadcast","msg":{"text":"hi","n":[1,2]},"ref":"r-1"}`)
	want := `{"type":"message","id":"` + a.id + `","room":"v1","seq":1,"msg":{"text":"hi","n":[1,2]}}`
	a.expect(want)
	a.expect(`{"type":"ack","ref":"r-1","room":"v1","seq":1}`)
	b.expect(want)

	// Without a ref there is no ack; seq goes on by one.
	a.sendJSON(`{"type":"broadcast","msg":"two"}`)
	a.expect(`{"type":"message","id":"` + a.id + `","room":"v1","seq":2,"msg":"two"}`)
	a.sendJSON(`{"type":"broadcast","msg":null,"ref":7}`)
	a.expect(`{"type":"message","id":"` + a.id + `","room":"v1","seq":3,"msg":null}`)
	a.expect(`{"type":"ack","ref":7,"room":"v1","seq":3}`)
}

func TestTextAndJSONClientsShareARoom(t *testing.T) {
	publisher := uuid.New()
	ts := startServer(t, transport.Config{PublisherID: publisher})
	txt := join(t, ts, "/ws/mixed")
	js := joinJSON(t, ts, "/ws/mixed")
	txt.expect(js.id + " just joined!")
	txt2 := join(t, ts, "/ws/mixed")
	txt.expect(txt2.id + " just joined!")
	js.expect(`{"type":"joined","id":"` + txt2.id + `","room":"mixed"}`)

	// A text client's text, a JSON client's broadcast and an HTTP publish
	// each reach both kinds, each in its own format.
	steps := []struct {
		send func()
		text string
		json string
	}{
		{send: func() { txt.send("from text") },
			text: broadcastFrame(txt.id, `"from text"`, "mixed"),
			json: `{"type":"message","id":"` + txt.id + `","room":"mixed","seq":1,"msg":"from text"}`},
		{send: func() { js.sendJSON(`{"type":"broadcast","msg":{"from":"json"}}`) },
			text: broadcastFrame(js.id, `{"from":"json"}`, "mixed"),
			json: `{"type":"message","id":"` + js.id + `","room":"mixed","seq":2,"msg":{"from":"json"}}`},
		{send: func() {
			if status, body := httpDo(t, "POST", ts.url("/rooms/mixed/broadcast"), []byte(`[1,"http"]`), nil); status != 200 {
				t.Fatalf("publish: %d %s", status, body)
			}
		},
			text: broadcastFrame(publisher.String(), `[1,"http"]`, "mixed"),
			json: `{"type":"message","id":"` + publisher.String() + `","room":"mixed","seq":3,"msg":[1,"http"]}`},
	}
	for _, step := range steps {
		step.send()
		txt.expect(step.text)
		txt2.expect(step.text)
		js.expect(step.json)
	}

	// The text client leaves: the JSON client is told in its format.
	_ = txt2.ws.Close(websocket.StatusNormalClosure, "")
	txt.expect(txt2.id + " disconnected.")
	js.expect(`{"type":"left","id":"` + txt2.id + `","room":"mixed"}`)
}

func TestDirectMessages(t *testing.T) {
	publisher := uuid.New()
	ts := startServer(t, transport.Config{PublisherID: publisher})
	a := joinJSON(t, ts, "/ws/one")
	b := joinJSON(t, ts, "/ws/two") // direct messages cross rooms
	txt := join(t, ts, "/ws/three")

	a.sendJSON(`{"type":"direct","to":"` + b.id + `","msg":{"secret":1},"ref":"d1"}`)
	b.expect(`{"type":"direct","id":"` + a.id + `","msg":{"secret":1}}`)
	a.expect(`{"type":"ack","ref":"d1"}`)

	// A text-protocol client reads a direct message in the broadcast shape,
	// with its own room.
	a.sendJSON(`{"type":"direct","to":"` + txt.id + `","msg":"psst"}`)
	txt.expect(broadcastFrame(a.id, `"psst"`, "three"))

	// By HTTP.
	status, body := httpDo(t, "POST", ts.url("/sessions/"+b.id+"/send"), []byte(`{"from":"http"}`), nil)
	if status != http.StatusOK {
		t.Fatalf("send: %d %s", status, body)
	}
	b.expect(`{"type":"direct","id":"` + publisher.String() + `","msg":{"from":"http"}}`)
	status, body = httpDo(t, "POST", ts.url("/sessions/"+txt.id+"/send"), []byte(`42`), nil)
	if status != http.StatusOK {
		t.Fatalf("send: %d %s", status, body)
	}
	txt.expect(broadcastFrame(publisher.String(), `42`, "three"))

	// Unknown and malformed ids.
	status, body = httpDo(t, "POST", ts.url("/sessions/"+uuid.NewString()+"/send"), []byte(`1`), nil)
	expectJSONError(t, status, body, http.StatusNotFound, "unknown_session")
	status, body = httpDo(t, "POST", ts.url("/sessions/not-a-uuid/send"), []byte(`1`), nil)
	expectJSONError(t, status, body, http.StatusBadRequest, "invalid_id")
	status, body = httpDo(t, "POST", ts.url("/sessions/"+b.id+"/send"), []byte(`{`), nil)
	expectJSONError(t, status, body, http.StatusBadRequest, "invalid_json")

	a.sendJSON(`{"type":"direct","to":"` + uuid.NewString() + `","msg":1,"ref":"x"}`)
	if f := a.next(); f.Type != "error" || f.Code != "unknown_session" || string(f.Ref) != `"x"` {
		t.Fatalf("got %s, want an unknown_session error with ref x", f.raw)
	}
}

func TestJSONBadInputIsAnsweredAndTheConnectionStays(t *testing.T) {
	ts := startServer(t, transport.Config{})
	a := joinJSON(t, ts, "/ws/bad")
	tests := []struct {
		name  string
		frame string
		code  string
		ref   string // the ref the error must carry, "" for none
	}{
		{name: "not JSON", frame: `hello`, code: "invalid_json"},
		{name: "truncated", frame: `{"type":"broadcast"`, code: "invalid_json"},
		{name: "array", frame: `[1,2]`, code: "invalid_frame"},
		{name: "no type", frame: `{"msg":1,"ref":"r0"}`, code: "invalid_frame", ref: `"r0"`},
		{name: "type not a string", frame: `{"type":5,"ref":"r1"}`, code: "invalid_frame", ref: `"r1"`},
		{name: "unknown type", frame: `{"type":"shout","ref":"r2"}`, code: "unknown_type", ref: `"r2"`},
		{name: "broadcast without msg", frame: `{"type":"broadcast","ref":3}`, code: "missing_msg", ref: `3`},
		{name: "direct without msg", frame: `{"type":"direct","to":"` + uuid.NewString() + `"}`, code: "missing_msg"},
		{name: "direct without to", frame: `{"type":"direct","msg":1,"ref":"r4"}`, code: "invalid_to", ref: `"r4"`},
		{name: "direct to a malformed id", frame: `{"type":"direct","to":"abc","msg":1}`, code: "invalid_to"},
		{name: "direct to an unknown id", frame: `{"type":"direct","to":"` + uuid.NewString() + `","msg":1,"ref":"r5"}`, code: "unknown_session", ref: `"r5"`},
		{name: "huge ref", frame: `{"type":"members","ref":"` + strings.Repeat("r", 300) + `"}`, code: "invalid_frame"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.sendJSON(tt.frame)
			f := a.next()
			if f.Type != "error" || f.Code != tt.code || f.Message == "" || string(f.Ref) != tt.ref {
				t.Fatalf("got %s, want an error %q with ref %q and a message", f.raw, tt.code, tt.ref)
			}
		})
	}
	// A binary frame is not lobby.v1.
	if err := a.ws.Write(t.Context(), websocket.MessageBinary, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if f := a.next(); f.Type != "error" || f.Code != "binary_unsupported" {
		t.Fatalf("got %s, want binary_unsupported", f.raw)
	}
	// Still connected, and nothing above was broadcast.
	a.sendJSON(`{"type":"broadcast","msg":"ok","ref":1}`)
	if f := a.next(); f.Type != "message" || f.Seq != 1 {
		t.Fatalf("got %s, want message seq 1", f.raw)
	}
}

func TestHistoryRoute(t *testing.T) {
	ts := startServer(t, transport.Config{Config: actors.Config{History: 3}})
	a := joinJSON(t, ts, "/ws/h")
	for i := 1; i <= 5; i++ {
		a.sendJSON(fmt.Sprintf(`{"type":"broadcast","msg":{"n":%d}}`, i))
		a.nextOf("message")
	}
	type historyBody struct {
		Room     string `json:"room"`
		Epoch    string `json:"epoch"`
		Seq      uint64 `json:"seq"`
		Complete bool   `json:"complete"`
		Messages []struct {
			Seq uint64          `json:"seq"`
			ID  string          `json:"id"`
			Msg json.RawMessage `json:"msg"`
		} `json:"messages"`
	}
	get := func(query string) historyBody {
		t.Helper()
		status, body := httpDo(t, "GET", ts.url("/rooms/h/history"+query), nil, nil)
		if status != http.StatusOK {
			t.Fatalf("history%s: %d %s", query, status, body)
		}
		var h historyBody
		if err := json.Unmarshal(body, &h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	tests := []struct {
		name     string
		query    string
		seqs     []uint64
		complete bool
	}{
		{name: "no since: what is kept, gap reported", query: "", seqs: []uint64{3, 4, 5}, complete: false},
		{name: "since within reach", query: "?since=3", seqs: []uint64{4, 5}, complete: true},
		{name: "since just before the oldest", query: "?since=2", seqs: []uint64{3, 4, 5}, complete: true},
		{name: "since too old", query: "?since=1", seqs: []uint64{3, 4, 5}, complete: false},
		{name: "since the last", query: "?since=5", seqs: nil, complete: true},
		{name: "since in the future", query: "?since=9", seqs: nil, complete: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := get(tt.query)
			var seqs []uint64
			for _, m := range h.Messages {
				seqs = append(seqs, m.Seq)
				if m.ID != a.id || string(m.Msg) != fmt.Sprintf(`{"n":%d}`, m.Seq) {
					t.Errorf("entry %+v, want id %s and msg {\"n\":%d}", m, a.id, m.Seq)
				}
			}
			if !slices.Equal(seqs, tt.seqs) || h.Complete != tt.complete || h.Seq != 5 || h.Room != "h" || h.Epoch != a.welcome.Epoch {
				t.Fatalf("got seqs %v complete %v (%+v), want %v complete %v", seqs, h.Complete, h, tt.seqs, tt.complete)
			}
		})
	}
	status, body := httpDo(t, "GET", ts.url("/rooms/h/history?since=-1"), nil, nil)
	expectJSONError(t, status, body, http.StatusBadRequest, "invalid_since")
	status, body = httpDo(t, "GET", ts.url("/rooms/none/history"), nil, nil)
	expectJSONError(t, status, body, http.StatusNotFound, "unknown_room")
}
