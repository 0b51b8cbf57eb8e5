// Switchboard chat protocol (docs/PROTOCOL.md) for JavaScript: one module
// used by the browser page (served by the server at /switchboard.mjs) and by
// the Node command-line client (clients/node/chat.mjs).
//
// It does not open sockets itself: give it a WebSocket class (the browser's
// global one, or the `ws` package's in Node 20, which has no stable global
// WebSocket).
//
//   const chat = new SwitchboardClient("ws://localhost:8080/chat", { name: "bob", WebSocket });
//   chat.on("message", (m) => console.log(m.from, m.text));
//   chat.connect();
//   chat.broadcast("hi");
//   const { users } = await chat.request("users");
//   const { messages, more } = await chat.search("lunch friday", { topic: "news" });
//
// Reconnects with jittered exponential backoff. After a reconnect it
// subscribes again to its topics and catches up with `history` `after` the
// last `seq` it saw; when the server says `complete: false` (or restarted and
// lost its history) it emits a "gap" event so the user can be told.
//
// Accounts: give it a session `token` (or call `login`/`register` once
// connected, or set `signIn` before `connect`) and it signs in first on every
// connection: `auth` is its first message. A guest welcome that comes before
// the sign-in's answer is held back, so listeners see one welcome per
// connection; a sign-in on an open connection brings a second one. New tokens
// are emitted as "token" (null when dropped: `bad_token`, sign-out), failed
// sign-ins as "autherror". After a close that ends the session (1000 from the
// server: signed out; 4000 kicked, 4001 auth timeout, 4002 signed in
// elsewhere, 4003 banned) it does not reconnect: see closeReason().

/** Message builders: plain objects, ready for `send`. */
export const build = {
  broadcast: (text) => ({ type: "broadcast", text }),
  direct: (to, text) => ({ type: "direct", to, text }),
  multicast: (to, text) => ({ type: "multicast", to, text }),
  subscribe: (topic) => ({ type: "subscribe", topic }),
  unsubscribe: (topic) => ({ type: "unsubscribe", topic }),
  publish: (topic, text) => ({ type: "publish", topic, text }),
  request: (id, method, params = {}) => ({ type: "request", id, method, params }),
  auth: (token, id = "auth") => ({ type: "auth", token, id }),
};

/** Closes after which reconnecting would be wrong: the server ended this
 * session on purpose (a client's own Close is already "closed"). */
export function isFinalClose(code) {
  return code === 1000 || (code >= 4000 && code <= 4003);
}

/** Why the server ended the session, in words, or null for an ordinary
 * close (network, restart) that is worth reconnecting after. */
export function closeReason(code, reason = "") {
  if (code === 4000) return `removed by a moderator: ${reason || "no reason given"}`;
  if (code === 4001) return "not signed in in time (this server requires an account)";
  if (code === 4002) return "signed in elsewhere: another window or device took over this account";
  if (code === 4003) return reason.startsWith("banned") ? reason : `banned${reason ? `: ${reason}` : ""}`;
  if (code === 1000) return reason || "closed by the server";
  return null;
}

/** The `/chat` URL with `?name=` set. */
export function chatUrl(base, name) {
  const url = new URL(base);
  if (name) url.searchParams.set("name", name);
  return url.toString();
}

/** An error response to a request. */
export class ResponseError extends Error {
  constructor(code, message, details = {}) {
    super(`${code}: ${message}`);
    this.code = code;
    this.details = details; // the whole error object (retry_after_ms, until_ms, ...)
  }
}

/** Milliseconds to wait before reconnecting after the server's
 * {"type":"notice","event":"restarting","retry_after_ms":N}: N, each
 * client its own, so a restart does not bring every client back in the
 * same second; at most five minutes, whatever the notice says. */
export function restartDelay(notice) {
  const ms = Number(notice?.retry_after_ms);
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), 300000) : 0;
}

/** Milliseconds to wait before reconnect attempt `n` (0-based): exponential
 * from `base` to `max`, with full jitter so clients do not return in step. */
