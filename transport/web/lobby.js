// lobby.js: the browser client of Lobby's lobby.v1 protocol. A plain ES
// module with no dependencies, served by every Lobby at /lobby.js.
//
// Many rooms on one connection:
//
//   import { Lobby } from "/lobby.js";
//   const lobby = new Lobby(location.origin, { name: "Ada", onState: (s) => console.log(s) });
//   const news = lobby.join("news", {
//     onMessage: (m) => console.log(m.room, m.id, m.seq, m.msg),
//     onPresence: (p) => console.log(p.type, p.members),
//   });
//   const team = lobby.join("team", { onMessage: (m) => console.log(m.msg) });
//   await news.broadcast({ text: "hello" }); // resolves with the seq on ack
//   team.leave();
//
// Every broadcast carries an idempotency key. One made while the room is
// not live (connecting, reconnecting) waits, and goes out when it is
// live again; one the connection dropped under before its ack is sent
// again then, with the same key, so that the server stores it once
// however often it is sent: nothing is lost to a reconnect, and nothing
// is duplicated by it.
//
// One room, the shape of earlier versions (the page's handlers are the
// room's, and lobby.state is the room's):
//
//   const lobby = new Lobby(location.origin, "news", { onMessage, onState });
//   await lobby.broadcast({ text: "hello" });
//
// A Lobby keeps one WebSocket: to /ws (many rooms), or to /ws/<room> (one
// room, which may be joined to more). When the connection drops it
// reconnects by itself, with exponential backoff and jitter, and every
// room asks again for the messages it missed, with its own since and
// epoch: the server replays them from the room's history, and a message
// seen twice is handed to the page once. When the history cannot fill
// the gap (the room was created anew, the server restarted, too much was
// missed) the server says recovered:false and the room says so too: its
// state becomes "gap" and its onGap is called with what is missing.
// Nothing is pretended away.
//
// States of a room (room.state, its onState; for a single-room Lobby,
// lobby.state and the Lobby's onState):
//   connecting   the first connection is being made (or retried)
//   live         joined; messages flow
//   reconnecting the connection dropped; a new one is on its way
//   recovered    joined again, and every missed message was replayed
//   gap          joined again, but messages may have been missed
//   closed       left, or close() was called
// "recovered" and "gap" are live too (room.live is true). A many-room
// Lobby's own state is its connection's: connecting, live, reconnecting,
// closed.

/** SUBPROTOCOL is the WebSocket subprotocol Lobby speaks. */
export const SUBPROTOCOL = "lobby.v1";

/** ROOM_PATTERN is what the server accepts as a room name. */
export const ROOM_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** LobbyError is a refused or failed request; code is the server's error
 * code (invalid_to, unknown_session, forbidden, ...) or one of lobby.js's
 * own: not_connected, disconnected, timeout, closed, queue_full. A
 * broadcast's error carries its key: broadcast(msg, { key }) sends it
 * again, stored at most once. */
export class LobbyError extends Error {
  constructor(code, message, key) {
    super(message);
    this.name = "LobbyError";
    this.code = code;
    if (key !== undefined) this.key = key;
  }
}

// SUBSCRIBE_WINDOW is how many subscribes may wait for their answer at
// once.
const SUBSCRIBE_WINDOW = 8;

// UNKNOWN_RETRIES is how many times a broadcast whose fate the server could
// not know (outcome_unknown: the cluster did not answer in time) is sent
// again with its key, a second or so apart, before its promise rejects.
const UNKNOWN_RETRIES = 3;

// newKey is a broadcast's idempotency key: 128 random bits in hex, which
// no other client's key will meet. crypto.getRandomValues works on pages
// served over plain http too, where crypto.randomUUID does not.
function newKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

