package test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/transport"
)

// TestBrowserQuestionnaire drives the questionnaire's pages in a real
// Chromium, as a presenter and an audience would: a questionnaire made
// with the form on /q/new, a presenter tab from the presenter link, and
// two participant tabs, each in a browser context of its own (tabs of one
// context share localStorage, hence the participant id). It asserts on
// what a person sees, fails on any console error, and writes screenshots.
// Like TestBrowser, it skips without Chromium unless CI is set.
func TestBrowserQuestionnaire(t *testing.T) {
	ts := startQServer(t, t.TempDir(), transport.Config{PublishToken: "pub"})
	b := startBrowser(t)
	base := "http://" + ts.addr

	// Create it with the form: a title, a question, a second question with
	// an option added, a third question added and removed again.
	form := b.open(t, "q-new", base+"/q/new")
	form.waitFor("the form", `() => document.querySelectorAll("#questions input").length === 3`)
	form.fill("#title", "Team day")
	form.fill(`[data-question="0"] .q-question-text`, "Coffee or tea?")
	form.fill(`[data-question="0"] [data-option="0"] input`, "coffee")
	form.fill(`[data-question="0"] [data-option="1"] input`, "tea")
	form.click("#add-question")
	form.fill(`[data-question="1"] .q-question-text`, "Which talk was best?")
	form.fill(`[data-question="1"] [data-option="0"] input`, "actors")
	form.fill(`[data-question="1"] [data-option="1"] input`, "sqlite")
	form.click(`[data-question="1"] [data-action="add-option"]`)
	form.fill(`[data-question="1"] [data-option="2"] input`, "websockets")
	form.click("#add-question")
	form.click(`[data-question="2"] [data-action="remove-question"]`)
	form.waitFor("two questions, the second of three options", `() =>
		document.querySelectorAll("#questions > li").length === 2 &&
		document.querySelectorAll('[data-question="1"] [data-option]').length === 3 &&
		document.querySelector('[data-question="1"] [data-option="2"] input').value === "websockets"`)

	// This server wants its publish token: the first try shows its 401.
	// (The browser logs each error answer to a fetch in the console.)
	form.expectConsoleError("the server responded with a status of 401")
	form.click("#create")
	form.waitFor("the server's 401 next to the form", `() => {
		const e = document.querySelector("#error");
		return !e.hidden && e.textContent.includes("Authorization: Bearer") && e.textContent.includes("publish token") &&
			document.querySelector("#publish").open;
	}`)
	form.fill("#publish-token", "pub")
	// A title of spaces passes the form's checks, not the server's: its
	// 400 says what is wrong, next to the form.
	form.fill("#title", "   ")
	form.expectConsoleError("the server responded with a status of 400")
	form.click("#create")
	form.waitFor("the server's 400 next to the form", `() => {
		const e = document.querySelector("#error");
		return !e.hidden && e.textContent.startsWith("Not created: ") && e.textContent.includes("title is empty");
	}`)
	form.fill("#title", "Team day")
	form.click("#create")
	form.waitFor("both links", `() => !document.querySelector("#created").hidden`)
	participantURL := form.text("#participant-url")
	presenterURL := form.text("#presenter-url")
	m := regexp.MustCompile(`^` + regexp.QuoteMeta(base) + `/q/([a-z2-7]{16})/present#token=([A-Za-z0-9_-]{22,})$`).FindStringSubmatch(presenterURL)
	if m == nil || participantURL != base+"/q/"+m[1] {
		t.Fatalf("the page shows participant link %q and presenter link %q, want %s/q/<id> and %[3]s/q/<id>/present#token=<token>",
			participantURL, presenterURL, base)
	}
	id, token := m[1], m[2]
	if href := evaluate[string](form, `document.querySelector("#presenter-url").href`); href != presenterURL {
		t.Errorf("the presenter link goes to %q, shows %q", href, presenterURL)
	}
	q := created{ID: id, PresenterToken: token}
	if r := getResults(t, ts.testServer, q); len(r.Results) != 2 || len(r.Results[1]) != 3 {
		t.Fatalf("the form made a questionnaire with results %v, want 2 questions, the second of 3 options", r.Results)
	}

	// The presenter: the token leaves the address bar for localStorage.
	presenter := b.open(t, "q-presenter", presenterURL)
	presenter.waitText("#state", "live")
	presenter.waitText("#message", "No question shown yet. Press Next to show the first one.")
	got := evaluate[[]string](presenter, `[location.href, localStorage.getItem("lobby.q." + window.lobbyPresenter.id + ".token"),
		document.querySelector("#participant-link").textContent, String(document.querySelectorAll("#qr svg path").length)]`)
	if want := []string{base + "/q/" + id + "/present", token, participantURL, "1"}; !slices.Equal(got, want) {
		t.Errorf("presenter: address, stored token, link, QR paths %q, want %q", got, want)
	}

	// Two participants, each with a localStorage (and so an id) of its own.
	p1 := b.open(t, "q-participant-1", participantURL, chromedp.WithNewBrowserContext())
	p2 := b.open(t, "q-participant-2", participantURL, chromedp.WithNewBrowserContext())
	for _, p := range []*tab{p1, p2} {
		p.waitText("#state", "live")
		p.waitText("#message", "Waiting for the presenter to show the first question…")
		p.waitText("#title", "Team day")
	}
	id1, id2 := p1.participant(), p2.participant()
	if id1 == "" || id1 == id2 {
		t.Fatalf("participant ids %q and %q, want two different ones", id1, id2)
	}
	// Each identity was issued by the server (issue 21, finding 7), and
	// the page keeps its token beside its id.
	if n := metricValue(t, ts.testServer, "lobby_questionnaire_participants_issued_total"); n != 2 {
		t.Fatalf("%v participant identities issued, want 2", n)
	}
	for _, p := range []*tab{p1, p2} {
		kept := evaluate[[]string](p, `[window.lobbyParticipant.token, localStorage.getItem("lobby.q." + window.lobbyParticipant.id + ".participant-token")]`)
		if kept[0] == "" || kept[0] != kept[1] {
			t.Fatalf("%s: token %q, kept %q", p.name, kept[0], kept[1])
		}
	}
	presenter.waitText("#participants", "2")

	// Next twice: the second question; both participants see it.
	presenter.click("#next")
	for _, p := range []*tab{p1, p2} {
		p.waitText("#question-text", "Coffee or tea?")
	}
	presenter.click("#next")
	for _, p := range []*tab{p1, p2} {
		p.waitText("#question-text", "Which talk was best?")
		p.waitText("#position", "Question 2 of 2")
		p.waitText("#answer-note", "Tap your answer.")
		if opts := evaluate[[]string](p, `[...document.querySelectorAll("#options button")].map((b) => b.textContent)`); !slices.Equal(opts, []string{"actors", "sqlite", "websockets"}) {
			t.Errorf("%s: options %q", p.name, opts)
		}
	}
	presenter.expectBars("Which talk was best?", []string{"actors:0:0%", "sqlite:0:0%", "websockets:0:0%"}, "0 answers · 2 connected")

	// They answer different options; the bars count them.
	p1.click(`#options button[data-option="0"]`)
	p2.click(`#options button[data-option="2"]`)
	p1.expectChosen(0, "Your answer: actors ✓ (tap another to change it)")
	p2.expectChosen(2, "Your answer: websockets ✓ (tap another to change it)")
	presenter.expectBars("Which talk was best?", []string{"actors:1:50%", "sqlite:0:0%", "websockets:1:50%"}, "2 answers · 2 connected")

	// A changed answer replaces the first.
	p1.click(`#options button[data-option="2"]`)
	p1.expectChosen(2, "Your answer: websockets ✓ (tap another to change it)")
	presenter.expectBars("Which talk was best?", []string{"actors:0:0%", "sqlite:0:0%", "websockets:2:100%"}, "2 answers · 2 connected")

	// A reload is the same participant: its answer is still marked, and
	// answering again does not count twice.
	p1.reload()
	p1.waitText("#state", "live")
	p1.expectChosen(2, "Your answer: websockets ✓ (tap another to change it)")
	if again := p1.participant(); again != id1 {
		t.Errorf("after a reload the participant id is %q, want %q", again, id1)
	}
	p1.click(`#options button[data-option="2"]`)
	p1.waitFor("the answer stored again", `() => !document.querySelector("#options .sending")`)
	presenter.expectBars("Which talk was best?", []string{"actors:0:0%", "sqlite:0:0%", "websockets:2:100%"}, "2 answers · 2 connected")

	// Previous and back: each question keeps its own answers.
	presenter.click("#prev")
	p2.waitText("#question-text", "Coffee or tea?")
	p2.waitText("#answer-note", "Tap your answer.")
	presenter.expectBars("Coffee or tea?", []string{"coffee:0:0%", "tea:0:0%"}, "0 answers · 2 connected")
	p2.click(`#options button[data-option="1"]`)
	presenter.expectBars("Coffee or tea?", []string{"coffee:0:0%", "tea:1:100%"}, "1 answer · 2 connected")
	presenter.click("#next")
	p2.expectChosen(2, "Your answer: websockets ✓ (tap another to change it)")
	presenter.expectBars("Which talk was best?", []string{"actors:0:0%", "sqlite:0:0%", "websockets:2:100%"}, "2 answers · 2 connected")

	questionnaireScreenshots(t, b, base, form, presenter, p1)

	// The same participant in a second tab takes over; the first says so
	// and does not come back.
	p1b := b.open(t, "q-participant-1b", participantURL, chromedp.WithExistingBrowserContext(chromedp.FromContext(p1.ctx).BrowserContextID))
	p1b.expectChosen(2, "Your answer: websockets ✓ (tap another to change it)")
	p1.waitText("#state", "opened in another tab")
	p1.waitText("#message", "This questionnaire was opened in another tab or window; answer there.")
	presenter.waitText("#participants", "2")

	// Close, after a confirmation: the participants are told.
	presenter.click("#close")
	presenter.waitFor("the confirmation", `() => !document.querySelector("#confirm").hidden && document.querySelector("#controls").hidden`)
	presenter.click("#confirm-close")
	presenter.waitText("#state", "closed")
	presenter.waitText("#position", "Question 2 of 2 · closed")
	for _, p := range []*tab{p1b, p2} {
		p.waitText("#message", "This questionnaire is closed. Thank you!")
		p.waitText("#state", "closed")
		p.waitFor("no question", `() => document.querySelector("#question").hidden`)
	}
	if r := getResults(t, ts.testServer, q); !r.Closed || fmt.Sprint(r.Results) != "[[0 1] [0 0 2]]" {
		t.Errorf("results after the close %+v, want closed with [[0 1] [0 0 2]]", r)
	}

	// An unknown questionnaire: both pages say so (after their GET's 404).
	const unknown = "aaaaaaaaaaaaaaaa"
	for _, path := range []string{"/q/" + unknown, "/q/" + unknown + "/present"} {
		u := b.open(t, "q-unknown"+path, base+path)
		u.expectConsoleError("the server responded with a status of 404")
		u.waitText("#message", "No such questionnaire. Check the link.")
	}
	// A presenter page without its token asks for it; a wrong one is refused.
	bare := b.open(t, "q-presenter-bare", base+"/q/"+id+"/present", chromedp.WithNewBrowserContext())
	bare.waitFor("the token form", `() => !document.querySelector("#token-form").hidden`)
	bare.expectConsoleError("the server responded with a status of 403")
	bare.fill("#token-input", "wrong")
	bare.click(`#token-form button[type="submit"]`)
	bare.waitText("#message", "that is not this questionnaire's presenter token.")
}

