// End-to-end test of the browser page in headless Chromium (Debian's
// `chromium` package, driven by playwright-core with executablePath).
//   node --test clients/web/test/
//
// Without Chromium the test is skipped with a message, unless
// SWITCHBOARD_REQUIRE_ALL=1 (as in CI), when it fails.

import { test } from "node:test";
import { spawn } from "node:child_process";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { makePki, startServer, ROOT } from "../../node/support/server.mjs";
import { ARGS, CHROMIUM, OUT, skip } from "../../node/support/chromium.mjs";

/** Run a CLI to completion; resolves to { code, out }. */
function cli(program, args) {
  return new Promise((resolve) => {
    const proc = spawn(program, args);
    let out = "";
    proc.stdout.on("data", (d) => (out += d));
    proc.stderr.on("data", (d) => (out += d));
    proc.on("exit", (code) => resolve({ code, out }));
  });
}


/** A plain WebSocket chat client (the `ws` package) that keeps every frame
 * it receives; resolves once welcomed. `send(obj)` sends one message. */
async function rawClient(url, name) {
  const { default: WebSocket } = await import("ws");
  const ws = new WebSocket(`${url}?name=${name}`);
  const frames = [];
  const waiters = new Set();
  ws.on("message", (data) => {
    frames.push(JSON.parse(data.toString()));
    for (const w of [...waiters]) w();
  });
  /** The first frame (already received or still to come) matching `pred`. */
  const waitFor = (pred, what, ms = 10000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`${name}: no ${what} within ${ms} ms; got ${JSON.stringify(frames)}`));
      }, ms);
      const check = () => {
        const found = frames.find(pred);
        if (!found) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(found);
      };
      waiters.add(check);
      check();
    });
  const closed = new Promise((resolve) => ws.on("close", resolve));
  await waitFor((f) => f.type === "welcome", "welcome");
  return { frames, waitFor, send: (message) => ws.send(JSON.stringify(message)), close: () => (ws.close(), closed) };
}

