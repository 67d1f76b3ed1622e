// lobby.js: the browser client of Lobby's lobby.v1 protocol. A plain ES
// module with no dependencies, served by every Lobby at /lobby.js.
//
//   import { Lobby } from "/lobby.js";
//   const lobby = new Lobby(location.origin, "news", {
//     onMessage: (m) => console.log(m.id, m.seq, m.msg),
//     onState: (s) => console.log("state", s),
//   });
//   await lobby.broadcast({ text: "hello" }); // resolves with the seq on ack
//
// A Lobby keeps one WebSocket to /ws/<room>. When the connection drops it
// reconnects by itself, with exponential backoff and jitter, and asks for
// the messages it missed (?since=<last seq>&epoch=<epoch>): the server
// replays them from the room's history, and a message seen twice is handed
// to the page once. When the history cannot fill the gap (the room was
// created anew, the server restarted, too much was missed) the server says
// recovered:false and Lobby says so too: the state becomes "gap" and
// onGap is called with what is missing. Nothing is pretended away.
//
// States, in onState and lobby.state:
//   connecting   the first connection is being made (or retried)
//   live         joined; messages flow
//   reconnecting the connection dropped; a new one is on its way
//   recovered    joined again, and every missed message was replayed
//   gap          joined again, but messages may have been missed
//   closed       close() was called
// "recovered" and "gap" are live connections too (lobby.live is true).

/** SUBPROTOCOL is the WebSocket subprotocol Lobby speaks. */
export const SUBPROTOCOL = "lobby.v1";

/** ROOM_PATTERN is what the server accepts as a room name. */
export const ROOM_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** LobbyError is a refused or failed request; code is the server's error
 * code (invalid_to, unknown_session, ...) or one of lobby.js's own:
 * not_connected, disconnected, timeout, closed. */
export class LobbyError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "LobbyError";
    this.code = code;
  }
}

const defaults = {
  // ackTimeout is how long broadcast and direct wait for their ack, in ms.
  ackTimeout: 10000,
  // minDelay and maxDelay bound the wait before a reconnect, in ms: it
  // doubles after each failed attempt up to maxDelay, and a random part
  // of it (jitter) keeps a crowd of clients from coming back in step.
  minDelay: 250,
  maxDelay: 10000,
  // stableAfter is how long a connection must last, in ms, before the
  // backoff starts again from minDelay.
  stableAfter: 5000,
  // history, when true, shows the page the room's recent past: after the
  // first join, the room's retained messages are fetched
  // (GET /rooms/<room>/history) and handed to onMessage, marked
  // history:true, before any live message. After a reconnect the server
  // could not fully recover, the part of the gap the history still holds
  // is fetched the same way, and onGap reports only the rest.
  history: false,
  // token is a client JWT, for a server started with --jwt-secret: it is
  // sent as ?token= on connect and as a bearer token to the history route.
  token: "",
};

/**
 * Lobby is one client in one room.
 *
 * @param {string} url the server, e.g. location.origin or "ws://host:8081"
 *   (http and https are turned into ws and wss).
 * @param {string} room the room to join (1 to 64 of A-Z a-z 0-9 _ . -).
 * @param {object} opts handlers and settings:
 *   onMessage({id, room, seq, ts, msg, history}) a room message, once, in order
 *     (ts: when the room accepted it, Unix ms);
 *   onPresence({type, id, members}) type is "welcome", "joined", "left"
 *     or "members"; members is the current list of session ids;
 *   onDirect({id, msg}) a direct message to this client;
 *   onState(state, detail) see the states above;
 *   onGap({room, epoch, previousEpoch, since, seq}) messages may be
 *     missing: when epoch is previousEpoch, those after since up to seq;
 *     otherwise the room was created anew, and those of previousEpoch
 *     after since and those of epoch up to seq are gone;
 *   onError(err) anything that went wrong outside a request;
 *   and the settings in `defaults` above.
 */
export class Lobby {
  #opts;
  #base; // the server's URL, ws: or wss:
  #ws = null;
  #asked = false; // the current connection asked for a replay
  #joinedOnce = false;
  #nextRef = 0;
  #pending = new Map(); // ref -> {resolve, reject, timer}
  #attempt = 0;
  #retryTimer = 0;
  #stableTimer = 0;
  #held = null; // live messages held while the history loads
  #loads = 0; // history loads not finished
  #loading = Promise.resolve(); // the last history load
  #closed = false;

