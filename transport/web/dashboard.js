// dashboard.js: the live statistics page (/dashboard). It watches room
// dailyNews (or ?room=<name>), where POST /dailyDashBoard publishes each
// batch of statistic records as a JSON array, and shows the latest record
// per product line and a chart of total_amount per product line. It starts
// from the room's history, so it shows the recent past at once; the room
// keeps its last batch past --history-ttl (its latest value), so a page
// opened long after the last batch still shows the current state.
//
// The chart's x axis is time: when the room accepted each batch (its ts).
import uPlot from "/vendor/uPlot.esm.js";
import { Lobby, ROOM_PATTERN } from "/lobby.js";

// The page's own bounds, whatever the server lets through (a deployment
// may let room members publish, a publisher may be careless, and one
// POST /dailyDashBoard carries up to 10 000 records): 9 000 rows and a
// series per product line froze a tab for seconds with millions of nodes.
//
// MAX_LINES is how many product lines the page keeps at all, the most
// recently updated: one full batch. TABLE_ROWS are shown in the table (in
// ID order), a few screens of rows, ~1 800 elements, updated in place.
// CHART_LINES are charted, the first seen (until their values have all
// scrolled out): past a few dozen lines a chart is unreadable anyway, and
// each is a series and a legend row. MAX_POINTS bounds the batches
// charted (each charted line keeps one value per batch, a ring of
// MAX_POINTS), MAX_ODD the unexpected records listed and MAX_NOTICES the
// notices; the oldest go first.
const MAX_LINES = 10_000;
const TABLE_ROWS = 200;
const CHART_LINES = 50;
const MAX_POINTS = 500;
const MAX_ODD = 20;
const MAX_NOTICES = 10;
// MAX_FIGURE and MAX_TEXT are the route's bounds (transport/publish.go);
// a record past them is listed as unexpected, not shown.
const MAX_FIGURE = 1e15;
const MAX_TEXT = 100;
// MAX_RAW bounds the characters of an unexpected record shown.
const MAX_RAW = 300;
const COLORS = ["#2457c5", "#d9480f", "#2b8a3e", "#ae3ec9", "#e67700", "#0c8599", "#c2255c", "#5c940d"];

// state is everything the page shows; render() draws it.
const state = {
  room: "dailyNews",
  conn: "connecting",
  // rows: product_line -> {record, seq, batch, at}; at is when the room
  // accepted the record's batch (null if the server did not say). Its
  // order is the order of the last update, so the first is the stalest.
  rows: new Map(),
  // dropped counts the product lines dropped past MAX_LINES.
  dropped: 0,
  // lines are the product lines charted, in the order first seen.
  lines: [],
  // chart: x is the batches' times (Unix seconds, as uPlot's time scale
  // takes them); y maps a charted product line to its total_amount in
  // each batch (null when a batch did not have it).
  chart: { x: [], y: new Map() },
  batches: 0,
  lastSeq: 0,
  // odd are the records of an unexpected shape: {seq, raw}.
  odd: [],
  oddTotal: 0,
  notices: [],
};

// view holds what render() made and keeps: the chart, the table's rows,
// and figures for the browser test: builds counts the charts built,
// drawn the batches drawn, and the last and longest handling of a message
// and of a render, in ms.
const view = {
  plot: null,
  lines: "",
  trs: [],
  builds: 0,
  drawn: 0,
  timing: { batchMs: 0, maxBatchMs: 0, renderMs: 0, maxRenderMs: 0 },
};

// window.lobbyDashboard lets the browser test (and the console) read the
// page's state and the data the chart draws.
window.lobbyDashboard = {
  state,
  get plotted() {
    return view.plot ? { series: view.plot.series.map((s) => s.label), data: view.plot.data } : null;
  },
  get builds() {
    return view.builds;
  },
  // drawn is the number of batches the page had taken at its last render.
  get drawn() {
    return view.drawn;
  },
  timing: view.timing,
};

const $ = (id) => document.getElementById(id);

const figure = (v, min) => typeof v === "number" && Number.isFinite(v) && v >= min && v <= MAX_FIGURE;
// text counts characters as the route does (code points, not UTF-16 units).
const text = (v, min) =>
  typeof v === "string" && v.length >= min && (v.length <= MAX_TEXT || (v.length <= 2 * MAX_TEXT && [...v].length <= MAX_TEXT));

// isRecord reports whether r has the fields of a statistic record, with
// figures a day of business can have.
function isRecord(r) {
  return (
    r !== null &&
    typeof r === "object" &&
    !Array.isArray(r) &&
    text(r.product_line, 1) &&
    Number.isSafeInteger(r.product_line_id) &&
    Number.isSafeInteger(r.total_trx) &&
    figure(r.total_trx, 0) &&
    figure(r.total_amount, -MAX_FIGURE) &&
    text(r.currency, 0) &&
    text(r.group_status, 0)
  );
}