test("two pages chat; direct and topic messages reach only their targets; the page survives a server restart", { skip, timeout: 120000 }, async () => {
  assert.ok(CHROMIUM, "Chromium is required (SWITCHBOARD_REQUIRE_ALL=1) but was not found: apt-get install chromium");
  const { chromium } = await import("playwright-core");
  mkdirSync(OUT, { recursive: true });
  let server = await startServer(["--rate", "0"]);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  try {
    const context = await browser.newContext({ viewport: { width: 960, height: 640 } });
    const open = async (name) => {
      const page = await context.newPage();
      page.on("pageerror", (e) => assert.fail(`page error on ${name}'s page: ${e.message}`));
      await page.goto(`${server.http}/?name=${name}`);
      await page.locator('#state[data-state="open"]').waitFor();
      await page.locator(`#users li[data-name="${name}"]`).waitFor();
      assert.ok(await page.locator("#join").isHidden(), "the join form is gone once joined");
      return page;
    };
    const say = async (page, text) => {
      await page.fill("#text", text);
      await page.press("#text", "Enter");
    };
    const alice = await open("alice");
    const bob = await open("bob");
    const carol = await open("carol");
    await alice.locator('#users li[data-name="carol"]').waitFor();

    // One page broadcasts, the others show it.
    await say(alice, "hello everyone");
    for (const page of [bob, carol]) {
      await page.locator("#messages li.msg.broadcast", { hasText: "hello everyone" }).waitFor();
    }
    assert.match(await bob.locator("#messages li.msg.broadcast .from").first().innerText(), /alice/);

    // A direct message reaches only its target (and the sender's own view),
    // in its own conversation, counted as unread until it is opened.
    await alice.click('#users li[data-name="bob"]');
    assert.equal(await alice.inputValue("#target"), "@bob");
    await say(alice, "secret for bob");
    await alice.locator("#messages li.msg.direct", { hasText: "secret for bob" }).waitFor();
    const withAlice = bob.locator('#conversations li[data-key="@alice"]');
    await withAlice.locator(".unread", { hasText: "1" }).waitFor();
    assert.equal(await bob.title(), "(1) Switchboard");
    assert.equal(await bob.locator("#messages li", { hasText: "secret for bob" }).count(), 0, "not in the room");
    await withAlice.click();
    await bob.locator("#messages li.unread-marker").waitFor();
    await bob.locator("#messages li.msg.direct", { hasText: "secret for bob" }).waitFor();
    assert.equal(await withAlice.locator(".unread").count(), 0, "read once opened");
    assert.equal(await bob.title(), "Switchboard");
    await bob.click('#conversations li[data-key="*"]');

    // A topic publish reaches a subscribed page only.
    for (const page of [carol, alice]) {
      await page.fill("#topic-input", "news");
      await page.click("#subscribe");
      await page.locator('#topics li[data-topic="news"]').waitFor();
    }
    await alice.selectOption("#target", "#news");
    await say(alice, "extra extra");
    await carol.click('#conversations li[data-key="#news"]');
    await carol.locator("#messages li.msg.publish", { hasText: "extra extra" }).waitFor();

    // Nothing stray reached the others (everything above has been routed).
    await bob.waitForTimeout(300);
    assert.equal(await carol.locator('#conversations li[data-key="@alice"]').count(), 0, "carol has no private conversation");
    assert.equal(await bob.locator('#conversations li[data-key="#news"]').count(), 0, "bob is not in #news");
    await carol.click('#conversations li[data-key="*"]');

    // The Python CLI and the Node CLI join the browser pages: all three
    // kinds of client chat through every pattern. (Each CLI subscribes
    // before it speaks, so once its message is seen its topic is set up.)
    // Python joins first; Node joins once Python has spoken, so Python
    // can expect Node's messages.
    const python = cli("python3", [
      path.join(ROOT, "clients/python/chat.py"), server.url, "--name", "py-user", "--timeout", "30",
      "--send", "/sub news", "--send", "hello from python", "--send", "/msg alice psst from python",
      "--expect", "alice: hello from the browser", "--expect", "alice -> py-user: direct from the browser",
      "--expect", "#news alice: news from the browser", "--expect", "node-user: hello from node",
      "--expect", "node-user -> alice,py-user: multi from node",
    ]);
    await alice.click('#conversations li[data-key="*"]');
    await alice.locator("#messages li.msg.broadcast", { hasText: "hello from python" }).waitFor();
    await alice.locator('#conversations li[data-key="@py-user"]').click();
    await alice.locator("#messages li.msg.direct", { hasText: "psst from python" }).waitFor();
    await alice.click('#conversations li[data-key="*"]');
    const node = cli(process.execPath, [
      path.join(ROOT, "clients/node/chat.mjs"), server.url, "--name", "node-user", "--timeout", "30",
      "--send", "/sub news", "--send", "hello from node", "--send", "/multi alice,py-user multi from node",
      "--expect", "alice: hello from the browser", "--expect", "#news alice: news from the browser",
      "--expect", "node-user -> alice,py-user: multi from node",
    ]);
    await alice.locator("#messages li.msg.broadcast", { hasText: "hello from node" }).waitFor();
    await alice.locator('#conversations li[data-key="@node-user,py-user"]').click();
    await alice.locator("#messages li.msg.multicast", { hasText: "multi from node" }).waitFor();
    await alice.selectOption("#target", "*");
    await say(alice, "hello from the browser");
    await alice.click('#users li[data-name="py-user"]');
    await say(alice, "direct from the browser");
    await alice.selectOption("#target", "#news");
    await say(alice, "news from the browser");
    for (const [name, run] of [["python", python], ["node", node]]) {
      const { code, out } = await run;
      assert.equal(code, 0, `${name} CLI:\n${out}`);
    }
    await alice.click('#conversations li[data-key="*"]');
    await bob.locator("#messages li.msg.broadcast", { hasText: "hello from the browser" }).waitFor();
    assert.equal(await bob.locator("#messages li", { hasText: "direct from the browser" }).count(), 0);

    // Kill the server and start it again on the same port: the indicator
    // says it is reconnecting (no notice per attempt), it comes back, and
    // one notice says history was lost.
    const addr = server.addr;
    await server.kill();
    await alice.locator('#state[data-state="reconnecting"]', { hasText: "reconnecting in" }).waitFor();
    assert.equal(await alice.locator("#send").isDisabled(), true, "no sending while offline");
    assert.match(await alice.locator("#composer-status").textContent(), /^Offline/);
    server = await startServer(["--rate", "0"], addr);
    for (const page of [alice, bob]) {
      await page.locator('#state[data-state="open"]').waitFor({ timeout: 30000 });
      await page.locator("#messages li.notice", { hasText: "server restarted" }).waitFor();
      assert.equal(await page.locator("#messages li.notice", { hasText: /reconnect/i }).count(), 0, "calm: no notice per reconnect");
    }
    assert.equal(await alice.locator("#send").isDisabled(), false);
    await bob.locator('#users li[data-name="alice"]').waitFor({ timeout: 30000 });
    await alice.selectOption("#target", "*");
    await say(alice, "back again");
    await bob.locator("#messages li.msg", { hasText: "back again" }).waitFor();
    await alice.screenshot({ path: path.join(OUT, "chat.png") });

    // Readable on a phone-sized screen: the composer and the stream fit.
    const phone = await browser.newContext({ viewport: { width: 375, height: 667 }, isMobile: true });
    const small = await phone.newPage();
    await small.goto(`${server.http}/?name=dave`);
    await small.locator('#state[data-state="open"]').waitFor();
    // History is loaded on connect: the last broadcast is there.
    await small.locator("#messages li.msg", { hasText: "back again" }).waitFor();
    const box = await small.locator("#composer").boundingBox();
    assert.ok(box && box.y + box.height <= 667 && box.width <= 375, `composer fits: ${JSON.stringify(box)}`);
    await small.screenshot({ path: path.join(OUT, "phone.png") });
  } finally {
    await browser.close();
    await server.stop();
  }
});