  constructor(url, room, opts = {}) {
    if (!ROOM_PATTERN.test(room)) {
      throw new LobbyError("invalid_room", `room ${JSON.stringify(room)} is not 1 to 64 of A-Z a-z 0-9 _ . -`);
    }
    const base = new URL(url || location.origin, location.href);
    base.protocol = base.protocol.replace(/^http/, "ws");
    this.#base = base;
    this.#opts = { ...defaults, ...opts };
    /** room is the room joined. */
    this.room = room;
    /** id is this client's session id, new for each connection. */
    this.id = null;
    /** members are the room's session ids, in join order. */
    this.members = [];
    /** state is one of the states above. */
    this.state = "connecting";
    /** epoch and seq say where in the room's history the client is. */
    this.epoch = null;
    this.seq = 0;
    this.#connect();
  }

  /** live reports whether the client is joined and can send. */
  get live() {
    return this.state === "live" || this.state === "recovered" || this.state === "gap";
  }

  /** broadcast sends msg (any JSON value) to the room; it resolves with
   * the message's seq once the server acks it. */
  broadcast(msg) {
    return this.#request({ type: "broadcast", msg });
  }

  /** direct sends msg to one session (in any room); it resolves on ack. */
  direct(to, msg) {
    return this.#request({ type: "direct", to, msg });
  }

  /** refreshMembers asks the server for the member list; it resolves with
   * it and calls onPresence. */
  refreshMembers() {
    return this.#request({ type: "members" });
  }

