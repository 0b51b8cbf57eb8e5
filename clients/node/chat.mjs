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
// Accounts (clients/node/accounts.mjs): --user NAME signs in (the password
// is asked for without echo, or read from --password-file FILE); --register
// creates the account instead; --token-file FILE keeps the session token
// (0600) and signs in with it next time. /login /register /logout /passwd,
// /with NAME, and for moderators /kick /mute /ban /unmute /unban.
//
// Scripted: --send LINE (repeatable), --expect TEXT (repeatable, any order),
// --timeout SECONDS, --json (stdin lines sent raw, events printed as JSON).
//
// Interactive (not scripted), it reconnects when the connection drops, like
// the page; lines typed meanwhile are not sent ("! not connected"). It does
// not when the server ended the session (signed out, kicked, signed in
// elsewhere, banned): it prints why and exits.
//
// WebSocket: Node 20 has no stable global WebSocket, so this uses the `ws`
// package (clients/package.json); the protocol code is the browser page's own
// module, clients/web/switchboard.mjs.

import { readFileSync } from "node:fs";
import readline from "node:readline";
import WebSocket from "ws";
import { ResponseError, SwitchboardClient, closeReason } from "../web/switchboard.mjs";
import { describe } from "./describe.mjs";
import { readPassword, readPasswordFile, readToken, runAccountCommand, saveToken } from "./accounts.mjs";

// The one help text of both CLIs (clients/cli-help.txt): --help and /help.
const HELP = readFileSync(new URL("../cli-help.txt", import.meta.url), "utf8").trimEnd();

const SEARCH_USAGE = "/search [#TOPIC] WORDS";

/** The words after `/search`: "#news lunch friday" is { topic: "news",
 * q: "lunch friday" }; without a leading #TOPIC, every stream is searched. */
export function parseSearch(rest) {
  const words = rest.split(/\s+/).filter(Boolean);
  if (!words[0]?.startsWith("#")) return { topic: null, q: words.join(" ") };
  const topic = words[0].slice(1);
  return { topic: topic || null, q: topic ? words.slice(1).join(" ") : "" };
}

/** The `ws` options for wss://: a CA file to trust instead of Node's own
 * list, or (with a warning) no check at all. */
function tlsOptions(args) {
  const options = {};
  if (args.cafile) {
    try {
      options.ca = readFileSync(args.cafile);
    } catch (e) {
      throw new Error(`--cafile ${args.cafile}: ${e.message}`);
    }
  }
  if (args.insecure) {
    process.stderr.write("chat.mjs: warning: --insecure: the server's certificate is not checked; anyone in between can read and change everything\n");
    options.rejectUnauthorized = false;
  }
  return options;
}

