package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// questionnaire measures the questionnaire's hot moment: --subs
// participants, connected and shown a question, all answer at once. It
// reports answers per second (all answers over the time until the last
// one was acknowledged, i.e. stored), the acknowledgement latency, and the
// time until the presenter's tally counted every answer. It checks that
// the tally and GET /results equal what was sent.
//
// With --kind text the question is a text one, and participant i answers
// the word benchWords[i%len] in one of several spellings (case, spaces)
// that the server must group into one entry: the tally is complete when
// its words add up to every answer, each word with its count.
func questionnaire(ctx context.Context, c *config) (*result, error) {
	const options = 4
	n := c.subs
	text := c.kind == "text"
	if !text && c.kind != "single" {
		return nil, fmt.Errorf("--kind %q: want single or text", c.kind)
	}
	q, err := createBenchQuestionnaire(ctx, c, options, text)
	if err != nil {
		return nil, err
	}

	presenter, err := dialJSON(ctx, c.url, "/questionnaires/"+q.ID+"/presenter?token="+q.PresenterToken)
	if err != nil {
		return nil, fmt.Errorf("presenter: %w", err)
	}
	defer presenter.CloseNow()
	// tallies receives each tally frame the presenter reads, until it stops.
	type tally struct {
		Type         string `json:"type"`
		Counts       []int  `json:"counts"`
		Words        []word `json:"words"`
		Answered     int    `json:"answered"`
		Participants int    `json:"participants"`
		at           time.Time
	}
	tallies := make(chan tally, 1024)
	go func() {
		defer close(tallies)
		for {
			_, data, err := presenter.Read(context.Background())
			if err != nil {
				return
			}
			var t tally
			if json.Unmarshal(data, &t) == nil && (t.Type == "tally" || t.Type == "state") {
				t.at = time.Now()
				tallies <- t
			}
		}
	}()
	waitTally := func(what string, done func(tally) bool) (tally, error) {
		timeout := time.After(60 * time.Second)
		for {
			select {
			case t, ok := <-tallies:
				if !ok {
					return t, errors.New("the presenter's socket closed")
				}
				if done(t) {
					return t, nil
				}
			case <-timeout:
				return tally{}, fmt.Errorf("timed out waiting for %s", what)
			}
		}
	}

	// Every participant's identity first, 64 at a time: past the
	// server's --participant-burst they come at its rate, and a socket
	// connected meanwhile, read by nobody, would miss its heartbeats.
	ids, err := newBenchParticipants(ctx, c, q.ID, n)
	if err != nil {
		return nil, err
	}
	// Connect the participants, 64 at a time; each waits for the question.
	parts := make([]*websocket.Conn, n)
	shown := make(chan error, n)
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i, p := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ws, err := dialJSON(ctx, c.url, "/questionnaires/"+q.ID+"/participant?participant="+p.Participant+"&token="+p.Token)
			mu.Lock()
			defer mu.Unlock()
			firstErr = cmpErr(firstErr, err)
			parts[i] = ws
		})
	}
	wg.Wait()
	defer func() {
		for _, ws := range parts {
			if ws != nil {
				ws.CloseNow()
			}
		}
	}()
	if firstErr != nil {
		return nil, fmt.Errorf("connect participants: %w", firstErr)
	}
	if _, err := waitTally("every participant counted", func(t tally) bool { return t.Participants == n }); err != nil {
		return nil, err
	}

	// Show the question; every participant reads it, then waits for go.
	if err := presenter.Write(ctx, websocket.MessageText, []byte(`{"type":"show","question":0}`)); err != nil {
		return nil, err
	}
	var h histogram
	start := make(chan struct{})
	var begin time.Time
	acked := make(chan time.Time, n)
	want := make([]int, options)
	wantWords := make(map[string]int)
	for i, ws := range parts {
		want[i%options]++
		answer := fmt.Appendf(nil, `{"type":"answer","question":0,"option":%d}`, i%options)
		if text {
			w := benchWords[i%len(benchWords)]
			wantWords[w]++
			answer = fmt.Appendf(nil, `{"type":"answer","question":0,"text":%q}`, spell(w, i/len(benchWords)))
		}
		go func() {
			if err := readUntil(ws, `"type":"question"`); err != nil {
				shown <- err
				return
			}
			shown <- nil
			<-start
			sent := time.Now()
			if err := ws.Write(context.Background(), websocket.MessageText, answer); err != nil {
				acked <- time.Time{}
				return
			}
			if err := readUntil(ws, `"type":"answered"`); err != nil {
				acked <- time.Time{}
				return
			}
			now := time.Now()
			h.record(now.Sub(sent))
			acked <- now
		}()
	}
	for range n {
		if err := <-shown; err != nil {
			return nil, fmt.Errorf("a participant did not get the question: %w", err)
		}
	}

	// Everyone answers at once.
	begin = time.Now()
	close(start)
	var last time.Time
	var failed int64
	for range n {
		at := <-acked
		if at.IsZero() {
			failed++
			continue
		}
		if at.After(last) {
			last = at
		}
	}
	complete, err := waitTally("a complete tally", func(t tally) bool {
		if text {
			return t.Type == "tally" && t.Answered == n && sumWords(t.Words) == n
		}
		return t.Type == "tally" && sum(t.Counts) == n
	})
	if err != nil {
		return nil, err
	}
	if text {
		got := make(map[string]int)
		for _, w := range complete.Words {
			got[groupKey(w.Text)] = w.Count
		}
		if fmt.Sprint(got) != fmt.Sprint(wantWords) {
			return nil, fmt.Errorf("the presenter's word tally %v, want %v", got, wantWords)
		}
		if err := checkBenchWords(ctx, c, q, wantWords); err != nil {
			return nil, err
		}
	} else {
		for i := range want {
			if complete.Counts[i] != want[i] {
				return nil, fmt.Errorf("the presenter's tally %v, want %v", complete.Counts, want)
			}
		}
		if err := checkBenchResults(ctx, c, q, want); err != nil {
			return nil, err
		}
	}
	elapsed := last.Sub(begin)
	return &result{
		Subs:             n,
		Kind:             c.kind,
		Seconds:          elapsed.Seconds(),
		AnswersPerS:      float64(n) / elapsed.Seconds(),
		P50ms:            ms(h.quantile(0.50)),
		P99ms:            ms(h.quantile(0.99)),
		TallyCompleteMs:  ms(complete.at.Sub(begin)),
		TallyAfterLastMs: ms(max(0, complete.at.Sub(last))),
		Errors:           failed,
	}, nil
}

