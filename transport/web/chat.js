// chat.js: the chat page (/). It is in every room the URL hash lists
// (#news, or #news,team for two), all on one connection; the first is
// shown, the others count their unread messages, and rooms are joined and
// left without a reload. The default is "lobby". Everything shown is
// text: a message's body is set with textContent, never parsed as HTML.
import { Lobby, ROOM_PATTERN } from "/lobby.js";

// MAX_ITEMS bounds the lines the page keeps per room; the oldest go first.
const MAX_ITEMS = 500;
// SETTLE is how long the badge shows "recovered" or "gap" before it says
// "live" again: the notice is in the conversation, the badge is for now.
const SETTLE = 4000;

// state is everything the page shows; render() draws it.
const state = {
  // rooms are the rooms joined, in order: name -> view (see newView).
  rooms: new Map(),
  // room is the room shown.
  room: null,
  conn: "connecting",
  connDetail: "",
  id: null,
  name: "",
  // notices are errors of no room (a bad hash, a refused join).
  notices: [],
  nextKey: 1,
};
// The browser test (and anyone curious, from the console) reads it here.
window.lobbyChat = state;

const $ = (id) => document.getElementById(id);
const short = (id) => (id ? id.slice(0, 8) : "…");
let lobby = null;
// shown is the room whose lines #messages holds, for render().
let shown = null;

// newView is one room's part of the page: its client room, its lines
// ({key, kind, sender, text, time, seq}; kind is "msg", "direct", "join",
// "leave", "gap" or "error"), its members and names, its unread count and
// the state its badge shows.
function newView(name) {
  return { name, room: null, items: [], members: [], names: {}, unread: 0, state: "connecting", settle: 0 };
}

// display is how a member is shown: its name, or its id's first digits.
function display(v, id) {
  const name = v && v.names[id];
  return name ? `${name} · ${short(id)}` : short(id);
}

function roomsFromHash() {
  const raw = decodeURIComponent(location.hash.slice(1));
  const rooms = [];
  const errors = [];
  for (const r of raw.split(",").map((s) => s.trim())) {
    if (r === "") continue;
    if (ROOM_PATTERN.test(r)) {
      if (!rooms.includes(r)) rooms.push(r);
    } else {
      errors.push(`"${r}" is not a room name (1 to 64 of A-Z a-z 0-9 _ . -)`);
    }
  }
  if (rooms.length === 0) rooms.push("lobby");
  return { rooms, errors };
}

// writeHash puts the rooms joined in the URL, the shown one first, so
// that a reload or a shared link comes back to them.
function writeHash() {
  const names = [...state.rooms.keys()];
  names.sort((a, b) => (a === state.room ? -1 : b === state.room ? 1 : 0));
  history.replaceState(null, "", `#${names.map(encodeURIComponent).join(",")}`);
  document.title = `Lobby · ${state.room || "chat"}`;
}

function add(v, kind, fields) {
  v.items.push({ key: state.nextKey++, kind, time: new Date(), sender: null, text: "", seq: null, ...fields });
  if (v.items.length > MAX_ITEMS) v.items.splice(0, v.items.length - MAX_ITEMS);
  if (kind === "msg" && v.name !== state.room && fields.time !== null) v.unread++;
}

function text(msg) {
  return typeof msg === "string" ? msg : JSON.stringify(msg);
}

// setRoomState shows a room's state; "recovered" and "gap" settle back to
// "live" after a while, while the room stays live.
function setRoomState(v, s, detail) {
  clearTimeout(v.settle);
  v.state = s;
  v.detail = detail && detail.retryIn ? `retrying in ${(detail.retryIn / 1000).toFixed(1)} s` : "";
  if (s === "recovered" || s === "gap") {
    v.settle = setTimeout(() => {
      if (v.room && v.room.live) v.state = "live";
      render();
    }, SETTLE);
  }
}

