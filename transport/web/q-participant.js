// q-participant.js: a participant's page (/q/<id>), made for a phone. It
// shows the question the presenter shows, as big buttons; a tap answers,
// and the button stays marked once the server says the answer is stored
// (the "answered" frame). The participant id is made once per
// questionnaire and kept in localStorage, so a reload or a reconnect is
// the same participant: its answer stays marked and is never counted twice.
import { api, ApiError, QSocket, connectionText, pageID, randomID, recall, remember } from "/questionnaire.js";

// state is everything the page shows; render() draws it.
const state = {
  id: pageID(),
  participant: "",
  // phase: "loading", "missing" (no such questionnaire), "failed" (the
  // definition could not be read), "open" or "closed".
  phase: "loading",
  title: "",
  count: 0, // questions in the questionnaire
  conn: "loading",
  connDetail: {},
  // question is the one shown: {index, text, options}, null before the
  // presenter's first show.
  question: null,
  // answer is the option the server stored for question (null: none);
  // sent is the option tapped and not yet confirmed.
  answer: null,
  sent: null,
  notice: "",
};
// The browser test (and anyone curious, from the console) reads it here.
window.lobbyParticipant = state;

const $ = (id) => document.getElementById(id);
let socket = null;

function onFrame(f) {
  switch (f.type) {
    case "question":
      state.question = { index: f.index, text: f.text, options: f.options };
      state.answer = f.answer ?? null;
      state.sent = null;
      state.notice = "";
      break;
    case "answered":
      if (state.question && f.question === state.question.index) {
        state.answer = f.option;
        if (state.sent === f.option) state.sent = null;
      }
      break;
    case "closed":
      state.phase = "closed";
      state.sent = null;
      socket.close(); // Nothing more will come.
      break;
    case "error":
      state.sent = null;
      state.notice = f.message;
      break;
  }
  render();
}

function answer(option) {
  if (state.phase !== "open" || !state.question) return;
  const q = state.question;
  if (socket.send({ type: "answer", question: q.index, option })) {
    state.sent = option;
    state.notice = "";
  } else {
    state.notice = "Not connected: your answer was not sent. Try again when the badge says live.";
  }
  render();
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
    $("options").replaceChildren(
      ...q.options.map((text, k) => {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.option = k;
        button.textContent = text;
        button.dir = "auto";
        button.setAttribute("aria-pressed", String(state.answer === k));
        if (state.answer === k) button.classList.add("chosen");
        if (state.sent === k) button.classList.add("sending");
        li.append(button);
        return li;
      }),
    );
    $("answer-note").textContent =
      state.sent !== null
        ? `Sending “${q.options[state.sent]}”…`
        : state.answer !== null
          ? `Your answer: ${q.options[state.answer]} ✓ (tap another to change it)`
          : "Tap your answer.";
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
  state.participant = recall(state.id, "participant");
  if (!state.participant) {
    state.participant = randomID();
    remember(state.id, "participant", state.participant);
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
  state.phase = "open";
  state.conn = "connecting";
  socket = new QSocket(`/questionnaires/${state.id}/participant?participant=${encodeURIComponent(state.participant)}`, {
    onFrame,
    onState: (s, detail) => {
      state.conn = s;
      state.connDetail = detail;
      render();
    },
  });
  render();
}

$("options").addEventListener("click", (e) => {
  const button = e.target.closest("button[data-option]");
  if (button) answer(Number(button.dataset.option));
});

render();
start();
