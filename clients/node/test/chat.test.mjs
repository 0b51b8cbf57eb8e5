// Tests of the shared protocol module and the Node CLI against the real server.
//   node --test clients/node/test/

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import path from "node:path";
import WebSocket from "ws";
import { SwitchboardClient, ResponseError, backoff, build, chatUrl } from "../../web/switchboard.mjs";
import { describe } from "../describe.mjs";
import { makePki, startServer, ROOT } from "../support/server.mjs";
import { next } from "../support/events.mjs";

let server;
before(async () => {
  server = await startServer(["--rate", "0"]);
});
after(async () => {
  await server.stop();
});

/** Connect a client and wait (at most 10 s) for its welcome. */
async function join(name, options = {}) {
  const client = new SwitchboardClient(server.url, { name, WebSocket, ...options });
  const welcome = next(client, "welcome", () => true, 10000);
  const states = [];
  client.on("state", (s) => states.push([s.state, s.detail]));
  client.connect();
  try {
    await welcome;
  } catch (e) {
    client.close();
    throw new Error(`${name}: ${e.message}; states: ${JSON.stringify(states)}`);
  }
  return client;
}


test("backoff grows exponentially with jitter, up to the maximum", () => {
  assert.equal(backoff(0, 250, 10000, () => 0), 125);
  assert.equal(backoff(0, 250, 10000, () => 1), 250);
  assert.equal(backoff(3, 250, 10000, () => 1), 2000);
  assert.equal(backoff(20, 250, 10000, () => 1), 10000);
  for (let n = 0; n < 10; n++) {
    const d = backoff(n);
    assert.ok(d >= Math.min(10000, 250 * 2 ** n) / 2 && d <= 10000);
  }
});

test("builders make the wire messages of docs/PROTOCOL.md", () => {
  assert.deepEqual(build.direct("bob", "hi"), { type: "direct", to: "bob", text: "hi" });
  assert.deepEqual(build.request(7, "users"), { type: "request", id: 7, method: "users", params: {} });
  assert.equal(chatUrl("ws://h:1/chat", "a b"), "ws://h:1/chat?name=a+b");
  assert.equal(describe({ type: "presence", event: "rename", name: "b", old: "a" }), "* a is now b");
});

test("every message type over a real server", async () => {
  const alice = await join("js-alice");
  const bob = await join("js-bob");
  const carol = await join("js-carol");
  assert.equal(alice.welcome.name, "js-alice");

  const b1 = next(bob, "message", (m) => m.text === "to all");
  alice.broadcast("to all");
  assert.equal((await b1).from, "js-alice");

  const d = next(bob, "message", (m) => m.kind === "direct");
  const ack = next(alice, "ack", (a) => a.delivered === 2);
  alice.direct("js-bob", "psst");
  assert.equal((await d).to, "js-bob");
  await ack;

  const mc = next(carol, "message", (m) => m.kind === "multicast");
  alice.multicast(["js-bob", "js-carol"], "both");
  assert.deepEqual((await mc).to, ["js-bob", "js-carol"]);

  const subAck = next(carol, "ack", (a) => a.topic === "js-news");
  carol.subscribe("js-news");
  await subAck;
  const pub = next(carol, "message", (m) => m.kind === "publish");
  alice.publish("js-news", "extra");
  assert.equal((await pub).topic, "js-news");

  assert.ok((await alice.request("users")).users.includes("js-carol"));
  assert.deepEqual(await alice.request("echo", { a: [1] }), { a: [1] });
  await assert.rejects(alice.request("nope"), (e) => e instanceof ResponseError && e.code === "unknown_method");
  assert.equal(await carol.rename("js-caroline"), "js-caroline");

  const err = next(alice, "error");
  alice.direct("js-ghost", "hello?");
  assert.equal((await err).code, "unknown_user");
  for (const c of [alice, bob, carol]) c.close();
});

