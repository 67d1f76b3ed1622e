package test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/actors/questionnaire/store"
	"github.com/lobby/lobby/transport"
)

type created struct {
	ID             string `json:"id"`
	PresenterToken string `json:"presenter_token"`
	ParticipantURL string `json:"participant_url"`
	PresenterURL   string `json:"presenter_url"`
}

// threeQuestions has three questions; the second (index 1) has four options.
const threeQuestions = `{"title":"Team day","questions":[
	{"text":"Coffee or tea?","options":["coffee","tea"]},
	{"text":"Which talk was best?","options":["actors","sqlite","websockets","go \"1.26\""]},
	{"text":"Again next year?","options":["yes","no","maybe"]}]}`

func createQuestionnaire(t *testing.T, ts *testServer, body string) created {
	t.Helper()
	status, resp := httpDo(t, http.MethodPost, ts.url("/questionnaires"), []byte(body), nil)
	if status != http.StatusCreated {
		t.Fatalf("POST /questionnaires: %d %s", status, resp)
	}
	var c created
	if err := json.Unmarshal(resp, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.PresenterToken) < 22 || c.ParticipantURL != "/q/"+c.ID || c.PresenterURL != "/q/"+c.ID+"/present" {
		t.Fatalf("POST /questionnaires answered %s", resp)
	}
	return c
}

type results struct {
	ID      string  `json:"id"`
	Current *int    `json:"current"`
	Closed  bool    `json:"closed"`
	Results [][]int `json:"results"`
}