test("a private conversation stays private when its partner leaves", { skip, timeout: 90000 }, async () => {
  assert.ok(CHROMIUM, "Chromium is required (SWITCHBOARD_REQUIRE_ALL=1) but was not found: apt-get install chromium");
  const { chromium } = await import("playwright-core");
  // Serve this checkout's page, not the copy built into the binary.
  const server = await startServer(["--rate", "0", "--web-root", path.join(ROOT, "clients/web")]);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  const clients = [];
  const join = async (name) => {
    const c = await rawClient(server.url, name);
    clients.push(c);
    return c;
  };
  try {
    const olga = await join("olga"); // sees every broadcast
    let bob = await join("bob");
    const alice = await browser.newPage();
    alice.on("pageerror", (e) => assert.fail(`page error: ${e.message}`));
    await alice.goto(`${server.http}/?name=alice`);
    await alice.locator('#state[data-state="open"]').waitFor();
    const say = async (text) => {
      await alice.fill("#text", text);
      await alice.press("#text", "Enter");
    };
    const targetLabel = () => alice.locator("#target option:checked").innerText();
    const leaks = () => olga.frames.filter((f) => f.type === "message" && /secret/.test(f.text));
    // alice's messages reach olga in the order sent: once a broadcast sent
    // after them has arrived, so has any of them that was broadcast.
    const barrier = async (text) => {
      await alice.selectOption("#target", "*");
      await say(text);
      await olga.waitFor((f) => f.type === "message" && f.text === text, `alice's broadcast "${text}"`);
    };

    await alice.click('#users li[data-name="bob"]');
    await say("first secret");
    await bob.waitFor((f) => f.type === "message" && f.text === "first secret", "alice's direct message");

    // bob leaves while alice is writing to him: the message is not sent at
    // all, and certainly not to everyone.
    await bob.close();
    await alice.locator("#messages li.notice", { hasText: "bob left" }).waitFor();
    const chosen = [await alice.inputValue("#target"), await targetLabel()];
    await say("second secret");
    await barrier("done");
    assert.deepEqual(leaks(), [], "a message meant for bob was broadcast");
    assert.deepEqual(chosen, ["@bob", "@bob (left)"], "still writing to bob, who is marked as gone");
    // The refusal is in the conversation with bob.
    await alice.click('#conversations li[data-key="@bob"]');
    await alice.locator("#messages li.notice.error", { hasText: "bob has left" }).waitFor();
    assert.equal(await alice.locator("#messages li.msg", { hasText: "second secret" }).count(), 0);

    // The choice stays on bob while he is away; when he is back (same name)
    // the kept text goes to him, to him only.
    bob = await join("bob");
    await alice.click('#users li[data-name="bob"]');
    await bob.close();
    await alice.locator("#messages li.notice", { hasText: "bob left" }).nth(1).waitFor();
    await say("third secret");
    await alice.locator("#messages li.notice.error", { hasText: "bob has left" }).nth(1).waitFor();
    assert.equal(await alice.inputValue("#text"), "third secret", "the text is kept");
    bob = await join("bob");
    await alice.locator("#messages li.notice", { hasText: "bob joined" }).nth(1).waitFor();
    assert.equal(await targetLabel(), "@bob");
    await alice.press("#text", "Enter");
    const got = await bob.waitFor((f) => f.type === "message" && f.text === "third secret", "the kept message");
    assert.equal(got.kind, "direct");
    await barrier("done again");
    assert.deepEqual(leaks(), [], "a message meant for bob was broadcast");
  } finally {
    await browser.close();
    for (const c of clients) await c.close();
    await server.stop();
  }
});

