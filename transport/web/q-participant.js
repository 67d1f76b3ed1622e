// q-participant.js: a participant's page (/q/<id>), made for a phone. It
// shows the question the presenter shows, in its kind's way: big buttons
// for single choice (a tap answers) and multiple choice (taps pick, Send
// answers), a row of numbers for a scale (a tap answers), a text box for
// a text answer (Send answers). An answer stays marked once the server
// says it is stored (the "answered" frame). A question with a timer shows
// its countdown and takes no answer once it is over; results the
// presenter reveals are shown under the question. The participant id and
// its token are issued by the server (POST
// /questionnaires/<id>/participants) once per questionnaire and kept in
// localStorage, so a reload or a reconnect is the same participant: its
// answer stays marked and is never counted twice.
import {
  api,
  ApiError,
  QSocket,
  connectionText,
  countdownText,
  pageID,
  recall,
  remember,
  resultsView,
} from "/questionnaire.js";

// state is everything the page shows; render() draws it.
const state = {
  id: pageID(),
  participant: "",
  token: "",
  // phase: "loading", "missing" (no such questionnaire), "failed" (the
  // definition could not be read), "open" or "closed".
  phase: "loading",
  title: "",
  count: 0, // questions in the questionnaire
  conn: "loading",
  connDetail: {},
  // question is the one shown, as its frame has it: {index, text,
  // options, kind, max, min, labels, max_length, closes_at}; null before
  // the presenter's first show.
  question: null,
  // answer is what the server stored for question (null: none), in the
  // kind's shape (an option, [options], a value, a text); sent is what
  // was sent and not yet confirmed.
  answer: null,
  sent: null,
  // picked are a multi question's options tapped, not yet sent.
  picked: [],
  // timeUp is set when the question's timer is over.
  timeUp: false,
  // results are the revealed results of the question shown, or null.
  results: null,
  notice: "",
};
// The browser test (and anyone curious, from the console) reads it here.
window.lobbyParticipant = state;

const $ = (id) => document.getElementById(id);
let socket = null;

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function onFrame(f) {
  switch (f.type) {
    case "question": {
      const changed = !state.question || state.question.index !== f.index;
      state.question = { ...f, kind: f.kind ?? "single" };
      state.answer = f.answer ?? null;
      state.sent = null;
      state.picked = state.question.kind === "multi" && Array.isArray(f.answer) ? [...f.answer] : [];
      state.timeUp = Boolean(f.closes_at && f.closes_at <= Date.now());
      state.results = null;
      state.notice = "";
      if (changed || state.question.kind === "text") $("text-answer").value = typeof f.answer === "string" ? f.answer : "";
      break;
    }
    case "answered":
      if (state.question && f.question === state.question.index) {
        const value = f.option ?? f.options ?? f.value ?? f.text;
        state.answer = value;
        if (same(state.sent, value) || state.question.kind === "text") state.sent = null;
        if (state.question.kind === "multi") state.picked = [...value];
      }
      break;
    case "question_closed":
      if (state.question && f.question === state.question.index) {
        state.timeUp = true;
        state.sent = null;
      }
      break;
    case "results":
      if (state.question && f.question === state.question.index) state.results = f;
      break;
    case "closed":
      state.phase = "closed";
      state.sent = null;
      socket.close(); // Nothing more will come.
      break;
    case "error":
      state.sent = null;
      if (f.code === "question_closed") state.timeUp = true;
      state.notice = f.message;
      break;
  }
  render();
}

// send sends an answer of the current question's kind.
function send(field, value) {
  if (state.phase !== "open" || !state.question || state.timeUp) return;
  const q = state.question;
  if (socket.send({ type: "answer", question: q.index, [field]: value })) {
    state.sent = value;
    state.notice = "";
  } else {
    state.notice = "Not connected: your answer was not sent. Try again when the badge says live.";
  }
  render();
}

function pick(k) {
  const q = state.question;
  if (!q || state.timeUp) return;
  if (q.kind === "single") {
    send("option", k);
    return;
  }
  const i = state.picked.indexOf(k);
  if (i >= 0) {
    state.picked.splice(i, 1);
  } else if (state.picked.length < q.max) {
    state.picked.push(k);
    state.picked.sort((a, b) => a - b);
  } else {
    state.notice = `Pick at most ${q.max}: tap one again to drop it first.`;
  }
  render();
}