func getResults(t *testing.T, ts *testServer, c created) results {
	t.Helper()
	status, body := httpDo(t, http.MethodGet, ts.url("/questionnaires/"+c.ID+"/results"), nil,
		http.Header{"Authorization": {"Bearer " + c.PresenterToken}})
	if status != http.StatusOK {
		t.Fatalf("GET results: %d %s", status, body)
	}
	var r results
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func dialPresenter(t *testing.T, ts *testServer, c created) *client {
	t.Helper()
	return dial(t, ts, "/questionnaires/"+c.ID+"/presenter?token="+c.PresenterToken)
}

// identity is a participant identity POST /questionnaires/{id}/participants issued.
type identity struct {
	Participant string `json:"participant"`
	Token       string `json:"token"`
}

func (p identity) query() string {
	return "participant=" + p.Participant + "&token=" + p.Token
}

func newIdentity(t *testing.T, ts *testServer, c created) identity {
	t.Helper()
	status, resp := httpDo(t, http.MethodPost, ts.url("/questionnaires/"+c.ID+"/participants"), nil, nil)
	if status != http.StatusCreated {
		t.Fatalf("POST participants: %d %s", status, resp)
	}
	var p identity
	if err := json.Unmarshal(resp, &p); err != nil || p.Participant == "" || p.Token == "" {
		t.Fatalf("POST participants answered %s (%v)", resp, err)
	}
	return p
}

// identities are the identities the tests' named participants were
// issued, by questionnaire and name: a name is one participant, across
// reconnects and restarts (the token's secret is in the data directory).
var identities sync.Map

// dialParticipant connects participant name of c, with the identity the
// server issued it the first time.
func dialParticipant(t *testing.T, ts *testServer, c created, name string) *client {
	t.Helper()
	key := c.ID + "/" + name
	p, ok := identities.Load(key)
	if !ok {
		p, _ = identities.LoadOrStore(key, newIdentity(t, ts, c))
	}
	return dial(t, ts, "/questionnaires/"+c.ID+"/participant?"+p.(identity).query())
}

// expectPresenter reads a presenter's frames until want, skipping the
// state and tally frames that participants connecting and answering
// cause: how many come depends on how the server batched them.
func (c *client) expectPresenter(want string) {
	c.t.Helper()
	for {
		got := c.readText()
		if got == want {
			return
		}
		if !strings.HasPrefix(got, `{"type":"state"`) && !strings.HasPrefix(got, `{"type":"tally"`) {
			c.t.Fatalf("presenter got\n  %s\nwhile waiting for\n  %s", got, want)
		}
	}
}

// expectError reads the next frame and checks that it is an error frame
// with code.
func (c *client) expectError(code string) {
	c.t.Helper()
	got := c.readText()
	if !strings.HasPrefix(got, `{"type":"error","code":"`+code+`","message":"`) {
		c.t.Fatalf("got %s, want an error frame with code %s", got, code)
	}
}

// tallyFrame is a single question's tally: as before question kinds,
// with answered (for a single question, the sum of its counts) and closed
// after the old fields.
func tallyFrame(question int, counts []int, participants int) string {
	b, _ := json.Marshal(counts)
	answered := 0
	for _, n := range counts {
		answered += n
	}
	return fmt.Sprintf(`{"type":"tally","question":%d,"counts":%s,"participants":%d,"answered":%d,"closed":false}`,
		question, b, participants, answered)
}

// hangUp drops the clients' connections.
func hangUp(clients ...*client) {
	for _, c := range clients {
		_ = c.ws.CloseNow()
	}
}

const talkQuestion = `{"type":"question","index":1,"text":"Which talk was best?","options":["actors","sqlite","websockets","go \"1.26\""],"answer":`

// TestQuestionnaireEndToEnd is a questionnaire's life over real sockets:
// a presenter and 50 participants, the second question (index 1) shown,
// answers tallied exactly, changed and repeated, bad frames refused, the
// server restarted twice on the same data directory, and the close.
func TestQuestionnaireEndToEnd(t *testing.T) {
	dir := t.TempDir()
	ts := startQServer(t, dir, transport.Config{})
	q := createQuestionnaire(t, ts.testServer, threeQuestions)

	status, body := httpDo(t, http.MethodGet, ts.url("/questionnaires/"+q.ID), nil, nil)
	var def map[string]any
	if status != http.StatusOK || json.Unmarshal(body, &def) != nil || def["id"] != q.ID || def["title"] != "Team day" ||
		len(def["questions"].([]any)) != 3 {
		t.Fatalf("GET /questionnaires/%s: %d %s", q.ID, status, body)
	}

	presenter := dialPresenter(t, ts.testServer, q)
	presenter.expect(`{"type":"state","current":null,"closed":false,"participants":0}`)
	const n = 50
	participants := make([]*client, n)
	for i := range participants {
		participants[i] = dialParticipant(t, ts.testServer, q, fmt.Sprintf("p%02d", i))
	}
	presenter.expectPresenter(`{"type":"state","current":null,"closed":false,"participants":50}`)

	// Show the second question, index 1: everyone gets it at once.
	presenter.send(`{"type":"show","question":1}`)
	presenter.expect(tallyFrame(1, []int{0, 0, 0, 0}, n))
	for _, p := range participants {
		p.expect(talkQuestion + `null}`)
	}

	// Everyone answers at once; the tally ends at exactly what was sent.
	want := make([]int, 4)
	for i, p := range participants {
		opt := i % 3 // options 0-2, never 3
		if i < 5 {
			opt = 3
		}
		want[opt]++
		p.send(fmt.Sprintf(`{"type":"answer","question":1,"option":%d}`, opt))
	}
	for i, p := range participants {
		opt := i % 3
		if i < 5 {
			opt = 3
		}
		p.expect(fmt.Sprintf(`{"type":"answered","question":1,"option":%d}`, opt))
	}
	presenter.expectPresenter(tallyFrame(1, want, n))
	r := getResults(t, ts.testServer, q)
	if r.Current == nil || *r.Current != 1 || r.Closed || !reflect.DeepEqual(r.Results, [][]int{{0, 0}, want, {0, 0, 0}}) {
		t.Fatalf("results %+v, want question 1 current and counts %v", r, want)
	}

	// Ten participants change their answer to option 3: it replaces theirs.
	for i := 10; i < 20; i++ {
		want[i%3]--
		want[3]++
		participants[i].send(`{"type":"answer","question":1,"option":3}`)
		participants[i].expect(`{"type":"answered","question":1,"option":3}`)
	}
	presenter.expectPresenter(tallyFrame(1, want, n))

	// p30 reconnects: the new socket takes over, the old one is closed
	// 1000 replaced, and its answer is still its own: answering again
	// does not count twice.
	again := dialParticipant(t, ts.testServer, q, "p30")
	again.expect(talkQuestion + `0}`)
	participants[30].expectClose(websocket.StatusNormalClosure, "replaced")
	participants[30] = again
	again.send(`{"type":"answer","question":1,"option":0}`)
	again.expect(`{"type":"answered","question":1,"option":0}`)
	presenter.expectPresenter(tallyFrame(1, want, n))

	// A late joiner gets the current question, with no answer yet.
	late := dialParticipant(t, ts.testServer, q, "late-joiner")
	late.expect(talkQuestion + `null}`)
	presenter.expectPresenter(tallyFrame(1, want, n+1))

	// Bad frames and indexes out of range are answered with error frames,
	// and the socket stays open; so is an answer to another question.
	p := participants[0]
	for _, bad := range []struct{ frame, code string }{
		{`not json`, "invalid_json"},
		{`{"type":"answer","question":"1","option":0}`, "invalid_frame"},
		{`{"type":"vote"}`, "unknown_type"},
		{`{"type":"show","question":0}`, "unknown_type"},
		{`{"type":"answer","question":1,"option":4}`, "out_of_range"},
		{`{"type":"answer","question":3,"option":0}`, "out_of_range"},
		{`{"type":"answer","question":0,"option":0}`, "not_current"},
		{`{"type":"answer","question":2,"option":0}`, "not_current"},
	} {
		p.send(bad.frame)
		p.expectError(bad.code)
	}
	presenter.send(`{"type":"show","question":3}`)
	presenter.expectError("out_of_range")
	presenter.send(`{"type":"answer","question":1,"option":0}`)
	presenter.expectError("unknown_type")
	p.send(`{"type":"answer","question":1,"option":3}`) // still open; unchanged answer
	p.expect(`{"type":"answered","question":1,"option":3}`)

	// The server restarts on the same data directory: every answer and
	// the current question are still there. (The clients go first: a
	// shutdown waits for clients to answer its close, and these do not read.)
	hangUp(append(participants, presenter, late)...)
	ts = ts.restart(t, dir)
	presenter = dialPresenter(t, ts.testServer, q)
	presenter.expect(`{"type":"state","current":1,"closed":false,"participants":0}`)
	presenter.expect(tallyFrame(1, want, 0))
	if r := getResults(t, ts.testServer, q); !reflect.DeepEqual(r.Results, [][]int{{0, 0}, want, {0, 0, 0}}) || *r.Current != 1 {
		t.Fatalf("results after the restart %+v, want counts %v", r, want)
	}
	for i := range participants {
		participants[i] = dialParticipant(t, ts.testServer, q, fmt.Sprintf("p%02d", i))
		opt := i % 3
		if i < 5 || 10 <= i && i < 20 {
			opt = 3
		}
		participants[i].expect(talkQuestion + fmt.Sprint(opt) + `}`)
	}
	presenter.expectPresenter(tallyFrame(1, want, n))

	// The presenter moves on to the third question, then closes.
	presenter.send(`{"type":"show","question":2}`)
	presenter.expect(tallyFrame(2, []int{0, 0, 0}, n))
	for _, p := range participants {
		p.expect(`{"type":"question","index":2,"text":"Again next year?","options":["yes","no","maybe"],"answer":null}`)
	}
	participants[0].send(`{"type":"answer","question":2,"option":0}`)
	participants[0].expect(`{"type":"answered","question":2,"option":0}`)
	presenter.expect(tallyFrame(2, []int{1, 0, 0}, n))
	presenter.send(`{"type":"close"}`)
	presenter.expect(`{"type":"closed"}`)
	for _, p := range participants {
		p.expect(`{"type":"closed"}`)
	}
	participants[1].send(`{"type":"answer","question":2,"option":1}`)
	participants[1].expectError("closed")
	presenter.send(`{"type":"show","question":0}`)
	presenter.expectError("closed")
	afterClose := dialParticipant(t, ts.testServer, q, "after-close")
	afterClose.expect(`{"type":"closed"}`)

	// Closed survives a restart too; the results stay readable.
	hangUp(append(participants, presenter, afterClose)...)
	ts = ts.restart(t, dir)
	r = getResults(t, ts.testServer, q)
	if !r.Closed || *r.Current != 2 || !reflect.DeepEqual(r.Results, [][]int{{0, 0}, want, {1, 0, 0}}) {
		t.Fatalf("results after the second restart %+v", r)
	}
	dialParticipant(t, ts.testServer, q, "p00").expect(`{"type":"closed"}`)
	presenter = dialPresenter(t, ts.testServer, q)
	presenter.expect(`{"type":"state","current":2,"closed":true,"participants":1}`)
}

// TestQuestionnaireCreateValidation: POST /questionnaires answers 201 for
// a questionnaire within the bounds and a 400 JSON error saying what is
// wrong for anything else.
func TestQuestionnaireCreateValidation(t *testing.T) {
	ts := startQServer(t, t.TempDir(), transport.Config{})
	question := func(text string, options ...string) string {
		b, _ := json.Marshal(map[string]any{"text": text, "options": options})
		return string(b)
	}
	questionnaire := func(title string, questions ...string) string {
		t, _ := json.Marshal(title)
		return `{"title":` + string(t) + `,"questions":[` + strings.Join(questions, ",") + `]}`
	}
	yesNo := question("q", "yes", "no")
	hundred := make([]string, 100)
	for i := range hundred {
		hundred[i] = question(strings.Repeat("é", 500), "a", "b", "c", "d", "e", "f", "g", "h", "i", strings.Repeat("x", 200))
	}
	short := make([]string, 101)
	for i := range short {
		short[i] = yesNo
	}
	tests := []struct {
		name   string
		body   string
		status int
		code   string
		says   string // in the message
	}{
		{name: "smallest", body: questionnaire("t", yesNo), status: 201},
		{name: "longest texts", body: questionnaire(strings.Repeat("é", 200), hundred[:30]...), status: 201},
		{name: "100 questions", body: questionnaire("t", short[:100]...), status: 201},
		{name: "101 questions", body: questionnaire("t", short...), status: 400, code: "invalid_questionnaire", says: "not 101"},
		{name: "longest texts over 64 KiB", body: questionnaire("t", hundred...), status: 413, code: "body_too_large"},
		{name: "no questions", body: questionnaire("t"), status: 400, code: "invalid_questionnaire", says: "1 to 100 questions"},
		{name: "one option", body: questionnaire("t", question("q", "only")), status: 400, code: "invalid_questionnaire", says: "question 0 has 1 options"},
		{name: "eleven options", body: questionnaire("t", yesNo, question("q", strings.Split("abcdefghijk", "")...)), status: 400,
			code: "invalid_questionnaire", says: "question 1 has 11 options"},
		{name: "empty title", body: questionnaire("", yesNo), status: 400, code: "invalid_questionnaire", says: "title is empty"},
		{name: "title of 201 characters", body: questionnaire(strings.Repeat("é", 201), yesNo), status: 400,
			code: "invalid_questionnaire", says: "longer than 200"},
		{name: "text of 501 characters", body: questionnaire("t", question(strings.Repeat("x", 501), "a", "b")), status: 400,
			code: "invalid_questionnaire", says: "question 0's text is longer than 500"},
		{name: "option of 201 characters", body: questionnaire("t", question("q", "a", strings.Repeat("x", 201))), status: 400,
			code: "invalid_questionnaire", says: "question 0's option 1 is longer than 200"},
		{name: "not JSON", body: `{"title":`, status: 400, code: "invalid_json"},
		{name: "not UTF-8", body: "{\"title\":\"caf\xe9\",\"questions\":[{\"text\":\"q\",\"options\":[\"a\",\"b\"]}]}", status: 400, code: "invalid_json"},
		{name: "an array", body: `[]`, status: 400, code: "invalid_body"},
		{name: "options not strings", body: `{"title":"t","questions":[{"text":"q","options":[1,2]}]}`, status: 400, code: "invalid_body"},
		{name: "unknown field", body: `{"title":"t","question":[]}`, status: 400, code: "invalid_body", says: "question"},
		{name: "over 64 KiB", body: questionnaire(strings.Repeat("x", 70_000), yesNo), status: 413, code: "body_too_large"},
		// Text that lies (issue 21, finding 12).
		{name: "a title of zero-width spaces", body: questionnaire("\u200b\u200b", yesNo), status: 400,
			code: "invalid_questionnaire", says: "title has no visible character"},
		{name: "an option of Hangul fillers", body: questionnaire("t", question("q", "a", "\u3164\u3164")), status: 400,
			code: "invalid_questionnaire", says: "option 1 has no visible character"},
		{name: "a braille blank", body: questionnaire("t", question("\u2800", "a", "b")), status: 400,
			code: "invalid_questionnaire", says: "text has no visible character"},
		{name: "options that look alike", body: questionnaire("t", question("q", "coffee", "Coffee\u200b")), status: 400,
			code: "invalid_questionnaire", says: "options 0 and 1 look the same"},
		{name: "a right-to-left override", body: questionnaire("abc\u202edef", yesNo), status: 400,
			code: "invalid_questionnaire", says: "control character"},
		{name: "a NUL", body: questionnaire("t", question("q\u0000", "a", "b")), status: 400,
			code: "invalid_questionnaire", says: "control character"},
		{name: "stacked combining marks", body: questionnaire("e"+strings.Repeat("\u0301", 199), yesNo), status: 400,
			code: "invalid_questionnaire", says: "combining marks"},
		{name: "a letter with two marks", body: questionnaire("Vie\u0323\u0302t", yesNo), status: 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := httpDo(t, http.MethodPost, ts.url("/questionnaires"), []byte(tt.body), nil)
			if tt.status == 201 {
				if status != 201 {
					t.Fatalf("status %d %s, want 201", status, body)
				}
				return
			}
			expectJSONError(t, status, body, tt.status, tt.code)
			if !strings.Contains(string(body), tt.says) {
				t.Fatalf("error %s does not say %q", body, tt.says)
			}
		})
	}
}

