// questionnaire.js: what the questionnaire's pages share (/q/new,
// /q/<id> for participants, /q/<id>/present for the presenter): calls of
// the HTTP API, the page's questionnaire id, what the browser remembers,
// and QSocket, a WebSocket to the questionnaire that reconnects by itself.
// The wire contract is SPEC.md's "Questionnaire" section.

/** ID_PATTERN is what a questionnaire id looks like: 16 of a-z 2-7. */
export const ID_PATTERN = /^[a-z2-7]{16}$/;

/** ApiError is an error answer of the API: status is the HTTP status,
 * code the server's error code (invalid_questionnaire, unauthorized, ...)
 * and message the server's own words. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/**
 * api calls the HTTP API at path and resolves with the JSON answer. An
 * error answer rejects with an ApiError that carries the server's message.
 *
 * @param {string} path e.g. "/questionnaires/<id>"
 * @param {object} opts method, body (sent as JSON) and token (sent as
 *   Authorization: Bearer).
 */
export async function api(path, { method = "GET", body, token } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "unreachable", `the server did not answer (${err.message})`);
  }
  let json = null;
  try {
    json = await res.json();
  } catch {
    // Not JSON: a proxy's error page, say. The status still tells.
  }
  if (!res.ok) {
    throw new ApiError(res.status, json?.error ?? "http_error", json?.message ?? `HTTP ${res.status}`);
  }
  return json;
}

/** pageID is the questionnaire id in the page's path (/q/<id>...), or ""
 * when it is not one. */
export function pageID() {
  const id = decodeURIComponent(location.pathname.split("/")[2] ?? "");
  return ID_PATTERN.test(id) ? id : "";
}

/** remember and recall keep a string per questionnaire in localStorage
 * (lobby.q.<id>.<what>); without storage (a private window that refuses
 * it) they do nothing and recall gives "". */
export function remember(id, what, value) {
  try {
    localStorage.setItem(`lobby.q.${id}.${what}`, value);
  } catch {
    // No storage: the value lasts as long as the page.
  }
}

export function recall(id, what) {
  try {
    return localStorage.getItem(`lobby.q.${id}.${what}`) ?? "";
  } catch {
    return "";
  }
}

/** percent is count's share of total as a whole percentage ("0%" of 0). */
export function percent(count, total) {
  return `${total > 0 ? Math.round((100 * count) / total) : 0}%`;
}

const socketDefaults = {
  // minDelay and maxDelay bound the wait before a reconnect, in ms, as in
  // lobby.js: it doubles after each failed attempt up to maxDelay, with
  // jitter, and starts again from minDelay after stableAfter ms connected.
  minDelay: 250,
  maxDelay: 10000,
  stableAfter: 5000,
};

/**
 * QSocket is a WebSocket to one of the questionnaire's socket routes that
 * reconnects by itself, with exponential backoff and jitter, until close()
 * is called or the server closes it "1000 replaced" (the same participant
 * opened the questionnaire elsewhere, which took over: coming back would
 * only take it over in turn).
 *
 * States, in onState and socket.state:
 *   connecting   the first connection is being made
 *   live         connected; frames flow
 *   reconnecting the connection dropped; a new one is on its way
 *   replaced     the server closed it "1000 replaced"; no reconnect
 *   closed       close() was called
 *
 * @param {string} path e.g. "/questionnaires/<id>/participant?participant=p"
 * @param {object} opts onFrame(frame) each frame from the server, decoded;
 *   onState(state, detail) detail.retryIn is the wait before the next
 *   attempt, in ms; and the settings in socketDefaults.
 */
export class QSocket {
  #opts;
  #url;
  #ws = null;
  #attempt = 0;
  #retryTimer = 0;
  #stableTimer = 0;
  #openedOnce = false;
  #done = false;

  constructor(path, opts = {}) {
    this.#opts = { ...socketDefaults, ...opts };
    const u = new URL(path, location.href);
    u.protocol = u.protocol.replace(/^http/, "ws");
    this.#url = u;
    this.state = "connecting";
    this.#connect();
  }

