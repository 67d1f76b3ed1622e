// q-presenter.js: the presenter's page (/q/<id>/present), made for the
// big screen. It shows the current question with a live bar chart of the
// answers (counts and percentages), moves to the previous or next
// question, closes the questionnaire, counts the participants connected,
// and shows the participants' link large, with its QR code.
//
// The presenter token comes in the link's fragment (#token=...), which a
// browser never sends to a server: the page keeps it in localStorage for
// this questionnaire and takes it out of the address bar at once, since
// the address bar may be on the big screen too. It goes to the server only
// as the results' Authorization header and the socket's ?token=.
import qrcode from "/vendor/qrcode.mjs";
import { api, ApiError, QSocket, connectionText, pageID, percent, recall, remember } from "/questionnaire.js";

// state is everything the page shows; render() draws it.
const state = {
  id: pageID(),
  token: "",
  // phase: "loading", "missing" (no such questionnaire), "token" (a token
  // is needed, or the one given is wrong), "failed", "open" or "closed".
  phase: "loading",
  title: "",
  questions: [], // [{text, options}] from GET /questionnaires/<id>
  conn: "loading",
  connDetail: {},
  current: null, // the question shown, null before the first show
  counts: null, // the current question's counts, from the last tally
  participants: 0,
  confirmClose: false,
  notice: "",
};
// The browser test (and anyone curious, from the console) reads it here.
window.lobbyPresenter = state;

const $ = (id) => document.getElementById(id);
let socket = null;

function onFrame(f) {
  switch (f.type) {
    case "state":
      state.current = f.current;
      state.participants = f.participants;
      if (f.closed) state.phase = "closed";
      if (f.current === null) state.counts = null;
      break;
    case "tally":
      state.current = f.question;
      state.counts = f.counts;
      state.participants = f.participants;
      break;
    case "closed":
      state.phase = "closed";
      state.confirmClose = false;
      break;
    case "error":
      state.notice = f.message;
      break;
  }
  render();
}

function show(index) {
  if (state.phase !== "open" || index < 0 || index >= state.questions.length) return;
  if (!socket.send({ type: "show", question: index })) {
    state.notice = "Not connected: try again when the badge says live.";
  } else {
    state.notice = "";
  }
  render();
}

function closeQuestionnaire() {
  state.confirmClose = false;
  if (!socket.send({ type: "close" })) state.notice = "Not connected: not closed. Try again when the badge says live.";
  render();
}

function participantURL() {
  return `${location.origin}/q/${state.id}`;
}