// TestQuestionnaireAccess: who may do what, answered before any upgrade.
func TestQuestionnaireAccess(t *testing.T) {
	ts := startQServer(t, t.TempDir(), transport.Config{PublishToken: "pub"})
	bearer := func(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }
	body := []byte(`{"title":"t","questions":[{"text":"q","options":["a","b"]}]}`)

	// Creating is a write like a publish: with a publish token set, it
	// needs it.
	status, resp := httpDo(t, http.MethodPost, ts.url("/questionnaires"), body, nil)
	expectJSONError(t, status, resp, http.StatusUnauthorized, "unauthorized")
	status, resp = httpDo(t, http.MethodPost, ts.url("/questionnaires"), body, bearer("pub"))
	if status != http.StatusCreated {
		t.Fatalf("create with the publish token: %d %s", status, resp)
	}
	var q created
	if err := json.Unmarshal(resp, &q); err != nil {
		t.Fatal(err)
	}
	const unknown = "aaaaaaaaaaaaaaaa"
	other := newIdentity(t, ts.testServer, q)
	upgrade := func(h http.Header) http.Header {
		u := upgradeHeader()
		for k, v := range h {
			u[k] = v
		}
		return u
	}
	tests := []struct {
		name   string
		path   string
		header http.Header
		status int
		code   string
	}{
		{"results, no token", "/questionnaires/" + q.ID + "/results", nil, 401, "unauthorized"},
		{"results, wrong token", "/questionnaires/" + q.ID + "/results", bearer("wrong"), 403, "forbidden"},
		{"results, the publish token", "/questionnaires/" + q.ID + "/results", bearer("pub"), 403, "forbidden"},
		{"results, unknown id", "/questionnaires/" + unknown + "/results", bearer(q.PresenterToken), 404, "unknown_questionnaire"},
		{"definition, unknown id", "/questionnaires/" + unknown, nil, 404, "unknown_questionnaire"},
		{"definition, malformed id", "/questionnaires/..%2f..", nil, 404, "unknown_questionnaire"},
		{"presenter, no token", "/questionnaires/" + q.ID + "/presenter", upgrade(nil), 401, "unauthorized"},
		{"presenter, wrong token", "/questionnaires/" + q.ID + "/presenter?token=wrong", upgrade(nil), 403, "forbidden"},
		{"presenter, another's token", "/questionnaires/" + unknown + "/presenter?token=" + q.PresenterToken, upgrade(nil), 404, "unknown_questionnaire"},
		{"participant, no id", "/questionnaires/" + q.ID + "/participant", upgrade(nil), 400, "invalid_participant"},
		{"participant, id too long", "/questionnaires/" + q.ID + "/participant?participant=" + strings.Repeat("x", 65), upgrade(nil), 400, "invalid_participant"},
		{"participant, odd id", "/questionnaires/" + q.ID + "/participant?participant=a%20b", upgrade(nil), 400, "invalid_participant"},
		{"participant, no token", "/questionnaires/" + q.ID + "/participant?participant=p", upgrade(nil), 403, "invalid_participant_token"},
		{"participant, wrong token", "/questionnaires/" + q.ID + "/participant?participant=p&token=x", upgrade(nil), 403, "invalid_participant_token"},
		{"participant, another's token", "/questionnaires/" + q.ID + "/participant?participant=p&token=" + other.Token, upgrade(nil), 403, "invalid_participant_token"},
		{"participant, another questionnaire's token", "/questionnaires/" + unknown + "/participant?" + other.query(), upgrade(nil), 403, "invalid_participant_token"},
		{"new participant, unknown questionnaire", "/questionnaires/" + unknown + "/participants", nil, 404, "unknown_questionnaire"},
		{"new participant, foreign origin", "/questionnaires/" + q.ID + "/participants", http.Header{"Origin": {"https://evil.example"}}, 403, "forbidden_origin"},
		{"participant, foreign origin", "/questionnaires/" + q.ID + "/participant?participant=p",
			upgrade(http.Header{"Origin": {"https://evil.example"}}), 403, "forbidden_origin"},
		{"participant, no upgrade", "/questionnaires/" + q.ID + "/participant?participant=p", nil, 426, "upgrade_required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodGet
			if strings.HasSuffix(tt.path, "/participants") {
				method = http.MethodPost
			}
			status, resp := httpDo(t, method, ts.url(tt.path), nil, tt.header)
			expectJSONError(t, status, resp, tt.status, tt.code)
		})
	}
	// The right token: the results of a questionnaire nobody answered yet,
	// and the presenter's socket.
	if r := getResults(t, ts.testServer, q); r.Current != nil || r.Closed || !reflect.DeepEqual(r.Results, [][]int{{0, 0}}) {
		t.Fatalf("results of a new questionnaire %+v", r)
	}
	presenter := dial(t, ts.testServer, "/questionnaires/"+q.ID+"/presenter?token="+q.PresenterToken)
	presenter.expect(`{"type":"state","current":null,"closed":false,"participants":0}`)
	presenter.ws.Close(websocket.StatusNormalClosure, "")
}