// connect makes the page's one connection, and joins every room listed.
function connect(rooms) {
  if (lobby) lobby.close();
  state.rooms.clear();
  shown = null;
  const client = new Lobby(location.origin, {
    name: state.name,
    onState: (s, detail) => {
      if (lobby !== client) return;
      state.conn = s;
      state.connDetail = detail && detail.retryIn ? `retrying in ${(detail.retryIn / 1000).toFixed(1)} s` : "";
      state.id = client.id;
      render();
    },
    onDirect: (d) => {
      if (lobby !== client) return;
      const v = state.rooms.get(state.room);
      if (v) add(v, "direct", { sender: d.id, text: text(d.msg) });
      render();
    },
    onError: (err) => {
      if (lobby !== client) return;
      state.notices.push(err.message);
      render();
    },
  });
  lobby = client;
  for (const r of rooms) join(r);
  state.room = rooms[0];
  writeHash();
  render();
}

// join joins room on the page's connection, and shows it.
function join(name) {
  if (!state.rooms.has(name)) {
    const v = newView(name);
    state.rooms.set(name, v);
    const client = lobby;
    const mine = (fn) => (...args) => {
      if (lobby === client && state.rooms.get(name) === v) {
        fn(...args);
        render();
      }
    };
    v.room = lobby.join(name, {
      history: true,
      onState: mine((s, detail) => setRoomState(v, s, detail)),
      onPresence: mine((p) => {
        state.id = client.id;
        v.members = p.members;
        v.names = p.names;
        if (p.type === "joined") add(v, "join", { sender: p.id, text: `${display(v, p.id)} joined` });
        if (p.type === "left") add(v, "leave", { sender: p.id, text: `${display(v, p.id)} left` });
      }),
      onMessage: mine((m) => add(v, "msg", { sender: m.id, text: text(m.msg), seq: m.seq, time: typeof m.ts === "number" ? new Date(m.ts) : m.history ? null : new Date() })),
      onGap: mine((g) =>
        add(v, "gap", {
          text:
            g.epoch !== g.previousEpoch
              ? "The room was created anew (a restart, or it stood empty too long): earlier messages are gone."
              : `Messages ${g.since + 1} to ${g.seq} may be missing: the room's history no longer holds them.`,
        }),
      ),
      onError: mine((err) => {
        add(v, "error", { text: err.message });
        if (v.room.state === "closed") {
          // Refused (forbidden, too many rooms): the page says why, and
          // is no longer in it.
          state.notices.push(`${name}: ${err.message}`);
          leave(name);
        }
      }),
    });
  }
  show(name);
}

// leave leaves room; the page shows another one, if any is left.
function leave(name) {
  const v = state.rooms.get(name);
  if (!v) return;
  clearTimeout(v.settle);
  state.rooms.delete(name);
  v.room.leave();
  if (state.room === name) state.room = state.rooms.size ? state.rooms.keys().next().value : null;
  const v2 = state.rooms.get(state.room);
  if (v2) v2.unread = 0;
  writeHash();
  render();
}

function show(name) {
  state.room = name;
  const v = state.rooms.get(name);
  if (v) v.unread = 0;
  $("room-input").value = "";
  writeHash();
  render();
}

