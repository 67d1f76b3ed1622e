// status.js: the status page (/status). Every few seconds it reads
// GET /rooms and GET /metrics (the Prometheus text) and shows the rooms,
// their members, the connections and the message rates.

// ROOMS_PAGE is how many rooms the page lists: GET /rooms answers a page
// at a time, and this one is the first, in name order.
const ROOMS_PAGE = 1000;

// EVERY is the time between two refreshes, in ms; the second read comes
// after FIRST, so that the rates show soon after the page opens.
const EVERY = 3000;
const FIRST = 1000;

// state is everything the page shows; render() draws it.
const state = {
  // rooms: [{room, members}] from GET /rooms; moreRooms is true when
  // more rooms follow them than the page lists.
  rooms: [],
  moreRooms: false,
  // metrics: the figures read from /metrics (null until the first read).
  metrics: null,
  // rates are per second, between the last two reads (null after one).
  rates: { received: null, delivered: null },
  updated: null,
  error: "",
  // previous is the last read's counters and time, for the rates.
  previous: null,
};
window.lobbyStatus = state;

const $ = (id) => document.getElementById(id);

// parseMetrics reads the Prometheus text format into name -> value, the
// values of a metric's label sets added up (lobby_disconnects_total{...}).
export function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{.*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const v = Number(m[2]);
    if (Number.isNaN(v)) continue;
    out.set(m[1], (out.get(m[1]) ?? 0) + v);
  }
  return out;
}

async function get(path, as) {
  const res = await fetch(path, { cache: "no-store" });
  if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
  return as === "json" ? res.json() : res.text();
}

async function refresh() {
  try {
    const [rooms, text] = await Promise.all([get(`/rooms?limit=${ROOMS_PAGE}`, "json"), get("/metrics", "text")]);
    const m = parseMetrics(text);
    const now = performance.now();
    const figures = {
      connections: m.get("lobby_connections") ?? 0,
      rooms: m.get("lobby_rooms") ?? rooms.rooms.length,
      received: m.get("lobby_messages_received_total") ?? 0,
      delivered: m.get("lobby_messages_delivered_total") ?? 0,
      disconnects: m.get("lobby_disconnects_total") ?? 0,
      dropped: m.get("lobby_queue_dropped_total") ?? 0,
    };
    if (state.previous) {
      const dt = (now - state.previous.at) / 1000;
      state.rates = {
        received: Math.max(0, (figures.received - state.previous.received) / dt),
        delivered: Math.max(0, (figures.delivered - state.previous.delivered) / dt),
      };
    }
    state.previous = { at: now, received: figures.received, delivered: figures.delivered };
    state.rooms = rooms.rooms;
    state.moreRooms = Boolean(rooms.next);
    state.metrics = figures;
    state.updated = new Date();
    state.error = "";
  } catch (err) {
    state.error = err.message;
  }
  render();
  setTimeout(refresh, state.rates.received === null ? FIRST : EVERY);
}

const whole = new Intl.NumberFormat("en-US");
const rate = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

function pad(n) {
  return String(n).padStart(2, "0");
}

function figure(label, value, title) {
  const div = document.createElement("div");
  const dt = document.createElement("dt");
  dt.textContent = label;
  const dd = document.createElement("dd");
  dd.textContent = value;
  if (title) div.title = title;
  div.append(dt, dd);
  return div;
}

// render draws state.
function render() {
  const badge = $("state");
  if (state.error) {
    badge.textContent = "unreachable";
    badge.dataset.state = "gap";
    badge.title = state.error;
  } else if (state.updated) {
    const t = state.updated;
    badge.textContent = `updated ${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
    badge.dataset.state = "live";
    badge.title = "";
  }
  const m = state.metrics;
  const perSecond = (v) => (v === null ? "measuring…" : rate.format(v));
  $("figures").replaceChildren(
    ...(m
      ? [
          figure("Connections", whole.format(m.connections)),
          figure("Rooms", whole.format(m.rooms)),
          figure("Messages in / s", perSecond(state.rates.received), "frames from clients and HTTP publishes"),
          figure("Deliveries / s", perSecond(state.rates.delivered), "frames written to sockets"),
          figure("Messages in, total", whole.format(m.received)),
          figure("Deliveries, total", whole.format(m.delivered)),
          figure("Disconnects, total", whole.format(m.disconnects)),
          figure("Dropped (slow clients)", whole.format(m.dropped)),
        ]
      : []),
  );
  $("rooms").tBodies[0].replaceChildren(
    ...state.rooms.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.room = r.room;
      const name = document.createElement("td");
      const a = document.createElement("a");
      a.href = `/#${encodeURIComponent(r.room)}`;
      a.textContent = r.room;
      a.title = `chat in ${r.room}`;
      name.append(a);
      const members = document.createElement("td");
      members.className = "num";
      members.textContent = whole.format(r.members);
      tr.append(name, members);
      return tr;
    }),
  );
  $("room-count").textContent = m ? whole.format(m.rooms) : String(state.rooms.length);
  $("no-rooms").hidden = state.rooms.length > 0;
  $("more-rooms").hidden = !state.moreRooms;
  $("more-rooms").textContent = `The first ${whole.format(state.rooms.length)} rooms by name; more follow.`;
}

render();
refresh();