// TestBrowserQuestionnaireKinds runs a Mentimeter-style session of all
// four kinds from the built-in pages in a real Chromium: the form builds
// one question of each kind (kinds chosen, an option added, a question
// moved, the preview checked), the browser lists what it created, two
// participants in browser contexts of their own answer each kind, and the
// presenter sees bars, the scale's mean, the word cloud (a clicked word
// leaves it), "answered n of m", the reveal on the participants' phones,
// a countdown that closes the question, the CSV, and the summary after
// the close.
func TestBrowserQuestionnaireKinds(t *testing.T) {
	ts := startQServer(t, t.TempDir(), transport.Config{})
	b := startBrowser(t)
	base := "http://" + ts.addr

	form := b.open(t, "q-new-kinds", base+"/q/new")
	form.waitFor("the form", `() => document.querySelectorAll("#questions input").length === 3`)
	form.fill("#title", "All kinds")
	form.fill(`[data-question="0"] .q-question-text`, "Coffee or tea?")
	form.fill(`[data-question="0"] [data-option="0"] input`, "coffee")
	form.fill(`[data-question="0"] [data-option="1"] input`, "tea")
	form.click("#add-question")
	form.choose(`[data-question="1"] .q-kind`, "multi")
	form.fill(`[data-question="1"] .q-question-text`, "Which languages?")
	form.fill(`[data-question="1"] [data-option="0"] input`, "Go")
	form.fill(`[data-question="1"] [data-option="1"] input`, "Rust")
	form.click(`[data-question="1"] [data-action="add-option"]`)
	form.fill(`[data-question="1"] [data-option="2"] input`, "Zig")
	form.fill(`[data-question="1"] [data-field="max"]`, "2")
	// The text question first, the scale after it, then moved up.
	form.click("#add-question")
	form.choose(`[data-question="2"] .q-kind`, "text")
	form.fill(`[data-question="2"] .q-question-text`, "One word?")
	form.fill(`[data-question="2"] [data-field="max-length"]`, "30")
	form.click("#add-question")
	form.choose(`[data-question="3"] .q-kind`, "scale")
	form.fill(`[data-question="3"] .q-question-text`, "How was it?")
	form.fill(`[data-question="3"] [data-field="low"]`, "bad")
	form.fill(`[data-question="3"] [data-field="high"]`, "great")
	form.click(`[data-question="3"] [data-action="move-up"]`)
	form.waitValue("the questions and the preview", `() =>
		[...document.querySelectorAll("#questions > li")].map((li) => li.dataset.kind + ":" + li.querySelector(".q-question-text").value).join(", ") +
		" | " + [...document.querySelectorAll("#preview-list > li")].map((li) => li.querySelector(".q-preview-text").textContent + " [" +
			[...li.querySelectorAll(".q-preview-option")].map((o) => o.textContent).join(" ") + "]").join(", ")`,
		"single:Coffee or tea?, multi:Which languages?, scale:How was it?, text:One word? | "+
			"1. Coffee or tea? [coffee tea], 2. Which languages? [☐ Go ☐ Rust ☐ Zig], 3. How was it? [1 2 3 4 5], "+
			"4. One word? [A text of up to 30 characters, then Send.]")
	form.click("#create")
	form.waitFor("both links", `() => !document.querySelector("#created").hidden`)
	presenterURL := form.text("#presenter-url")
	participantURL := form.text("#participant-url")
	m := regexp.MustCompile(`/q/([a-z2-7]{16})/present#token=([A-Za-z0-9_-]{22,})$`).FindStringSubmatch(presenterURL)
	if m == nil {
		t.Fatalf("presenter link %q", presenterURL)
	}
	q := created{ID: m[1], PresenterToken: m[2]}
	// The browser lists what it created; the token stays in it.
	form.waitValue("the list of this browser's questionnaires", `() =>
		[...document.querySelectorAll("#mine-list li")].map((li) => li.querySelector("strong").textContent + " " +
			li.querySelector(".q-mine-present").getAttribute("href")).join() + " " +
		(localStorage.getItem("lobby.q." + JSON.parse(localStorage.getItem("lobby.q.mine"))[0].id + ".token") !== null)`,
		"All kinds /q/"+q.ID+"/present true")
	_, def := httpDo(t, http.MethodGet, ts.url("/questionnaires/"+q.ID), nil, nil)
	for _, want := range []string{`"kind":"multi","options":["Go","Rust","Zig"],"max":2`, `"kind":"scale","max":5,"min":1,"labels":["bad","great"]`,
		`"kind":"text","max_length":30`} {
		if !strings.Contains(string(def), want) {
			t.Fatalf("the form made %s, without %s", def, want)
		}
	}

	presenter := b.open(t, "q-presenter-kinds", presenterURL)
	presenter.waitText("#state", "live")
	// The page was opened on 127.0.0.1: it warns that phones cannot.
	presenter.waitFor("the loopback warning", `() => !document.querySelector("#link-warning").hidden &&
		document.querySelector("#link-warning").textContent.includes("--public-url")`)
	p1 := b.open(t, "q-participant-kinds-1", participantURL, chromedp.WithNewBrowserContext())
	p2 := b.open(t, "q-participant-kinds-2", participantURL, chromedp.WithNewBrowserContext())
	for _, p := range []*tab{p1, p2} {
		p.waitText("#state", "live")
	}
	presenter.waitText("#participants", "2")

	// single
	presenter.click("#next")
	p1.waitText("#question-text", "Coffee or tea?")
	p2.waitText("#question-text", "Coffee or tea?")
	p1.click(`#options button[data-option="0"]`)
	p2.click(`#options button[data-option="0"]`)
	presenter.expectBars("Coffee or tea?", []string{"coffee:2:100%", "tea:0:0%"}, "2 answers · 2 connected")
	presenter.waitText("#answered", "answered 2 of 2")
	presenter.waitFor("the leader marked", `() => document.querySelector('#bars li[data-option="0"]').classList.contains("leader") &&
		!document.querySelector('#bars li[data-option="1"]').classList.contains("leader")`)

	// multi: taps pick, Send answers.
	presenter.click("#next")
	p1.waitText("#answer-note", "Tap up to 2, then Send.")
	p1.click(`#options button[data-option="0"]`)
	p1.click(`#options button[data-option="2"]`)
	p1.click(`#options button[data-option="1"]`) // a third is one too many
	p1.waitText("#notice", "Pick at most 2: tap one again to drop it first.")
	p1.click("#send")
	p1.waitText("#answer-note", "Your answer: Go, Zig ✓ (send again to change it)")
	p2.waitText("#question-text", "Which languages?")
	p2.click(`#options button[data-option="1"]`)
	p2.click("#send")
	p2.waitText("#answer-note", "Your answer: Rust ✓ (send again to change it)")
	presenter.expectBars("Which languages?", []string{"Go:1:50%", "Rust:1:50%", "Zig:1:50%"}, "2 answers · 2 connected")

	// scale: a tap answers; the presenter shows the mean.
	presenter.click("#next")
	p1.waitFor("the scale", `() => document.querySelectorAll("#scale button[data-value]").length === 5 &&
		document.querySelector(".q-scale-labels").textContent === "badgreat"`)
	p1.click(`#scale button[data-value="2"]`)
	p2.waitFor("the scale", `() => document.querySelectorAll("#scale button[data-value]").length === 5`)
	p2.click(`#scale button[data-value="5"]`)
	p1.waitText("#answer-note", "Your answer: 2 ✓ (tap another to change it)")
	presenter.expectBars("How was it?", []string{"1:0:0%", "2:1:50%", "3:0:0%", "4:0:0%", "5:1:50%"}, "2 answers · 2 connected")
	presenter.waitFor("the mean", `() => document.querySelector(".q-mean").textContent.startsWith("Mean: 3.5")`)

	// text: a word cloud; a click on a word hides it.
	presenter.click("#next")
	for i, p := range []*tab{p1, p2} {
		p.waitText("#question-text", "One word?")
		p.fill("#text-answer", []string{"Big  data", "spam"}[i])
		p.click("#send")
	}
	p1.waitText("#answer-note", "Your answer: Big  data ✓ (send again to change it)")
	p2.waitText("#answer-note", "Your answer: spam ✓ (send again to change it)")
	cloud := `() => [...document.querySelectorAll("#cloud .q-word")].map((w) => w.textContent).sort().join()`
	presenter.waitValue("the cloud", cloud, "Big data,spam")
	presenter.waitText("#answered", "answered 2 of 2")
	presenter.clickText("#cloud button.q-word", "spam")
	presenter.waitValue("the cloud without spam", cloud, "Big data")
	presenter.waitValue("the cloud without spam, still", `() => String(window.lobbyPresenter.tally.words.length)`, "1")

	// reveal: both phones show the results.
	presenter.click("#reveal")
	for _, p := range []*tab{p1, p2} {
		p.waitValue("the revealed results", `() => document.querySelector("#results").hidden ? "hidden" :
			[...document.querySelectorAll("#results .q-word")].map((w) => w.textContent).join() + " · " + document.querySelector("#results-note").textContent`,
			"Big data · 2 answered")
	}
	presenter.waitFor("revealed", `() => !document.querySelector("#revealed").hidden`)

	// A countdown: shown again with a timer of 2 s, the question closes.
	presenter.fill("#seconds", "2")
	presenter.click("#restart")
	for _, p := range []*tab{p1, p2, presenter} {
		p.waitFor("a countdown", `() => !document.querySelector("#countdown").hidden && /left$/.test(document.querySelector("#countdown").textContent)`)
	}
	for _, p := range []*tab{p1, p2, presenter} {
		p.waitText("#countdown", "Time's up")
	}
	presenter.waitValue("the closed tally", `() => String(window.lobbyPresenter.tally.closed)`, "true")
	p1.waitFor("no more answers", `() => document.querySelector("#send").disabled && document.querySelector("#text-answer").disabled`)
	p1.waitText("#answer-note", "Time's up. Your answer: Big  data ✓")
	if r, _ := getKindsResults(t, ts.testServer, q); !r.Questions[3].Closed || len(r.Questions[3].Words) != 1 {
		t.Fatalf("the text question after its timer: %+v", r.Questions[3])
	}

	// The CSV the button downloads.
	_, csvBody := httpDo(t, http.MethodGet, ts.url("/questionnaires/"+q.ID+"/results.csv"), nil,
		http.Header{"Authorization": {"Bearer " + q.PresenterToken}})
	csvText := string(csvBody)
	for _, want := range []string{"question,kind,question_text,entry,count\n", "0,single,Coffee or tea?,coffee,2\n", "1,multi,Which languages?,Zig,1\n",
		"2,scale,How was it?,5,1\n", "3,text,One word?,Big data,1\n"} {
		if !strings.Contains(csvText, want) {
			t.Errorf("results.csv %q lacks %q", csvText, want)
		}
	}
	presenter.click("#csv")

	questionnaireKindsScreenshots(t, presenter, p1)

	// The projector view: full width, QR code hideable.
	presenter.click("#fullscreen")
	presenter.waitFor("the projector view", `() => document.body.classList.contains("projector")`)
	presenter.click("#toggle-qr")
	presenter.waitFor("no QR code", `() => document.querySelector("#join").hidden`)
	presenter.click("#prev")
	presenter.expectBars("How was it?", []string{"1:0:0%", "2:1:50%", "3:0:0%", "4:0:0%", "5:1:50%"}, "2 answers · 2 connected")
	shot(t, presenter, "q-presenter-projector", 1280)
	presenter.click("#toggle-qr")
	presenter.waitFor("the QR code again", `() => !document.querySelector("#join").hidden`)
	presenter.click("#fullscreen")

	// Close: a summary of every question.
	presenter.click("#close")
	presenter.click("#confirm-close")
	presenter.waitText("#state", "closed")
	presenter.waitValue("the summary", `() => [...document.querySelectorAll("#summary-list > li")].map((li) =>
		li.querySelector("h3").textContent + ": " + li.querySelector(".q-note").textContent).join(", ")`,
		"Coffee or tea?: 2 answered, Which languages?: 2 answered, How was it?: 2 answered, One word?: 2 answered")
	shot(t, presenter, "q-presenter-summary", 1280)
}