function send(e) {
  e.preventDefault();
  const input = $("text");
  const body = input.value;
  const v = state.rooms.get(state.room);
  if (body.trim() === "" || !v) return;
  input.value = "";
  v.room.broadcast(body).catch((err) => {
    add(v, "error", { text: `Not sent (${err.message}): ${body}` });
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

function itemElement(v, item) {
  const li = document.createElement("li");
  li.className = `item ${item.kind}`;
  li.dataset.key = item.key;
  li.dataset.room = v.name;
  if (item.sender && (item.kind === "msg" || item.kind === "direct")) {
    li.dataset.sender = item.sender;
    if (item.seq !== null) li.dataset.seq = item.seq;
    if (item.sender === state.id) li.classList.add("mine");
    // bdi: an id next to right-to-left text keeps its own direction.
    const who = document.createElement("bdi");
    who.className = "who";
    who.title = item.sender;
    const name = display(v, item.sender);
    who.textContent = item.kind === "direct" ? `${name} → you` : name;
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

function roomElement(v) {
  const li = document.createElement("li");
  li.dataset.room = v.name;
  if (v.name === state.room) li.className = "current";
  const pick = document.createElement("button");
  pick.type = "button";
  pick.className = "pick";
  pick.textContent = v.name;
  pick.addEventListener("click", () => show(v.name));
  const unread = document.createElement("span");
  unread.className = "unread count";
  unread.textContent = String(v.unread);
  unread.hidden = v.unread === 0;
  unread.title = "unread messages";
  const out = document.createElement("button");
  out.type = "button";
  out.className = "leave";
  out.textContent = "×";
  out.title = `leave ${v.name}`;
  out.setAttribute("aria-label", `leave ${v.name}`);
  out.addEventListener("click", () => leave(v.name));
  li.append(pick, " ", unread, " ", out);
  return li;
}

// render draws state: the connection and room state, your id, your rooms,
// the shown room's members and conversation (lines are only ever added
// at the end or dropped at the start, so only those changes are drawn,
// until another room is shown).
function render() {
  const v = state.rooms.get(state.room) || null;
  const s = state.conn === "live" && v ? v.state : state.conn;
  const detail = state.conn === "live" && v ? v.detail : state.connDetail;
  const badge = $("state");
  badge.textContent = detail ? `${s} · ${detail}` : s;
  badge.dataset.state = s;
  $("me").textContent = state.id || "…";
  $("me").title = state.id || "";
  $("current-room").textContent = v ? v.name : "no room";

  $("rooms").replaceChildren(...[...state.rooms.values()].map(roomElement));
  $("notices").replaceChildren(
    ...state.notices.slice(-5).map((n) => {
      const li = document.createElement("li");
      li.textContent = n;
      return li;
    }),
  );

  const members = v ? v.members : [];
  $("members").replaceChildren(
    ...members.map((id) => {
      const li = document.createElement("li");
      li.dataset.id = id;
      li.title = id;
      li.textContent = id === state.id ? `${display(v, id)} (you)` : display(v, id);
      if (id === state.id) li.className = "you";
      return li;
    }),
  );
  $("member-count").textContent = String(members.length);

  const list = $("messages");
  if (shown !== v) {
    list.replaceChildren();
    shown = v;
  }
  if (!v) return;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const first = v.items.length ? v.items[0].key : Infinity;
  while (list.firstElementChild && Number(list.firstElementChild.dataset.key) < first) {
    list.firstElementChild.remove();
  }
  const last = list.lastElementChild ? Number(list.lastElementChild.dataset.key) : 0;
  for (const item of v.items) {
    if (item.key > last) list.append(itemElement(v, item));
  }
  if (atBottom) list.scrollTop = list.scrollHeight;
}

$("send-form").addEventListener("submit", send);
$("room-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const room = $("room-input").value.trim();
  if (!ROOM_PATTERN.test(room)) {
    state.notices.push(`"${room}" is not a room name (1 to 64 of A-Z a-z 0-9 _ . -)`);
    render();
    return;
  }
  join(room);
});
$("name-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("name-input").value.trim();
  if (name === state.name) return;
  state.name = name;
  try {
    localStorage.setItem("lobby.name", name);
  } catch {
    // No storage (a private window): the name lasts this page.
  }
  // A name is the connection's: connect again, in the same rooms.
  const rooms = [...state.rooms.keys()];
  rooms.sort((a, b) => (a === state.room ? -1 : b === state.room ? 1 : 0));
  connect(rooms.length ? rooms : ["lobby"]);
});
window.addEventListener("hashchange", () => {
  // A hash typed or followed: join what it lists, show its first.
  const { rooms, errors } = roomsFromHash();
  state.notices.push(...errors);
  for (const r of rooms.slice(1)) if (!state.rooms.has(r)) join(r);
  join(rooms[0]);
});

try {
  state.name = localStorage.getItem("lobby.name") || "";
} catch {
  state.name = "";
}
$("name-input").value = state.name;
const { rooms, errors } = roomsFromHash();
state.notices.push(...errors);
connect(rooms);
