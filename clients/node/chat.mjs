#!/usr/bin/env node
// Chat with a Switchboard server from the terminal (Node 20+).
//
//   node clients/node/chat.mjs ws://localhost:8080/chat --name bob
//
// The same commands as the Python client (clients/python/chat.py):
//   plain line        broadcast          /msg NAME text     direct
//   /multi A,B text   multicast          /sub TOPIC         subscribe
//   /unsub TOPIC      unsubscribe        /pub TOPIC text    publish
//   /users /topics    who and what       /history [TOPIC]   recent messages
//   /search [#TOPIC] WORDS               messages with every word, newest first
//   /nick NAME        rename             /quit              leave
//
// Scripted: --send LINE (repeatable), --expect TEXT (repeatable, any order),
// --timeout SECONDS, --json (stdin lines sent raw, events printed as JSON).
//
// Interactive (not scripted), it reconnects when the connection drops, like
// the page; lines typed meanwhile are not sent ("! not connected").
//
// WebSocket: Node 20 has no stable global WebSocket, so this uses the `ws`
// package (clients/package.json); the protocol code is the browser page's own
// module, clients/web/switchboard.mjs.

import readline from "node:readline";
import WebSocket from "ws";
import { SwitchboardClient, ResponseError, describe } from "../web/switchboard.mjs";

const HELP = `plain line        broadcast          /msg NAME text     direct message
/multi A,B text   multicast          /sub TOPIC         subscribe
/unsub TOPIC      unsubscribe        /pub TOPIC text    publish to a topic
/users /topics    who and what       /history [TOPIC]   recent messages
/search [#TOPIC] WORDS               messages with every word, newest first
/nick NAME        rename             /quit              leave`;

const SEARCH_USAGE = "/search [#TOPIC] WORDS";

/** The words after `/search`: "#news lunch friday" is { topic: "news",
 * q: "lunch friday" }; without a leading #TOPIC, every stream is searched. */
export function parseSearch(rest) {
  const words = rest.split(/\s+/).filter(Boolean);
  if (!words[0]?.startsWith("#")) return { topic: null, q: words.join(" ") };
  const topic = words[0].slice(1);
  return { topic: topic || null, q: topic ? words.slice(1).join(" ") : "" };
}

export function parseArgs(argv) {
  const args = { url: "ws://localhost:8080/chat", name: null, send: [], expect: [], timeout: 10, json: false, linger: 0.5 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--name") args.name = value();
    else if (a === "--send") args.send.push(value());
    else if (a === "--expect") args.expect.push(value());
    else if (a === "--timeout") args.timeout = Number(value());
    else if (a === "--linger") args.linger = Number(value());
    else if (a === "--json") args.json = true;
    else if (a === "-h" || a === "--help") args.help = true;
    else if (a.startsWith("-")) throw new Error(`unknown flag ${a}`);
    else args.url = a;
  }
  checkUrl(args.url);
  return args;
}

/** Throw a one-line reason unless `url` is a ws:// or wss:// URL. */
function checkUrl(url) {
  let parsed = null;
  try {
    parsed = new URL(url);
  } catch {
    // not a URL at all
  }
  if (!parsed || !["ws:", "wss:"].includes(parsed.protocol) || !parsed.hostname) {
    throw new Error(`bad URL ${JSON.stringify(url)}: expected ws://HOST[:PORT]/chat`);
  }
}

class Session {
  constructor(client, raw, write) {
    this.client = client;
    this.raw = raw;
    this.write = write;
    this.lines = [];
    this.waiters = [];
  }

  emit(line) {
    this.write(line + "\n");
    this.lines.push(line);
    for (const w of [...this.waiters]) w();
  }

  /** Resolve true when a printed, not yet matched line contains `text`. */
  expect(text, timeoutMs) {
    return new Promise((resolve) => {
      const check = () => {
        const i = this.lines.findIndex((l) => l.includes(text));
        if (i < 0) return false;
        this.lines.splice(i, 1);
        done(true);
        return true;
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (ok) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve(ok);
      };
      if (!check()) this.waiters.push(check);
    });
  }