// word is a text tally's entry.
type word struct {
	Text  string `json:"text"`
	Count int    `json:"count"`
}

// benchWords are the text answers: fewer than a tally's 50 entries, so
// that a complete tally shows every one.
var benchWords = []string{"actors", "sqlite", "websockets", "go", "latency", "throughput", "backpressure",
	"tally", "word cloud", "presenter", "audience", "timer", "reveal", "export", "csv", "mentimeter",
	"slido", "kahoot", "claper", "lobby"}

// spell writes w in one of several ways the server groups as one: as is,
// capitalised, upper case, with spaces around and doubled.
func spell(w string, variant int) string {
	switch variant % 4 {
	case 1:
		return strings.ToUpper(w[:1]) + w[1:]
	case 2:
		return strings.ToUpper(w)
	case 3:
		return "  " + strings.ReplaceAll(w, " ", "   ") + " "
	}
	return w
}

// groupKey is how the server groups text answers: no case, single spaces.
func groupKey(text string) string {
	return strings.ToLower(strings.Join(strings.Fields(text), " "))
}

func sumWords(words []word) int {
	s := 0
	for _, w := range words {
		s += w.Count
	}
	return s
}

// checkBenchWords compares GET /results's words with the answers sent,
// grouped: every entry with its count, whatever spelling came first.
func checkBenchWords(ctx context.Context, c *config, q *benchQuestionnaire, want map[string]int) error {
	resp, err := benchRequest(ctx, c, http.MethodGet, "/questionnaires/"+q.ID+"/results", nil, q.PresenterToken)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	var r struct {
		Questions []struct {
			Answered int    `json:"answered"`
			Words    []word `json:"words"`
		} `json:"questions"`
	}
	if err := json.Unmarshal(resp, &r); err != nil || len(r.Questions) != 1 {
		return fmt.Errorf("GET results answered %s", resp)
	}
	got := make(map[string]int)
	for _, w := range r.Questions[0].Words {
		got[groupKey(w.Text)] = w.Count
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Errorf("GET results' words %v, want %v", got, want)
	}
	return nil
}

