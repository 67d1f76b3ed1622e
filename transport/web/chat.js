// chat.js: the chat page (/). The room comes from the URL hash (#news), so
// a link joins it; the default is "lobby". Everything shown is text: a
// message's body is set with textContent, never parsed as HTML.
import { Lobby, ROOM_PATTERN } from "/lobby.js";

// MAX_ITEMS bounds the lines the page keeps; the oldest go first.
const MAX_ITEMS = 500;

// state is everything the page shows; render() draws it.
const state = {
  room: "lobby",
  conn: "connecting",
  connDetail: "",
  id: null,
  members: [],
  // items are the lines of the conversation: {key, kind, sender, text,
  // time, seq}; kind is "msg", "direct", "join", "leave", "gap" or "error".
  items: [],
  nextKey: 1,
};
// The browser test (and anyone curious, from the console) reads it here.
window.lobbyChat = state;

const $ = (id) => document.getElementById(id);
const short = (id) => (id ? id.slice(0, 8) : "…");
let lobby = null;

function roomFromHash() {
  const raw = decodeURIComponent(location.hash.slice(1));
  if (raw === "") return { room: "lobby" };
  if (ROOM_PATTERN.test(raw)) return { room: raw };
  return { room: "lobby", error: `"${raw}" is not a room name (1 to 64 of A-Z a-z 0-9 _ . -); joined lobby instead` };
}

function add(kind, fields) {
  state.items.push({ key: state.nextKey++, kind, time: new Date(), sender: null, text: "", seq: null, ...fields });
  if (state.items.length > MAX_ITEMS) state.items.splice(0, state.items.length - MAX_ITEMS);
}

function text(msg) {
  return typeof msg === "string" ? msg : JSON.stringify(msg);
}

// join leaves the current room, if any, and joins room.
function join(room, error) {
  if (lobby) lobby.close();
  Object.assign(state, { room, conn: "connecting", connDetail: "", id: null, members: [], items: [] });
  if (error) add("error", { text: error });
  document.title = `Lobby · ${room}`;
  $("room-input").value = room;
  // Handlers of a room left behind must not touch the page.
  const mine = (fn) => (...args) => {
    if (lobby === client) {
      fn(...args);
      render();
    }
  };
  const client = new Lobby(location.origin, room, {
    history: true,
    onState: mine((s, detail) => {
      state.conn = s;
      state.connDetail = detail.retryIn ? `retrying in ${(detail.retryIn / 1000).toFixed(1)} s` : "";
    }),
    onPresence: mine((p) => {
      state.id = client.id;
      state.members = p.members;
      if (p.type === "joined") add("join", { sender: p.id, text: `${short(p.id)} joined` });
      if (p.type === "left") add("leave", { sender: p.id, text: `${short(p.id)} left` });
    }),
    onMessage: mine((m) => add("msg", { sender: m.id, text: text(m.msg), seq: m.seq, time: typeof m.ts === "number" ? new Date(m.ts) : m.history ? null : new Date() })),
    onDirect: mine((d) => add("direct", { sender: d.id, text: text(d.msg) })),
    onGap: mine((g) =>
      add("gap", {
        text:
          g.epoch !== g.previousEpoch
            ? "The room was created anew (a restart, or it stood empty too long): earlier messages are gone."
            : `Messages ${g.since + 1} to ${g.seq} may be missing: the room's history no longer holds them.`,
      }),
    ),
    onError: mine((err) => add("error", { text: err.message })),
  });
  lobby = client;
  render();
}

function send(e) {
  e.preventDefault();
  const input = $("text");
  const body = input.value;
  if (body.trim() === "") return;
  input.value = "";
  lobby.broadcast(body).catch((err) => {
    add("error", { text: `Not sent (${err.message}): ${body}` });
    if (input.value === "") input.value = body;
    render();
  });
}

function pad(n) {
  return String(n).padStart(2, "0");
}

function clock(t) {
  return t ? `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}` : "earlier";
}

function itemElement(item) {
  const li = document.createElement("li");
  li.className = `item ${item.kind}`;
  li.dataset.key = item.key;
  if (item.sender && (item.kind === "msg" || item.kind === "direct")) {
    li.dataset.sender = item.sender;
    if (item.seq !== null) li.dataset.seq = item.seq;
    if (item.sender === state.id) li.classList.add("mine");
    // bdi: an id next to right-to-left text keeps its own direction.
    const who = document.createElement("bdi");
    who.className = "who";
    who.title = item.sender;
    who.textContent = item.kind === "direct" ? `${short(item.sender)} → you` : short(item.sender);
    li.append(who, " ");
  }
  const time = document.createElement("time");
  time.textContent = clock(item.time);
  if (!item.time) time.title = "from the room's history, which keeps no times";
  // The text is a block of its own, set apart, in its own direction: a
  // message with newlines cannot show a line that passes for another
  // member's message, nor an override reverse what follows it.
  const body = document.createElement("div");
  body.className = "text";
  body.dir = "auto";
  body.textContent = item.text;
  li.append(time, " ", body);
  return li;
}

// render draws state: the connection state, your id, the members, and the
// conversation (lines are only ever added at the end or dropped at the
// start, so only those changes are drawn).
function render() {
  const badge = $("state");
  badge.textContent = state.connDetail ? `${state.conn} · ${state.connDetail}` : state.conn;
  badge.dataset.state = state.conn;
  $("me").textContent = state.id || "…";
  $("me").title = state.id || "";

  const members = $("members");
  members.replaceChildren(
    ...state.members.map((id) => {
      const li = document.createElement("li");
      li.dataset.id = id;
      li.title = id;
      li.textContent = id === state.id ? `${short(id)} (you)` : short(id);
      if (id === state.id) li.className = "you";
      return li;
    }),
  );
  $("member-count").textContent = String(state.members.length);

  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const first = state.items.length ? state.items[0].key : Infinity;
  while (list.firstElementChild && Number(list.firstElementChild.dataset.key) < first) {
    list.firstElementChild.remove();
  }
  const last = list.lastElementChild ? Number(list.lastElementChild.dataset.key) : 0;
  for (const item of state.items) {
    if (item.key > last) list.append(itemElement(item));
  }
  if (atBottom) list.scrollTop = list.scrollHeight;
}

$("send-form").addEventListener("submit", send);
$("room-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const room = $("room-input").value.trim();
  if (room !== state.room) location.hash = encodeURIComponent(room);
});
window.addEventListener("hashchange", () => {
  const { room, error } = roomFromHash();
  if (room !== state.room || error) join(room, error);
});

const { room, error } = roomFromHash();
join(room, error);
