// End-to-end test of the browser page in headless Chromium (Debian's
// `chromium` package, driven by playwright-core with executablePath).
//   node --test clients/web/test/
//
// Without Chromium the test is skipped with a message, unless
// SWITCHBOARD_REQUIRE_ALL=1 (as in CI), when it fails.

import { test } from "node:test";
import { spawn } from "node:child_process";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { startServer, ROOT } from "../../node/support/server.mjs";

const CHROMIUM = [process.env.CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => p && existsSync(p));
const REQUIRED = process.env.SWITCHBOARD_REQUIRE_ALL === "1";
const OUT = path.join(ROOT, "test-output", "browser");

// Flags for a closed network: without the background-networking ones
// Chromium keeps trying to reach Google's hosts.
const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

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

const skip = !CHROMIUM && !REQUIRED ? "Chromium not found (apt-get install chromium, or set CHROMIUM=/path)" : false;

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

    // A direct message reaches only its target (and the sender's own view).
    await alice.click('#users li[data-name="bob"]');
    assert.equal(await alice.inputValue("#target"), "@bob");
    await say(alice, "secret for bob");
    await bob.locator("#messages li.msg.direct", { hasText: "secret for bob" }).waitFor();
    await alice.locator("#messages li.msg.direct", { hasText: "secret for bob" }).waitFor();

    // A topic publish reaches a subscribed page only.
    for (const page of [carol, alice]) {
      await page.fill("#topic-input", "news");
      await page.click("#subscribe");
      await page.locator('#topics li[data-topic="news"]').waitFor();
    }
    await alice.selectOption("#target", "#news");
    await say(alice, "extra extra");
    await carol.locator("#messages li.msg.publish", { hasText: "extra extra" }).waitFor();

    // Nothing stray reached the others (everything above has been routed).
    await bob.waitForTimeout(300);
    assert.equal(await carol.locator("#messages li", { hasText: "secret for bob" }).count(), 0);
    assert.equal(await bob.locator("#messages li", { hasText: "extra extra" }).count(), 0);

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
    await alice.locator("#messages li.msg.broadcast", { hasText: "hello from python" }).waitFor();
    await alice.locator("#messages li.msg.direct", { hasText: "psst from python" }).waitFor();
    const node = cli(process.execPath, [
      path.join(ROOT, "clients/node/chat.mjs"), server.url, "--name", "node-user", "--timeout", "30",
      "--send", "/sub news", "--send", "hello from node", "--send", "/multi alice,py-user multi from node",
      "--expect", "alice: hello from the browser", "--expect", "#news alice: news from the browser",
      "--expect", "node-user -> alice,py-user: multi from node",
    ]);
    await alice.locator("#messages li.msg.broadcast", { hasText: "hello from node" }).waitFor();
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
    await bob.locator("#messages li.msg.broadcast", { hasText: "hello from the browser" }).waitFor();
    assert.equal(await bob.locator("#messages li", { hasText: "direct from the browser" }).count(), 0);

    // Kill the server and start it again on the same port: the page says
    // it is reconnecting, comes back, and says history was lost.
    const addr = server.addr;
    await server.kill();
    await alice.locator('#state[data-state="reconnecting"]').waitFor();
    server = await startServer(["--rate", "0"], addr);
    for (const page of [alice, bob]) {
      await page.locator('#state[data-state="open"]').waitFor({ timeout: 30000 });
      await page.locator("#messages li.notice", { hasText: "Reconnected" }).waitFor();
      await page.locator("#messages li.notice", { hasText: "server restarted" }).waitFor();
    }
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
