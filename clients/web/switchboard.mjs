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

/** Message builders: plain objects, ready for `send`. */
export const build = {
  broadcast: (text) => ({ type: "broadcast", text }),
  direct: (to, text) => ({ type: "direct", to, text }),
  multicast: (to, text) => ({ type: "multicast", to, text }),
  subscribe: (topic) => ({ type: "subscribe", topic }),
  unsubscribe: (topic) => ({ type: "unsubscribe", topic }),
  publish: (topic, text) => ({ type: "publish", topic, text }),
  request: (id, method, params = {}) => ({ type: "request", id, method, params }),
};

/** The `/chat` URL with `?name=` set. */
export function chatUrl(base, name) {
  const url = new URL(base);
  if (name) url.searchParams.set("name", name);
  return url.toString();
}

/** An error response to a request. */
export class ResponseError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.code = code;
  }
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
   * @param {object} options  { name, WebSocket, reconnect = true, requestTimeout = 10000 }
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
    this.pending = new Map(); // request id -> { resolve, reject, timer }
    this.listeners = new Map();
    this.timer = null;
    this.seenSeqs = new Set();
  }

  /** Listen for an event: "welcome", "message", "presence", "ack", "error",
   * "state", "gap", "caughtup", or "*" for every server message. */
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
    const ws = new this.WebSocket(chatUrl(this.url, this.name));
    this.ws = ws;
    ws.onmessage = (ev) => this.onFrame(ev.data);
    ws.onclose = (ev) => this.onClose(ws, ev.code, ev.reason);
    ws.onerror = () => {}; // onclose follows and decides
    return this;
  }

  onFrame(data) {
    let msg;
    try {
      msg = JSON.parse(typeof data === "string" ? data : data.toString());
    } catch {
      return;
    }
    if (msg.type === "welcome") return this.onWelcome(msg);
    if (msg.type === "response") {
      const waiting = this.pending.get(msg.id);
      if (waiting) {
        this.pending.delete(msg.id);
        clearTimeout(waiting.timer);
        if (msg.error) waiting.reject(new ResponseError(msg.error.code, msg.error.message));
        else waiting.resolve(msg.result);
        return;
      }
    }
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
    const again = this.welcome !== null;
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
      if (!again) {
        const { messages } = await this.request("history", { limit: 50 });
        for (const m of messages) this.onFrame(JSON.stringify(m));
      } else if (!sameStore) {
        // A new history store numbers its messages from scratch: forget the
        // old numbers, or new messages would look like ones already seen.
        this.emit("gap", { reason: "the server restarted and lost its history", since: this.lastSeq });
        this.seenSeqs.clear();
        this.lastSeq = welcome.seq;
      } else {
        await this.catchUp();
      }
      this.emit("caughtup", { lastSeq: this.lastSeq });
    } catch (e) {
      this.emit("error", { type: "error", code: "client", message: String(e.message || e) });
    }
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
        const result = await this.request("history", params);
        complete &&= result.complete;
        missed.push(...result.messages);
        if (!result.more || result.messages.length === 0) break;
        from = result.messages[result.messages.length - 1].seq;
      }
    }
    missed.sort((a, b) => a.seq - b.seq);
    for (const m of missed) this.onFrame(JSON.stringify(m));
    if (!complete) this.emit("gap", { reason: "some messages were no longer kept by the server", since: after });
  }

  onClose(ws, code, reason) {
    if (ws !== this.ws) return;
    for (const [, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.reject(new Error("connection closed"));
    }
    this.pending.clear();
    if (!this.reconnect || this.state === "closed") {
      this.setState("closed", { code, reason });
      return;
    }
    const delay = backoff(this.attempt++);
    this.setState("reconnecting", { code, reason, delay, attempt: this.attempt });
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

  /** Send a request; resolves with its `result`, rejects with ResponseError. */
  request(method, params = {}) {
    const id = `q${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no response to ${method} within ${this.requestTimeout} ms`));
      }, this.requestTimeout);
      this.pending.set(id, { resolve, reject, timer });
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

/** One line of text for an event, as both CLIs print it. */
export function describe(event) {
  const time = (ts) => new Date(ts).toTimeString().slice(0, 8);
  switch (event.type) {
    case "message": {
      const when = `[${time(event.ts)}]`;
      if (event.kind === "direct") return `${when} ${event.from} -> ${event.to}: ${event.text}`;
      if (event.kind === "multicast") return `${when} ${event.from} -> ${event.to.join(",")}: ${event.text}`;
      if (event.kind === "publish") return `${when} #${event.topic} ${event.from}: ${event.text}`;
      return `${when} ${event.from}: ${event.text}`;
    }
    case "presence":
      if (event.event === "rename") return `* ${event.old} is now ${event.name}`;
      return `* ${event.name} ${event.event === "join" ? "joined" : "left"}`;
    case "error":
      return `! ${event.code}: ${event.message}`;
    case "ack":
      if (event.topic) return `ok: ${event.topic}`;
      return `ok: seq ${event.seq}, delivered to ${event.delivered}${event.unknown ? ` (unknown: ${event.unknown.join(",")})` : ""}`;
    default:
      return JSON.stringify(event);
  }
}
