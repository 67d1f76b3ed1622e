package test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/lobby/lobby/transport"
)

// TestBrowserSubscriptions drives the pages' many-room side in Chromium:
// two tabs in two shared rooms on one socket each, joining and leaving
// rooms without a reload, a reconnect that recovers both rooms, the send
// box on a phone, the dashboard over two rooms, and an EventSource that
// recovers with Last-Event-ID after its stream is cut. Like TestBrowser,
// it skips without Chromium unless CI is set.
func TestBrowserSubscriptions(t *testing.T) {
	ts := startServer(t, transport.Config{})
	proxy := startProxy(t, ts.addr)
	b := startBrowser(t)
	base := "http://" + proxy.addr()

	t.Run("ChatTwoRooms", func(t *testing.T) { testChatTwoRooms(t, b, ts, proxy, base) })
	t.Run("SendBoxOnAPhone", func(t *testing.T) { testSendBoxOnAPhone(t, b, base) })
	t.Run("DashboardTwoRooms", func(t *testing.T) { testDashboardTwoRooms(t, b, ts, base) })
	t.Run("EventSource", func(t *testing.T) { testEventSource(t, b, ts, proxy, base) })
	t.Run("Names", func(t *testing.T) { testChatNames(t, b, base) })
	t.Run("SubscribesOverTheRate", func(t *testing.T) { testSubscribesOverTheRate(t, b) })
	t.Run("ManyRoomsPaced", func(t *testing.T) { testManyRoomsPaced(t, b) })
}

// testManyRoomsPaced: lobby.js in 40 rooms on a connection whose burst is
// 10 frames asks for them a few at a time: were they asked all at once,
// 30 frames over the rate in a row would close the connection.
func testManyRoomsPaced(t *testing.T, b *browser) {
	ts := startServer(t, transport.Config{Rate: 50, RateBurst: 10})
	p := b.open(t, "paced", ts.url("/status"))
	p.waitFor("the page", `() => document.readyState === "complete"`)
	p.waitFor("lobby.js in 40 rooms", `async () => {
		if (!window.__paced) {
			const { Lobby } = await import("/lobby.js");
			const lobby = new Lobby(location.origin, {});
			window.__paced = Array.from({ length: 40 }, (_, i) => lobby.join("paced-" + i, {}));
		}
		return window.__paced.every((r) => r.state === "live");
	}`)
	waitMetric(t, ts, "lobby_subscriptions", 40)
	if n := metricValue(t, ts, `lobby_disconnects_total{reason="rate_limit"}`); n != 0 {
		t.Fatalf("%v connections closed for their rate", n)
	}
	p.close()
}

// testSubscribesOverTheRate: lobby.js joins more rooms at once than the
// connection's rate lets through; the subscribes the server refuses as
// rate_limited are asked again, and every room ends up joined.
func testSubscribesOverTheRate(t *testing.T, b *browser) {
	ts := startServer(t, transport.Config{Rate: 5, RateBurst: 5})
	p := b.open(t, "rate", ts.url("/status"))
	p.waitFor("the page", `() => document.readyState === "complete"`)
	p.waitFor("lobby.js in many rooms", `async () => {
		if (!window.__many) {
			const { Lobby } = await import("/lobby.js");
			const lobby = new Lobby(location.origin, {});
			window.__many = Array.from({ length: 15 }, (_, i) => lobby.join("many-" + i, {}));
		}
		return window.__many.every((r) => r.state === "live");
	}`)
	waitMetric(t, ts, "lobby_subscriptions", 15)
	if n := metricValue(t, ts, "lobby_rate_limited_total"); n == 0 {
		t.Fatal("no subscribe was over the rate: the test tested nothing")
	}
	p.close()
}

// testChatNames: a name set on the page is what the others see, in the
// member list and beside its messages; its id stays the identity.
func testChatNames(t *testing.T, b *browser, base string) {
	other := b.open(t, "names-other", base+"/#named", chromedp.WithNewBrowserContext())
	ada := b.open(t, "names-ada", base+"/#named", chromedp.WithNewBrowserContext())
	other.waitText("#state", "live")
	ada.waitText("#state", "live")
	ctx, cancel := context.WithTimeout(ada.ctx, waitFor)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("name-input"), "Ada ☕"), chromedp.Click(chromedp.CSS("#name-form button"))); err != nil {
		t.Fatal(err)
	}
	ada.waitText("#state", "live")
	idAda := ada.text("#me")
	other.waitFor("Ada's name in the member list", `(id) => [...document.querySelectorAll("#members li")].some((li) => li.dataset.id === id && li.textContent === "Ada ☕ · " + id.slice(0, 8))`, idAda)
	ada.send("named hello")
	other.waitFor("Ada's name beside her message", `(id) => [...document.querySelectorAll("#messages li.msg")].some((li) =>
		li.dataset.sender === id && li.querySelector(".who").textContent === "Ada ☕ · " + id.slice(0, 8))`, idAda)
	ada.close()
	other.close()
}