export function parseArgs(argv) {
  const args = { url: "ws://localhost:8080/chat", name: null, send: [], expect: [], timeout: 10, json: false, linger: 0.5,
    user: null, passwordFile: null, register: false, tokenFile: null, cafile: null, insecure: false };
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
    else if (a === "--user") args.user = value();
    else if (a === "--password-file") args.passwordFile = value();
    else if (a === "--token-file") args.tokenFile = value();
    else if (a === "--register") args.register = true;
    else if (a === "--cafile") args.cafile = value();
    else if (a === "--insecure") args.insecure = true;
    else if (a === "-h" || a === "--help") args.help = true;
    else if (a.startsWith("-")) throw new Error(`unknown flag ${a}`);
    else args.url = a;
  }
  if (args.help) return args;
  checkUrl(args.url);
  if (args.register && !args.user) throw new Error("--register needs --user NAME");
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
  constructor(client, raw, write, passwordFile = null) {
    this.client = client;
    this.raw = raw;
    this.write = write;
    this.passwordFile = passwordFile;
    this.lines = [];
    this.waiters = [];
  }

  /** Print one line. With --json every line is one JSON object: a line of
   * text becomes {"type":"status","event":"error"|"info",...}. */
  emit(line) {
    if (this.raw && !line.startsWith("{")) {
      const event = line.startsWith("! ") ? "error" : "info";
      const text = line.startsWith("! ") || line.startsWith("* ") ? line.slice(2) : line;
      line = JSON.stringify({ type: "status", event, text });
    }
    this.write(line + "\n");
    this.lines.push(line);
    for (const w of [...this.waiters]) w();
  }

  /** A command's result, in words: --json prints the response itself. */
  say(line) {
    if (!this.raw) this.emit(line);
  }

  /** What happened to the connection: `text` in words, or with --json
   * {"type":"status","event":event,...fields} (the same in chat.py). */
  status(event, text, fields = {}) {
    this.emit(this.raw ? JSON.stringify({ type: "status", event, ...fields }) : text);
  }

  /** A frame as --json prints it: as the server sent it, but a session
   * token is never printed (--token-file keeps it). */
  frame(m) {
    if (m.type === "response" && m.result?.token !== undefined) {
      const { token, ...rest } = m.result;
      m = { ...m, result: rest };
    }
    this.emit(JSON.stringify(m));
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

  /** A password: from --password-file (unless `file` is false), else asked
   * for on the terminal without echo. */
  password(prompt, { file = true } = {}) {
    if (file && this.passwordFile) return Promise.resolve(readPasswordFile(this.passwordFile));
    return readPassword(prompt);
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
      if (this.raw && line.startsWith("{")) {
        c.send(line); // --json: a protocol message, as it is
        return true;
      }
      if (!line.startsWith("/")) {
        c.broadcast(line); // throws "not connected" while reconnecting
        return true;
      }
      switch (cmd) {
        case "/quit":
          return false;
        case "/help":
          this.status("help", HELP, { text: HELP });
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
          this.say("users: " + (await c.request("users")).users.join(", "));
          break;
        case "/topics": {
          const { topics } = await c.request("topics");
          this.say("topics: " + (topics.map((t) => `${t.name} (${t.subscribers})`).join(", ") || "none"));
          break;
        }
        case "/history": {
          const { messages } = await c.request("history", rest ? { topic: rest } : {});
          this.say(`history${rest ? " of #" + rest : ""}: ${messages.length} messages`);
          for (const m of messages) this.say("  " + describe(m));
          break;
        }
        case "/search": {
          const { topic, q } = parseSearch(rest);
          if (!q) {
            this.emit(`! usage: ${SEARCH_USAGE}`);
            break;
          }
          const { messages, more } = await c.search(q, { topic });
          this.say(`search${topic ? " of #" + topic : ""} for "${q}": ${messages.length} messages, newest first`);
          for (const m of messages) this.say("  " + describe(m));
          if (more) this.say("  (older matches not shown)");
          break;
        }
        case "/nick":
          this.say(`you are now ${await c.rename(rest)}`);
          break;
        default:
          if (!(await runAccountCommand(this, cmd, rest))) this.emit(`! unknown command ${cmd} (try /help)`);
      }
    } catch (e) {
      // A refusal by the server is printed as its response with --json.
      if (e instanceof ResponseError) this.say(`! ${e.message}`);
      else this.emit(`! ${e.message}`);
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
  const method = args.register ? "register" : "login";
  let password = null;
  const getPassword = async () =>
    (password ??= args.passwordFile ? readPasswordFile(args.passwordFile) : await readPassword(`password for ${args.user}: `));
  // A saved token first; else the password (asked for before connecting).
  const token = readToken(args.tokenFile);
  let signIn = null;
  try {
    if (!token && args.user) signIn = { method, name: args.user, password: await getPassword() };
  } catch (e) {
    process.stderr.write(`chat.mjs: ${e.message}\n`);
    return 2;
  }
  let tls;
  try {
    tls = tlsOptions(args);
  } catch (e) {
    process.stderr.write(`chat.mjs: ${e.message}\n`);
    return 2;
  }
  let lastError = null;
  // The `ws` package's WebSocket with our TLS options, remembering why a
  // connection failed (an unknown certificate authority, say).
  class Socket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, tls);
      this.on("error", (e) => (lastError = e.message));
    }
  }
  const client = new SwitchboardClient(args.url, { name: args.name, WebSocket: Socket, token, signIn, reconnect: !scripted });
  const session = new Session(client, args.json, write, args.passwordFile);
  if (args.tokenFile) client.on("token", (t) => saveToken(args.tokenFile, t));
  let started = false;
  let again = false;
  let finalClose = null; // set when the server ended the session
  let closing = false; // we are closing it ourselves
  let endInput = () => {};
  const signedIn = (w) => `signed in as ${w.name} (${(w.roles || []).join(", ") || "user"}); users: ${w.users.join(", ")}`;
  const opened = new Promise((resolve) => {
    // Input starts once the welcome's history is shown (for an account
    // that is after a whoami), so a command's reply cannot come before it.
    let welcomed = null;
    client.on("welcome", (w) => {
      if (started && !again && !args.json) session.emit(signedIn(w)); // a sign-in on this connection
      welcomed = w;
    });
    client.on("caughtup", () => {
      if (welcomed) resolve({ welcome: welcomed });
    });
    client.on("auth_required", (frame) => {
      if (!client.authPending) resolve({ required: frame });
    });
    client.on("autherror", (e) => {
      if (started) return; // a command's: it prints its own error
      if (e.code === "bad_token" && args.user) {
        // The saved session ended: fall back to the password.
        session.emit("* the saved session has ended; signing in with the password");
        client.authPending = method; // keep waiting for the account's welcome
        getPassword()
          .then((pw) => client.account(method, { name: args.user, password: pw }))
          .catch((err) => resolve({ error: err.code ? err.message : `no password: ${err.message}` }));
      } else if (args.user) {
        resolve({ error: `${e.code}: ${e.message}` });
      } else {
        session.emit(`* the saved session could not be used (${e.code}); token file removed`);
        if (client.authRequired) resolve({ required: client.authRequired });
      }
    });
    client.on("state", ({ state, detail }) => {
      if (state === "open") again = Boolean(detail.again);
      if (state === "closed" && detail.final) {
        finalClose = detail;
        const text = `* ${closeReason(detail.code, detail.reason)}`;
        session.status("closed", text, { code: detail.code, reason: detail.reason || "" });
        endInput();
        resolve(null);
      } else if (state === "closed" || (state === "reconnecting" && client.welcome === null)) {
        if (state === "closed" && started && !closing && detail.code !== undefined) {
          const why = detail.code ? ` (close ${detail.code} ${detail.reason || ""})` : "";
          session.status("disconnected", `* disconnected${why}`, { code: detail.code || 1006 });
        }
        resolve(null);
      } else if (state === "reconnecting" && detail.delay !== undefined) {
        // (Each attempt also starts with a "reconnecting" without a delay.)
        const text = `* connection lost; reconnecting in ${detail.delay} ms`;
        session.status("reconnecting", text, { delay_ms: detail.delay });
      } else if (state === "open" && detail.again) {
        const { name, users } = client.welcome;
        session.status("reconnected", `* reconnected as ${name}; users: ${users.join(", ")}`, { name });
      }
    });
  });
  client.on("*", (m) => {
    if (args.json) session.frame(m);
    else if (m.type !== "welcome") session.emit(describe(m));
  });
  // --json: the responses to our commands, in their place among the frames.
  if (args.json) client.on("response", (m) => session.frame(m));
  client.on("gap", (g) => session.status("gap", `* missed messages: ${g.reason}`, { reason: g.reason }));
  client.connect();
  const first = await opened;
  started = true;
  if (!first || first.error) {
    if (first?.error) process.stderr.write(`chat.mjs: sign-in failed: ${first.error}\n`);
    else if (finalClose) process.stderr.write(`chat.mjs: ${closeReason(finalClose.code, finalClose.reason)}\n`);
    else process.stderr.write(`chat.mjs: cannot connect to ${args.url}${lastError ? `: ${lastError}` : ""}\n`);
    client.close();
    return first?.error || finalClose ? 1 : 2;
  }
  const { welcome } = first;
  if (args.json) {
    if (!welcome) session.frame(first.required); // (a welcome was printed as it came)
  } else if (!welcome) session.emit("connected; this server requires an account: /login NAME or /register NAME (/help for commands)");
  else if (welcome.guest === false) session.emit(`${signedIn(welcome)} (/help for commands)`);
  else session.emit(`connected as ${welcome.name}; users: ${welcome.users.join(", ")} (/help for commands)`);

  if (scripted) {
    for (const line of args.send) await session.run(line);
    for (const text of args.expect) {
      if (!(await session.expect(text, args.timeout * 1000))) {
        process.stderr.write(`chat.mjs: no line containing ${JSON.stringify(text)} within ${args.timeout}s\n`);
        client.close();
        return 1;
      }
    }
    closing = true;
    client.close();
    return 0;
  }

  const rl = readline.createInterface({ input: stdin, terminal: false });
  endInput = () => rl.close(); // the session is over: stop reading
  if (finalClose) rl.close();
  for await (const line of rl) {
    if (!(await session.run(line))) break;
  }
  if (finalClose) return finalClose.code === 1000 ? 0 : 1;
  await new Promise((r) => setTimeout(r, args.linger * 1000));
  closing = true;
  client.close();
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