function addOdd(seq, value) {
  state.oddTotal++;
  let raw = JSON.stringify(value) ?? String(value);
  if (raw.length > MAX_RAW) raw = `${raw.slice(0, MAX_RAW)}…`;
  state.odd.push({ seq, raw });
  if (state.odd.length > MAX_ODD) state.odd.shift();
}

function addNotice(n) {
  state.notices.push(n);
  if (state.notices.length > MAX_NOTICES) state.notices.shift();
}

// batch takes one message of the room: normally an array of records.
function batch(m) {
  state.lastSeq = m.seq;
  if (!Array.isArray(m.msg)) {
    addOdd(m.seq, m.msg);
    return;
  }
  const amounts = new Map();
  let valid = 0;
  const n = state.batches + 1;
  const at = typeof m.ts === "number" ? new Date(m.ts) : m.history ? null : new Date();
  for (const r of m.msg) {
    if (!isRecord(r)) {
      addOdd(m.seq, r);
      continue;
    }
    valid++;
    // Delete first, so that the line moves to the end: the first is
    // always the stalest, the one to drop.
    state.rows.delete(r.product_line);
    state.rows.set(r.product_line, { record: r, seq: m.seq, batch: n, at });
    if (!state.chart.y.has(r.product_line) && state.lines.length < CHART_LINES) {
      state.lines.push(r.product_line);
      state.chart.y.set(r.product_line, new Array(state.chart.x.length).fill(null));
    }
    if (state.chart.y.has(r.product_line)) amounts.set(r.product_line, r.total_amount);
  }
  for (const line of state.rows.keys()) {
    if (state.rows.size <= MAX_LINES) break;
    state.rows.delete(line);
    state.dropped++;
  }
  if (valid === 0) return;
  state.batches = n;
  state.chart.x.push((at ?? new Date()).getTime() / 1000);
  for (const [line, ys] of state.chart.y) ys.push(amounts.has(line) ? amounts.get(line) : null);
  if (state.chart.x.length > MAX_POINTS) {
    state.chart.x.shift();
    // A line whose values have all left the chart leaves it too, and
    // makes room for one first seen later: the first 50 lines seen (a
    // careless publisher's, say) do not hold the chart for ever.
    for (const [line, ys] of state.chart.y) {
      if (ys.shift() !== null && ys.every((v) => v === null)) state.chart.y.delete(line);
    }
    if (state.chart.y.size < state.lines.length) state.lines = state.lines.filter((l) => state.chart.y.has(l));
  }
}

const amount = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const count = new Intl.NumberFormat("en-US");

function pad(n) {
  return String(n).padStart(2, "0");
}

// clock shows at as a time of day, with its date when it is not today.
function clock(at) {
  const time = `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
  if (at.toDateString() === new Date().toDateString()) return time;
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ${time}`;
}

// CELLS are the table's columns: their class and what they show.
const CELLS = [
  ["", (r) => r.record.product_line],
  ["wide", (r) => String(r.record.product_line_id)],
  ["num", (r) => count.format(r.record.total_trx)],
  ["num amount", (r) => amount.format(r.record.total_amount)],
  ["", (r) => r.record.currency],
  ["", (r) => r.record.group_status],
  ["num wide", (r) => `#${r.batch}`],
  ["wide", (r) => (r.at ? clock(r.at) : "earlier")],
];

function byID(a, b) {
  const d = a.record.product_line_id - b.record.product_line_id;
  if (d !== 0) return d;
  const x = a.record.product_line;
  const y = b.record.product_line;
  return x < y ? -1 : x > y ? 1 : 0;
}

// renderTable shows the first TABLE_ROWS rows in ID order, in at most
// TABLE_ROWS <tr>s made once and updated in place.
function renderTable() {
  const rows = [...state.rows.values()].sort(byID).slice(0, TABLE_ROWS);
  const body = $("latest").tBodies[0];
  while (view.trs.length < rows.length) {
    const tr = document.createElement("tr");
    for (const [className] of CELLS) {
      const td = document.createElement("td");
      if (className) td.className = className;
      tr.append(td);
    }
    view.trs.push(tr);
    body.append(tr);
  }
  while (view.trs.length > rows.length) view.trs.pop().remove();
  rows.forEach((row, i) => {
    const tr = view.trs[i];
    if (tr.dataset.line !== row.record.product_line) tr.dataset.line = row.record.product_line;
    const fresh = row.seq === state.lastSeq ? "fresh" : "";
    if (tr.className !== fresh) tr.className = fresh;
    CELLS.forEach(([, show], j) => {
      const v = show(row);
      const td = tr.cells[j];
      if (td.textContent !== v) td.textContent = v;
    });
  });
  $("empty").hidden = rows.length > 0;
  const total = state.rows.size;
  const capped = total > rows.length || state.lines.length < total;
  $("capped").hidden = !capped;
  if (capped) {
    const kept = state.dropped > 0 ? ` (the ${count.format(total)} updated last; ${count.format(state.dropped)} older ones dropped)` : "";
    $("capped").textContent =
      `showing ${count.format(rows.length)} of ${count.format(total)} product lines${kept} in the table (by ID), ` +
      `${count.format(state.lines.length)} in the chart (the first seen)`;
  }
}