function sendClicked() {
  const q = state.question;
  if (!q) return;
  if (q.kind === "multi") {
    if (state.picked.length === 0) {
      state.notice = "Pick at least one option first.";
      render();
      return;
    }
    send("options", [...state.picked]);
  } else if (q.kind === "text") {
    const text = $("text-answer").value.trim();
    if (text === "") {
      state.notice = "Write an answer first.";
      render();
      return;
    }
    send("text", text);
  }
}

function optionButton(text, data, chosen, pressed, sending) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  Object.assign(button.dataset, data);
  button.textContent = text;
  button.dir = "auto";
  button.disabled = state.timeUp;
  button.setAttribute("aria-pressed", String(pressed));
  if (chosen) button.classList.add("chosen");
  if (sending) button.classList.add("sending");
  li.append(button);
  return li;
}

function noteText(q) {
  if (state.timeUp) {
    return state.answer === null ? "Time's up: no answer was recorded." : `Time's up. Your answer: ${answerText(q, state.answer)} ✓`;
  }
  if (state.sent !== null) return `Sending “${answerText(q, state.sent)}”…`;
  if (state.answer !== null) {
    const change = q.kind === "single" || q.kind === "scale" ? "tap another to change it" : "send again to change it";
    return `Your answer: ${answerText(q, state.answer)} ✓ (${change})`;
  }
  switch (q.kind) {
    case "multi":
      return `Tap up to ${q.max}, then Send.`;
    case "text":
      return "Write your answer, then Send.";
    default:
      return "Tap your answer.";
  }
}

function answerText(q, a) {
  switch (q.kind) {
    case "multi":
      return a.map((k) => q.options[k]).join(", ");
    case "scale":
    case "text":
      return String(a);
    default:
      return q.options[a];
  }
}

function renderCountdown() {
  const q = state.question;
  const c = $("countdown");
  c.hidden = !(state.phase === "open" && q && (q.closes_at || state.timeUp));
  if (q && q.closes_at && !state.timeUp && q.closes_at <= Date.now()) {
    // The server says so too (question_closed); the page does not wait.
    state.timeUp = true;
    render();
    return;
  }
  c.textContent = state.timeUp ? "Time's up" : q?.closes_at ? countdownText(q.closes_at) : "";
  c.dataset.closed = String(state.timeUp);
}

// render draws state.
function render() {
  const badge = $("state");
  badge.textContent = state.phase === "closed" ? "closed" : connectionText(state.conn, state.connDetail);
  badge.dataset.state = state.phase === "closed" ? "closed" : state.conn === "replaced" ? "gap" : state.conn;
  $("title").textContent = state.title;
  $("title").dir = "auto"; // the presenter's text keeps its own direction
  document.title = state.title ? `${state.title} · Lobby` : "Lobby · questionnaire";

  let message = "";
  switch (state.phase) {
    case "loading":
      message = "Loading…";
      break;
    case "missing":
      message = "No such questionnaire. Check the link.";
      break;
    case "failed":
      message = state.notice;
      break;
    case "closed":
      message = "This questionnaire is closed. Thank you!";
      break;
    default:
      if (state.conn === "replaced") message = "This questionnaire was opened in another tab or window; answer there.";
      else if (!state.question) message = "Waiting for the presenter to show the first question…";
  }
  $("message").textContent = message;
  $("message").hidden = message === "";

  const q = state.question;
  const showing = state.phase === "open" && q !== null && state.conn !== "replaced";
  $("question").hidden = !showing;
  if (showing) {
    $("position").textContent = `Question ${q.index + 1} of ${state.count}`;
    $("question-text").textContent = q.text;
    $("question-text").dir = "auto";
    const choice = q.kind === "single" || q.kind === "multi";
    $("options").hidden = !choice;
    if (choice) {
      $("options").replaceChildren(
        ...q.options.map((text, k) => {
          const stored = q.kind === "single" ? state.answer === k : Array.isArray(state.answer) && state.answer.includes(k);
          const pressed = q.kind === "single" ? stored : state.picked.includes(k);
          const sending = q.kind === "single" ? state.sent === k : Array.isArray(state.sent) && state.sent.includes(k);
          return optionButton(text, { option: k }, stored, pressed, sending);
        }),
      );
      $("options").classList.toggle("q-multi", q.kind === "multi");
    }
    $("scale").hidden = q.kind !== "scale";
    if (q.kind === "scale") {
      const row = document.createElement("ul");
      row.className = "q-options q-scale-values";
      for (let v = q.min; v <= q.max; v++) row.append(optionButton(String(v), { value: v }, state.answer === v, state.answer === v, state.sent === v));
      const parts = [row];
      if (q.labels) {
        const labels = document.createElement("p");
        labels.className = "q-scale-labels";
        const low = document.createElement("span");
        low.textContent = q.labels[0];
        low.dir = "auto";
        const high = document.createElement("span");
        high.textContent = q.labels[1];
        high.dir = "auto";
        labels.append(low, high);
        parts.push(labels);
      }
      $("scale").replaceChildren(...parts);
    }
    $("text-form").hidden = q.kind !== "text";
    if (q.kind === "text") {
      $("text-answer").maxLength = q.max_length;
      $("text-answer").disabled = state.timeUp;
      $("text-left").textContent = `${q.max_length - $("text-answer").value.length} characters left`;
    }
    $("send").hidden = q.kind === "single" || q.kind === "scale";
    $("send").disabled = state.timeUp || state.sent !== null;
    $("answer-note").textContent = noteText(q);
    renderCountdown();
  }

  const r = showing ? state.results : null;
  $("results").hidden = !r;
  if (r) {
    const { bars, extra } = resultsView(q, r);
    $("results-bars").replaceChildren(...bars);
    $("results-bars").hidden = bars.length === 0;
    $("results-extra").replaceChildren(...extra);
    $("results-note").textContent = `${r.answered} answered`;
  }
  const notice = state.phase === "failed" ? "" : state.notice;
  $("notice").textContent = notice;
  $("notice").hidden = notice === "";
}

