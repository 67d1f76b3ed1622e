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

// MAX_POINTS bounds the batches charted and MAX_ODD the unexpected records
// listed; the oldest go first.
const MAX_POINTS = 500;
const MAX_ODD = 50;
const COLORS = ["#2457c5", "#d9480f", "#2b8a3e", "#ae3ec9", "#e67700", "#0c8599", "#c2255c", "#5c940d"];

// state is everything the page shows; render() draws it.
const state = {
  room: "dailyNews",
  conn: "connecting",
  // rows: product_line -> {record, seq, batch, at}; at is when the room
  // accepted the record's batch (null if the server did not say).
  rows: new Map(),
  // lines are the product lines charted, in the order first seen.
  lines: [],
  // chart: x is the batches' times (Unix seconds, as uPlot's time scale
  // takes them); y maps a product line to its total_amount in each batch
  // (null when a batch did not have it).
  chart: { x: [], y: new Map() },
  batches: 0,
  lastSeq: 0,
  // odd are the records of an unexpected shape: {seq, raw}.
  odd: [],
  oddTotal: 0,
  notices: [],
};

// view holds what render() made and keeps: the chart.
const view = { plot: null, lines: "" };

// window.lobbyDashboard lets the browser test (and the console) read the
// page's state and the data the chart draws.
window.lobbyDashboard = {
  state,
  get plotted() {
    return view.plot ? { series: view.plot.series.map((s) => s.label), data: view.plot.data } : null;
  },
};

const $ = (id) => document.getElementById(id);

// isRecord reports whether r has the fields of a statistic record.
function isRecord(r) {
  return (
    r !== null &&
    typeof r === "object" &&
    !Array.isArray(r) &&
    typeof r.product_line === "string" &&
    r.product_line !== "" &&
    typeof r.product_line_id === "number" &&
    typeof r.total_trx === "number" &&
    typeof r.total_amount === "number" &&
    Number.isFinite(r.total_amount) &&
    typeof r.currency === "string" &&
    typeof r.group_status === "string"
  );
}

function addOdd(seq, value) {
  state.oddTotal++;
  state.odd.push({ seq, raw: JSON.stringify(value) });
  if (state.odd.length > MAX_ODD) state.odd.shift();
}

// batch takes one message of the room: normally an array of records.
function batch(m) {
  state.lastSeq = m.seq;
  if (!Array.isArray(m.msg)) {
    addOdd(m.seq, m.msg);
    return;
  }
  const amounts = new Map();
  const n = state.batches + 1;
  const at = typeof m.ts === "number" ? new Date(m.ts) : m.history ? null : new Date();
  for (const r of m.msg) {
    if (!isRecord(r)) {
      addOdd(m.seq, r);
      continue;
    }
    state.rows.set(r.product_line, { record: r, seq: m.seq, batch: n, at });
    if (!state.chart.y.has(r.product_line)) {
      state.lines.push(r.product_line);
      state.chart.y.set(r.product_line, new Array(state.chart.x.length).fill(null));
    }
    amounts.set(r.product_line, r.total_amount);
  }
  if (amounts.size === 0) return;
  state.batches = n;
  state.chart.x.push((at ?? new Date()).getTime() / 1000);
  for (const [line, ys] of state.chart.y) ys.push(amounts.has(line) ? amounts.get(line) : null);
  if (state.chart.x.length > MAX_POINTS) {
    state.chart.x.shift();
    for (const ys of state.chart.y.values()) ys.shift();
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

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function renderTable() {
  const rows = [...state.rows.values()].sort(
    (a, b) => a.record.product_line_id - b.record.product_line_id || a.record.product_line.localeCompare(b.record.product_line),
  );
  $("latest").tBodies[0].replaceChildren(
    ...rows.map(({ record: r, seq, batch: n, at }) => {
      const tr = document.createElement("tr");
      tr.dataset.line = r.product_line;
      if (seq === state.lastSeq) tr.className = "fresh";
      tr.append(
        cell(r.product_line),
        cell(String(r.product_line_id), "wide"),
        cell(count.format(r.total_trx), "num"),
        cell(amount.format(r.total_amount), "num amount"),
        cell(r.currency),
        cell(r.group_status),
        cell(`#${n}`, "num wide"),
        cell(at ? clock(at) : "earlier", "wide"),
      );
      return tr;
    }),
  );
  $("empty").hidden = rows.length > 0;
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
  // A new product line is a new series: draw the chart anew.
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
}

// ?room=a&room=b watches several rooms, on one connection: their batches
// feed the one table and chart.
const wanted = new URLSearchParams(location.search).getAll("room").filter((r) => r !== "");
const rooms = wanted.filter((r) => ROOM_PATTERN.test(r));
for (const r of wanted.filter((r) => !ROOM_PATTERN.test(r))) state.notices.push(`"${r}" is not a room name; not shown.`);
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
  render();
}
const lobby = new Lobby(location.origin, {
  onState: (s) => {
    connState = s;
    showState();
  },
  onError: (err) => {
    state.notices.push(err.message);
    render();
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
      batch(m);
      render();
    },
    onGap: (g) => {
      state.notices.push(
        g.epoch !== g.previousEpoch
          ? `${r}: the room was created anew (a restart, or it stood empty too long): the chart may lack earlier batches.`
          : `${r}: batches ${g.since + 1} to ${g.seq} may be missing: the room's history no longer held them.`,
      );
      render();
    },
    onError: (err) => {
      state.notices.push(`${r}: ${err.message}`);
      render();
    },
  });
}

window.addEventListener("resize", () => {
  if (view.plot) view.plot.setSize(chartSize());
});
render();