// TestQuestionnaireCreateRate: one address may create questionnaires at
// --create-rate, with a burst; past it, 429 with Retry-After, while other
// addresses go on (issue 21, finding 6: one address created ~2 000 a
// minute).
func TestQuestionnaireCreateRate(t *testing.T) {
	ts := startQServer(t, t.TempDir(), transport.Config{CreateRate: 0.01, CreateBurst: 3, TrustProxy: true})
	body := []byte(`{"title":"t","questions":[{"text":"q","options":["a","b"]}]}`)
	from := func(addr string) http.Header { return http.Header{"X-Forwarded-For": {addr}} }
	for i := range 3 {
		if status, resp := httpDo(t, http.MethodPost, ts.url("/questionnaires"), body, from("203.0.113.7")); status != http.StatusCreated {
			t.Fatalf("create %d: %d %s", i+1, status, resp)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, ts.url("/questionnaires"), bytes.NewReader(body))
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	expectJSONError(t, resp.StatusCode, answer, http.StatusTooManyRequests, "rate_limited")
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	if status, resp := httpDo(t, http.MethodPost, ts.url("/questionnaires"), body, from("203.0.113.8")); status != http.StatusCreated {
		t.Fatalf("another address: %d %s", status, resp)
	}
}

// lockedBuffer is a log sink the server's goroutines may share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestFailingStoreIsLoggedOnce: a store that fails fails every call; the
// first failure is an error line, the rest are not (issue 21, finding 6:
// every failed create logged an ERROR line).
func TestFailingStoreIsLoggedOnce(t *testing.T) {
	var logs lockedBuffer
	qs := startQServer(t, t.TempDir(), transport.Config{Config: actors.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}})
	qs.closeStore(t) // every call fails from now on
	body := []byte(`{"title":"t","questions":[{"text":"q","options":["a","b"]}]}`)
	for range 5 {
		status, resp := httpDo(t, http.MethodPost, qs.url("/questionnaires"), body, nil)
		expectJSONError(t, status, resp, http.StatusInternalServerError, "store_error")
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Fatalf("%d error lines for 5 failed calls, want 1:\n%s", n, logs.String())
	}
}