async function start() {
  if (!state.id) {
    state.phase = "missing";
    render();
    return;
  }
  try {
    // The definition first: its title, and whether there is such a
    // questionnaire at all (a socket to an unknown one would only fail).
    const def = await api(`/questionnaires/${state.id}`);
    state.title = def.title;
    state.count = def.questions.length;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      state.phase = "missing";
    } else {
      state.phase = "failed";
      state.notice = `Could not load the questionnaire: ${err.message}. Reload to try again.`;
    }
    state.conn = "closed";
    render();
    return;
  }
  if (!(await identify())) {
    state.conn = "closed";
    render();
    return;
  }
  state.phase = "open";
  state.conn = "connecting";
  const query = `participant=${encodeURIComponent(state.participant)}&token=${encodeURIComponent(state.token)}`;
  socket = new QSocket(`/questionnaires/${state.id}/participant?${query}`, {
    onFrame,
    onState: (s, detail) => {
      state.conn = s;
      state.connDetail = detail;
      render();
    },
  });
  render();
}

// identify recalls this browser's participant identity for the
// questionnaire, or asks the server for one and keeps it; false when
// there is none to be had (the questionnaire is full). An id kept
// without a token (a page from before tokens) is replaced.
async function identify() {
  state.participant = recall(state.id, "participant");
  state.token = recall(state.id, "participant-token");
  if (state.participant && state.token) return true;
  for (;;) {
    try {
      const p = await api(`/questionnaires/${state.id}/participants`, { method: "POST" });
      state.participant = p.participant;
      state.token = p.token;
      remember(state.id, "participant", p.participant);
      remember(state.id, "participant-token", p.token);
      state.notice = "";
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.code === "questionnaire_full") {
        state.phase = "failed";
        state.notice = "This questionnaire has all the participants it can take.";
        return false;
      }
      if (err instanceof ApiError && err.status === 404) {
        state.phase = "missing";
        return false;
      }
      // Rate limited (an audience on one network joining at once) or
      // unreachable: try again shortly, as the socket would.
      state.notice = `Joining… (${err.message}; trying again)`;
      render();
      await new Promise((resolve) => setTimeout(resolve, 2000 + Math.random() * 3000));
    }
  }
}

$("options").addEventListener("click", (e) => {
  const button = e.target.closest("button[data-option]");
  if (button) pick(Number(button.dataset.option));
});
$("scale").addEventListener("click", (e) => {
  const button = e.target.closest("button[data-value]");
  if (button) send("value", Number(button.dataset.value));
});
$("send").addEventListener("click", sendClicked);
$("text-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sendClicked();
});
$("text-answer").addEventListener("input", () => {
  const q = state.question;
  if (q && q.kind === "text") $("text-left").textContent = `${q.max_length - $("text-answer").value.length} characters left`;
});
setInterval(() => {
  if (state.question?.closes_at && !state.timeUp) renderCountdown();
}, 250);

render();
start();
