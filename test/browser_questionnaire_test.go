package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

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