// clickText clicks the element sel whose text is text.
func (tb *tab) clickText(sel, text string) {
	tb.t.Helper()
	tb.waitFor("to click "+sel+" "+text, `(sel, text) => {
		const el = [...document.querySelectorAll(sel)].find((e) => e.textContent === text);
		if (!el) return false;
		el.click();
		return true;
	}`, sel, text)
}

// TestBrowserQuestionnairePublicURL: with Config.PublicURL (--public-url)
// the presenter's participant link and QR code are built on it, and the
// page does not warn; GET /questionnaires/{id} says it.
func TestBrowserQuestionnairePublicURL(t *testing.T) {
	const public = "http://192.168.1.20:8081"
	ts := startQServer(t, t.TempDir(), transport.Config{PublicURL: public})
	q := createQuestionnaire(t, ts.testServer, fourKinds)
	if _, def := httpDo(t, http.MethodGet, ts.url("/questionnaires/"+q.ID), nil, nil); !strings.Contains(string(def), `"public_url":"`+public+`"`) {
		t.Fatalf("GET /questionnaires/%s: %s, without public_url", q.ID, def)
	}
	b := startBrowser(t)
	presenter := b.open(t, "q-presenter-public", "http://"+ts.addr+"/q/"+q.ID+"/present#token="+q.PresenterToken)
	presenter.waitText("#state", "live")
	presenter.waitValue("the link on the public URL", `() => [document.querySelector("#participant-link").textContent,
		document.querySelector("#qr svg").getAttribute("aria-label"), String(document.querySelector("#link-warning").hidden)].join(" | ")`,
		public+"/q/"+q.ID+" | QR code of "+public+"/q/"+q.ID+" | true")
}

