// End-to-end test of the browser page in headless Chromium (Debian's
// `chromium` package, driven by playwright-core with executablePath).
//   node --test clients/web/test/
//
// Without Chromium the test is skipped with a message, unless
// SWITCHBOARD_REQUIRE_ALL=1 (as in CI), when it fails.

import { test } from "node:test";
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