// fourKinds has one question of each kind.
const fourKinds = `{"title":"Kinds","questions":[
	{"text":"Coffee or tea?","options":["coffee","tea"]},
	{"text":"Which languages?","kind":"multi","options":["Go","Rust","Zig","C"],"max":2},
	{"text":"How was it?","kind":"scale","min":0,"max":10,"labels":["bad","great"]},
	{"text":"One word?","kind":"text","max_length":20}]}`

// kindsResults is GET /results's questions part.
type kindsResults struct {
	Current   *int    `json:"current"`
	Closed    bool    `json:"closed"`
	Results   [][]int `json:"results"`
	Questions []struct {
		Kind     string   `json:"kind"`
		Answered int      `json:"answered"`
		Counts   []int    `json:"counts"`
		Min      *int     `json:"min"`
		Mean     *float64 `json:"mean"`
		Words    []struct {
			Text  string `json:"text"`
			Count int    `json:"count"`
		} `json:"words"`
		Closed   bool  `json:"closed"`
		ClosesAt int64 `json:"closes_at"`
		Revealed bool  `json:"revealed"`
	} `json:"questions"`
}

func getKindsResults(t *testing.T, ts *testServer, c created) (kindsResults, []byte) {
	t.Helper()
	status, body := httpDo(t, http.MethodGet, ts.url("/questionnaires/"+c.ID+"/results"), nil,
		http.Header{"Authorization": {"Bearer " + c.PresenterToken}})
	if status != http.StatusOK {
		t.Fatalf("GET results: %d %s", status, body)
	}
	var r kindsResults
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return r, body
}