// choose picks value in the select sel and fires its change event.
func (tb *tab) choose(sel, value string) {
	tb.t.Helper()
	tb.waitFor("to choose "+value+" in "+sel, `(sel, value) => {
		const el = document.querySelector(sel);
		if (!el) return false;
		el.value = value;
		el.dispatchEvent(new Event("change", { bubbles: true }));
		return true;
	}`, sel, value)
}

// questionnaireKindsScreenshots writes the presenter's word cloud and a
// participant's revealed results, as questionnaireScreenshots does.
func questionnaireKindsScreenshots(t *testing.T, presenter, participant *tab) {
	t.Helper()
	shot(t, presenter, "q-presenter-cloud", 1280)
	shot(t, participant, "q-participant-results", 390)
}

// shot writes a screenshot of tab at width to $LOBBY_SCREENSHOTS (or the
// test's temp dir) as <name>-<width>.png.
func shot(t *testing.T, tb *tab, name string, width int64) {
	t.Helper()
	dir := os.Getenv("LOBBY_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, width))
	tb.screenshot(path, width)
	t.Logf("screenshot %s", path)
}

// questionnaireScreenshots writes screenshots of the three pages at a
// phone's width and a desktop's, as testScreenshots does.
func questionnaireScreenshots(t *testing.T, b *browser, base string, created, presenter, participant *tab) {
	t.Helper()
	dir := os.Getenv("LOBBY_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	form := b.open(t, "q-new-shot", base+"/q/new")
	form.waitFor("the form", `() => document.querySelectorAll("#questions input").length === 3`)
	form.fill("#title", "Friday retro")
	form.fill(`[data-question="0"] .q-question-text`, "How was the week?")
	form.fill(`[data-question="0"] [data-option="0"] input`, "great")
	form.fill(`[data-question="0"] [data-option="1"] input`, "fine")
	form.click(`[data-question="0"] [data-action="add-option"]`)
	for _, page := range []struct {
		name string
		tab  *tab
	}{{"q-new", form}, {"q-created", created}, {"q-presenter", presenter}, {"q-participant", participant}} {
		for _, width := range []int64{390, 1280} {
			path := filepath.Join(dir, fmt.Sprintf("%s-%d.png", page.name, width))
			page.tab.screenshot(path, width)
			t.Logf("screenshot %s", path)
		}
	}
}

// fill sets the input sel's value and fires its input event, as typing does.
func (tb *tab) fill(sel, value string) {
	tb.t.Helper()
	tb.waitFor("to fill "+sel, `(sel, value) => {
		const el = document.querySelector(sel);
		if (!el) return false;
		el.value = value;
		el.dispatchEvent(new Event("input", { bubbles: true }));
		return true;
	}`, sel, value)
}

// click clicks the element sel, as a person does.
func (tb *tab) click(sel string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitFor)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		tb.t.Fatalf("%s: click %s: %v", tb.name, sel, err)
	}
}