  /** close leaves the room for good: no reconnect. Requests still waiting
   * are rejected. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#stableTimer);
    const ws = this.#ws;
    this.#ws = null;
    if (ws) ws.close(1000, "bye");
    this.#failPending("closed", "the client was closed");
    this.#setState("closed");
  }

  #connect() {
    const u = new URL(`/ws/${encodeURIComponent(this.room)}`, this.#base);
    if (this.#opts.token) u.searchParams.set("token", this.#opts.token);
    this.#asked = this.epoch !== null;
    if (this.#asked) {
      u.searchParams.set("since", String(this.seq));
      u.searchParams.set("epoch", this.epoch);
    }
    const ws = new WebSocket(u, SUBPROTOCOL);
    this.#ws = ws;
    ws.onopen = () => {
      if (ws.protocol !== SUBPROTOCOL) {
        this.#emit("onError", new LobbyError("protocol", `the server at ${u.origin} does not speak ${SUBPROTOCOL}`));
        this.close();
      }
    };
    ws.onmessage = (e) => {
      if (ws === this.#ws) this.#frame(e.data);
    };
    ws.onclose = (e) => {
      if (ws === this.#ws) this.#dropped(e);
    };
  }

  #frame(data) {
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      this.#emit("onError", new LobbyError("invalid_frame", "the server sent a frame that is not JSON"));
      return;
    }
    switch (f.type) {
      case "welcome":
        this.#welcome(f);
        break;
      case "message":
        this.#message(f);
        break;
      case "joined":
        if (!this.members.includes(f.id)) this.members.push(f.id);
        this.#emit("onPresence", { type: "joined", id: f.id, members: this.members.slice() });
        break;
      case "left":
        this.members = this.members.filter((m) => m !== f.id);
        this.#emit("onPresence", { type: "left", id: f.id, members: this.members.slice() });
        break;
      case "members":
        this.members = f.members.slice();
        this.#settle(f.ref, (p) => p.resolve(this.members.slice()));
        this.#emit("onPresence", { type: "members", id: null, members: this.members.slice() });
        break;
      case "direct":
        this.#emit("onDirect", { id: f.id, msg: f.msg });
        break;
      case "ack":
        this.#settle(f.ref, (p) => p.resolve(f.seq));
        break;
      case "error": {
        const err = new LobbyError(f.code, f.message);
        if (!this.#settle(f.ref, (p) => p.reject(err))) this.#emit("onError", err);
        break;
      }
    }
  }

  #welcome(f) {
    const again = this.#joinedOnce;
    this.#joinedOnce = true;
    this.id = f.id;
    this.members = f.members.slice();
    let state = "live";
    if (this.#asked && f.recovered) {
      // The replay follows the welcome; this.seq moves as it comes.
      state = again ? "recovered" : "live";
    } else if (this.#asked) {
      // The server could not replay what was missed: say so. With the
      // history option, what the room's history still holds is fetched
      // first, so the gap is only what is really gone.
      const gap = { room: this.room, epoch: f.epoch, previousEpoch: this.epoch, since: this.seq, seq: f.seq };
      const after = f.epoch === this.epoch ? this.seq : 0;
      this.epoch = f.epoch;
      this.seq = f.seq;
      state = "gap";
      if (this.#opts.history) this.#loadHistory(f.epoch, after, f.seq, gap);
      else this.#emit("onGap", gap);
    } else {
      this.epoch = f.epoch;
      this.seq = f.seq;
      if (this.#opts.history) this.#loadHistory(f.epoch, 0, f.seq, null);
    }
    this.#emit("onPresence", { type: "welcome", id: f.id, members: this.members.slice() });
    this.#setState(state);
    clearTimeout(this.#stableTimer);
    this.#stableTimer = setTimeout(() => {
      this.#attempt = 0;
    }, this.#opts.stableAfter);
  }

  #message(f) {
    if (f.seq <= this.seq) return; // a replay of what the page has
    if (f.seq !== this.seq + 1) {
      const gap = { room: this.room, epoch: this.epoch, previousEpoch: this.epoch, since: this.seq, seq: f.seq - 1 };
      this.#setState("gap");
      this.#emit("onGap", gap);
    }
    this.seq = f.seq;
    const m = { id: f.id, room: f.room, seq: f.seq, ts: f.ts, msg: f.msg, history: false };
    if (this.#held) this.#held.push(m);
    else this.#emit("onMessage", m);
  }

  // loadHistory hands the page the room's retained messages after `after`
  // up to upTo (the welcome's seq), then the live ones held meanwhile. It
  // runs after a join, while the room surely exists, so it never meets a
  // 404. For a gap, it first calls onGap with what the history could not
  // fill. Loads run one after the other; live messages wait for the last.
  #loadHistory(epoch, after, upTo, gap) {
    this.#held ??= [];
    this.#loads++;
    this.#loading = this.#loading.then(async () => {
      let entries = [];
      try {
        const u = new URL(`/rooms/${encodeURIComponent(this.room)}/history`, this.#base);
        u.protocol = u.protocol.replace(/^ws/, "http");
        u.searchParams.set("since", String(after));
        const headers = this.#opts.token ? { Authorization: `Bearer ${this.#opts.token}` } : {};
        const res = await fetch(u, { cache: "no-store", headers });
        if (!res.ok) throw new LobbyError("history", `GET ${u.pathname}: HTTP ${res.status}`);
        const h = await res.json();
        if (h.epoch === epoch) entries = h.messages.filter((e) => e.seq > after && e.seq <= upTo);
      } catch (err) {
        this.#emit("onError", err);
      }
      if (gap) {
        if (entries.length > 0) gap.seq = entries[0].seq - 1;
        if (gap.epoch !== gap.previousEpoch || gap.seq > gap.since) this.#emit("onGap", gap);
      }
      for (const e of entries) {
        this.#emit("onMessage", { id: e.id, room: this.room, seq: e.seq, ts: e.ts, msg: e.msg, history: true });
      }
      if (--this.#loads === 0) {
        const held = this.#held;
        this.#held = null;
        for (const m of held) this.#emit("onMessage", m);
      }
    });
  }

  #dropped(e) {
    this.#ws = null;
    clearTimeout(this.#stableTimer);
    this.#failPending("disconnected", "the connection dropped before the ack; the message may or may not have been sent");
    if (this.#closed) return;
    const delay = Math.min(this.#opts.maxDelay, this.#opts.minDelay * 2 ** this.#attempt);
    this.#attempt++;
    const wait = delay / 2 + (Math.random() * delay) / 2;
    this.#retryTimer = setTimeout(() => this.#connect(), wait);
    this.#setState(this.#joinedOnce ? "reconnecting" : "connecting", { code: e.code, reason: e.reason, retryIn: wait });
  }

  #request(frame) {
    if (!this.#ws || !this.live) {
      return Promise.reject(new LobbyError("not_connected", "not connected; try again when live"));
    }
    const ref = ++this.#nextRef;
    const ws = this.#ws;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(ref);
        reject(new LobbyError("timeout", `no answer within ${this.#opts.ackTimeout} ms`));
      }, this.#opts.ackTimeout);
      this.#pending.set(ref, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...frame, ref }));
    });
  }

  // settle finishes the request ref with fn and reports whether there was one.
  #settle(ref, fn) {
    const p = this.#pending.get(ref);
    if (!p) return false;
    this.#pending.delete(ref);
    clearTimeout(p.timer);
    fn(p);
    return true;
  }

  #failPending(code, message) {
    for (const [ref, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new LobbyError(code, message));
      this.#pending.delete(ref);
    }
  }

  #setState(state, detail = {}) {
    this.state = state;
    this.#emit("onState", state, detail);
  }

  // emit calls a page's handler; a handler that throws is reported (the
  // console shows it) without breaking the client.
  #emit(name, ...args) {
    const fn = this.#opts[name];
    if (typeof fn !== "function") return;
    try {
      fn(...args);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }
}