  /** send sends frame as JSON and reports whether the socket was open. */
  send(frame) {
    if (!this.#ws || this.#ws.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(JSON.stringify(frame));
    return true;
  }

  /** close closes the socket for good: no reconnect. */
  close() {
    if (this.#done) return;
    this.#stop("closed", {});
    const ws = this.#ws;
    this.#ws = null;
    if (ws) ws.close(1000, "bye");
  }

  #connect() {
    const ws = new WebSocket(this.#url);
    this.#ws = ws;
    ws.onopen = () => {
      if (ws !== this.#ws) return;
      this.#openedOnce = true;
      this.#setState("live", {});
      clearTimeout(this.#stableTimer);
      this.#stableTimer = setTimeout(() => {
        this.#attempt = 0;
      }, this.#opts.stableAfter);
    };
    ws.onmessage = (e) => {
      if (ws !== this.#ws) return;
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        return; // The server sends JSON; anything else is not for us.
      }
      this.#opts.onFrame?.(frame);
    };
    ws.onclose = (e) => {
      if (ws !== this.#ws) return;
      this.#ws = null;
      clearTimeout(this.#stableTimer);
      if (e.code === 1000 && e.reason === "replaced") {
        this.#stop("replaced", { code: e.code, reason: e.reason });
        return;
      }
      const delay = Math.min(this.#opts.maxDelay, this.#opts.minDelay * 2 ** this.#attempt);
      this.#attempt++;
      const wait = delay / 2 + (Math.random() * delay) / 2;
      this.#retryTimer = setTimeout(() => this.#connect(), wait);
      this.#setState(this.#openedOnce ? "reconnecting" : "connecting", { code: e.code, reason: e.reason, retryIn: wait });
    };
  }

  #stop(state, detail) {
    this.#done = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#stableTimer);
    this.#setState(state, detail);
  }

  #setState(state, detail) {
    this.state = state;
    this.#opts.onState?.(state, detail);
  }
}

/** connectionText is what a page's state badge says for a QSocket state. */
export function connectionText(state, detail = {}) {
  switch (state) {
    case "replaced":
      return "opened in another tab";
    case "connecting":
    case "reconnecting":
      return detail.retryIn ? `${state} · retrying in ${(detail.retryIn / 1000).toFixed(1)} s` : state;
    default:
      return state;
  }
}

// The questionnaires this browser created, for /q/new's list: one JSON
// array in localStorage (lobby.q.mine) of {id, title, created}, newest
// first. Their presenter tokens are kept apart (remember(id, "token")),
// as before; neither leaves the browser but to present.
const MINE = "lobby.q.mine";
const MAX_MINE = 200;

/** listMine is the questionnaires this browser created, newest first. */
export function listMine() {
  try {
    const list = JSON.parse(localStorage.getItem(MINE) ?? "[]");
    return Array.isArray(list) ? list.filter((m) => m && ID_PATTERN.test(m.id) && typeof m.title === "string") : [];
  } catch {
    return [];
  }
}

/** rememberMine adds a questionnaire this browser created to its list. */
export function rememberMine(m) {
  const list = [m, ...listMine().filter((o) => o.id !== m.id)].slice(0, MAX_MINE);
  try {
    localStorage.setItem(MINE, JSON.stringify(list));
  } catch {
    // No storage: the list lasts as long as the page.
  }
}

/** forgetMine takes a questionnaire off the list, and its token with it. */
export function forgetMine(id) {
  try {
    localStorage.setItem(MINE, JSON.stringify(listMine().filter((o) => o.id !== id)));
    localStorage.removeItem(`lobby.q.${id}.token`);
  } catch {
    // No storage: nothing was kept.
  }
}

/** el makes an element with a class and text. */
export function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) {
    e.textContent = text;
    e.dir = "auto"; // a text keeps its own direction
  }
  return e;
}

/**
 * barItem is one bar of a chart: its label, "count · percent" and a track
 * whose fill is as wide as the share. leader marks the largest count.
 */
export function barItem(text, count, total, k, leader) {
  const li = document.createElement("li");
  li.dataset.option = k;
  if (leader) li.classList.add("leader");
  const label = el("span", "label", text);
  const track = el("span", "track");
  const fill = el("span", "fill");
  // A style property set from a script is CSSOM, which the CSP allows.
  fill.style.width = total > 0 ? `${(100 * count) / total}%` : "0";
  track.append(fill);
  const figures = el("span", "q-figures");
  figures.append(el("span", "q-count", String(count)), " · ", el("span", "q-percent", percent(count, total)));
  li.append(label, figures, track);
  return li;
}

/**
 * resultsView draws a question's tally fields (counts, mean, words,
 * answered) for the kind of question q, as the presenter's screen and a
 * participant's revealed results show them: bars for single and multi
 * (each option's share of those who answered), a distribution of values
 * and the mean for a scale, a word cloud for text. onWord, when given,
 * makes each word a button that calls it with the word's text (the
 * presenter's hide).
 *
 * @returns {{bars: Element[], extra: Element[]}} the bars' list items
 *   (for an <ol class="q-bars">), and what goes after them.
 */
export function resultsView(q, t, onWord) {
  const kind = q.kind ?? "single";
  const answered = t?.answered ?? 0;
  if (kind === "text") {
    return { bars: [], extra: [wordCloud(t?.words ?? [], onWord)] };
  }
  let labels = q.options ?? [];
  if (kind === "scale") {
    labels = [];
    for (let v = q.min; v <= q.max; v++) labels.push(String(v));
  }
  const counts = t?.counts && t.counts.length === labels.length ? t.counts : labels.map(() => 0);
  const top = Math.max(...counts);
  // single: the share of answers; multi: of those who answered (each
  // picks several); scale: of answers.
  const total = kind === "single" ? counts.reduce((a, b) => a + b, 0) : answered;
  const bars = labels.map((text, k) => barItem(text, counts[k], total, k, top > 0 && counts[k] === top));
  const extra = [];
  if (kind === "scale") {
    const mean = el("p", "q-mean");
    mean.dataset.mean = t?.mean ?? "";
    mean.textContent = t?.mean === null || t?.mean === undefined ? "Mean: –" : `Mean: ${t.mean}`;
    if (q.labels) mean.append(el("span", "hint", ` · ${q.min} = ${q.labels[0]}, ${q.max} = ${q.labels[1]}`));
    extra.push(mean);
  }
  return { bars, extra };
}

/**
 * wordCloud draws words ([{text, count}], most frequent first) as a cloud:
 * each word's size grows with its count (from 1 to 3.2 rem, by the square
 * root, so that one frequent word does not crowd out the rest), the most
 * frequent in the middle. Drawn with the DOM, no library: a flex box of
 * sized words is a cloud a projector reads.
 */
export function wordCloud(words, onWord) {
  const cloud = el("div", "q-cloud");
  cloud.id = "cloud";
  if (words.length === 0) {
    cloud.append(el("p", "hint", "No answers yet."));
    return cloud;
  }
  const top = words[0].count;
  // Largest in the middle: alternate the words to either side.
  const ordered = [];
  words.forEach((w, i) => (i % 2 === 0 ? ordered.push(w) : ordered.unshift(w)));
  for (const w of ordered) {
    const size = 1 + 2.2 * Math.sqrt(w.count / top);
    const word = onWord ? el("button", "q-word", w.text) : el("span", "q-word", w.text);
    if (onWord) {
      word.type = "button";
      word.title = `${w.count} × · click to hide`;
      word.addEventListener("click", () => onWord(w.text));
    }
    word.dataset.count = w.count;
    word.style.fontSize = `${size.toFixed(2)}rem`;
    cloud.append(word);
  }
  return cloud;
}

/** countdownText is what a countdown to closesAt (Unix ms) says now. */
export function countdownText(closesAt, now = Date.now()) {
  const left = Math.ceil((closesAt - now) / 1000);
  if (left <= 0) return "Time's up";
  const m = Math.floor(left / 60);
  const s = left % 60;
  return m > 0 ? `${m}:${String(s).padStart(2, "0")} left` : `${s} s left`;
}

/** unreachableHost says why a phone could not open a link to host, or
 * "" when it may: a loopback or unspecified address, or a link-local one,
 * is this machine's or this network segment's alone. */
export function unreachableHost(hostname) {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost") || /^127\./.test(h) || h === "::1" || h === "0.0.0.0" || h === "::") {
    return `${hostname} is this computer's own address: a phone cannot open it`;
  }
  if (/^169\.254\./.test(h) || /^fe80:/.test(h)) {
    return `${hostname} is a link-local address: most phones cannot open it`;
  }
  return "";
}