const defaults = {
  // ackTimeout is how long broadcast and direct wait for their ack once
  // sent, in ms. A broadcast's wait for a connection does not count.
  ackTimeout: 10000,
  // maxQueued is the most broadcasts a room holds unanswered: waiting
  // for the room to be live, or sent and not yet acked. Past it
  // broadcast rejects at once (queue_full).
  maxQueued: 100,
  // minDelay and maxDelay bound the wait before a reconnect, in ms: it
  // doubles after each failed attempt up to maxDelay, and a random part
  // of it (jitter) keeps a crowd of clients from coming back in step.
  minDelay: 250,
  maxDelay: 10000,
  // stableAfter is how long a connection must last, in ms, before the
  // backoff starts again from minDelay.
  stableAfter: 5000,
  // history, when true, shows the page a room's recent past: after the
  // first join, the room's retained messages are fetched
  // (GET /rooms/<room>/history) and handed to onMessage, marked
  // history:true, before any live message. After a reconnect the server
  // could not fully recover, the part of the gap the history still holds
  // is fetched the same way, and onGap reports only the rest. A room's
  // own option (join's) overrides the Lobby's.
  history: false,
  // token is a client JWT, for a server started with --jwt-secret: it is
  // sent as ?token= on connect and as a bearer token to the history route.
  token: "",
  // name is the display name the others see (a token's name claim wins).
  name: "",
};

/**
 * Lobby is one client, on one connection, in any number of rooms.
 *
 * @param {string} url the server, e.g. location.origin or "ws://host:8081"
 *   (http and https are turned into ws and wss).
 * @param {string} [room] for a single-room Lobby, the room to join (1 to
 *   64 of A-Z a-z 0-9 _ . -); leave it out to join rooms with join().
 * @param {object} opts handlers and settings:
 *   onState(state, detail) see the states above;
 *   onDirect({id, msg}) a direct message to this client;
 *   onError(err) anything that went wrong outside a request;
 *   for a single-room Lobby, the room's handlers too (see join);
 *   and the settings in `defaults` above.
 */
export class Lobby {
  #opts;
  #base; // the server's URL, ws: or wss:
  #ws = null;
  #home = null; // a single-room Lobby's room, joined by the connect path
  #rooms = new Map(); // name -> LobbyRoom
  #connected = false;
  #everConnected = false;
  #nextRef = 0;
  #pending = new Map(); // ref -> {resolve, reject, timer, subscribe}
  #asking = []; // rooms to subscribe to, once the window lets them
  #inFlight = new Set(); // rooms whose subscribe is not answered yet
  #cooling = 0; // a timer while the server said rate_limited: no subscribes meanwhile
  #attempt = 0;
  #retryTimer = 0;
  #stableTimer = 0;
  #closed = false;

  constructor(url, room, opts) {
    if (typeof room !== "string") {
      opts = room;
      room = null;
    }
    opts = opts || {};
    if (room !== null && !ROOM_PATTERN.test(room)) {
      throw new LobbyError("invalid_room", `room ${JSON.stringify(room)} is not 1 to 64 of A-Z a-z 0-9 _ . -`);
    }
    const base = new URL(url || location.origin, location.href);
    base.protocol = base.protocol.replace(/^http/, "ws");
    this.#base = base;
    this.#opts = { ...defaults, ...opts };
    /** id is this client's session id, new for each connection. */
    this.id = null;
    /** state is the connection's (a single-room Lobby: its room's). */
    this.state = "connecting";
    if (room !== null) {
      this.#home = new LobbyRoom(this, room, this.#opts, true);
      this.#rooms.set(room, this.#home);
    }
    this.#connect();
  }

  /** room is a single-room Lobby's room name (null otherwise). */
  get room() {
    return this.#home ? this.#home.name : null;
  }
  /** members, epoch and seq are a single-room Lobby's room's. */
  get members() {
    return this.#home ? this.#home.members : [];
  }
  get epoch() {
    return this.#home ? this.#home.epoch : null;
  }
  get seq() {
    return this.#home ? this.#home.seq : 0;
  }