// reload reloads the tab's page and waits for it to load.
func (tb *tab) reload() {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitFor)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		tb.t.Fatalf("%s: reload: %v", tb.name, err)
	}
}

// participant is the participant id the participant page uses.
func (tb *tab) participant() string {
	tb.t.Helper()
	return evaluate[string](tb, `window.lobbyParticipant.participant`)
}

// expectChosen waits until the participant page marks option k, and only
// it, as the answer the server stored, with note under the options.
func (tb *tab) expectChosen(k int, note string) {
	tb.t.Helper()
	tb.waitFor(fmt.Sprintf("option %d marked as the answer", k), `(k, note) =>
		[...document.querySelectorAll("#options button")].map((b) => b.classList.contains("chosen") && b.getAttribute("aria-pressed") === "true").join() ===
			[...document.querySelectorAll("#options button")].map((b, i) => i === k).join() &&
		document.querySelector("#answer-note").textContent === note`, k, note)
}

// expectBars waits until the presenter page shows question with its bars
// as "option:count:percent" (each bar as wide as its percentage) and the
// line under them as answers.
func (tb *tab) expectBars(question string, bars []string, answers string) {
	tb.t.Helper()
	want := fmt.Sprintf("%s | %s | %s", question, strings.Join(bars, ", "), answers)
	tb.waitValue("the bars", `() => document.querySelector("#question-text").textContent + " | " +
		[...document.querySelectorAll("#bars li")].map((li) => {
			const [label, count, percent, fill] = [".label", ".q-count", ".q-percent", ".fill"].map((c) => li.querySelector(c));
			const width = fill.style.width === "0px" ? "0%" : fill.style.width;
			return [label.textContent, count.textContent, percent.textContent + (width === percent.textContent ? "" : " (bar " + width + ")")].join(":");
		}).join(", ") + " | " + document.querySelector("#answers").textContent`, want)
}