// messagesShown is the shown room's messages, as seq:text.
const messagesShown = `() => [...document.querySelectorAll("#messages li.msg")].map((li) => li.dataset.room + "/" + li.dataset.seq + ":" + li.querySelector(".text").textContent)`

// testChatTwoRooms: tabs a and c are both in rooms ra and rb, a showing
// ra and c showing rb. A message in ra shows in a's view and never in
// c's, which counts it unread until c shows ra. Each tab holds one
// socket. A cut recovers both rooms of a tab without a gap. A room is
// joined and left from the page.
func testChatTwoRooms(t *testing.T, b *browser, ts *testServer, proxy *cutProxy, base string) {
	// The earlier scenarios' tabs are gone: every connection is these.
	const before = 0
	waitMetric(t, ts, "lobby_connections", before)
	a := b.open(t, "rooms-a", base+"/#ra,rb")
	c := b.open(t, "rooms-c", base+"/#rb,ra")
	a.waitText("#state", "live")
	c.waitText("#state", "live")
	a.waitText("#current-room", "ra")
	c.waitText("#current-room", "rb")
	for _, tb := range []*tab{a, c} {
		tb.waitFor("both rooms listed", `() => [...document.querySelectorAll("#rooms li")].map((li) => li.dataset.room).sort().join() === "ra,rb"`)
		tb.waitFor("two members in the shown room", `() => document.querySelectorAll("#members li").length === 2`)
	}
	if got := metricValue(t, ts, "lobby_connections"); got != before+2 {
		t.Fatalf("%v connections for two tabs in two rooms each, want %v: one socket per tab", got, before+2)
	}
	waitMetric(t, ts, "lobby_subscriptions", 4)

	a.send("only for ra")
	shownIs(a, "a's message in ra", "ra/1:only for ra")
	c.waitFor("ra's message unread in c", `() => document.querySelector('#rooms li[data-room="ra"] .unread').textContent === "1"`)
	if got := evaluate[[]string](c, "("+messagesShown+")()"); len(got) != 0 {
		t.Fatalf("c's view of rb shows %v: a message of ra", got)
	}
	c.send("only for rb")
	shownIs(c, "c's message in rb", "rb/1:only for rb")
	a.waitFor("rb's message unread in a", `() => document.querySelector('#rooms li[data-room="rb"] .unread').textContent === "1"`)
	if got := evaluate[[]string](a, "("+messagesShown+")()"); !slices.Equal(got, []string{"ra/1:only for ra"}) {
		t.Fatalf("a's view of ra shows %v", got)
	}
	clickIn(t, c, `#rooms li[data-room="ra"] .pick`)
	c.waitText("#current-room", "ra")
	shownIs(c, "ra's message in c's view of ra", "ra/1:only for ra")
	c.waitFor("the unread count gone", `() => document.querySelector('#rooms li[data-room="ra"] .unread').hidden`)

	// A cut: both rooms of a recover, each with what it missed.
	idBefore := a.text("#me")
	if n := proxy.cut(); n == 0 {
		t.Fatal("the proxy had no connection to cut")
	}
	for i := 2; i <= 4; i++ {
		for _, room := range []string{"ra", "rb"} {
			if status, body := httpDo(t, "POST", ts.url("/rooms/"+room+"/broadcast"), fmt.Appendf(nil, `"%s %d"`, room, i), nil); status != http.StatusOK {
				t.Fatalf("publish: %d %s", status, body)
			}
		}
	}
	a.waitText("#state", "recovered")
	shownIs(a, "ra's messages, each once, in order", "ra/1:only for ra,ra/2:ra 2,ra/3:ra 3,ra/4:ra 4")
	clickIn(t, a, `#rooms li[data-room="rb"] .pick`)
	shownIs(a, "rb's messages, each once, in order", "rb/1:only for rb,rb/2:rb 2,rb/3:rb 3,rb/4:rb 4")
	if a.text("#me") == idBefore {
		t.Error("the page shows the same session id after the cut: it did not reconnect")
	}
	if n := evaluate[int](a, `document.querySelectorAll("#messages li.gap").length`); n != 0 {
		t.Errorf("%d gap notices after a recovered reconnect", n)
	}
	// The badge says live again once the recovery is over.
	a.waitText("#state", "live")

	// Join a third room from the form, and leave it: no reload.
	a.waitFor("the page still loaded once", `() => performance.getEntriesByType("navigation").length === 1`)
	ctx, cancel := context.WithTimeout(a.ctx, waitFor)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("room-input"), "rc"), chromedp.Click(chromedp.CSS("#room-form button"))); err != nil {
		t.Fatal(err)
	}
	a.waitText("#current-room", "rc")
	a.waitFor("rc in the hash", `() => location.hash === "#rc,ra,rb"`)
	waitMetric(t, ts, "lobby_subscriptions", 5)
	clickIn(t, a, `#rooms li[data-room="rc"] .leave`)
	a.waitFor("rc gone from the list", `() => !document.querySelector('#rooms li[data-room="rc"]')`)
	waitMetric(t, ts, "lobby_subscriptions", 4)
	if got := metricValue(t, ts, "lobby_connections"); got != before+2 {
		t.Fatalf("%v connections after joining and leaving a room, want %v", got, before+2)
	}
	a.close()
	c.close()
}