export function backoff(n, base = 250, max = 10000, random = Math.random) {
  const ceiling = Math.min(max, base * 2 ** n);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export class SwitchboardClient {
  /**
   * @param {string} url  ws://host:port/chat
   * @param {object} options  { name, WebSocket, reconnect = true, requestTimeout = 10000,
   *   token (a session token to sign in with), signIn ({ method: "login" | "register", name, password }) }
   */
  constructor(url, options = {}) {
    this.url = url;
    this.name = options.name || null;
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    this.reconnect = options.reconnect !== false;
    this.requestTimeout = options.requestTimeout || 10000;
    this.state = "idle"; // idle | connecting | open | reconnecting | closed
    this.welcome = null;
    this.lastSeq = 0; // the highest seq seen
    this.epoch = null;
    this.topics = new Set(); // subscriptions to restore after a reconnect
    this.ws = null;
    this.attempt = 0;
    this.nextId = 1;
    this.quietId = 1;
    this.pending = new Map(); // request id -> { resolve, reject, timer }
    this.listeners = new Map();
    this.timer = null;
    this.seenSeqs = new Set();
    this.token = options.token || null;
    this.signIn = options.signIn || null; // sent once, on the next connection
    this.authPending = null; // "token", "login" or "register" while a sign-in is unanswered
    this.held = null; // a guest welcome held back while a sign-in is pending
    this.welcomedWs = null; // the connection the last welcome came on
    this.authRequired = null; // the server's auth_required frame, in --auth required
    this.closeInfo = null; // { code, reason } of the last close
    this.retryAfter = null; // ms, from a "restarting" notice, for the next reconnect
  }

  /** The signed-in account's roles ([] for a guest). */
  get roles() {
    return this.welcome?.roles || [];
  }
  get guest() {
    return this.welcome ? this.welcome.guest !== false : true;
  }
  get moderator() {
    return this.roles.includes("moderator") || this.roles.includes("admin");
  }

  /** Listen for an event: "welcome", "message", "presence", "ack", "error",
   * "state", "gap", "caughtup", "topics", "token", "autherror",
   * "auth_required", or "*" for every server message. */
  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, []);
    this.listeners.get(event).push(fn);
    return this;
  }

  emit(event, value) {
    for (const fn of this.listeners.get(event) || []) fn(value);
  }

  setState(state, detail) {
    this.state = state;
    this.emit("state", { state, detail });
  }

  /** Open the connection (and keep it open, if reconnecting). */
  connect() {
    clearTimeout(this.timer);
    const first = this.welcome === null;
    this.setState(first ? "connecting" : "reconnecting", { attempt: this.attempt });
    // Signed in: ask for no name, as a guest cannot have an account's.
    const ws = new this.WebSocket(chatUrl(this.url, this.welcome?.guest === false ? null : this.name));
    this.ws = ws;
    this.held = null;
    this.authPending = null;
    ws.onopen = () => this.onOpen(ws);
    ws.onmessage = (ev) => this.onFrame(ev.data);
    ws.onclose = (ev) => this.onClose(ws, ev.code, ev.reason);
    ws.onerror = () => {}; // onclose follows and decides
    return this;
  }

  /** Sign in first thing: with the token, or the pending login/register. */
  onOpen(ws) {
    if (ws !== this.ws) return;
    if (this.token) {
      this.authPending = "token";
      this.send(build.auth(this.token));
    } else if (this.signIn) {
      const { method, name, password } = this.signIn;
      this.signIn = null; // the password is not kept
      this.account(method, { name, password }, { quiet: true }).catch(() => {}); // failures are "autherror"
    }
  }

  onFrame(data) {
    let msg;
    try {
      msg = JSON.parse(typeof data === "string" ? data : data.toString());
    } catch {
      return;
    }
    if (msg.type === "welcome") {
      // A guest welcome while signing in: the account's own comes next.
      if (this.authPending && msg.guest === true) return void (this.held = msg);
      this.authPending = null;
      this.held = null;
      return this.onWelcome(msg);
    }
    if (msg.type === "auth_required") {
      this.authRequired = msg;
      this.setState("signin", msg);
      this.emit("auth_required", msg);
      return;
    }
    if (msg.type === "error" && msg.id === "auth" && this.authPending === "token") {
      if (msg.code === "bad_token") this.setToken(null);
      return this.authFailed(msg.code, msg.message);
    }
    if (msg.type === "response") {
      const waiting = this.pending.get(msg.id);
      if (waiting) {
        this.pending.delete(msg.id);
        clearTimeout(waiting.timer);
        if (msg.error) waiting.reject(new ResponseError(msg.error.code, msg.error.message, msg.error));
        else {
          // In its place among the frames: before any that came behind it in
          // the same read (a promise's continuation would run after them).
          try {
            waiting.now?.(msg.result);
          } finally {
            waiting.resolve(msg.result);
          }
        }
        // The caller's own requests (not the client's bookkeeping), for
        // whoever prints every frame (chat.mjs --json), in their place.
        if (!waiting.quiet) this.emit("response", msg);
        return;
      }
    }
    if (msg.type === "notice" && msg.event === "restarting") this.retryAfter = restartDelay(msg);
    if (msg.type === "message") {
      if (this.seenSeqs.has(msg.seq)) return; // already shown (catch-up overlap)
      this.remember(msg.seq);
    }
    this.emit(msg.type, msg);
    this.emit("*", msg);
  }

  remember(seq) {
    this.seenSeqs.add(seq);
    if (this.seenSeqs.size > 5000) this.seenSeqs = new Set([...this.seenSeqs].slice(-2500));
    if (seq > this.lastSeq) this.lastSeq = seq;
  }

  async onWelcome(welcome) {
    // A second welcome on the same connection: signed in (a new identity),
    // not a reconnect; history is already shown.
    const signedInHere = this.welcomedWs === this.ws;
    this.welcomedWs = this.ws;
    const again = this.welcome !== null && !signedInHere;
    const sameStore = this.epoch === welcome.epoch;
    this.welcome = welcome;
    this.name = welcome.name; // keep our name across reconnects
    this.epoch = welcome.epoch;
    this.attempt = 0;
    this.setState("open", { again });
    this.emit("welcome", welcome);
    this.emit("*", welcome);
    try {
      for (const topic of this.topics) this.send(build.subscribe(topic));
      if (welcome.guest === false) {
        // The server restored the account's saved topics: learn them.
        const me = await this.request("whoami", {}, { quiet: true });
        this.topics = new Set(me.topics || []);
        this.emit("topics", [...this.topics]);
      }
      if (signedInHere) {
        // Nothing to catch up: the same connection went on.
      } else if (!again) {
        const replay = ({ messages }) => {
          for (const m of messages) this.onFrame(JSON.stringify({ ...m, replayed: true }));
        };
        await this.request("history", { limit: 50 }, { quiet: true, now: replay });
      } else if (!sameStore) {
        // A new history store numbers its messages from scratch: forget the
        // old numbers, or new messages would look like ones already seen.
        this.emit("gap", { reason: "the server restarted and lost its history", since: this.lastSeq, restarted: true });
        this.seenSeqs.clear();
        this.lastSeq = welcome.seq;
      } else {
        await this.catchUp();
      }
    } catch (e) {
      this.emit("error", { type: "error", code: "client", message: String(e.message || e) });
    }
    // Caught up as far as it will go (also after a failed request): what
    // was missed is shown, and input may follow it.
    this.emit("caughtup", { lastSeq: this.lastSeq });
  }

  /** Fetch what was missed while away, from every stream we follow. */
  async catchUp() {
    const after = this.lastSeq;
    const streams = [undefined, ...this.topics];
    const missed = [];
    let complete = true;
    for (const topic of streams) {
      let from = after;
      for (let page = 0; page < 20; page++) {
        const params = { after: from, limit: 100 };
        if (topic) params.topic = topic;
        const result = await this.request("history", params, { quiet: true });
        complete &&= result.complete;
        missed.push(...result.messages);
        if (!result.more || result.messages.length === 0) break;
        from = result.messages[result.messages.length - 1].seq;
      }
    }
    missed.sort((a, b) => a.seq - b.seq);
    for (const m of missed) this.onFrame(JSON.stringify({ ...m, replayed: true }));
    if (!complete) this.emit("gap", { reason: "some messages were no longer kept by the server", since: after });
  }

  onClose(ws, code, reason) {
    if (ws !== this.ws) return;
    for (const [, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.reject(new Error("connection closed"));
    }
    this.pending.clear();
    this.closeInfo = { code, reason };
    // Final: the server ended the session (not the echo of our own Close).
    const final = this.state !== "closed" && isFinalClose(code);
    if (!this.reconnect || this.state === "closed" || final) {
      this.retryAfter = null;
      this.setState("closed", { code, reason, final });
      return;
    }
    // After a "restarting" notice: when the server said; else back off.
    const restart = this.retryAfter !== null;
    const delay = restart ? this.retryAfter : backoff(this.attempt);
    this.retryAfter = null;
    this.attempt++;
    this.setState("reconnecting", { code, reason, delay, attempt: this.attempt, restart });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Send one message object (or a plain string, which is a broadcast). */
  send(message) {
    if (!this.ws || this.ws.readyState !== 1) throw new Error("not connected");
    this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** Send with an id; returns the id (the ack or error will carry it). */
  sendWithId(message) {
    const id = this.nextId++;
    this.send({ ...message, id });
    return id;
  }

  broadcast(text) {
    return this.sendWithId(build.broadcast(text));
  }
  direct(to, text) {
    return this.sendWithId(build.direct(to, text));
  }
  multicast(to, text) {
    return this.sendWithId(build.multicast(to, text));
  }
  subscribe(topic) {
    this.topics.add(topic);
    return this.sendWithId(build.subscribe(topic));
  }
  unsubscribe(topic) {
    this.topics.delete(topic);
    return this.sendWithId(build.unsubscribe(topic));
  }
  publish(topic, text) {
    return this.sendWithId(build.publish(topic, text));
  }

  /** Send a request; resolves with its `result`, rejects with ResponseError.
   * Its response is also a "response" event, unless `quiet` (the client's
   * own requests: catch-up, recent history, whoami, the first sign-in).
   * `now(result)` runs as the response is read, before the frames after it. */
  request(method, params = {}, { quiet = false, now = null } = {}) {
    // The client's own bookkeeping is numbered apart ("i3"), so it moves
    // no id that a caller sees (chat.py numbers the same way).
    const id = quiet ? `i${this.quietId++}` : `q${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no response to ${method} within ${this.requestTimeout} ms`));
      }, this.requestTimeout);
      this.pending.set(id, { resolve, reject, timer, quiet, now });
      try {
        this.send(build.request(id, method, params));
      } catch (e) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(e);
      }
    });
  }

  /** Search kept messages (broadcasts and topics) for every word of `q`:
   * resolves with `{ messages, more }`, newest first. Options: `topic` (only
   * that topic; otherwise every stream), `limit` (1-100, default 20),
   * `before` (a seq: page on with the oldest seq of the last page). */
  search(q, { topic, limit, before } = {}) {
    const params = { q };
    if (topic) params.topic = topic;
    if (limit !== undefined) params.limit = limit;
    if (before !== undefined) params.before = before;
    return this.request("search", params);
  }

  setToken(token) {
    this.token = token;
    this.emit("token", token);
  }

  /** A sign-in was refused: say so, then go on with the held guest welcome. */
  authFailed(code, message) {
    this.authPending = null;
    const held = this.held;
    this.held = null;
    this.emit("autherror", { code, message });
    // A listener that tries again (setting authPending) keeps it held.
    if (this.authPending) this.held = held;
    else if (held && this.state !== "closed") this.onWelcome(held);
  }

  /** `login` or `register` on this connection; resolves with the result
   * (its token is kept and emitted), then the account's welcome follows. */
  async account(method, { name, password }, { quiet = false } = {}) {
    this.authPending = method;
    try {
      const result = await this.request(method, { name, password }, { quiet });
      if (result.token) this.setToken(result.token);
      else this.authPending = null; // an admin registering someone else
      return result;
    } catch (e) {
      this.authFailed(e.code || "client", e.code ? e.message.slice(e.code.length + 2) : e.message);
      throw e;
    }
  }
  login(name, password) {
    return this.account("login", { name, password });
  }
  register(name, password) {
    return this.account("register", { name, password });
  }
  /** Sign out: the token is revoked and dropped; the server then closes
   * with 1000 "signed out" (no reconnect). */
  async logout() {
    const result = await this.request("logout");
    this.setToken(null);
    return result;
  }
  /** Change the password; every other session ends, this one goes on with
   * the new token. */
  async passwd(old, password) {
    const result = await this.request("passwd", { old, new: password });
    if (result.token) this.setToken(result.token);
    return result;
  }
  /** Rename; the server answers with the name given. */
  async rename(name) {
    const result = await this.request("rename", { name });
    this.name = result.name;
    return result.name;
  }

  /** Close for good (no reconnect). */
  close(code = 1000) {
    clearTimeout(this.timer);
    this.setState("closed", { code });
    if (this.ws) this.ws.close(code);
  }
}
