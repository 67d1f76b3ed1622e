// q-presenter.js: the presenter's page (/q/<id>/present), made for the
// big screen. It shows the current question with its live results: bars
// (counts and percentages, the leader marked) for single and multi choice,
// the distribution and mean for a scale, a word cloud for text (a click
// on a word hides it, for moderation); "answered n of m"; a countdown when
// the question has a timer; moves to the previous or next question (with
// a timer if one is set), reveals the results to participants, downloads
// the results as CSV, closes the questionnaire and then sums every
// question up. It counts the participants connected and shows the
// participants' link large, with its QR code (hideable), and warns when
// that link is one phones cannot open. "Projector view" makes it full
// screen, with large bars.
//
// The presenter token comes in the link's fragment (#token=...), which a
// browser never sends to a server: the page keeps it in localStorage for
// this questionnaire and takes it out of the address bar at once, since
// the address bar may be on the big screen too. It goes to the server only
// as the results' Authorization header and the socket's ?token=.
import qrcode from "/vendor/qrcode.mjs";
import {
  api,
  ApiError,
  QSocket,
  connectionText,
  countdownText,
  el,
  pageID,
  recall,
  remember,
  resultsView,
  unreachableHost,
} from "/questionnaire.js";

// state is everything the page shows; render() draws it.
const state = {
  id: pageID(),
  token: "",
  // phase: "loading", "missing" (no such questionnaire), "token" (a token
  // is needed, or the one given is wrong), "failed", "open" or "closed".
  phase: "loading",
  title: "",
  questions: [], // from GET /questionnaires/<id>: {text, kind, options, ...}
  // publicURL is the server's --public-url, "" when it has none.
  publicURL: "",
  conn: "loading",
  connDetail: {},
  current: null, // the question shown, null before the first show
  // tally is the current question's last tally frame (counts, mean,
  // words, answered, closed, closes_at, revealed), null before one.
  tally: null,
  participants: 0,
  confirmClose: false,
  notice: "",
  showQR: true,
  projector: false,
  // summary is GET /results once the questionnaire is closed.
  summary: null,
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
      if (f.closed) closed();
      if (f.current === null) state.tally = null;
      break;
    case "tally":
      state.participants = f.participants;
      state.current = f.question;
      state.tally = f;
      break;
    case "question_closed":
      if (state.tally && state.tally.question === f.question) state.tally = { ...state.tally, closed: true };
      break;
    case "closed":
      closed();
      state.confirmClose = false;
      break;
    case "error":
      state.notice = f.message;
      break;
  }
  render();
}

function closed() {
  if (state.phase === "closed") return;
  state.phase = "closed";
  loadSummary();
}

// loadSummary fetches every question's results for the summary.
async function loadSummary() {
  try {
    state.summary = await api(`/questionnaires/${state.id}/results`, { token: state.token });
  } catch (err) {
    state.notice = `Could not load the summary: ${err.message}.`;
  }
  render();
}

function send(frame, what) {
  if (!socket || !socket.send(frame)) {
    state.notice = `Not connected: ${what}. Try again when the badge says live.`;
  } else {
    state.notice = "";
  }
  render();
}

function show(index) {
  if (state.phase !== "open" || index < 0 || index >= state.questions.length) return;
  const frame = { type: "show", question: index };
  const seconds = Number($("seconds").value);
  if ($("seconds").value !== "" && Number.isInteger(seconds) && seconds >= 1 && seconds <= 3600) frame.seconds = seconds;
  send(frame, "not shown");
}

function hide(text) {
  if (state.current === null) return;
  send({ type: "hide", question: state.current, text }, "not hidden");
}