func sum(v []int) int {
	s := 0
	for _, x := range v {
		s += x
	}
	return s
}

type benchQuestionnaire struct {
	ID             string `json:"id"`
	PresenterToken string `json:"presenter_token"`
}

func createBenchQuestionnaire(ctx context.Context, c *config, options int, text bool) (*benchQuestionnaire, error) {
	opts := make([]string, options)
	for i := range opts {
		opts[i] = fmt.Sprintf("option %d", i)
	}
	question := map[string]any{"text": "Which?", "options": opts}
	if text {
		question = map[string]any{"text": "One word?", "kind": "text"}
	}
	body, _ := json.Marshal(map[string]any{"title": "lobbybench", "questions": []any{question}})
	resp, err := benchRequest(ctx, c, http.MethodPost, "/questionnaires", body, c.publishToken)
	if err != nil {
		return nil, fmt.Errorf("create questionnaire: %w", err)
	}
	var q benchQuestionnaire
	if err := json.Unmarshal(resp, &q); err != nil {
		return nil, fmt.Errorf("create questionnaire: %w", err)
	}
	return &q, nil
}

// benchParticipant is an identity POST /questionnaires/{id}/participants issued.
type benchParticipant struct {
	Participant string `json:"participant"`
	Token       string `json:"token"`
}

// newBenchParticipants asks for n participant identities, 64 at a time.
func newBenchParticipants(ctx context.Context, c *config, id string, n int) ([]benchParticipant, error) {
	ids := make([]benchParticipant, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ids[i], errs[i] = newBenchParticipant(ctx, c, id)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("participant identities: %w", err)
	}
	return ids, nil
}

// newBenchParticipant asks the server for a participant identity. One
// address gets them at --participant-rate past a burst (500 by default):
// a refused one is asked again after the Retry-After, so that the
// scenario works against a default server, slowly past the burst; start
// the server with --participant-rate -1 to measure answers, not minting.
func newBenchParticipant(ctx context.Context, c *config, id string) (benchParticipant, error) {
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		req, err := http.NewRequestWithContext(rctx, http.MethodPost, strings.TrimSuffix(c.url, "/")+"/questionnaires/"+id+"/participants", nil)
		if err != nil {
			cancel()
			return benchParticipant{}, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			return benchParticipant{}, fmt.Errorf("new participant: %w", err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		cancel()
		if err != nil {
			return benchParticipant{}, fmt.Errorf("new participant: %w", err)
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			select {
			case <-time.After(time.Duration(max(1, wait)) * time.Second):
				continue
			case <-ctx.Done():
				return benchParticipant{}, ctx.Err()
			}
		}
		var p benchParticipant
		if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &p) != nil {
			return benchParticipant{}, fmt.Errorf("new participant: %s %s", resp.Status, body)
		}
		return p, nil
	}
}

// checkBenchResults compares GET /results with the answers sent.
func checkBenchResults(ctx context.Context, c *config, q *benchQuestionnaire, want []int) error {
	resp, err := benchRequest(ctx, c, http.MethodGet, "/questionnaires/"+q.ID+"/results", nil, q.PresenterToken)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	var r struct {
		Results [][]int `json:"results"`
	}
	if err := json.Unmarshal(resp, &r); err != nil || len(r.Results) != 1 || fmt.Sprint(r.Results[0]) != fmt.Sprint(want) {
		return fmt.Errorf("GET results answered %s, want counts %v", resp, want)
	}
	return nil
}

func benchRequest(ctx context.Context, c *config, method, path string, body []byte, token string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.url, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return data, nil
}

func dialJSON(ctx context.Context, base, path string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, wsURL(base, path), &websocket.DialOptions{HTTPClient: dialClient})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(-1)
	return ws, nil
}

// readUntil reads frames until one contains marker, for at most a minute.
func readUntil(ws *websocket.Conn, marker string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(marker)) {
			return nil
		}
		if bytes.Contains(data, []byte(`"type":"error"`)) {
			return fmt.Errorf("server answered %s", data)
		}
	}
}
