// q-new.js: the page that creates a questionnaire (/q/new). A title and
// 1 to 100 questions of four kinds (single and multi choice with 2 to 10
// options, a scale, a text answer), which can be added, removed and moved
// up or down, with a preview of what participants will see; POST
// /questionnaires; then the participants' link and the presenter's link,
// which carries the presenter token in its fragment (#token=...), so that
// it never reaches a server in a URL or a Referer. The server's own error
// message (a 400 saying what is wrong, a 401 when it wants the publish
// token) is shown above the button.
//
// The page also lists the questionnaires this browser created ("Your
// questionnaires"): title, date and links, kept in localStorage with the
// presenter tokens, which never leave the browser except to present.
import { api, listMine, rememberMine, forgetMine, remember } from "/questionnaire.js";

// The bounds the server enforces (SPEC.md); the form keeps to them.
const MAX_QUESTIONS = 100;
const MIN_OPTIONS = 2;
const MAX_OPTIONS = 10;
const KINDS = [
  ["single", "Single choice"],
  ["multi", "Multiple choice"],
  ["scale", "Scale"],
  ["text", "Text (word cloud)"],
];

// state is everything the page shows; render() draws it. Typing changes
// state without a render (the inputs already show it; only the preview is
// drawn again); adding, removing or moving a question or an option,
// changing a kind, sending and the server's answer render.
const state = {
  title: "",
  questions: [newQuestion()],
  publishToken: "",
  sending: false,
  error: "",
  // created is POST /questionnaires's answer, with the title.
  created: null,
  // mine is the questionnaires this browser created, newest first.
  mine: listMine(),
};
// The browser test (and anyone curious, from the console) reads it here.
window.lobbyNew = state;

const $ = (id) => document.getElementById(id);

function newQuestion() {
  return { text: "", kind: "single", options: ["", ""], max: "", min: "1", scaleMax: "5", low: "", high: "", maxLength: "80" };
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
  el.addEventListener("input", () => {
    onInput(el.value);
    renderPreview();
  });
  return el;
}

function numberInput(value, min, max, label, field, onInput, required = true) {
  const el = document.createElement("input");
  el.type = "number";
  el.min = min;
  el.max = max;
  el.step = 1;
  el.value = value;
  el.required = required;
  el.className = "q-number";
  el.dataset.field = field;
  el.setAttribute("aria-label", label);
  el.addEventListener("input", () => {
    onInput(el.value);
    renderPreview();
  });
  return el;
}

function labelled(text, control) {
  const l = document.createElement("label");
  l.className = "q-setting";
  l.append(text, " ", control);
  return l;
}

function questionElement(q, i) {
  const li = document.createElement("li");
  li.className = "q-question";
  li.dataset.question = i;
  li.dataset.kind = q.kind;
  const head = document.createElement("div");
  head.className = "row";
  const text = input(q.text, 500, `Question ${i + 1}`, (v) => (q.text = v));
  text.className = "q-question-text";
  text.placeholder = `Question ${i + 1}`;
  head.append(text);
  const moves = document.createElement("span");
  moves.className = "q-moves";
  if (i > 0) moves.append(button("↑", "secondary icon", "move-up", `Move question ${i + 1} up`));
  if (i < state.questions.length - 1) moves.append(button("↓", "secondary icon", "move-down", `Move question ${i + 1} down`));
  if (state.questions.length > 1) moves.append(button("✕", "secondary icon", "remove-question", `Remove question ${i + 1}`));
  head.append(moves);

  const kind = document.createElement("select");
  kind.className = "q-kind";
  kind.dataset.field = "kind";
  kind.setAttribute("aria-label", `Question ${i + 1}'s kind`);
  for (const [value, text] of KINDS) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    o.selected = q.kind === value;
    kind.append(o);
  }
  kind.addEventListener("change", () => {
    q.kind = kind.value;
    render();
  });
  li.append(head, labelled("Kind", kind));

  if (q.kind === "single" || q.kind === "multi") {
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
    li.append(options);
    if (q.options.length < MAX_OPTIONS) li.append(button("+ Option", "secondary small", "add-option"));
    if (q.kind === "multi") {
      const max = numberInput(q.max, 1, q.options.length, `Question ${i + 1}: at most how many`, "max", (v) => (q.max = v), false);
      max.placeholder = "all";
      li.append(labelled("Pick at most", max));
    }
  } else if (q.kind === "scale") {
    const row = document.createElement("div");
    row.className = "q-settings";
    row.append(
      labelled("From", numberInput(q.min, 0, 9, `Question ${i + 1}: lowest value`, "min", (v) => (q.min = v))),
      labelled("to", numberInput(q.scaleMax, 1, 10, `Question ${i + 1}: highest value`, "scale-max", (v) => (q.scaleMax = v))),
    );
    const low = input(q.low, 200, `Question ${i + 1}: label of the lowest value`, (v) => (q.low = v));
    const high = input(q.high, 200, `Question ${i + 1}: label of the highest value`, (v) => (q.high = v));
    low.required = high.required = false;
    low.placeholder = "label, e.g. bad";
    high.placeholder = "label, e.g. great";
    low.dataset.field = "low";
    high.dataset.field = "high";
    row.append(low, high);
    li.append(row);
  } else {
    li.append(labelled("At most", numberInput(q.maxLength, 1, 280, `Question ${i + 1}: longest answer`, "max-length", (v) => (q.maxLength = v))), " characters");
  }
  return li;
}