// shownIs waits until the shown room's messages, joined with commas, are
// want.
func shownIs(tb *tab, what, want string) {
	tb.t.Helper()
	tb.waitFor(what, `(want) => (`+messagesShown+`)().join() === want`, want)
}

// clickIn clicks the element sel in tb.
func clickIn(t *testing.T, tb *tab, sel string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitFor)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		t.Fatalf("%s: click %s: %v", tb.name, sel, err)
	}
}

// testSendBoxOnAPhone: at 390 px, in many rooms, the send box is on
// screen without scrolling.
func testSendBoxOnAPhone(t *testing.T, b *browser, base string) {
	p := b.open(t, "phone", base+"/#p1,p2,p3,p4,p5,p6,p7,p8")
	p.waitText("#state", "live")
	p.waitFor("eight rooms", `() => document.querySelectorAll("#rooms li").length === 8`)
	ctx, cancel := context.WithTimeout(p.ctx, waitFor)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	p.waitFor("the send box on screen", `() => {
		const r = document.querySelector("#send-form").getBoundingClientRect();
		return innerWidth === 390 && r.top >= 0 && r.bottom <= innerHeight && r.width > 300;
	}`)
	p.close()
}

// testDashboardTwoRooms: ?room=da&room=db shows the batches of both, on
// one connection.
func testDashboardTwoRooms(t *testing.T, b *browser, ts *testServer, base string) {
	const before = 0
	waitMetric(t, ts, "lobby_connections", before)
	d := b.open(t, "dashboard-two", base+"/dashboard?room=da&room=db")
	d.waitText("#state", "live")
	d.waitText("#room", "da, db")
	for room, line := range map[string]string{"da": "FromA", "db": "FromB"} {
		body := fmt.Sprintf(`[{"product_line":%q,"product_line_id":1,"total_trx":1,"total_amount":5,"currency":"EUR","group_status":"ok"}]`, line)
		if status, resp := httpDo(t, "POST", ts.url("/rooms/"+room+"/broadcast"), []byte(body), nil); status != http.StatusOK {
			t.Fatalf("publish: %d %s", status, resp)
		}
	}
	d.waitFor("both rooms' batches in the table", `() => document.querySelector('#latest tr[data-line="FromA"]') && document.querySelector('#latest tr[data-line="FromB"]')`)
	if got := metricValue(t, ts, "lobby_connections"); got != before+1 {
		t.Fatalf("%v connections for a dashboard of two rooms, want %v", got, before+1)
	}
	d.close()
}

// testEventSource: a page's EventSource reads a room's events; the
// stream is cut (at the proxy) while messages are published, and the
// EventSource comes back with Last-Event-ID and gets exactly what it
// missed.
func testEventSource(t *testing.T, b *browser, ts *testServer, proxy *cutProxy, base string) {
	e := b.open(t, "eventsource", base+"/status")
	e.waitFor("the page", `() => document.readyState === "complete"`)
	evaluate[bool](e, `(() => {
		window.__events = [];
		const es = new EventSource("/rooms/es/events");
		window.__es = es;
		for (const name of ["welcome", "message"]) {
			es.addEventListener(name, (ev) => window.__events.push({ name, id: ev.lastEventId, data: JSON.parse(ev.data) }));
		}
		return true;
	})()`)
	e.waitFor("the welcome", `() => window.__events.length === 1 && window.__events[0].name === "welcome"`)
	publish := func(from, to int) {
		t.Helper()
		for i := from; i <= to; i++ {
			if status, body := httpDo(t, "POST", ts.url("/rooms/es/broadcast"), fmt.Appendf(nil, `{"n":%d}`, i), nil); status != http.StatusOK {
				t.Fatalf("publish: %d %s", status, body)
			}
		}
	}
	publish(1, 3)
	e.waitFor("three messages", `() => window.__events.filter((e) => e.name === "message").length === 3`)
	// Chromium logs a cut stream as an error, whatever the page does.
	e.expectConsoleError("ERR_INCOMPLETE_CHUNKED_ENCODING")
	proxy.hold()
	if n := proxy.cut(); n == 0 {
		proxy.release()
		t.Fatal("the proxy had no connection to cut")
	}
	publish(4, 6)
	proxy.release()
	e.waitFor("a second welcome, recovered", `() => window.__events.filter((e) => e.name === "welcome").length === 2`)
	e.waitFor("six messages", `() => window.__events.filter((e) => e.name === "message").length >= 6`)
	got := evaluate[[]string](e, `window.__events.map((e) => e.name === "welcome" ? "welcome recovered=" + e.data.recovered : e.id.split("-").pop() + ":" + e.data.msg.n)`)
	want := []string{"welcome recovered=false", "1:1", "2:2", "3:3", "welcome recovered=true", "4:4", "5:5", "6:6"}
	if !slices.Equal(got, want) {
		t.Fatalf("the EventSource got\n  %v\nwant\n  %v", got, want)
	}
	evaluate[bool](e, `(() => { window.__es.close(); return true; })()`)
	e.close()
}