test("after a dropped connection the client reconnects and catches up", async () => {
  const talker = await join("js-talker");
  const listener = await join("js-listener");
  listener.subscribe("js-feed");
  await next(listener, "ack", (a) => a.topic === "js-feed");
  const seen = next(listener, "message", (m) => m.text === "before");
  talker.broadcast("before");
  await seen;

  // Drop the TCP connection as a network failure would.
  const back = next(listener, "caughtup", () => true, 15000);
  const missedBroadcast = next(listener, "message", (m) => m.text === "while away", 15000);
  const missedTopic = next(listener, "message", (m) => m.text === "topic while away", 15000);
  listener.ws.terminate();
  talker.broadcast("while away");
  talker.publish("js-feed", "topic while away");
  await back;
  await missedBroadcast;
  await missedTopic;
  assert.equal(listener.state, "open");
  assert.equal(listener.welcome.name, "js-listener", "same name after the reconnect");
  // The topic subscription was restored.
  const live = next(listener, "message", (m) => m.text === "live again");
  talker.publish("js-feed", "live again");
  await live;
  talker.close();
  listener.close();
});

test("a restart notice sets when the client comes back", async () => {
  const own = await startServer(["--restart-spread", "4s"]);
  const port = own.addr;
  const client = new SwitchboardClient(own.url, { name: "js-notice", WebSocket });
  const welcomed = new Promise((r) => client.on("welcome", r));
  client.connect();
  await welcomed;
  const notice = next(client, "notice", (n) => n.event === "restarting", 10000);
  const waiting = next(client, "state", (s) => s.state === "reconnecting" && s.detail.delay !== undefined, 10000);
  await own.stop(); // SIGTERM: the notice, then Close 1001
  const n = await notice;
  const { detail } = await waiting;
  assert.ok(n.retry_after_ms >= 0 && n.retry_after_ms <= 4000, JSON.stringify(n));
  assert.equal(detail.delay, n.retry_after_ms, "the client waits what the server said");
  assert.equal(detail.restart, true);
  assert.equal(detail.code, 1001);
  assert.match(describe(n), /^\* the server is restarting; back in \d+\.\d s$/);
  const again = await startServer([], port);
  const back = next(client, "welcome", () => true, 20000);
  await back;
  client.close();
  await again.stop();
});

test("a restarted server is reported as a gap", async () => {
  const own = await startServer([]);
  const port = own.addr;
  const client = new SwitchboardClient(own.url, { name: "js-restart", WebSocket });
  const welcomed = new Promise((r) => client.on("welcome", r));
  client.connect();
  await welcomed;
  const gap = next(client, "gap", () => true, 20000);
  await own.kill();
  const again = await startServer([], port);
  const g = await gap;
  assert.match(g.reason, /restarted/);
  assert.equal(client.state, "open");
  client.close();
  await again.stop();
});

function cli(args, input) {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [path.join(ROOT, "clients/node/chat.mjs"), server.url, ...args]);
    let out = "";
    let err = "";
    proc.stdout.on("data", (d) => (out += d));
    proc.stderr.on("data", (d) => (err += d));
    proc.on("exit", (code) => resolve({ code, out, err }));
    if (input !== undefined) proc.stdin.end(input);
  });
}

test("the CLI runs every command in scripted mode", async () => {
  const peer = await join("js-cli-peer");
  peer.subscribe("js-cli-topic");
  const got = [];
  peer.on("message", (m) => got.push(`${m.kind}:${m.text}`));
  const r = await cli([
    "--name", "js-cli",
    "--send", "hello from node",
    "--send", "/msg js-cli-peer psst",
    "--send", "/multi js-cli-peer,js-cli both",
    "--send", "/sub js-cli-topic",
    "--send", "/pub js-cli-topic extra",
    "--send", "/users",
    "--send", "/topics",
    "--send", "/history",
    "--send", "/unsub js-cli-topic",
    "--send", "/nick js-cli-2",
    "--expect", "js-cli: hello from node",
    "--expect", "js-cli -> js-cli-peer: psst",
    "--expect", "js-cli -> js-cli-peer,js-cli: both",
    "--expect", "#js-cli-topic js-cli: extra",
    "--expect", "users: ",
    "--expect", "topics: ",
    "--expect", "history: ",
    "--expect", "ok: js-cli-topic",
    "--expect", "you are now js-cli-2",
  ]);
  assert.equal(r.code, 0, r.out + r.err);
  await new Promise((res) => setTimeout(res, 300));
  for (const want of ["broadcast:hello from node", "direct:psst", "multicast:both", "publish:extra"]) {
    assert.ok(got.includes(want), `${want} in ${got}`);
  }
  peer.close();
});

