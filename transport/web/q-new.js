// q-new.js: the page that creates a questionnaire (/q/new). A title and
// 1 to 100 questions of 2 to 10 options; POST /questionnaires; then the
// participants' link and the presenter's link, which carries the presenter
// token in its fragment (#token=...), so that it never reaches a server in
// a URL or a Referer. The server's own error message (a 400 saying what is
// wrong, a 401 when it wants the publish token) is shown above the button.
import { api, remember } from "/questionnaire.js";

// The bounds the server enforces (SPEC.md); the form keeps to them.
const MAX_QUESTIONS = 100;
const MIN_OPTIONS = 2;
const MAX_OPTIONS = 10;

// state is everything the page shows; render() draws it. Typing changes
// state without a render (the inputs already show it); adding or removing
// a question or an option, sending and the server's answer render.
const state = {
  title: "",
  questions: [newQuestion()],
  publishToken: "",
  sending: false,
  error: "",
  // created is POST /questionnaires's answer, with the title.
  created: null,
};
// The browser test (and anyone curious, from the console) reads it here.
window.lobbyNew = state;

const $ = (id) => document.getElementById(id);

function newQuestion() {
  return { text: "", options: ["", ""] };
}

function button(text, className, action, label) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = text;
  b.dataset.action = action;
  if (label) b.setAttribute("aria-label", label);
  return b;
}

function input(value, maxLength, label, onInput) {
  const el = document.createElement("input");
  el.value = value;
  el.maxLength = maxLength;
  el.required = true;
  el.autocomplete = "off";
  el.setAttribute("aria-label", label);
  el.addEventListener("input", () => onInput(el.value));
  return el;
}

function questionElement(q, i) {
  const li = document.createElement("li");
  li.className = "q-question";
  li.dataset.question = i;
  const head = document.createElement("div");
  head.className = "row";
  const text = input(q.text, 500, `Question ${i + 1}`, (v) => (q.text = v));
  text.className = "q-question-text";
  text.placeholder = `Question ${i + 1}`;
  head.append(text);
  if (state.questions.length > 1) head.append(button("✕", "secondary icon", "remove-question", `Remove question ${i + 1}`));
  const options = document.createElement("ol");
  options.className = "q-option-list";
  q.options.forEach((o, k) => {
    const row = document.createElement("li");
    row.className = "row";
    row.dataset.option = k;
    const opt = input(o, 200, `Question ${i + 1}, option ${k + 1}`, (v) => (q.options[k] = v));
    opt.placeholder = `Option ${k + 1}`;
    row.append(opt);
    if (q.options.length > MIN_OPTIONS) row.append(button("✕", "secondary icon", "remove-option", `Remove option ${k + 1}`));
    options.append(row);
  });
  li.append(head, options);
  if (q.options.length < MAX_OPTIONS) li.append(button("+ Option", "secondary small", "add-option"));
  return li;
}

// render draws state.
function render() {
  $("form").hidden = state.created !== null;
  $("created").hidden = state.created === null;
  if (state.created) {
    const c = state.created;
    const participant = new URL(c.participant_url, location.origin).href;
    const presenter = `${new URL(c.presenter_url, location.origin).href}#token=${encodeURIComponent(c.presenter_token)}`;
    $("created-title").textContent = c.title;
    $("created-title").dir = "auto";
    $("participant-url").href = participant;
    $("participant-url").textContent = participant;
    $("presenter-url").href = presenter;
    $("presenter-url").textContent = presenter;
    return;
  }
  $("title").value = state.title;
  $("questions").replaceChildren(...state.questions.map(questionElement));
  $("add-question").hidden = state.questions.length >= MAX_QUESTIONS;
  $("error").textContent = state.error;
  $("error").hidden = state.error === "";
  $("create").disabled = state.sending;
  $("create").textContent = state.sending ? "Creating…" : "Create";
}

async function create(e) {
  e.preventDefault();
  if (state.sending) return;
  state.sending = true;
  state.error = "";
  render();
  const body = {
    title: state.title.trim(),
    questions: state.questions.map((q) => ({ text: q.text.trim(), options: q.options.map((o) => o.trim()) })),
  };
  try {
    const c = await api("/questionnaires", { method: "POST", body, token: state.publishToken.trim() });
    // This browser may present without the link: it remembers the token.
    remember(c.id, "token", c.presenter_token);
    state.created = { ...c, title: body.title };
  } catch (err) {
    state.error =
      err.status === 401
        ? `${err.message}. This server wants its publish token to create a questionnaire: enter it under “Publish token”.`
        : `Not created: ${err.message}`;
    if (err.status === 401) $("publish").open = true;
  }
  state.sending = false;
  render();
}

// One listener for every add and remove button in the questions.
$("questions").addEventListener("click", (e) => {
  const b = e.target.closest("button[data-action]");
  if (!b) return;
  const i = Number(b.closest("[data-question]").dataset.question);
  const q = state.questions[i];
  let focus = null;
  switch (b.dataset.action) {
    case "remove-question":
      state.questions.splice(i, 1);
      break;
    case "add-option":
      q.options.push("");
      focus = `[data-question="${i}"] [data-option="${q.options.length - 1}"] input`;
      break;
    case "remove-option":
      q.options.splice(Number(b.closest("[data-option]").dataset.option), 1);
      break;
  }
  render();
  if (focus) document.querySelector(focus).focus();
});
$("add-question").addEventListener("click", () => {
  state.questions.push(newQuestion());
  render();
  document.querySelector(`[data-question="${state.questions.length - 1}"] .q-question-text`).focus();
});
$("title").addEventListener("input", (e) => (state.title = e.target.value));
$("publish-token").addEventListener("input", (e) => (state.publishToken = e.target.value));
$("form").addEventListener("submit", create);
$("again").addEventListener("click", () => {
  Object.assign(state, { title: "", questions: [newQuestion()], error: "", created: null });
  render();
});

render();