function participantURL() {
  const base = state.publicURL || location.origin;
  return `${base.replace(/\/+$/, "")}/q/${state.id}`;
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

// linkWarning says why phones may not open the participants' link, or "".
function linkWarning() {
  let host;
  try {
    host = new URL(participantURL()).hostname;
  } catch {
    return "The participants' link is not a valid address: check --public-url.";
  }
  const why = unreachableHost(host);
  return why ? `${why}. Start the server with --public-url set to an address phones reach (e.g. http://192.168.1.20:8081).` : "";
}

function answersLine(kind, t) {
  const n = t?.answered ?? 0;
  return `${n} ${n === 1 ? "answer" : "answers"} · ${state.participants} connected`;
}

function renderCountdown() {
  const t = state.tally;
  const c = $("countdown");
  const timed = state.phase === "open" && t && t.closes_at;
  c.hidden = !timed && !(t && t.closed && state.phase === "open");
  if (t && t.closes_at) {
    c.textContent = t.closed ? "Time's up" : countdownText(t.closes_at);
  } else if (t && t.closed) {
    c.textContent = "Time's up";
  }
  c.dataset.closed = String(Boolean(t && (t.closed || (t.closes_at && t.closes_at <= Date.now()))));
}

function summaryItem(q, r, i) {
  const li = document.createElement("li");
  li.append(el("h3", "q-summary-text", q.text));
  const { bars, extra } = resultsView(q, r);
  const ol = el("ol", "q-bars q-bars-small");
  ol.append(...bars);
  li.append(ol, ...extra, el("p", "q-note", `${r.answered} answered`));
  li.dataset.question = i;
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
  document.body.classList.toggle("projector", state.projector);
  document.querySelector("main").classList.toggle("no-qr", !state.showQR);

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
    const t = state.tally && state.tally.question === state.current ? state.tally : null;
    $("position").textContent = `Question ${state.current + 1} of ${state.questions.length}${state.phase === "closed" ? " · closed" : ""}`;
    $("question-text").textContent = q.text;
    $("question-text").dir = "auto";
    const { bars, extra } = resultsView(q, t, state.phase === "open" ? hide : null);
    $("bars").replaceChildren(...bars);
    $("bars").hidden = bars.length === 0;
    $("extra").replaceChildren(...extra);
    $("answers").textContent = answersLine(q.kind, t);
    // Once closed, nobody is connected: "of 0" would say nothing.
    $("answered").textContent =
      state.phase === "closed" ? `answered ${t?.answered ?? 0}` : `answered ${t?.answered ?? 0} of ${state.participants}`;
    $("revealed").hidden = !t?.revealed;
    renderCountdown();
  }

  const open = state.phase === "open";
  $("controls").hidden = !open || state.confirmClose;
  $("prev").disabled = state.current === null || state.current === 0;
  $("next").disabled = state.current === state.questions.length - 1;
  $("next").textContent = state.current === null ? "Show the first question ▶" : "Next ▶";
  $("restart").hidden = state.current === null;
  $("reveal").disabled = state.current === null;
  $("confirm").hidden = !open || !state.confirmClose;
  $("tools").hidden = !live;
  $("toggle-qr").textContent = state.showQR ? "Hide QR code" : "Show QR code";
  $("fullscreen").textContent = state.projector ? "Leave projector view" : "Projector view";

  $("join").hidden = !live || !state.showQR;
  if (live && $("participant-link").textContent === "") {
    $("participant-link").href = participantURL();
    $("participant-link").textContent = participantURL();
    drawQR();
  }
  const warning = linkWarning();
  $("link-warning").textContent = warning;
  $("link-warning").hidden = warning === "";
  // The count is the server's, so it is shown only while connected.
  $("participants").parentElement.hidden = state.conn !== "live";
  $("participants").textContent = String(state.participants);
  $("participants-label").textContent = state.participants === 1 ? "participant connected" : "participants connected";

  $("summary").hidden = state.phase !== "closed" || !state.summary;
  if (state.summary) {
    $("summary-list").replaceChildren(...state.questions.map((q, i) => summaryItem(q, state.summary.questions[i], i)));
  }

  const notice = state.phase === "token" || state.phase === "failed" ? "" : state.notice;
  $("notice").textContent = notice;
  $("notice").hidden = notice === "";
}

// downloadCSV fetches results.csv with the token (a plain link could not
// carry it) and saves it.
async function downloadCSV() {
  let res;
  try {
    res = await fetch(`/questionnaires/${state.id}/results.csv`, {
      headers: { Authorization: `Bearer ${state.token}` },
      cache: "no-store",
    });
  } catch (err) {
    state.notice = `No CSV: the server did not answer (${err.message}).`;
    render();
    return;
  }
  if (!res.ok) {
    state.notice = `No CSV: HTTP ${res.status}.`;
    render();
    return;
  }
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = `questionnaire-${state.id}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
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
  state.current = results.current;
  if (results.current !== null) state.tally = { question: results.current, ...results.questions[results.current] };
  state.conn = "connecting";
  if (results.closed) {
    state.phase = "closed";
    state.summary = results;
  } else {
    state.phase = "open";
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
    state.publicURL = def.public_url ?? "";
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
$("restart").addEventListener("click", () => show(state.current));
$("reveal").addEventListener("click", () => send({ type: "reveal", question: state.current }, "not revealed"));
$("close").addEventListener("click", () => {
  state.confirmClose = true;
  render();
});
$("cancel-close").addEventListener("click", () => {
  state.confirmClose = false;
  render();
});
$("confirm-close").addEventListener("click", () => {
  state.confirmClose = false;
  send({ type: "close" }, "not closed");
});
$("csv").addEventListener("click", downloadCSV);
$("toggle-qr").addEventListener("click", () => {
  state.showQR = !state.showQR;
  render();
});
$("fullscreen").addEventListener("click", () => {
  state.projector = !state.projector;
  // Full screen is a wish: a browser may refuse it (or have none); the
  // projector view's layout does not depend on it.
  if (state.projector && document.documentElement.requestFullscreen) {
    document.documentElement.requestFullscreen().catch(() => {});
  } else if (!state.projector && document.fullscreenElement) {
    document.exitFullscreen().catch(() => {});
  }
  render();
});
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
// The countdown ticks on its own; the server's tally says when it is over.
setInterval(() => {
  if (state.tally?.closes_at) renderCountdown();
}, 250);

render();
start();