test("search finds kept messages with every word, newest first, and pages on", async (t) => {
  const me = await join("js-search");
  t.after(() => me.close()); // even when it fails, or it would reconnect forever
  const subbed = next(me, "ack", (a) => a.topic === "js-find-topic");
  me.subscribe("js-find-topic");
  await subbed;
  me.broadcast("JsFind lunch one");
  me.broadcast("jsfind, but no meal");
  me.publish("js-find-topic", "jsfind LUNCH in a topic");
  me.direct("js-search", "jsfind lunch, direct: not kept");
  const last = me.broadcast("lunch jsfind two");
  await next(me, "ack", (a) => a.id === last); // all five are routed and kept
  const texts = (r) => r.messages.map((m) => m.text);

  const all = await me.search("jsfind lunch");
  assert.deepEqual(texts(all), ["lunch jsfind two", "jsfind LUNCH in a topic", "JsFind lunch one"]);
  assert.equal(all.more, false);
  assert.equal(all.messages[1].topic, "js-find-topic");
  assert.deepEqual(texts(await me.search("jsfind", { topic: "js-find-topic" })), ["jsfind LUNCH in a topic"]);
  const first = await me.search("jsfind lunch", { limit: 2 });
  assert.deepEqual([texts(first), first.more], [["lunch jsfind two", "jsfind LUNCH in a topic"], true]);
  const rest = await me.search("jsfind lunch", { limit: 2, before: first.messages.at(-1).seq });
  assert.deepEqual([texts(rest), rest.more], [["JsFind lunch one"], false]);
  assert.deepEqual(texts(await me.search("jsfind nothing-like-this")), []);
  for (const [q, options] of [["", {}], ["x".repeat(201), {}], ["x", { limit: 0 }]]) {
    await assert.rejects(me.search(q, options), (e) => e instanceof ResponseError && e.code === "bad_request");
  }
});

test("the CLI's /search prints matches newest first, from every stream or one topic", async (t) => {
  const peer = await join("js-find-peer");
  t.after(() => peer.close());
  peer.broadcast("jsclifind apples");
  peer.publish("js-cli-find-topic", "jsclifind pears, in a topic");
  peer.broadcast("Apples and JSCLIFIND again");
  peer.broadcast("jsclifind nothing else");
  let last;
  for (let n = 0; n < 21; n++) last = peer.broadcast(`jsclibulk ${n}`);
  await next(peer, "ack", (a) => a.id === last);
  const r = await cli([
    "--name", "js-finder",
    "--send", "/search jsclifind apples",
    "--send", "/search #js-cli-find-topic jsclifind",
    "--send", "/search",
    "--send", "/search no-such-word-anywhere",
    "--send", "/search jsclibulk",
    "--send", "/help",
    "--expect", 'search for "jsclifind apples": 2 messages, newest first',
    "--expect", 'search of #js-cli-find-topic for "jsclifind": 1 messages, newest first',
    "--expect", "! usage: /search [#TOPIC] WORDS",
    "--expect", 'search for "no-such-word-anywhere": 0 messages',
    "--expect", 'search for "jsclibulk": 20 messages',
    "--expect", "(older matches not shown)",
    "--expect", "/search [#TOPIC] WORDS",
  ]);
  assert.equal(r.code, 0, r.out + r.err);
  assert.doesNotMatch(r.out, /unknown command/);
  // Each search's matches are the indented lines under its heading.
  const found = [];
  for (const line of r.out.split("\n")) {
    if (line.startsWith("search")) found.push([]);
    else if (line.startsWith("  [") && found.length) found.at(-1).push(line.replace(/^  \[\d\d:\d\d:\d\d\] /, ""));
  }
  assert.deepEqual(found, [
    ["js-find-peer: Apples and JSCLIFIND again", "js-find-peer: jsclifind apples"],
    ["#js-cli-find-topic js-find-peer: jsclifind pears, in a topic"],
    [],
    Array.from({ length: 20 }, (_, i) => `js-find-peer: jsclibulk ${20 - i}`),
  ], r.out);
});