function chartSize() {
  const el = $("chart");
  return { width: Math.max(200, el.clientWidth), height: window.innerWidth < 600 ? 220 : 300 };
}

function renderChart() {
  const el = $("chart");
  if (state.chart.x.length === 0) {
    if (!el.firstChild) {
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = "The chart starts with the first batch.";
      el.append(p);
    }
    return;
  }
  const data = [state.chart.x.slice(), ...state.lines.map((l) => state.chart.y.get(l).slice())];
  const lines = state.lines.join("\u0000");
  if (view.plot && view.lines === lines) {
    view.plot.setData(data);
    return;
  }
  // A new product line is a new series: draw the chart anew (at most
  // CHART_LINES times, and once a render however many lines came).
  view.builds++;
  if (view.plot) view.plot.destroy();
  el.replaceChildren();
  const opts = {
    ...chartSize(),
    scales: { x: { time: true } },
    axes: [
      { label: "time" },
      { label: "total amount", size: 70 },
    ],
    series: [
      { label: "time" },
      ...state.lines.map((l, i) => ({
        label: l,
        stroke: COLORS[i % COLORS.length],
        width: 2,
        spanGaps: true,
        points: { show: true, size: 6 },
      })),
    ],
  };
  view.plot = new uPlot(opts, data, el);
  view.lines = lines;
}

function renderOdd() {
  $("odd").replaceChildren(
    ...state.odd.map((o) => {
      const li = document.createElement("li");
      const seq = document.createElement("span");
      seq.className = "seq";
      seq.textContent = `#${o.seq}`;
      const code = document.createElement("code");
      code.textContent = o.raw;
      li.append(seq, " ", code);
      return li;
    }),
  );
  $("odd-count").textContent = String(state.oddTotal);
}

// render draws state.
function render() {
  const start = performance.now();
  $("state").textContent = state.conn;
  $("state").dataset.state = state.conn;
  $("room").textContent = state.room;
  $("notices").replaceChildren(
    ...state.notices.map((n) => {
      const li = document.createElement("li");
      li.textContent = n;
      return li;
    }),
  );
  renderTable();
  renderChart();
  renderOdd();
  view.drawn = state.batches;
  time("render", performance.now() - start);
}

// time records how long the main thread spent on what ("batch" or
// "render"): the browser test's measure of a flood.
function time(what, ms) {
  const max = `max${what[0].toUpperCase()}${what.slice(1)}Ms`;
  view.timing[`${what}Ms`] = ms;
  view.timing[max] = Math.max(view.timing[max], ms);
}

// scheduleRender renders once for whatever came before the next frame:
// batches arrive one message at a time (and a room's history many at
// once), and drawing each one would redraw the chart for nothing. A
// timeout stands in for a frame in a tab the browser does not paint.
let pending = false;
function scheduleRender() {
  if (pending) return;
  pending = true;
  const run = () => {
    if (!pending) return;
    pending = false;
    render();
  };
  requestAnimationFrame(run);
  setTimeout(run, 100);
}

// ?room=a&room=b watches several rooms, on one connection: their batches
// feed the one table and chart.
const wanted = new URLSearchParams(location.search).getAll("room").filter((r) => r !== "");
const rooms = wanted.filter((r) => ROOM_PATTERN.test(r));
for (const r of wanted.filter((r) => !ROOM_PATTERN.test(r))) addNotice(`"${r}" is not a room name; not shown.`);
if (rooms.length === 0) rooms.push(state.room);
state.room = rooms.join(", ");
document.title = `Lobby · dashboard · ${state.room}`;

// roomStates are each room's; the badge shows the connection's, or the
// first room's that is not live.
const roomStates = new Map(rooms.map((r) => [r, "connecting"]));
let connState = "connecting";
function showState() {
  const notLive = [...roomStates.values()].find((s) => s !== "live");
  state.conn = connState !== "live" ? connState : notLive || "live";
  scheduleRender();
}
const lobby = new Lobby(location.origin, {
  onState: (s) => {
    connState = s;
    showState();
  },
  onError: (err) => {
    addNotice(err.message);
    scheduleRender();
  },
});
for (const r of rooms) {
  lobby.join(r, {
    history: true,
    onState: (s) => {
      roomStates.set(r, s);
      showState();
    },
    onMessage: (m) => {
      const start = performance.now();
      batch(m);
      time("batch", performance.now() - start);
      scheduleRender();
    },
    onGap: (g) => {
      addNotice(
        g.epoch !== g.previousEpoch
          ? `${r}: the room was created anew (a restart, or it stood empty too long): the chart may lack earlier batches.`
          : `${r}: batches ${g.since + 1} to ${g.seq} may be missing: the room's history no longer held them.`,
      );
      scheduleRender();
    },
    onError: (err) => {
      addNotice(`${r}: ${err.message}`);
      scheduleRender();
    },
  });
}

window.addEventListener("resize", () => {
  if (view.plot) view.plot.setSize(chartSize());
});
render();
