package test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, to fill a store directly

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/actors/questionnaire/store"
	"github.com/lobby/lobby/transport"
)

// Participant identities and tallies that do not load every answer
// (issue 21, finding 7: 5 000 fake participants from one address in 15 s,
// all tallied; with 1 M answers the presenter's first frame took 6.8 s
// and 1.17 GB, with 2 M it never came).

// mint asks for a participant identity from address from (the server
// trusts X-Forwarded-For), and returns the status, the body and the
// Retry-After.
func mint(t *testing.T, ts *testServer, c created, from string) (int, []byte, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.url("/questionnaires/"+c.ID+"/participants"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", from)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body, resp.Header.Get("Retry-After")
}

// TestParticipantIdentityRate: a script that asks for identities as fast
// as it can from one address gets the burst and then the rate, no more;
// the rest are 429 with Retry-After and counted; another address is not
// held up; and only issued identities take part.
func TestParticipantIdentityRate(t *testing.T) {
	const burst = 20
	ts := startQServer(t, t.TempDir(), transport.Config{ParticipantRate: 1, ParticipantBurst: burst, TrustProxy: true})
	q := createQuestionnaire(t, ts.testServer, threeQuestions)
	start := time.Now()
	var issued []identity
	refused := 0
	for range 500 {
		status, body, retry := mint(t, ts.testServer, q, "192.0.2.7")
		switch status {
		case http.StatusCreated:
			var p identity
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			issued = append(issued, p)
		case http.StatusTooManyRequests:
			expectJSONError(t, status, body, http.StatusTooManyRequests, "rate_limited")
			if n, err := strconv.Atoi(retry); err != nil || n < 1 {
				t.Fatalf("429 with Retry-After %q, want whole seconds", retry)
			}
			refused++
		default:
			t.Fatalf("mint answered %d %s", status, body)
		}
	}
	// The burst, and one a second since the script began.
	if most := burst + 1 + int(time.Since(start).Seconds()); len(issued) < burst || len(issued) > most {
		t.Fatalf("%d identities issued to one address in %v, want %d to %d", len(issued), time.Since(start), burst, most)
	}
	waitMetric(t, ts.testServer, `lobby_questionnaire_participants_refused_total{reason="rate_limited"}`, float64(refused))
	waitMetric(t, ts.testServer, `lobby_questionnaire_participants_issued_total`, float64(len(issued)))
	if status, body, _ := mint(t, ts.testServer, q, "198.51.100.9"); status != http.StatusCreated {
		t.Fatalf("another address, after the first was limited: %d %s", status, body)
	}

	// Every issued identity takes part, each once; a made-up one does not.
	presenter := dialPresenter(t, ts.testServer, q)
	for _, p := range issued {
		dial(t, ts.testServer, "/questionnaires/"+q.ID+"/participant?"+p.query())
	}
	presenter.expectPresenter(fmt.Sprintf(`{"type":"state","current":null,"closed":false,"participants":%d}`, len(issued)))
	status, body := httpDo(t, http.MethodGet, ts.url("/questionnaires/"+q.ID+"/participant?participant=stuffed-1"), nil, upgradeHeader())
	expectJSONError(t, status, body, http.StatusForbidden, "invalid_participant_token")
}

// TestParticipantLimit: a questionnaire issues --max-participants
// identities, then answers 503 questionnaire_full, counted; another
// questionnaire is not affected; and the count survives a restart.
func TestParticipantLimit(t *testing.T) {
	dir := t.TempDir()
	cfg := transport.Config{Config: actors.Config{MaxParticipants: 3}}
	ts := startQServer(t, dir, cfg)
	q := createQuestionnaire(t, ts.testServer, threeQuestions)
	other := createQuestionnaire(t, ts.testServer, threeQuestions)
	for range 3 {
		newIdentity(t, ts.testServer, q)
	}
	status, body := httpDo(t, http.MethodPost, ts.url("/questionnaires/"+q.ID+"/participants"), nil, nil)
	expectJSONError(t, status, body, http.StatusServiceUnavailable, "questionnaire_full")
	waitMetric(t, ts.testServer, `lobby_questionnaire_participants_refused_total{reason="full"}`, 1)
	newIdentity(t, ts.testServer, other)

	ts.stop(t)
	ts.closeStore(t)
	ts = startQServer(t, dir, cfg)
	status, body = httpDo(t, http.MethodPost, ts.url("/questionnaires/"+q.ID+"/participants"), nil, nil)
	expectJSONError(t, status, body, http.StatusServiceUnavailable, "questionnaire_full")
}

// TestOpenParticipants: --open-participants lets the old client-chosen
// ids in without a token; a wrong token is still refused.
func TestOpenParticipants(t *testing.T) {
	ts := startQServer(t, t.TempDir(), transport.Config{OpenParticipants: true})
	q := createQuestionnaire(t, ts.testServer, threeQuestions)
	presenter := dialPresenter(t, ts.testServer, q)
	presenter.expect(`{"type":"state","current":null,"closed":false,"participants":0}`)
	dial(t, ts.testServer, "/questionnaires/"+q.ID+"/participant?participant=mine")
	presenter.expect(`{"type":"state","current":null,"closed":false,"participants":1}`)
	status, body := httpDo(t, http.MethodGet, ts.url("/questionnaires/"+q.ID+"/participant?participant=mine&token=forged"), nil, upgradeHeader())
	expectJSONError(t, status, body, http.StatusForbidden, "invalid_participant_token")
}

// TestParticipantKeepsItsVoteAcrossRestart: the real binary on one data
// directory. A participant's identity, issued once, keeps its answer over
// a reconnect and over a restart of the process (the token's secret is
// in the store), and changing its answer after the restart replaces the
// vote rather than adding one.
func TestParticipantKeepsItsVoteAcrossRestart(t *testing.T) {
	bin := buildLobby(t)
	dir := t.TempDir()
	env := []string{"LOBBY_ADDR=127.0.0.1:0", "LOBBY_DATA_DIR=" + dir}
	b := startBinary(t, bin, nil, env...)
	ts := &testServer{addr: b.addr}
	q := createQuestionnaire(t, ts, threeQuestions)
	p := newIdentity(t, ts, q)
	bob := newIdentity(t, ts, q)
	presenter := dialPresenter(t, ts, q)
	presenter.send(`{"type":"show","question":0}`)
	presenter.expectPresenter(tallyFrame(0, []int{0, 0}, 0))
	const coffee = `{"type":"question","index":0,"text":"Coffee or tea?","options":["coffee","tea"],"answer":`
	c := dial(t, ts, "/questionnaires/"+q.ID+"/participant?"+p.query())
	c.expect(coffee + `null}`)
	c.send(`{"type":"answer","question":0,"option":1}`)
	c.expect(`{"type":"answered","question":0,"option":1}`)
	hangUp(c)
	c = dial(t, ts, "/questionnaires/"+q.ID+"/participant?"+p.query())
	c.expect(coffee + `1}`)
	hangUp(c, presenter)
	stopBinary(t, b, syscall.SIGTERM)

	b = startBinary(t, bin, nil, env...)
	ts = &testServer{addr: b.addr}
	c = dial(t, ts, "/questionnaires/"+q.ID+"/participant?"+p.query())
	c.expect(coffee + `1}`)
	other := dial(t, ts, "/questionnaires/"+q.ID+"/participant?"+bob.query())
	other.expect(coffee + `null}`)
	c.send(`{"type":"answer","question":0,"option":0}`)
	c.expect(`{"type":"answered","question":0,"option":0}`)
	if r := getResults(t, ts, q); fmt.Sprint(r.Results[0]) != "[1 0]" {
		t.Fatalf("results after a changed answer across a restart: %v, want [1 0]", r.Results)
	}
	// A token is good for its participant of its questionnaire only.
	status, body := httpDo(t, http.MethodGet, ts.url("/questionnaires/"+q.ID+"/participant?participant="+bob.Participant+"&token="+p.Token), nil, upgradeHeader())
	expectJSONError(t, status, body, http.StatusForbidden, "invalid_participant_token")
}

// TestQuestionnaireMillionAnswers: a questionnaire with 1 000 000 answers
// written into its store (single, scale and text questions) opens at
// once: the presenter's first tally is exact and comes within seconds,
// GET /results too, and the process stays far from the 1.17 GB that
// loading every answer took.
func TestQuestionnaireMillionAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a store with a million answers")
	}
	if raceDetector {
		// The rows are written by this process's SQLite, which the race
		// detector makes take minutes; the server's side is tested
		// without it.
		t.Skip("run without -race: writing a million rows through the race detector takes minutes")
	}
	bin := buildLobby(t)
	dir := t.TempDir()
	env := []string{"LOBBY_ADDR=127.0.0.1:0", "LOBBY_DATA_DIR=" + dir}
	b := startBinary(t, bin, nil, env...)
	ts := &testServer{addr: b.addr}
	q := createQuestionnaire(t, ts, `{"title":"Big","questions":[
		{"text":"Pick","options":["a","b","c","d"]},
		{"text":"Rate","kind":"scale","min":1,"max":5},
		{"text":"Say","kind":"text"}]}`)
	stopBinary(t, b, syscall.SIGTERM)

	// 700 000 single answers (option i%4), 200 000 scale (1 + i%5),
	// 100 000 texts, 1 000 distinct.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	filled := time.Now()
	for _, stmt := range []string{
		`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 699999)
		 INSERT INTO answers (questionnaire_id, question, participant, option, value, text, answered_at)
		 SELECT ?1, 0, 'p' || i, i % 4, 0, '', 0 FROM n`,
		`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 199999)
		 INSERT INTO answers (questionnaire_id, question, participant, value, text, answered_at)
		 SELECT ?1, 1, 'p' || i, 1 + i % 5, '', 0 FROM n`,
		`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
		 INSERT INTO answers (questionnaire_id, question, participant, value, text, answered_at)
		 SELECT ?1, 2, 'p' || i, 0, 'word ' || (i % 1000), 0 FROM n`,
		`UPDATE questionnaires SET current_question = 0 WHERE id = ?1`,
	} {
		if _, err := db.Exec(stmt, q.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("1 000 000 answers written in %v", time.Since(filled).Round(time.Millisecond))

	// Open participants: the answers above were given by ids the server
	// did not issue.
	b = startBinary(t, bin, nil, append(env, "LOBBY_OPEN_PARTICIPANTS=true")...)
	ts = &testServer{addr: b.addr}
	began := time.Now()
	presenter := dialPresenter(t, ts, q)
	presenter.expect(`{"type":"state","current":0,"closed":false,"participants":0}`)
	presenter.expect(`{"type":"tally","question":0,"counts":[175000,175000,175000,175000],"participants":0,"answered":700000,"closed":false}`)
	first := time.Since(began)

	began = time.Now()
	status, body := httpDo(t, http.MethodGet, ts.url("/questionnaires/"+q.ID+"/results"), nil,
		http.Header{"Authorization": {"Bearer " + q.PresenterToken}})
	resultsTook := time.Since(began)
	if status != http.StatusOK {
		t.Fatalf("results: %d %s", status, body)
	}
	var r struct {
		Questions []struct {
			Answered int       `json:"answered"`
			Counts   []int     `json:"counts"`
			Mean     *float64  `json:"mean"`
			Words    []wordOut `json:"words"`
		} `json:"questions"`
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Questions) != 3 {
		t.Fatalf("results %s: %v", body[:min(len(body), 500)], err)
	}
	if s := r.Questions[1]; s.Answered != 200000 || fmt.Sprint(s.Counts) != "[40000 40000 40000 40000 40000]" || s.Mean == nil || *s.Mean != 3 {
		t.Fatalf("scale results %+v", s)
	}
	if w := r.Questions[2]; w.Answered != 100000 || len(w.Words) != 1000 || w.Words[0].Count != 100 {
		t.Fatalf("text results: %d answered, %d words", w.Answered, len(w.Words))
	}

	// A participant who answered before joins and is shown its answer,
	// read from the million; a new answer replaces it in the tally.
	c := dial(t, ts, "/questionnaires/"+q.ID+"/participant?participant=p5")
	c.expect(`{"type":"question","index":0,"text":"Pick","options":["a","b","c","d"],"answer":1}`)
	c.send(`{"type":"answer","question":0,"option":3}`)
	c.expect(`{"type":"answered","question":0,"option":3}`)
	presenter.expectPresenter(`{"type":"tally","question":0,"counts":[175000,174999,175000,175001],"participants":1,"answered":700000,"closed":false}`)

	hwm := highWaterMark(t, b.cmd.Process.Pid)
	t.Logf("presenter's first tally after %v, GET /results after %v; the process's peak RSS %d MB",
		first.Round(time.Millisecond), resultsTook.Round(time.Millisecond), hwm>>20)
	// Bounds with room for a loaded 2-core machine (0.3–0.5 s and 30 MB
	// measured); before, loading every answer, 4.5 s and 528 MB here, 6.8 s
	// and 1.17 GB in the issue.
	if first > 2*time.Second || resultsTook > 2*time.Second {
		t.Errorf("presenter's first tally after %v, results after %v, want a few seconds at most", first, resultsTook)
	}
	if hwm > 300<<20 {
		t.Errorf("the process's peak RSS is %d MB, want well under a gigabyte", hwm>>20)
	}
}

type wordOut struct {
	Text  string `json:"text"`
	Count int    `json:"count"`
}

// highWaterMark is process pid's peak resident set, in bytes (Linux).
func highWaterMark(t *testing.T, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}