// TestQuestionnaireKinds runs a questionnaire of every kind over real
// sockets: each kind's question frame, answers checked per kind, tallies
// with answered, a changed answer, a hidden text entry, a reveal that
// reaches participants and late joiners, and /results and results.csv,
// which agree, before and after a restart.
func TestQuestionnaireKinds(t *testing.T) {
	dir := t.TempDir()
	ts := startQServer(t, dir, transport.Config{})
	q := createQuestionnaire(t, ts.testServer, fourKinds)

	status, body := httpDo(t, http.MethodGet, ts.url("/questionnaires/"+q.ID), nil, nil)
	const wantDef = `"questions":[{"text":"Coffee or tea?","kind":"single","options":["coffee","tea"]},` +
		`{"text":"Which languages?","kind":"multi","options":["Go","Rust","Zig","C"],"max":2},` +
		`{"text":"How was it?","kind":"scale","max":10,"min":0,"labels":["bad","great"]},` +
		`{"text":"One word?","kind":"text","max_length":20}]`
	if status != http.StatusOK || !strings.Contains(string(body), wantDef) {
		t.Fatalf("GET /questionnaires/%s: %d %s, want %s", q.ID, status, body, wantDef)
	}

	presenter := dialPresenter(t, ts.testServer, q)
	presenter.expect(`{"type":"state","current":null,"closed":false,"participants":0}`)
	ps := []*client{dialParticipant(t, ts.testServer, q, "ann"), dialParticipant(t, ts.testServer, q, "bob"),
		dialParticipant(t, ts.testServer, q, "cat")}
	presenter.expectPresenter(`{"type":"state","current":null,"closed":false,"participants":3}`)
	show := func(i int, tally, question string) {
		t.Helper()
		presenter.send(fmt.Sprintf(`{"type":"show","question":%d}`, i))
		presenter.expect(tally)
		for _, p := range ps {
			p.expect(question)
		}
	}
	answer := func(p *client, frame, ack string) {
		t.Helper()
		p.send(frame)
		p.expect(ack)
	}
	refused := func(p *client, code string, frames ...string) {
		t.Helper()
		for _, f := range frames {
			p.send(f)
			p.expectError(code)
		}
	}

	// multi: up to two options; the counts count each one picked.
	show(1, `{"type":"tally","question":1,"counts":[0,0,0,0],"participants":3,"answered":0,"closed":false}`,
		`{"type":"question","index":1,"text":"Which languages?","options":["Go","Rust","Zig","C"],"kind":"multi","max":2,"answer":null}`)
	answer(ps[0], `{"type":"answer","question":1,"options":[2,0]}`, `{"type":"answered","question":1,"options":[0,2]}`)
	answer(ps[1], `{"type":"answer","question":1,"options":[2]}`, `{"type":"answered","question":1,"options":[2]}`)
	presenter.expectPresenter(`{"type":"tally","question":1,"counts":[1,0,2,0],"participants":3,"answered":2,"closed":false}`)
	answer(ps[0], `{"type":"answer","question":1,"options":[1]}`, `{"type":"answered","question":1,"options":[1]}`)
	presenter.expectPresenter(`{"type":"tally","question":1,"counts":[0,1,1,0],"participants":3,"answered":2,"closed":false}`)
	refused(ps[2], "invalid_answer", `{"type":"answer","question":1,"option":0}`, `{"type":"answer","question":1,"options":[0,1,2]}`,
		`{"type":"answer","question":1,"options":[1,1]}`, `{"type":"answer","question":1,"options":[]}`)
	refused(ps[2], "out_of_range", `{"type":"answer","question":1,"options":[4]}`)
	refused(ps[2], "invalid_frame", `{"type":"answer","question":1,"options":[0],"option":0}`)

	// scale: a value from 0 to 10, with the mean.
	show(2, `{"type":"tally","question":2,"counts":[0,0,0,0,0,0,0,0,0,0,0],"mean":null,"participants":3,"answered":0,"closed":false}`,
		`{"type":"question","index":2,"text":"How was it?","options":[],"kind":"scale","min":0,"max":10,"labels":["bad","great"],"answer":null}`)
	answer(ps[0], `{"type":"answer","question":2,"value":0}`, `{"type":"answered","question":2,"value":0}`)
	answer(ps[1], `{"type":"answer","question":2,"value":10}`, `{"type":"answered","question":2,"value":10}`)
	answer(ps[2], `{"type":"answer","question":2,"value":5}`, `{"type":"answered","question":2,"value":5}`)
	presenter.expectPresenter(`{"type":"tally","question":2,"counts":[1,0,0,0,0,1,0,0,0,0,1],"mean":5,"participants":3,"answered":3,"closed":false}`)
	answer(ps[1], `{"type":"answer","question":2,"value":7}`, `{"type":"answered","question":2,"value":7}`)
	presenter.expectPresenter(`{"type":"tally","question":2,"counts":[1,0,0,0,0,1,0,1,0,0,0],"mean":4,"participants":3,"answered":3,"closed":false}`)
	refused(ps[0], "out_of_range", `{"type":"answer","question":2,"value":11}`, `{"type":"answer","question":2,"value":-1}`)
	refused(ps[0], "invalid_answer", `{"type":"answer","question":2,"option":1}`, `{"type":"answer","question":2,"text":"5"}`)

	// text: grouped without case and spaces; hide drops an entry.
	show(3, `{"type":"tally","question":3,"words":[],"participants":3,"answered":0,"closed":false}`,
		`{"type":"question","index":3,"text":"One word?","options":[],"kind":"text","max_length":20,"answer":null}`)
	answer(ps[0], `{"type":"answer","question":3,"text":"Big  Data"}`, `{"type":"answered","question":3,"text":"Big  Data"}`)
	answer(ps[1], `{"type":"answer","question":3,"text":" big data "}`, `{"type":"answered","question":3,"text":"big data"}`)
	answer(ps[2], `{"type":"answer","question":3,"text":"spam"}`, `{"type":"answered","question":3,"text":"spam"}`)
	presenter.expectPresenter(`{"type":"tally","question":3,"words":[{"text":"Big Data","count":2},{"text":"spam","count":1}],"participants":3,"answered":3,"closed":false}`)
	refused(ps[2], "invalid_answer", `{"type":"answer","question":3,"text":"   "}`,
		`{"type":"answer","question":3,"text":"`+strings.Repeat("x", 21)+`"}`, `{"type":"answer","question":3,"options":[0]}`)
	presenter.send(`{"type":"hide","question":3,"text":"SPAM"}`)
	presenter.expectPresenter(`{"type":"tally","question":3,"words":[{"text":"Big Data","count":2}],"participants":3,"answered":3,"closed":false}`)
	presenter.send(`{"type":"hide","question":2,"text":"5"}`)
	presenter.expectError("invalid_frame")
	refused(ps[0], "unknown_type", `{"type":"hide","question":3,"text":"big data"}`, `{"type":"reveal","question":3}`)

	// reveal: every participant gets the results; so does a late one.
	presenter.send(`{"type":"reveal","question":3}`)
	const textResults = `{"type":"results","question":3,"kind":"text","words":[{"text":"Big Data","count":2}],"answered":3,"closed":false}`
	for _, p := range ps {
		p.expect(textResults)
	}
	presenter.expect(`{"type":"tally","question":3,"words":[{"text":"Big Data","count":2}],"participants":3,"answered":3,"closed":false,"revealed":true}`)
	presenter.send(`{"type":"reveal","question":4}`)
	presenter.expectError("out_of_range")
	late := dialParticipant(t, ts.testServer, q, "dan")
	late.expect(`{"type":"question","index":3,"text":"One word?","options":[],"kind":"text","max_length":20,"answer":null}`)
	late.expect(textResults)

	checkResults := func(ts *testServer) {
		t.Helper()
		r, raw := getKindsResults(t, ts, q)
		if *r.Current != 3 || r.Closed || len(r.Questions) != 4 ||
			!reflect.DeepEqual(r.Results, [][]int{{0, 0}, {0, 1, 1, 0}, {1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0}, {}}) {
			t.Fatalf("results %s", raw)
		}
		for i, want := range []struct {
			kind     string
			answered int
		}{{"single", 0}, {"multi", 2}, {"scale", 3}, {"text", 3}} {
			if got := r.Questions[i]; got.Kind != want.kind || got.Answered != want.answered {
				t.Fatalf("question %d's results %+v, want kind %s, %d answered", i, got, want.kind, want.answered)
			}
		}
		if s := r.Questions[2]; s.Mean == nil || *s.Mean != 4 || *s.Min != 0 {
			t.Fatalf("scale results %+v", s)
		}
		if w := r.Questions[3].Words; len(w) != 1 || w[0].Text != "Big Data" || w[0].Count != 2 || !r.Questions[3].Revealed {
			t.Fatalf("text results %+v", r.Questions[3])
		}
		if r.Questions[0].Mean != nil || strings.Contains(string(raw), `"mean":null`) {
			t.Fatalf("a mean for a kind other than scale: %s", raw)
		}
		compareCSV(t, ts, q, r)
	}
	checkResults(ts.testServer)

	// After a restart: the same results, the hidden entry still hidden,
	// the reveal still shown to who joins.
	hangUp(append(ps, presenter, late)...)
	ts = ts.restart(t, dir)
	checkResults(ts.testServer)
	again := dialParticipant(t, ts.testServer, q, "ann")
	again.expect(`{"type":"question","index":3,"text":"One word?","options":[],"kind":"text","max_length":20,"answer":"Big  Data"}`)
	again.expect(textResults)
}