  async run(line) {
    const c = this.client;
    line = line.replace(/\r?\n$/, "");
    if (!line.trim()) return true;
    const [cmd, ...words] = line.split(" ");
    const rest = words.join(" ").trim();
    const [first, ...others] = rest.split(" ");
    const text = others.join(" ");
    try {
      if (!line.startsWith("/")) {
        c.broadcast(line); // throws "not connected" while reconnecting
        return true;
      }
      switch (cmd) {
        case "/quit":
          return false;
        case "/help":
          this.emit(HELP);
          break;
        case "/msg":
          c.direct(first, text);
          break;
        case "/multi":
          c.multicast(first.split(",").filter(Boolean), text);
          break;
        case "/sub":
          c.subscribe(rest);
          break;
        case "/unsub":
          c.unsubscribe(rest);
          break;
        case "/pub":
          c.publish(first, text);
          break;
        case "/users":
          this.emit("users: " + (await c.request("users")).users.join(", "));
          break;
        case "/topics": {
          const { topics } = await c.request("topics");
          this.emit("topics: " + (topics.map((t) => `${t.name} (${t.subscribers})`).join(", ") || "none"));
          break;
        }
        case "/history": {
          const { messages } = await c.request("history", rest ? { topic: rest } : {});
          this.emit(`history${rest ? " of #" + rest : ""}: ${messages.length} messages`);
          for (const m of messages) this.emit("  " + describe(m));
          break;
        }
        case "/search": {
          const { topic, q } = parseSearch(rest);
          if (!q) {
            this.emit(`! usage: ${SEARCH_USAGE}`);
            break;
          }
          const { messages, more } = await c.search(q, { topic });
          this.emit(`search${topic ? " of #" + topic : ""} for "${q}": ${messages.length} messages, newest first`);
          for (const m of messages) this.emit("  " + describe(m));
          if (more) this.emit("  (older matches not shown)");
          break;
        }
        case "/nick":
          this.emit(`you are now ${await c.rename(rest)}`);
          break;
        default:
          this.emit(`! unknown command ${cmd} (try /help)`);
      }
    } catch (e) {
      this.emit(e instanceof ResponseError ? `! ${e.message}` : `! ${e.message}`);
    }
    return true;
  }
}

export async function main(argv, { stdin = process.stdin, write = (s) => process.stdout.write(s) } = {}) {
  let args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`chat.mjs: ${e.message}\n`);
    return 2;
  }
  if (args.help) {
    write(HELP + "\n");
    return 0;
  }
  const scripted = args.send.length > 0 || args.expect.length > 0;
  const client = new SwitchboardClient(args.url, { name: args.name, WebSocket, reconnect: !scripted && !args.json });
  const session = new Session(client, args.json, write);
  const opened = new Promise((resolve) => {
    client.on("welcome", (w) => resolve(w));
    client.on("state", ({ state, detail }) => {
      if (state === "closed" || (state === "reconnecting" && client.welcome === null)) {
        resolve(null);
      } else if (state === "reconnecting" && detail.delay !== undefined) {
        // (Each attempt also starts with a "reconnecting" without a delay.)
        session.emit(`* connection lost; reconnecting in ${detail.delay} ms`);
      } else if (state === "open" && detail.again) {
        session.emit(`* reconnected as ${client.welcome.name}; users: ${client.welcome.users.join(", ")}`);
      }
    });
  });
  client.on("*", (m) => {
    if (m.type !== "welcome") session.emit(args.json ? JSON.stringify(m) : describe(m));
  });
  client.on("gap", (g) => session.emit(`* missed messages: ${g.reason}`));
  client.connect();
  const welcome = await opened;
  if (!welcome) {
    process.stderr.write(`chat.mjs: cannot connect to ${args.url}\n`);
    return 2;
  }
  session.emit(args.json ? JSON.stringify(welcome) : `connected as ${welcome.name}; users: ${welcome.users.join(", ")} (/help for commands)`);

  if (scripted) {
    for (const line of args.send) await session.run(line);
    for (const text of args.expect) {
      if (!(await session.expect(text, args.timeout * 1000))) {
        process.stderr.write(`chat.mjs: no line containing ${JSON.stringify(text)} within ${args.timeout}s\n`);
        client.close();
        return 1;
      }
    }
    client.close();
    return 0;
  }

  const rl = readline.createInterface({ input: stdin, terminal: false });
  let status = 0;
  for await (const line of rl) {
    if (args.json) {
      if (!line.trim()) continue;
      try {
        client.send(line);
      } catch {
        // Raw mode does not reconnect: the rest cannot be sent.
        process.stderr.write("chat.mjs: not connected; stopping\n");
        status = 1;
        break;
      }
    } else if (!(await session.run(line))) break;
  }
  await new Promise((r) => setTimeout(r, args.linger * 1000));
  client.close();
  return status;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