test("the CLI fails clearly when an expected line never comes", async () => {
  const r = await cli(["--name", "js-cli-wait", "--expect", "never", "--timeout", "0.5"]);
  assert.equal(r.code, 1);
  assert.match(r.err, /never/);
});

test("the CLI passes JSON lines through in --json mode", async () => {
  const r = await cli(["--name", "js-cli-json", "--json", "--linger", "1"], '{"type":"request","id":1,"method":"whoami"}\nplain\n');
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines[0].type, "welcome");
  assert.ok(lines.some((l) => l.type === "response" && l.result.name === "js-cli-json"));
  assert.ok(lines.some((l) => l.type === "message" && l.text === "plain"));
});

test("the CLI says so when it cannot connect", async () => {
  const proc = spawn(process.execPath, [path.join(ROOT, "clients/node/chat.mjs"), "ws://127.0.0.1:1/chat"]);
  let err = "";
  proc.stderr.on("data", (d) => (err += d));
  const code = await new Promise((r) => proc.on("exit", r));
  assert.equal(code, 2);
  assert.match(err, /cannot connect/);
});

test("after a restart, messages numbered like old ones are still shown", async () => {
  let own = await startServer([]);
  const a = new SwitchboardClient(own.url, { name: "js-seq-a", WebSocket });
  const b = new SwitchboardClient(own.url, { name: "js-seq-b", WebSocket });
  const log = [];
  for (const c of [a, b]) c.on("*", (m) => log.push(`${c === a ? "a" : "b"} ${JSON.stringify(m)}`));
  try {
    for (const c of [a, b]) {
      // Caught up, not just welcomed: a first connection's catching up
      // (its history request) must not be taken for the one after the
      // restart below.
      const w = next(c, "caughtup");
      c.connect();
      await w;
    }
    const first = next(b, "message", (m) => m.text === "old");
    a.broadcast("old");
    assert.equal((await first).seq, 1);
    const caught = Promise.all([a, b].map((c) => next(c, "caughtup", () => true, 20000)));
    await own.kill();
    own = await startServer([], own.addr);
    await caught;
    const fresh = next(b, "message", (m) => m.text === "new");
    a.broadcast("new");
    assert.equal((await fresh).seq, 1, "the new server starts again at 1, and it is not dropped");
  } catch (e) {
    throw new Error(`${e.message}\nwhat the clients saw:\n${log.join("\n")}`);
  } finally {
    // Even when it fails: clients left reconnecting, or a server left
    // running, would keep this file's process alive for ever.
    a.close();
    b.close();
    await own.stop();
  }
});