// compareCSV reads results.csv back and checks it row by row against
// GET /results.
func compareCSV(t *testing.T, ts *testServer, q created, r kindsResults) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.url("/questionnaires/"+q.ID+"/results.csv"), nil)
	req.Header.Set("Authorization", "Bearer "+q.PresenterToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("GET results.csv: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatalf("results.csv does not parse: %v", err)
	}
	if len(rows) == 0 || !reflect.DeepEqual(rows[0], []string{"question", "kind", "question_text", "entry", "count"}) {
		t.Fatalf("results.csv header %v", rows)
	}
	var def struct {
		Questions []struct {
			Text    string   `json:"text"`
			Options []string `json:"options"`
		} `json:"questions"`
	}
	_, body := httpDo(t, http.MethodGet, ts.url("/questionnaires/"+q.ID), nil, nil)
	if err := json.Unmarshal(body, &def); err != nil {
		t.Fatal(err)
	}
	var want [][]string
	for i, qr := range r.Questions {
		row := func(entry string, n int) {
			want = append(want, []string{fmt.Sprint(i), qr.Kind, def.Questions[i].Text, entry, fmt.Sprint(n)})
		}
		switch qr.Kind {
		case "text":
			for _, w := range qr.Words {
				row(w.Text, w.Count)
			}
		case "scale":
			for j, n := range qr.Counts {
				row(fmt.Sprint(*qr.Min+j), n)
			}
		default:
			for j, n := range qr.Counts {
				row(def.Questions[i].Options[j], n)
			}
		}
	}
	if !reflect.DeepEqual(rows[1:], want) {
		t.Fatalf("results.csv rows\n%v\nwant (from /results)\n%v", rows[1:], want)
	}
}