test("the search box finds exactly the matching messages, newest first, and pages on", { skip, timeout: 90000 }, async () => {
  assert.ok(CHROMIUM, "Chromium is required (SWITCHBOARD_REQUIRE_ALL=1) but was not found: apt-get install chromium");
  const { chromium } = await import("playwright-core");
  mkdirSync(OUT, { recursive: true });
  // Serve this checkout's page, not the copy built into the binary.
  const server = await startServer(["--rate", "0", "--web-root", path.join(ROOT, "clients/web")]);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  let bob = null;
  try {
    const alice = await browser.newPage({ viewport: { width: 960, height: 640 } });
    alice.on("pageerror", (e) => assert.fail(`page error: ${e.message}`));
    await alice.goto(`${server.http}/?name=alice`);
    await alice.locator('#state[data-state="open"]').waitFor();
    await alice.fill("#topic-input", "news");
    await alice.click("#subscribe");
    await alice.locator('#topics li[data-topic="news"]').waitFor();
    await alice.fill("#text", "alice wants lunch");
    await alice.press("#text", "Enter");
    await alice.locator("#messages li.msg", { hasText: "alice wants lunch" }).waitFor();

    bob = await rawClient(server.url, "bob");
    /** bob sends these in order; resolves once all are routed (and kept). */
    let id = 0;
    const bobSends = async (messages) => {
      for (const m of messages) bob.send({ ...m, id: ++id });
      const last = id;
      await bob.waitFor((f) => (f.type === "ack" || f.type === "error") && f.id === last, `the ack of message ${last}`);
    };
    await bobSends([
      { type: "broadcast", text: "Lunch on Friday?" },
      { type: "broadcast", text: "dinner tonight" },
      { type: "publish", topic: "news", text: "news: lunch moved" },
      { type: "direct", to: "alice", text: "lunch, just us" }, // direct messages are not kept
      { type: "broadcast", text: "<b>lunch</b> & <img src=x onerror=alert(1)>" },
      { type: "publish", topic: "other", text: "lunch elsewhere" },
      { type: "broadcast", text: "LUNCH again" },
    ]);
    await alice.locator("#messages li.msg", { hasText: "LUNCH again" }).waitFor();

    const results = alice.locator("#search-results li.msg");
    const status = alice.locator("#search-status");
    /** Search from the header; resolves once this search's answer is shown
     * (the title names the words and where; the status says how it went). */
    const find = async (q, where = "all messages") => {
      await alice.fill("#search-input", q);
      await alice.press("#search-input", "Enter");
      await alice.locator("#search-title", { hasText: `“${q}” in ${where}` }).waitFor();
      await alice.locator("#search-status", { hasText: /found|No messages|failed/ }).waitFor();
    };
    const texts = () => alice.locator("#search-results li.msg .text").allInnerTexts();

    // Everyone is the target: every stream is searched.
    assert.equal(await alice.getAttribute("#search-input", "placeholder"), "Search all messages");
    assert.ok(await alice.locator("#search-panel").isHidden(), "no results panel before a search");
    await find("lunch");
    assert.deepEqual(await texts(), [
      "LUNCH again",
      "lunch elsewhere",
      "<b>lunch</b> & <img src=x onerror=alert(1)>",
      "news: lunch moved",
      "Lunch on Friday?",
      "alice wants lunch",
    ]);
    assert.equal(await alice.locator("#search-results b, #search-results img").count(), 0, "text is shown as text");
    assert.equal(await alice.innerText("#search-title"), "“lunch” in all messages");
    assert.equal(await results.first().locator(".from").innerText(), "bob:");
    assert.match(await results.first().locator(".time").innerText(), /\d\d:\d\d:\d\d/);
    assert.equal(await results.nth(1).locator(".tag").innerText(), "#other");
    assert.equal(await results.last().locator(".from").innerText(), "alice:");
    assert.match(await status.innerText(), /^6 found/);
    assert.ok(await alice.locator("#search-more").isHidden(), "no More when everything is shown");
    await alice.screenshot({ path: path.join(OUT, "search.png") });

    // Every word must match, in any case.
    await find("friday LUNCH");
    assert.deepEqual(await texts(), ["Lunch on Friday?"]);

    // With a topic as the target, only that topic is searched.
    await alice.selectOption("#target", "#news");
    assert.equal(await alice.getAttribute("#search-input", "placeholder"), "Search #news");
    await find("lunch", "#news");
    assert.deepEqual(await texts(), ["news: lunch moved"]);
    await alice.selectOption("#target", "*");

    // Nothing found, and a query the server refuses, are both said plainly.
    await find("no-such-word");
    assert.deepEqual(await texts(), []);
    assert.match(await status.innerText(), /No messages match “no-such-word”/);
    await find("x".repeat(201));
    assert.deepEqual(await texts(), []);
    assert.match(await status.innerText(), /^Search failed: bad_request/);
    assert.equal(await alice.getAttribute("#search-status", "class"), "search-status error");

    // More than a page: "More" fetches the older ones.
    await bobSends(Array.from({ length: 25 }, (_, i) => ({ type: "broadcast", text: `bulk ${i + 1}` })));
    await find("bulk");
    const newestFirst = Array.from({ length: 25 }, (_, i) => `bulk ${25 - i}`);
    assert.deepEqual(await texts(), newestFirst.slice(0, 20));
    assert.match(await status.innerText(), /^20 found.*More/);
    await alice.click("#search-more");
    await alice.locator("#search-status", { hasText: /^25 found/ }).waitFor();
    assert.deepEqual(await texts(), newestFirst);
    assert.ok(await alice.locator("#search-more").isHidden(), "no More after the last page");

    // Close takes the results away; the chat is untouched.
    await alice.click("#search-close");
    assert.ok(await alice.locator("#search-panel").isHidden());
    assert.equal(await results.count(), 0);
    await alice.locator("#messages li.msg", { hasText: "bulk 25" }).waitFor();

    // On a phone-sized screen the search box, the results and the composer fit.
    const phone = await browser.newPage({ viewport: { width: 375, height: 667 }, isMobile: true });
    await phone.goto(`${server.http}/?name=dave`);
    await phone.locator('#state[data-state="open"]').waitFor();
    await phone.fill("#search-input", "friday");
    await phone.press("#search-input", "Enter");
    await phone.locator("#search-results li.msg", { hasText: "Lunch on Friday?" }).waitFor();
    for (const id of ["#search-form", "#search-panel", "#composer"]) {
      const box = await phone.locator(id).boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= 375 && box.y + box.height <= 667, `${id} fits: ${JSON.stringify(box)}`);
    }
    await phone.screenshot({ path: path.join(OUT, "search-phone.png") });
  } finally {
    await browser.close();
    if (bob) await bob.close();
    await server.stop();
  }
});