  /** live reports whether the client is connected (a single-room Lobby:
   * joined) and can send. */
  get live() {
    if (this.#home) return this.#home.live;
    return this.#connected;
  }

  /** rooms are the rooms joined, in the order joined. */
  get rooms() {
    return [...this.#rooms.values()];
  }

  /**
   * join subscribes to room on this connection, and returns the room:
   * its members, seq, epoch, state, broadcast, refreshMembers, leave.
   * Joining a room joined already returns it.
   *
   * @param {string} room the room (1 to 64 of A-Z a-z 0-9 _ . -).
   * @param {object} handlers the room's:
   *   onMessage({id, room, seq, ts, msg, history}) a room message, once, in order
   *     (ts: when the room accepted it, Unix ms);
   *   onPresence({type, id, room, members, names}) type is "welcome",
   *     "joined", "left" or "members"; members is the current list of
   *     session ids, names their display names where they have one.
   *     "members" (id null) is the answer to refreshMembers, or the list
   *     the server sends instead of a burst of joins and leaves;
   *   onState(state, detail) the room's state;
   *   onGap({room, epoch, previousEpoch, since, seq}) messages may be
   *     missing: when epoch is previousEpoch, those after since up to seq;
   *     otherwise the room was created anew, and those of previousEpoch
   *     after since and those of epoch up to seq are gone;
   *   onError(err) the room was refused (forbidden, too_many_subscriptions)
   *     or something else went wrong in it;
   *   history, name: as the Lobby's options, for this room.
   */
  join(room, handlers = {}) {
    if (!ROOM_PATTERN.test(room)) {
      throw new LobbyError("invalid_room", `room ${JSON.stringify(room)} is not 1 to 64 of A-Z a-z 0-9 _ . -`);
    }
    if (this.#closed) throw new LobbyError("closed", "the client was closed");
    let r = this.#rooms.get(room);
    if (r) return r;
    // The Lobby's settings, not a single-room Lobby's room handlers.
    const { onState, onError, onMessage, onPresence, onGap, ...settings } = this.#opts;
    r = new LobbyRoom(this, room, { ...settings, ...handlers }, false);
    this.#rooms.set(room, r);
    this._subscribe(r); // now if the socket is open, else when it opens
    return r;
  }

  /** broadcast sends msg (any JSON value) to a single-room Lobby's room,
   * as LobbyRoom's broadcast does; it resolves with the message's seq
   * once the server acks it. */
  broadcast(msg, opts) {
    if (!this.#home) return Promise.reject(new LobbyError("room_required", "join a room and broadcast there"));
    return this.#home.broadcast(msg, opts);
  }

  /** direct sends msg to one session (in any room); it resolves on ack. */
  direct(to, msg) {
    return this._request({ type: "direct", to, msg });
  }

  /** refreshMembers asks for a single-room Lobby's member list. */
  refreshMembers() {
    if (!this.#home) return Promise.reject(new LobbyError("room_required", "join a room and ask there"));
    return this.#home.refreshMembers();
  }

  /** close leaves every room for good: no reconnect. Requests still
   * waiting are rejected. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#stableTimer);
    const ws = this.#ws;
    this.#ws = null;
    if (ws) ws.close(1000, "bye");
    this.#failPending("closed", "the client was closed");
    const home = this.#home;
    for (const r of this.#rooms.values()) r._closed();
    // A single-room Lobby's state is its room's, closed just now.
    if (!home) this.#setState("closed");
  }

  #connect() {
    const home = this.#home;
    const u = new URL(home ? `/ws/${encodeURIComponent(home.name)}` : "/ws", this.#base);
    if (this.#opts.token) u.searchParams.set("token", this.#opts.token);
    if (this.#opts.name) u.searchParams.set("name", this.#opts.name);
    if (home) home._asking(u.searchParams);
    const ws = new WebSocket(u, SUBPROTOCOL);
    this.#ws = ws;
    ws.onopen = () => {
      if (ws.protocol !== SUBPROTOCOL) {
        this.#emit("onError", new LobbyError("protocol", `the server at ${u.origin} does not speak ${SUBPROTOCOL}`));
        this.close();
        return;
      }
      // The server holds these until the path's room has joined, if any.
      for (const r of this.#rooms.values()) {
        if (r !== home) this._subscribe(r);
      }
    };
    ws.onmessage = (e) => {
      if (ws === this.#ws) this.#frame(e.data);
    };
    ws.onclose = (e) => {
      if (ws === this.#ws) this.#dropped(e);
    };
  }

  // connected is the connection's start: its id, and (a single-room
  // Lobby's) its room's welcome, or GET /ws's connected frame.
  #up(id) {
    this.id = id;
    if (this.#connected) return;
    this.#connected = true;
    this.#everConnected = true;
    clearTimeout(this.#stableTimer);
    this.#stableTimer = setTimeout(() => {
      this.#attempt = 0;
    }, this.#opts.stableAfter);
    if (!this.#home) this.#setState("live");
  }

  // subscribe asks the server for room r, with its since and epoch, once
  // fewer than SUBSCRIBE_WINDOW subscribes are unanswered: a reconnect in
  // a hundred rooms paces itself instead of meeting the connection's rate
  // limit (whose strikes would close it, again and again).
  _subscribe(r) {
    if (!this.#asking.includes(r) && !this.#inFlight.has(r)) this.#asking.push(r);
    this.#pump();
  }

  #pump() {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || this.#cooling) return;
    while (this.#inFlight.size < SUBSCRIBE_WINDOW && this.#asking.length > 0) {
      const r = this.#asking.shift();
      if (this.#rooms.get(r.name) === r) this.#ask(ws, r);
    }
  }

  #ask(ws, r) {
    this.#inFlight.add(r);
    const answered = () => {
      if (this.#ws !== ws) return;
      this.#inFlight.delete(r);
      this.#pump();
    };
    const ref = ++this.#nextRef;
    const frame = { type: "subscribe", room: r.name, ref };
    r._asking(frame);
    if (r._opts.name && r._opts.name !== this.#opts.name) frame.name = r._opts.name;
    const reject = (err) => {
      if (err.code !== "rate_limited") {
        answered();
        r._refused(err);
        return;
      }
      // Over the connection's rate (many rooms asked again at once after
      // a reconnect): the whole connection waits a while before it asks
      // for any room again. Asking on at once would meet the limit again
      // and again, and refusals in a row close the connection.
      if (this.#ws !== ws) return;
      this.#inFlight.delete(r);
      if (this.#rooms.get(r.name) === r && !this.#asking.includes(r)) this.#asking.unshift(r);
      if (!this.#cooling) {
        this.#cooling = setTimeout(() => {
          this.#cooling = 0;
          if (this.#ws === ws) this.#pump();
        }, 500 + Math.random() * 1000);
      }
    };
    this.#pending.set(ref, { subscribe: r, resolve: answered, reject, timer: 0 });
    ws.send(JSON.stringify(frame));
  }

  // unsubscribe tells the server that r is left, and forgets it.
  _unsubscribe(r) {
    if (this.#rooms.get(r.name) !== r) return;
    this.#rooms.delete(r.name);
    if (r === this.#home) this.#home = null;
    const waiting = this.#asking.indexOf(r);
    if (waiting >= 0) {
      this.#asking.splice(waiting, 1); // never asked for: nothing to leave
      return;
    }
    const ws = this.#ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "unsubscribe", room: r.name }));
  }

  _forget(r) {
    if (this.#rooms.get(r.name) === r) this.#rooms.delete(r.name);
  }

  #frame(data) {
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      this.#emit("onError", new LobbyError("invalid_frame", "the server sent a frame that is not JSON"));
      return;
    }
    const r = typeof f.room === "string" ? this.#rooms.get(f.room) : null;
    switch (f.type) {
      case "connected":
        this.#up(f.id);
        break;
      case "welcome":
        this.#up(f.id);
        this.#settle(f.ref, (p) => p.resolve());
        if (r) r._welcome(f);
        break;
      case "message":
      case "joined":
      case "left":
        if (r) r._frame(f);
        break;
      case "members":
        if (r) r._frame(f);
        this.#settle(f.ref, (p) => p.resolve(r ? r.members.slice() : f.members));
        break;
      case "unsubscribed":
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

  #dropped(e) {
    this.#ws = null;
    this.#connected = false;
    this.#asking = [];
    this.#inFlight.clear();
    clearTimeout(this.#cooling);
    this.#cooling = 0;
    clearTimeout(this.#stableTimer);
    this.#failPending("disconnected", "the connection dropped before the ack; the message may or may not have been sent");
    if (this.#closed) return;
    const delay = Math.min(this.#opts.maxDelay, this.#opts.minDelay * 2 ** this.#attempt);
    this.#attempt++;
    const wait = delay / 2 + (Math.random() * delay) / 2;
    this.#retryTimer = setTimeout(() => this.#connect(), wait);
    const detail = { code: e.code, reason: e.reason, retryIn: wait };
    for (const r of this.#rooms.values()) r._dropped(detail);
    if (!this.#home) this.#setState(this.#everConnected ? "reconnecting" : "connecting", detail);
  }

  _request(frame, room) {
    if (!this.#ws || !this.#connected || (room && !room.live)) {
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

  // sendBroadcast sends a room's broadcast b on the connection, under a
  // new ref and its own key, and has the room told of its answer: the
  // ack, an error, or none within ackTimeout.
  _sendBroadcast(b) {
    const ws = this.#ws;
    const ref = ++this.#nextRef;
    b.ref = ref;
    const timer = setTimeout(() => {
      this.#pending.delete(ref);
      b.room._answered(b, null, new LobbyError("timeout", `no answer within ${this.#opts.ackTimeout} ms`, b.key));
    }, this.#opts.ackTimeout);
    this.#pending.set(ref, {
      broadcast: b,
      timer,
      resolve: (seq) => b.room._answered(b, seq, null),
      reject: (err) => b.room._answered(b, null, err),
    });
    ws.send(JSON.stringify({ type: "broadcast", room: b.room.name, msg: b.msg, key: b.key, ref }));
  }

  // connectedNow reports whether the connection is up and a frame can go.
  _connectedNow() {
    return this.#connected && this.#ws !== null && this.#ws.readyState === WebSocket.OPEN;
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
      this.#pending.delete(ref);
      // A subscribe is asked again; a broadcast is its room's, which
      // sends it again or rejects it.
      if (!p.subscribe && !p.broadcast) p.reject(new LobbyError(code, message));
    }
  }

  // setState is the Lobby's state; a single-room Lobby's room sets it too.
  _setState(state, detail = {}) {
    this.#setState(state, detail);
  }

  #setState(state, detail = {}) {
    this.state = state;
    this.#emit("onState", state, detail);
  }

  _isHome(r) {
    return r === this.#home;
  }

  _base() {
    return this.#base;
  }

  // emit calls a page's handler; a handler that throws is reported (the
  // console shows it) without breaking the client.
  #emit(name, ...args) {
    callHandler(this.#opts[name], args);
  }
}

function callHandler(fn, args) {
  if (typeof fn !== "function") return;
  try {
    fn(...args);
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
  }
}

/**
 * LobbyRoom is one room of a Lobby's: its member list, where it is in the
 * room's history (epoch, seq) and its gap handling are its own.
 */
export class LobbyRoom {
  #lobby;
  #home;
  #asked = false; // the current subscription asked for a replay
  #joinedOnce = false;
  #welcomed = false; // the current subscription's welcome came
  #held = null; // live messages held while the history loads
  #loads = 0;
  #loading = Promise.resolve();
  // outbox holds the broadcasts not yet answered, in the order made:
  // {room, msg, key, resolve, reject, ref (0 while not sent on this
  // connection), tries}.
  #outbox = [];

  constructor(lobby, name, opts, home) {
    this.#lobby = lobby;
    this.#home = home;
    this._opts = opts;
    /** name is the room's name. */
    this.name = name;
    /** members are the room's session ids, in join order; names their
     * display names, by id, where they have one. */
    this.members = [];
    this.names = {};
    /** state is one of the room states above. */
    this.state = "connecting";
    /** epoch and seq say where in the room's history the client is. */
    this.epoch = null;
    this.seq = 0;
  }

  get live() {
    return this.state === "live" || this.state === "recovered" || this.state === "gap";
  }

  /** broadcast sends msg (any JSON value) to the room, under an
   * idempotency key (opts.key, else a new one); it resolves with the
   * message's seq once the server acks it (the first one's, when the
   * server had the key). While the room is not live it waits, and goes
   * out when the room is live again; one sent when the connection
   * dropped is sent again then, with its key. It rejects on the
   * server's error, when no ack comes within ackTimeout of sending, when
   * the room is left or the Lobby closed, and at once past maxQueued;
   * the error carries the key, to send it again with. */
  broadcast(msg, opts = {}) {
    const key = opts.key ?? newKey();
    if (this.state === "closed") return Promise.reject(new LobbyError("closed", "the room was left", key));
    if (this.#outbox.length >= this._opts.maxQueued) {
      return Promise.reject(new LobbyError("queue_full", `${this._opts.maxQueued} broadcasts are waiting for their answer already`, key));
    }
    return new Promise((resolve, reject) => {
      this.#outbox.push({ room: this, msg, key, resolve, reject, ref: 0, tries: 0 });
      // Behind any made before that still wait: one sender's messages
      // keep their order.
      if (this.#welcomed) this.#sendWaiting();
    });
  }

  // answered settles broadcast b with its ack's seq, or err. A fate the
  // server could not know (the cluster did not answer in time) is tried
  // again with the same key, which the server stores at most once.
  _answered(b, seq, err) {
    b.ref = 0;
    if (err && err.code === "outcome_unknown" && b.tries < UNKNOWN_RETRIES) {
      b.tries++;
      setTimeout(() => {
        if (b.ref === 0 && this.#outbox.includes(b) && this.#welcomed && this.#lobby._connectedNow()) this.#lobby._sendBroadcast(b);
      }, 1000 + Math.random() * 1000);
      return;
    }
    const i = this.#outbox.indexOf(b);
    if (i < 0) return;
    this.#outbox.splice(i, 1);
    if (err) {
      err.key = b.key;
      b.reject(err);
    } else {
      b.resolve(seq);
    }
  }

  // sendWaiting sends, in order, the broadcasts not sent on the current
  // connection: made while the room was not live, or sent on a connection
  // that dropped before their answer (their keys make the second sending
  // harmless).
  #sendWaiting() {
    for (const b of this.#outbox) {
      if (b.ref === 0 && this.#lobby._connectedNow()) this.#lobby._sendBroadcast(b);
    }
  }

  #rejectWaiting(err) {
    const outbox = this.#outbox;
    this.#outbox = [];
    for (const b of outbox) b.reject(new LobbyError(err.code, err.message, b.key));
  }

  /** refreshMembers asks the server for the member list; it resolves with
   * it and calls onPresence. */
  refreshMembers() {
    return this.#lobby._request({ type: "members", room: this.name }, this);
  }

  /** leave unsubscribes from the room: its handlers are called no more. */
  leave() {
    if (this.state === "closed") return;
    this.#lobby._unsubscribe(this);
    this._closed();
  }

  // asking puts the room's since and epoch in params (a URL's
  // searchParams, or a subscribe frame) when it has been in the room.
  _asking(params) {
    this.#asked = this.epoch !== null;
    this.#welcomed = false;
    if (!this.#asked) return;
    if (params instanceof URLSearchParams) {
      params.set("since", String(this.seq));
      params.set("epoch", this.epoch);
    } else {
      params.since = this.seq;
      params.epoch = this.epoch;
    }
  }

  _refused(err) {
    this.#lobby._forget(this);
    this.#rejectWaiting(err);
    this._closed();
    this.#emit("onError", err);
  }

  _closed() {
    if (this.state === "closed") return;
    this.#rejectWaiting(new LobbyError("closed", "the room was left, or the client closed, before the ack"));
    this.#setState("closed");
  }

  _dropped(detail) {
    this.#welcomed = false;
    // Sent again, with their keys, once the room is joined again.
    for (const b of this.#outbox) b.ref = 0;
    if (this.state === "closed") return;
    this.#setState(this.#joinedOnce ? "reconnecting" : "connecting", detail);
  }

  _welcome(f) {
    const again = this.#joinedOnce;
    this.#joinedOnce = true;
    this.#welcomed = true;
    this.members = f.members.slice();
    this.names = { ...(f.names || {}) };
    let state = "live";
    if (this.#asked && f.recovered) {
      // The replay follows the welcome; this.seq moves as it comes.
      state = again ? "recovered" : "live";
    } else if (this.#asked) {
      // The server could not replay what was missed: say so. With the
      // history option, what the room's history still holds is fetched
      // first, so the gap is only what is really gone.
      const gap = { room: this.name, epoch: f.epoch, previousEpoch: this.epoch, since: this.seq, seq: f.seq };
      const after = f.epoch === this.epoch ? this.seq : 0;
      this.epoch = f.epoch;
      this.seq = f.seq;
      state = "gap";
      if (this._opts.history) this.#loadHistory(f.epoch, after, f.seq, gap);
      else this.#emit("onGap", gap);
    } else {
      this.epoch = f.epoch;
      this.seq = f.seq;
      if (this._opts.history) this.#loadHistory(f.epoch, 0, f.seq, null);
    }
    this.#presence("welcome", f.id);
    // Before the page hears the room is live, so that what it sends then
    // goes after them.
    this.#sendWaiting();
    this.#setState(state);
  }

  _frame(f) {
    if (!this.#welcomed || this.state === "closed") return; // a subscription left
    switch (f.type) {
      case "message":
        this.#message(f);
        break;
      case "joined":
        if (!this.members.includes(f.id)) this.members.push(f.id);
        if (f.name) this.names[f.id] = f.name;
        this.#presence("joined", f.id);
        break;
      case "left":
        this.members = this.members.filter((m) => m !== f.id);
        this.#presence("left", f.id);
        delete this.names[f.id];
        break;
      case "members":
        // Asked for, or sent unasked (no ref) for a burst of joins and
        // leaves: either way the whole list, which replaces ours.
        this.members = f.members.slice();
        this.names = { ...(f.names || {}) };
        this.#presence("members", null);
        break;
    }
  }

  #presence(type, id) {
    this.#emit("onPresence", { type, id, room: this.name, members: this.members.slice(), names: { ...this.names } });
  }

  #message(f) {
    if (f.seq <= this.seq) return; // a replay of what the page has
    if (f.seq !== this.seq + 1) {
      const gap = { room: this.name, epoch: this.epoch, previousEpoch: this.epoch, since: this.seq, seq: f.seq - 1 };
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
        const u = new URL(`/rooms/${encodeURIComponent(this.name)}/history`, this.#lobby._base());
        u.protocol = u.protocol.replace(/^ws/, "http");
        u.searchParams.set("since", String(after));
        const headers = this._opts.token ? { Authorization: `Bearer ${this._opts.token}` } : {};
        const res = await fetch(u, { cache: "no-store", headers });
        if (!res.ok) throw new LobbyError("history", `GET ${u.pathname}: HTTP ${res.status}`);
        const h = await res.json();
        if (h.epoch === epoch) entries = h.messages.filter((e) => e.seq > after && e.seq <= upTo);
      } catch (err) {
        this.#emit("onError", err);
      }
      if (this.state === "closed") return;
      if (gap) {
        if (entries.length > 0) gap.seq = entries[0].seq - 1;
        if (gap.epoch !== gap.previousEpoch || gap.seq > gap.since) this.#emit("onGap", gap);
      }
      for (const e of entries) {
        this.#emit("onMessage", { id: e.id, room: this.name, seq: e.seq, ts: e.ts, msg: e.msg, history: true });
      }
      if (--this.#loads === 0) {
        const held = this.#held;
        this.#held = null;
        for (const m of held) this.#emit("onMessage", m);
      }
    });
  }

  #setState(state, detail = {}) {
    this.state = state;
    if (this.#home) this.#lobby._setState(state, detail);
    else this.#emit("onState", state, detail);
  }

  #emit(name, ...args) {
    callHandler(this._opts[name], args);
  }
}