/** Collect a process's output; `waitFor(re)` resolves once its stdout matches. */
function watch(proc) {
  const seen = { out: "", err: "" };
  const waiters = new Set();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  proc.stdout.on("data", (d) => ((seen.out += d), wake()));
  proc.stderr.on("data", (d) => ((seen.err += d), wake()));
  proc.on("exit", wake);
  const text = () => `stdout:\n${seen.out}\nstderr:\n${seen.err}`;
  const waitFor = (re, ms = 10000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no output matching ${re} within ${ms} ms\n${text()}`));
      }, ms);
      const check = () => {
        if (re.test(seen.out)) {
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        } else if (proc.exitCode !== null || proc.signalCode !== null) {
          clearTimeout(timer);
          waiters.delete(check);
          reject(new Error(`exited (${proc.exitCode ?? proc.signalCode}) before printing ${re}\n${text()}`));
        }
      };
      waiters.add(check);
      check();
    });
  return { seen, text, waitFor };
}

test("the CLI rejects a bad URL in one line, without a stack trace", async () => {
  for (const url of ["http://127.0.0.1:1/chat", "127.0.0.1:1/chat", "localhost:1/chat", "not a url"]) {
    const proc = spawn(process.execPath, [path.join(ROOT, "clients/node/chat.mjs"), url], { timeout: 20000 });
    let err = "";
    proc.stderr.on("data", (d) => (err += d));
    const code = await new Promise((r) => proc.on("exit", r));
    assert.equal(code, 2, `${url}: ${err}`);
    assert.match(err, /^chat\.mjs: bad URL .*\n$/, url);
  }
});

test("interactive, the CLI refuses lines while the server is gone, then reconnects", { timeout: 60000 }, async () => {
  let own = await startServer(["--rate", "0"]);
  const proc = spawn(process.execPath, [path.join(ROOT, "clients/node/chat.mjs"), own.url, "--name", "js-back"], { timeout: 50000 });
  const cli = watch(proc);
  try {
    await cli.waitFor(/connected as js-back/);
    await own.stop(); // a clean shutdown: the server closes with 1001
    await cli.waitFor(/^\* connection lost; reconnecting in \d+ ms$/m);
    proc.stdin.write("typed while the server is gone\n");
    await cli.waitFor(/^! not connected$/m);

    own = await startServer(["--rate", "0"], own.addr); // the same port again
    await cli.waitFor(/^\* reconnected as js-back/m, 30000);
    const peer = new SwitchboardClient(own.url, { name: "js-peer", WebSocket, reconnect: false });
    const welcomed = new Promise((r) => peer.on("welcome", r));
    peer.connect();
    await welcomed;
    const got = next(peer, "message", (m) => m.text === "back again");
    proc.stdin.write("back again\n");
    assert.equal((await got).from, "js-back");
    peer.close();
    proc.stdin.end();
    const code = await new Promise((r) => (proc.exitCode !== null ? r(proc.exitCode) : proc.on("exit", r)));
    assert.equal(code, 0, cli.text());
    assert.doesNotMatch(cli.seen.out, /undefined/);
    assert.equal(cli.seen.err, "");
  } finally {
    proc.kill();
    await own.stop();
  }
});

test("the CLI chats over wss:// with --cafile, refuses an unknown CA, and warns with --insecure", async () => {
  const pki = makePki();
  const tls = await startServer(["--tls-cert", pki.cert, "--tls-key", pki.key]);
  const url = `wss://${tls.addr}/chat`;
  const run = (args) =>
    new Promise((resolve) => {
      const proc = spawn(process.execPath, [path.join(ROOT, "clients/node/chat.mjs"), url, ...args]);
      let out = "";
      let err = "";
      proc.stdout.on("data", (d) => (out += d));
      proc.stderr.on("data", (d) => (err += d));
      proc.on("exit", (code) => resolve({ code, out, err }));
      proc.stdin.end();
    });
  try {
    const trusted = await run(["--cafile", pki.ca, "--name", "tls-js", "--send", "hello over wss", "--expect", "tls-js: hello over wss"]);
    assert.equal(trusted.code, 0, trusted.out + trusted.err);
    const refused = await run(["--name", "tls-js-no", "--send", "x"]);
    assert.equal(refused.code, 2, refused.out + refused.err);
    assert.match(refused.err, /cannot connect to wss:.*(certificate|self.signed)/i);
    const insecure = await run(["--insecure", "--name", "tls-js-yes", "--send", "hi", "--expect", "tls-js-yes: hi"]);
    assert.equal(insecure.code, 0, insecure.out + insecure.err);
    assert.match(insecure.err, /warning: --insecure/);
  } finally {
    await tls.stop();
    rmSync(pki.dir, { recursive: true, force: true });
  }
});