// TestQuestionnaireTimer: a show with seconds carries closes_at, the
// question closes when they are over (participants and presenter are
// told, later answers are refused question_closed, the tally says
// closed), a running timer survives a restart, and one that ran out while
// the server was down is closed when it comes back.
func TestQuestionnaireTimer(t *testing.T) {
	dir := t.TempDir()
	ts := startQServer(t, dir, transport.Config{})
	q := createQuestionnaire(t, ts.testServer, fourKinds)
	presenter := dialPresenter(t, ts.testServer, q)
	presenter.expect(`{"type":"state","current":null,"closed":false,"participants":0}`)
	p := dialParticipant(t, ts.testServer, q, "ann")
	presenter.expectPresenter(`{"type":"state","current":null,"closed":false,"participants":1}`)

	for _, bad := range []string{`{"type":"show","question":0,"seconds":0}`, `{"type":"show","question":0,"seconds":3601}`} {
		presenter.send(bad)
		presenter.expectError("out_of_range")
	}
	before := time.Now()
	presenter.send(`{"type":"show","question":0,"seconds":1}`)
	tally := presenter.readText()
	frame := p.readText()
	var qf struct {
		ClosesAt int64 `json:"closes_at"`
	}
	if err := json.Unmarshal([]byte(frame), &qf); err != nil || qf.ClosesAt < before.Add(time.Second).UnixMilli()-1 ||
		qf.ClosesAt > time.Now().Add(time.Second).UnixMilli()+1 {
		t.Fatalf("question frame %s: closes_at not a second after the show", frame)
	}
	if want := fmt.Sprintf(`{"type":"tally","question":0,"counts":[0,0],"participants":1,"answered":0,"closed":false,"closes_at":%d}`, qf.ClosesAt); tally != want {
		t.Fatalf("tally %s, want %s", tally, want)
	}
	p.send(`{"type":"answer","question":0,"option":1}`)
	p.expect(`{"type":"answered","question":0,"option":1}`)
	// The timer closes the question: both sides are told, without asking.
	p.expect(`{"type":"question_closed","question":0}`)
	if time.Now().UnixMilli() < qf.ClosesAt {
		t.Fatal("question_closed before closes_at")
	}
	presenter.expectPresenter(fmt.Sprintf(`{"type":"tally","question":0,"counts":[0,1],"participants":1,"answered":1,"closed":true,"closes_at":%d}`, qf.ClosesAt))
	p.send(`{"type":"answer","question":0,"option":0}`)
	p.expectError("question_closed")
	r, _ := getKindsResults(t, ts.testServer, q)
	if !r.Questions[0].Closed || r.Questions[0].ClosesAt != qf.ClosesAt || r.Closed {
		t.Fatalf("results of the closed question %+v", r.Questions[0])
	}

	// A long timer survives a restart unchanged.
	presenter.send(`{"type":"show","question":3,"seconds":3600}`)
	frame = p.readText()
	if err := json.Unmarshal([]byte(frame), &qf); err != nil || qf.ClosesAt < time.Now().Add(3599*time.Second).UnixMilli() {
		t.Fatalf("question frame %s", frame)
	}
	hangUp(p, presenter)
	ts = ts.restart(t, dir)
	p = dialParticipant(t, ts.testServer, q, "ann")
	p.expect(fmt.Sprintf(`{"type":"question","index":3,"text":"One word?","options":[],"kind":"text","max_length":20,"answer":null,"closes_at":%d}`, qf.ClosesAt))
	p.send(`{"type":"answer","question":3,"text":"still open"}`)
	p.expect(`{"type":"answered","question":3,"text":"still open"}`)

	// A timer that ran out while the server was down: the store says the
	// question closes at a time now past, as if the server had been
	// stopped before its timer, and started after.
	hangUp(p)
	ts.stop(t)
	ts.closeStore(t)
	st, err := store.OpenSQLite(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	past := time.UnixMilli(time.Now().Add(-time.Minute).UnixMilli())
	if _, err := st.Apply(context.Background(), q.ID, store.Changes{SetCurrent: true, Current: 3, ClosesAt: past}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ts = startQServer(t, dir, transport.Config{})
	p = dialParticipant(t, ts.testServer, q, "bob")
	p.expect(fmt.Sprintf(`{"type":"question","index":3,"text":"One word?","options":[],"kind":"text","max_length":20,"answer":null,"closes_at":%d}`, past.UnixMilli()))
	p.expect(`{"type":"question_closed","question":3}`)
	p.send(`{"type":"answer","question":3,"text":"too late"}`)
	p.expectError("question_closed")
	presenter = dialPresenter(t, ts.testServer, q)
	presenter.expect(`{"type":"state","current":3,"closed":false,"participants":1}`)
	presenter.expect(fmt.Sprintf(`{"type":"tally","question":3,"words":[{"text":"still open","count":1}],"participants":1,"answered":1,"closed":true,"closes_at":%d}`, past.UnixMilli()))
	// A show without seconds opens the question again.
	presenter.send(`{"type":"show","question":3}`)
	presenter.expect(`{"type":"tally","question":3,"words":[{"text":"still open","count":1}],"participants":1,"answered":1,"closed":false}`)
	p.expect(`{"type":"question","index":3,"text":"One word?","options":[],"kind":"text","max_length":20,"answer":null}`)
	p.send(`{"type":"answer","question":3,"text":"in time"}`)
	p.expect(`{"type":"answered","question":3,"text":"in time"}`)
}