// drawQR draws the participants' link, once, as a QR code: an SVG path of its
// dark modules, built with createElementNS (the CSP allows no data: image).
function drawQR() {
  const qr = qrcode(0, "M");
  qr.addData(participantURL());
  qr.make();
  const n = qr.getModuleCount();
  const quiet = 2;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `${-quiet} ${-quiet} ${n + 2 * quiet} ${n + 2 * quiet}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `QR code of ${participantURL()}`);
  svg.setAttribute("shape-rendering", "crispEdges");
  const bg = document.createElementNS(ns, "rect");
  bg.setAttribute("x", -quiet);
  bg.setAttribute("y", -quiet);
  bg.setAttribute("width", n + 2 * quiet);
  bg.setAttribute("height", n + 2 * quiet);
  bg.setAttribute("fill", "#fff");
  let d = "";
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      if (qr.isDark(r, c)) d += `M${c} ${r}h1v1h-1z`;
    }
  }
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.append(bg, path);
  $("qr").replaceChildren(svg);
}

function bar(text, count, total, k) {
  const li = document.createElement("li");
  li.dataset.option = k;
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = text;
  label.dir = "auto"; // an option's text keeps its own direction
  const track = document.createElement("span");
  track.className = "track";
  const fill = document.createElement("span");
  fill.className = "fill";
  // A style property set from a script is CSSOM, which the CSP allows.
  fill.style.width = total > 0 ? `${(100 * count) / total}%` : "0";
  track.append(fill);
  const figures = document.createElement("span");
  figures.className = "q-figures";
  const c = document.createElement("span");
  c.className = "q-count";
  c.textContent = String(count);
  const p = document.createElement("span");
  p.className = "q-percent";
  p.textContent = percent(count, total);
  figures.append(c, " · ", p);
  li.append(label, figures, track);
  return li;
}

// render draws state.
function render() {
  const badge = $("state");
  badge.textContent = state.phase === "closed" ? "closed" : connectionText(state.conn, state.connDetail);
  badge.dataset.state = state.phase === "closed" ? "closed" : state.conn;
  $("title").textContent = state.title;
  $("title").dir = "auto";
  document.title = state.title ? `${state.title} · presenter · Lobby` : "Lobby · presenter";

  const messages = {
    loading: "Loading…",
    missing: "No such questionnaire. Check the link.",
    token: state.notice || "This page needs the questionnaire's presenter token.",
    failed: state.notice,
  };
  let message = messages[state.phase] ?? "";
  if (state.phase === "open" && state.current === null) message = "No question shown yet. Press Next to show the first one.";
  $("message").textContent = message;
  $("message").hidden = message === "";
  $("token-form").hidden = state.phase !== "token";

  const live = state.phase === "open" || state.phase === "closed";
  const q = state.current === null ? null : state.questions[state.current];
  $("show").hidden = !live || !q;
  if (live && q) {
    const counts = state.counts && state.counts.length === q.options.length ? state.counts : q.options.map(() => 0);
    const total = counts.reduce((a, b) => a + b, 0);
    $("position").textContent = `Question ${state.current + 1} of ${state.questions.length}${state.phase === "closed" ? " · closed" : ""}`;
    $("question-text").textContent = q.text;
    $("question-text").dir = "auto";
    $("bars").replaceChildren(...q.options.map((text, k) => bar(text, counts[k], total, k)));
    $("answers").textContent = `${total} ${total === 1 ? "answer" : "answers"} · ${state.participants} connected`;
  }

  const open = state.phase === "open";
  $("controls").hidden = !open || state.confirmClose;
  $("prev").disabled = state.current === null || state.current === 0;
  $("next").disabled = state.current === state.questions.length - 1;
  $("next").textContent = state.current === null ? "Show the first question ▶" : "Next ▶";
  $("confirm").hidden = !open || !state.confirmClose;

  $("join").hidden = !live;
  if (live && $("participant-link").textContent === "") {
    $("participant-link").href = participantURL();
    $("participant-link").textContent = participantURL();
    drawQR();
  }
  // The count is the server's, so it is shown only while connected.
  $("participants").parentElement.hidden = state.conn !== "live";
  $("participants").textContent = String(state.participants);
  $("participants-label").textContent = state.participants === 1 ? "participant connected" : "participants connected";

  const notice = state.phase === "token" || state.phase === "failed" ? "" : state.notice;
  $("notice").textContent = notice;
  $("notice").hidden = notice === "";
}

// begin checks the token (GET /results: a wrong one is a 403 there, where
// the socket could only fail), then connects.
async function begin() {
  let results;
  try {
    results = await api(`/questionnaires/${state.id}/results`, { token: state.token });
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      state.phase = "token";
      state.notice = `${err.message}.`;
    } else {
      state.phase = "failed";
      state.notice = `Could not check the token: ${err.message}. Reload to try again.`;
    }
    render();
    return;
  }
  remember(state.id, "token", state.token);
  state.phase = results.closed ? "closed" : "open";
  state.current = results.current;
  state.counts = results.current === null ? null : results.results[results.current];
  state.conn = "connecting";
  if (state.phase === "open") {
    socket = new QSocket(`/questionnaires/${state.id}/presenter?token=${encodeURIComponent(state.token)}`, {
      onFrame,
      onState: (s, detail) => {
        state.conn = s;
        state.connDetail = detail;
        render();
      },
    });
  }
  render();
}

async function start() {
  if (!state.id) {
    state.phase = "missing";
    render();
    return;
  }
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromLink) {
    remember(state.id, "token", fromLink);
    // Out of the address bar, which the audience may see.
    history.replaceState(null, "", location.pathname + location.search);
  }
  state.token = fromLink || recall(state.id, "token");
  try {
    const def = await api(`/questionnaires/${state.id}`);
    state.title = def.title;
    state.questions = def.questions;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      state.phase = "missing";
    } else {
      state.phase = "failed";
      state.notice = `Could not load the questionnaire: ${err.message}. Reload to try again.`;
    }
    render();
    return;
  }
  if (!state.token) {
    state.phase = "token";
    render();
    return;
  }
  await begin();
}

$("prev").addEventListener("click", () => show(state.current - 1));
$("next").addEventListener("click", () => show(state.current === null ? 0 : state.current + 1));
$("close").addEventListener("click", () => {
  state.confirmClose = true;
  render();
});
$("cancel-close").addEventListener("click", () => {
  state.confirmClose = false;
  render();
});
$("confirm-close").addEventListener("click", closeQuestionnaire);
$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  state.token = $("token-input").value.trim();
  state.notice = "";
  state.phase = "loading";
  render();
  begin();
});
// The arrow keys move between questions, as in a slide show.
document.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement || state.confirmClose) return;
  if (e.key === "ArrowRight" || e.key === "PageDown") show(state.current === null ? 0 : state.current + 1);
  if (e.key === "ArrowLeft" || e.key === "PageUp") show(state.current - 1);
});

render();
start();