test("two pages chat over https:// and wss:// with a certificate made now", { skip, timeout: 120000 }, async () => {
  assert.ok(CHROMIUM, "Chromium is required (SWITCHBOARD_REQUIRE_ALL=1) but was not found: apt-get install chromium");
  const { chromium } = await import("playwright-core");
  const { rmSync } = await import("node:fs");
  mkdirSync(OUT, { recursive: true });
  const pki = makePki();
  const server = await startServer(["--tls-cert", pki.cert, "--tls-key", pki.key]);
  // The test CA is not in Chromium's store: accept it for this test only.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...ARGS, "--ignore-certificate-errors"] });
  try {
    const context = await browser.newContext({ viewport: { width: 960, height: 640 }, ignoreHTTPSErrors: true });
    const open = async (name) => {
      const page = await context.newPage();
      page.on("pageerror", (e) => assert.fail(`page error on ${name}'s page: ${e.message}`));
      await page.goto(`https://${server.addr}/?name=${name}`);
      await page.locator('#state[data-state="open"]').waitFor();
      return page;
    };
    const alice = await open("tls-alice");
    const bob = await open("tls-bob");
    await alice.fill("#text", "hello over wss");
    await alice.press("#text", "Enter");
    await bob.locator("#messages li.msg.broadcast", { hasText: "hello over wss" }).waitFor();
    assert.equal(new URL(bob.url()).protocol, "https:");
    await bob.screenshot({ path: path.join(OUT, "https.png") });
  } finally {
    await browser.close();
    await server.stop();
    rmSync(pki.dir, { recursive: true, force: true });
  }
});