// body is the POST body state makes: each question with its kind's
// settings only (the server refuses a setting its kind does not have).
function body() {
  return {
    title: state.title.trim(),
    questions: state.questions.map((q) => {
      const out = { text: q.text.trim(), kind: q.kind };
      switch (q.kind) {
        case "single":
          out.options = q.options.map((o) => o.trim());
          break;
        case "multi":
          out.options = q.options.map((o) => o.trim());
          if (q.max !== "") out.max = Number(q.max);
          break;
        case "scale":
          out.min = Number(q.min);
          out.max = Number(q.scaleMax);
          if (q.low.trim() !== "" || q.high.trim() !== "") out.labels = [q.low.trim(), q.high.trim()];
          break;
        case "text":
          out.max_length = Number(q.maxLength);
          break;
      }
      return out;
    }),
  };
}

// previewElement draws question q as the participant's page will.
function previewElement(q, i) {
  const li = document.createElement("li");
  li.className = "q-preview-question";
  const h = document.createElement("p");
  h.className = "q-preview-text";
  h.textContent = `${i + 1}. ${q.text.trim() || "(no text yet)"}`;
  h.dir = "auto";
  li.append(h);
  const list = document.createElement("div");
  list.className = "q-preview-answers";
  if (q.kind === "single" || q.kind === "multi") {
    for (const o of q.options) {
      const b = document.createElement("span");
      b.className = "q-preview-option";
      b.textContent = (q.kind === "multi" ? "☐ " : "") + (o.trim() || "…");
      b.dir = "auto";
      list.append(b);
    }
    if (q.kind === "multi") list.append(`Pick up to ${q.max || q.options.length}, then Send.`);
  } else if (q.kind === "scale") {
    const lo = Number(q.min);
    const hi = Number(q.scaleMax);
    if (Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && hi <= 10 && lo < hi) {
      for (let v = lo; v <= hi; v++) {
        const b = document.createElement("span");
        b.className = "q-preview-option q-preview-value";
        b.textContent = String(v);
        list.append(b);
      }
      if (q.low || q.high) list.append(` ${q.low.trim()} … ${q.high.trim()}`);
    } else {
      list.append("A scale is whole numbers from 0 to 10, the lowest below the highest.");
    }
  } else {
    const b = document.createElement("span");
    b.className = "q-preview-option";
    b.textContent = `A text of up to ${q.maxLength || "?"} characters, then Send.`;
    list.append(b);
  }
  li.append(list);
  return li;
}

function renderPreview() {
  $("preview-list").replaceChildren(...state.questions.map(previewElement));
}

function mineElement(m) {
  const li = document.createElement("li");
  li.dataset.id = m.id;
  const title = document.createElement("strong");
  title.textContent = m.title;
  title.dir = "auto";
  const date = document.createElement("span");
  date.className = "hint";
  date.textContent = ` · ${new Date(m.created).toLocaleString()} · `;
  const present = document.createElement("a");
  present.href = `/q/${m.id}/present`;
  present.textContent = "Present";
  present.className = "q-mine-present";
  const join = document.createElement("a");
  join.href = `/q/${m.id}`;
  join.textContent = "Participants' link";
  li.append(title, date, present, " · ", join, " ", button("Forget", "secondary small", "forget", `Forget ${m.title}`));
  return li;
}

// render draws state.
function render() {
  $("mine").hidden = state.mine.length === 0;
  $("mine-list").replaceChildren(...state.mine.map(mineElement));
  $("form").hidden = state.created !== null;
  $("preview").hidden = state.created !== null;
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
  renderPreview();
}

async function create(e) {
  e.preventDefault();
  if (state.sending) return;
  state.sending = true;
  state.error = "";
  render();
  const b = body();
  try {
    const c = await api("/questionnaires", { method: "POST", body: b, token: state.publishToken.trim() });
    // This browser may present without the link: it remembers the token.
    remember(c.id, "token", c.presenter_token);
    rememberMine({ id: c.id, title: b.title, created: Date.now() });
    state.mine = listMine();
    state.created = { ...c, title: b.title };
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

// One listener for every add, remove and move button in the questions.
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
    case "move-up":
      state.questions.splice(i - 1, 2, state.questions[i], state.questions[i - 1]);
      break;
    case "move-down":
      state.questions.splice(i, 2, state.questions[i + 1], state.questions[i]);
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
$("mine-list").addEventListener("click", (e) => {
  const b = e.target.closest("button[data-action=forget]");
  if (!b) return;
  forgetMine(b.closest("[data-id]").dataset.id);
  state.mine = listMine();
  render();
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