// waitValue waits until the JavaScript function fn returns want, and says
// what it returned last if it never does.
func (tb *tab) waitValue(what, fn, want string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitFor)
	defer cancel()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	var got string
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string]("("+fn+")()"))
		if err == nil && v == want {
			return
		}
		if err == nil {
			got = v
		}
		select {
		case <-ctx.Done():
			tb.t.Fatalf("%s: timed out waiting for %s:\n  got  %s\n  want %s", tb.name, what, got, want)
		case <-poll.C:
		}
	}
}

// TestBrowserQuestionnaireFull: a questionnaire that has issued its
// --max-participants identities tells a new phone so, while a phone that
// has its identity still takes part after a reload.
func TestBrowserQuestionnaireFull(t *testing.T) {
	ts := startQServer(t, t.TempDir(), transport.Config{Config: actors.Config{MaxParticipants: 1}})
	q := createQuestionnaire(t, ts.testServer, threeQuestions)
	b := startBrowser(t)
	url := "http://" + ts.addr + "/q/" + q.ID
	first := b.open(t, "q-participant-first", url, chromedp.WithNewBrowserContext())
	first.waitText("#state", "live")
	second := b.open(t, "q-participant-second", url, chromedp.WithNewBrowserContext())
	second.expectConsoleError("503 (Service Unavailable)")
	second.waitText("#message", "This questionnaire has all the participants it can take.")
	first.reload()
	first.waitText("#state", "live")
	first.waitText("#message", "Waiting for the presenter to show the first question…")
}
