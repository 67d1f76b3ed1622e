package test

import (
	"fmt"
	"math"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestBrowserDurable: a restart of a --durable node, clean (SIGTERM) or a
// crash (kill -9), is invisible to a lobby.js page (issue 20's "done
// when"). The real binary serves the pages on one address; it is stopped
// and started again on the same data dir and address while a chat page
// and a dashboard stay open. Each page reconnects by itself, says
// "recovered" (never "gap", never a notice that something is missing) and
// holds every message once, in order; a page loaded after the restart
// shows the same history. Like TestBrowser, it skips without Chromium
// unless CI is set.
func TestBrowserDurable(t *testing.T) {
	b := startBrowser(t)
	t.Run("Chat", func(t *testing.T) { testDurableChat(t, b) })
	t.Run("Dashboard", func(t *testing.T) { testDurableDashboard(t, b) })
}

// durableNode is the binary run with --durable on one data dir and one
// address, and run again there after each stop: a page keeps its origin,
// and lobby.js reconnects to where it was.
type durableNode struct {
	t         *testing.T
	dir, addr string
	args      []string
	bin       *binaryServer
}

func startDurableNode(t *testing.T, args ...string) *durableNode {
	t.Helper()
	n := &durableNode{t: t, dir: t.TempDir(), addr: freeAddr(t), args: args}
	n.start()
	return n
}

func (n *durableNode) start() {
	n.t.Helper()
	args := append([]string{"--addr", n.addr, "--durable", "--data-dir", n.dir, "--connect-rate", "-1"}, n.args...)
	n.bin = startBinary(n.t, buildLobby(n.t), args)
	if n.bin.addr != n.addr {
		n.t.Fatalf("the node listens on %s, want %s", n.bin.addr, n.addr)
	}
}

// restart stops the node with sig, waits for it to exit, and starts it
// again on its data dir and address.
func (n *durableNode) restart(sig syscall.Signal) {
	n.t.Helper()
	start := time.Now()
	stopBinary(n.t, n.bin, sig)
	stopped := time.Now()
	n.start()
	n.t.Logf("%v: stopped in %v, serving again %v later", sig, stopped.Sub(start).Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
}

func (n *durableNode) server() *testServer { return &testServer{addr: n.addr} }

// watchStates makes the tab record every state its #state badge shows,
// in window.__states, so that a state shown for a moment ("gap", say,
// before it settles back to "live") cannot pass unseen between two polls.
func watchStates(tb *tab) {
	tb.t.Helper()
	evaluate[bool](tb, `(() => {
		const badge = document.querySelector("#state");
		const seen = () => badge.dataset.state || badge.textContent;
		window.__states = [seen()];
		new MutationObserver(() => {
			if (window.__states.at(-1) !== seen()) window.__states.push(seen());
		}).observe(badge, { childList: true, characterData: true, subtree: true, attributes: true });
		return true;
	})()`)
}

// statesSince is what the tab's badge showed from the from'th state on.
func statesSince(tb *tab, from int) []string {
	tb.t.Helper()
	return evaluate[[]string](tb, fmt.Sprintf(`window.__states.slice(%d)`, from))
}

// waitRecovered waits until the badge, since its from'th state, has
// shown "reconnecting" and then "recovered", and fails if it shows "gap"
// first or meanwhile. It returns the states shown.
func waitRecovered(tb *tab, from int) []string {
	tb.t.Helper()
	tb.waitFor(`"reconnecting", then "recovered"`, `(from) => {
		const s = window.__states.slice(from);
		const r = s.indexOf("reconnecting");
		return s.includes("gap") || r >= 0 && s.indexOf("recovered", r) > r;
	}`, from)
	states := statesSince(tb, from)
	if slices.Contains(states, "gap") {
		tb.t.Fatalf("%s: across the restart the page showed %q: it did not recover", tb.name, states)
	}
	return states
}

// chatLines are the chat page's lines of the room shown, as
// "seq:text" for a message and "<kind>: text" for a gap, an error or a
// notice of the page's own.
const chatLines = `[...document.querySelectorAll("#messages li.msg, #messages li.gap, #messages li.error, #notices li")].map((li) =>
	li.classList.contains("msg") ? li.dataset.seq + ":" + li.querySelector(".text").textContent :
	(li.classList.contains("gap") ? "gap: " : li.classList.contains("error") ? "error: " : "notice: ") + li.textContent)`

// testDurableChat: a chat page in room "durable" sees messages published
// over HTTP; the node is stopped, started again, and more is published at
// once (while the page is still on its way back, or just after), then
// more once it has recovered. The page shows every message once, in
// order, the badge "reconnecting" then "recovered", no gap notice, and a
// new session id; a page loaded after the restart shows the same
// history. Once with SIGTERM, once with kill -9.
func testDurableChat(t *testing.T, b *browser) {
	n := startDurableNode(t)
	base := "http://" + n.addr
	page := b.open(t, "durable-chat", base+"/#durable")
	// While the node is down or draining, each of lobby.js's reconnects
	// is refused, and the browser logs it: that is the point of the test.
	page.expectConsoleError("WebSocket connection to")
	page.waitText("#state", "live")
	watchStates(page)

	published := 0
	publish := func(count int) {
		t.Helper()
		ts := n.server()
		for range count {
			published++
			if seq := publishOK(t, ts, "durable", fmt.Sprintf(`"d%d"`, published)); seq != uint64(published) {
				t.Fatalf("publish d%d got seq %d", published, seq)
			}
		}
	}
	// expect checks that tb holds every message published, once, in
	// order, and nothing else.
	expect := func(tb *tab, when string) {
		t.Helper()
		tb.waitFor(fmt.Sprintf("%d messages", published), `(n) => document.querySelectorAll("#messages li.msg").length >= n`, published)
		got := evaluate[[]string](tb, chatLines)
		want := make([]string, published)
		for i := range want {
			want[i] = fmt.Sprintf("%d:d%d", i+1, i+1)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %s the page holds\n  %q\nwant every message once, in order, and nothing else:\n  %q", tb.name, when, got, want)
		}
	}
	publish(5)
	expect(page, "before any restart")

	for round, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		idBefore := page.text("#me")
		mark := len(statesSince(page, 0))
		n.restart(sig)
		publish(5) // as soon as the node serves: the page may not be back yet
		states := waitRecovered(page, mark)
		publish(5)
		expect(page, fmt.Sprintf("after restart %d (%v)", round+1, sig))
		if idAfter := page.text("#me"); idAfter == idBefore {
			t.Errorf("after restart %d the page shows the session id %s it had before: it did not reconnect", round+1, idAfter)
		}
		t.Logf("restart %d (%v): the badge showed %q", round+1, sig, states)

		fresh := b.open(t, fmt.Sprintf("durable-chat-fresh-%d", round+1), base+"/#durable")
		fresh.waitText("#state", "live")
		expect(fresh, fmt.Sprintf("loaded after restart %d (%v)", round+1, sig))
		fresh.close()
	}
}

// testDurableDashboard: the dashboard of a node whose history lasts 1 s
// shows two batches; the room's history expires to its latest value (the
// last batch); the node is stopped and started again. The open page
// recovers and shows what it showed: the same rows, the same chart, no
// notice; it takes the next batch as the one after. A page loaded after
// the restart shows the latest batch, as it would have before. Once with
// SIGTERM, once with kill -9.
func testDurableDashboard(t *testing.T, b *browser) {
	n := startDurableNode(t, "--history-ttl", "1s")
	base := "http://" + n.addr
	batches := [][]dashboardRecord{
		{{"Cards", 1, 10, 1234.5, "EUR", "ok"}, {"Loans", 2, 3, 50, "USD", "ok"}},
		{{"Cards", 1, 12, 2000.25, "EUR", "ok"}, {"Loans", 2, 4, 75, "USD", "late"}},
		{{"Cards", 1, 15, 2500, "EUR", "ok"}, {"Loans", 2, 5, 80, "USD", "ok"}},
		{{"Cards", 1, 16, 2600.75, "EUR", "ok"}, {"Loans", 2, 6, 90, "USD", "ok"}},
	}
	// row is what the table shows of a record, as batch n of the page's.
	row := func(r dashboardRecord, n int) []string {
		return []string{r.ProductLine, fmt.Sprint(r.ProductLineID), fmt.Sprint(r.TotalTrx), amount(r.TotalAmount), r.Currency, r.GroupStatus, fmt.Sprintf("#%d", n)}
	}
	// rows are the table of a page that has taken batches[:upto] and
	// numbers the last of them n.
	rows := func(upto, n int) map[string][]string {
		last := batches[upto-1]
		return map[string][]string{"Cards": row(last[0], n), "Loans": row(last[1], n)}
	}
	// plot is the chart's y data of batches[from:upto].
	plot := func(from, upto int) [][]any {
		ys := [][]any{{}, {}}
		for _, batch := range batches[from:upto] {
			ys[0], ys[1] = append(ys[0], batch[0].TotalAmount), append(ys[1], batch[1].TotalAmount)
		}
		return ys
	}
	noNotices := func(tb *tab) {
		t.Helper()
		if notices := evaluate[[]string](tb, `[...document.querySelectorAll("#notices li")].map((li) => li.textContent)`); len(notices) > 0 {
			t.Fatalf("%s: the dashboard says %q", tb.name, notices)
		}
	}
	series := []string{"time", "Cards", "Loans"}

	postDashboard(t, n.server(), batches[0])
	d := b.open(t, "durable-dashboard", base+"/dashboard")
	d.expectConsoleError("WebSocket connection to") // as in testDurableChat
	d.waitText("#state", "live")
	watchStates(d)
	postDashboard(t, n.server(), batches[1])
	d.waitFor("the second batch", `() => window.lobbyDashboard.drawn === 2`)
	d.expectRows(rows(2, 2))
	d.expectTimePlot(series, plot(0, 2))

	shown := 2
	for round, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		// The history keeps only the latest batch once the others expire:
		// what a page opened an hour later would find.
		eventually(t, "dailyNews's history to expire to its latest batch", func() bool {
			return historyMessages(t, n.server(), "dailyNews") == 1
		})
		mark := len(statesSince(d, 0))
		n.restart(sig)
		states := waitRecovered(d, mark)
		t.Logf("restart %d (%v): the badge showed %q", round+1, sig, states)
		d.expectRows(rows(shown, shown))
		d.expectTimePlot(series, plot(0, shown))
		noNotices(d)

		fresh := b.open(t, fmt.Sprintf("durable-dashboard-fresh-%d", round+1), base+"/dashboard")
		fresh.waitText("#state", "live")
		fresh.waitFor("the latest batch", `() => window.lobbyDashboard.drawn === 1`)
		fresh.expectRows(rows(shown, 1))
		fresh.expectTimePlot(series, plot(shown-1, shown))
		noNotices(fresh)
		fresh.close()

		postDashboard(t, n.server(), batches[shown])
		shown++
		d.waitFor("the batch after the restart", `(n) => window.lobbyDashboard.drawn === n`, shown)
		d.expectRows(rows(shown, shown))
		d.expectTimePlot(series, plot(0, shown))
		noNotices(d)
	}
}

// amount is a positive total_amount as the dashboard's table shows it
// (en-US, two decimals).
func amount(v float64) string {
	cents := int(math.Round(v * 100))
	return fmt.Sprintf("%s.%02d", thousands(cents/100), cents%100)
}