/** A small reverse proxy on a free port that serves `upstream` (host:port)
 * under the sub-path `/chat/`, as nginx's `location /chat/ { proxy_pass
 * http://upstream/; }` does: the prefix is stripped, WebSocket upgrades
 * are piped through. Resolves to { port, close() }. */
async function subPathProxy(upstream) {
  const http = await import("node:http");
  const net = await import("node:net");
  const [host, port] = [upstream.slice(0, upstream.lastIndexOf(":")), Number(upstream.slice(upstream.lastIndexOf(":") + 1))];
  const strip = (url) => (url.startsWith("/chat/") ? url.slice("/chat".length) : null);
  const server = http.createServer((req, res) => {
    const target = strip(req.url);
    if (target === null) {
      res.writeHead(404).end();
      return;
    }
    const up = http.request({ host, port, path: target, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  server.on("upgrade", (req, socket, head) => {
    const target = strip(req.url);
    if (target === null) return socket.destroy();
    const up = net.connect(port, host, () => {
      const lines = [`${req.method} ${target} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(lines.join("\r\n") + "\r\n\r\n");
      up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on("error", () => socket.destroy());
    socket.on("error", () => up.destroy());
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: server.address().port, close: () => (server.closeAllConnections?.(), new Promise((r) => server.close(r))) };
}

test("the page works under a sub-path behind a proxy (relative URLs)", { skip, timeout: 120000 }, async () => {
  assert.ok(CHROMIUM, "Chromium is required (SWITCHBOARD_REQUIRE_ALL=1) but was not found: apt-get install chromium");
  const { chromium } = await import("playwright-core");
  const server = await startServer([]);
  const proxy = await subPathProxy(server.addr);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  try {
    const context = await browser.newContext({ viewport: { width: 960, height: 640 } });
    const sockets = [];
    const open = async (name) => {
      const page = await context.newPage();
      page.on("pageerror", (e) => assert.fail(`page error on ${name}'s page: ${e.message}`));
      page.on("websocket", (ws) => sockets.push(ws.url()));
      await page.goto(`http://127.0.0.1:${proxy.port}/chat/?name=${name}`);
      await page.locator('#state[data-state="open"]').waitFor();
      return page;
    };
    const alice = await open("sub-alice");
    const bob = await open("sub-bob");
    await alice.fill("#text", "hello under /chat/");
    await alice.press("#text", "Enter");
    await bob.locator("#messages li.msg.broadcast", { hasText: "hello under /chat/" }).waitFor();
    assert.ok(sockets.length > 0 && sockets.every((u) => new URL(u).pathname === "/chat/chat"), JSON.stringify(sockets));
  } finally {
    await browser.close();
    await proxy.close();
    await server.stop();
  }
});
