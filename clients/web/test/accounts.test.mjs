// Accounts on the browser page, in headless Chromium, against the real
// server serving this checkout's page (--web-root), with an account
// database in a scratch directory and accounts made by `switchboard user add`.
//   node --test clients/web/test/
//
// Without Chromium the tests are skipped with a message, unless
// SWITCHBOARD_REQUIRE_ALL=1 (as in CI), when they fail.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { startServer, scratch, addUser, ROOT } from "../../node/support/server.mjs";
import { ARGS, CHROMIUM, OUT, skip } from "../../node/support/chromium.mjs";

const PASSWORD = "correct horse battery";

let server;
let tmp;
let browser;
before(async () => {
  if (skip) return;
  assert.ok(CHROMIUM, "Chromium is required (SWITCHBOARD_REQUIRE_ALL=1) but was not found: apt-get install chromium");
  mkdirSync(OUT, { recursive: true });
  tmp = scratch("sb-web-accounts-");
  const pw = tmp.file("password", `${PASSWORD}\n`);
  addUser(tmp.db, "web-mod", pw, "moderator");
  addUser(tmp.db, "web-bob", pw);
  server = await startServer(["--rate", "0", "--db", tmp.db, "--auth", "optional", "--web-root", path.join(ROOT, "clients/web")]);
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
});
after(async () => {
  await browser?.close();
  await server?.stop();
  tmp?.remove();
});

/** A new page in its own browser context (its own localStorage). */
async function newPage(viewport = { width: 960, height: 640 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on("pageerror", (e) => assert.fail(`page error: ${e.message}`));
  return page;
}

/** Open the page and sign in (or register) through the form. */
async function signIn(page, name, button = "#sign-in") {
  await page.goto(`${server.http}/`);
  await page.locator("#join").waitFor();
  await page.fill("#name", name);
  await page.fill("#password", PASSWORD);
  await page.click(button);
  await page.locator("#me", { hasText: `signed in as ${name}` }).waitFor();
  await page.locator('#state[data-state="open"]').waitFor();
}

async function say(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

test("register, reload and still be signed in with the same topics; sign out", { skip, timeout: 90000 }, async () => {
  const page = await newPage();
  await signIn(page, "web-alice", "#register");
  assert.ok(await page.locator("#join").isHidden(), "the form is gone once signed in");
  assert.equal(await page.innerText("#account"), "Sign out");
  await page.locator('#users li.registered[data-name="web-alice"] .mark').waitFor();
  const token = await page.evaluate(() => localStorage.getItem("switchboard-token"));
  assert.ok(token, "the session token is kept");
  for (const topic of ["web-news", "web-lunch"]) {
    await page.fill("#topic-input", topic);
    await page.click("#subscribe");
    await page.locator(`#topics li[data-topic="${topic}"]`).waitFor();
  }
  // The server has the subscriptions once it answers a later request.
  const me = await page.evaluate(() => window.switchboard.request("whoami"));
  assert.deepEqual([...me.topics].sort(), ["web-lunch", "web-news"]);

  await page.reload();
  await page.locator("#me", { hasText: "signed in as web-alice" }).waitFor();
  for (const topic of ["web-news", "web-lunch"]) await page.locator(`#topics li[data-topic="${topic}"]`).waitFor();
  assert.ok(await page.locator("#join").isHidden(), "no form after a reload: the token signed in");
  assert.equal(await page.locator('#users li[data-name^="guest-"], #users li[data-name^="web-alice-"]').count(), 0);
  await page.selectOption("#target", "#web-news");
  await say(page, "signed in and subscribed");
  await page.locator("#messages li.msg.publish", { hasText: "signed in and subscribed" }).waitFor();
  await page.screenshot({ path: path.join(OUT, "signed-in.png") });

  // Sign out: the token is gone, the form is back, and it stays signed out.
  await page.click("#account");
  await page.locator("#auth-status", { hasText: "Signed out" }).waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem("switchboard-token")), null);
  await page.waitForTimeout(1000);
  assert.equal(await page.getAttribute("#state", "data-state"), "closed");
  assert.ok(await page.locator("#chat").isHidden());
  await page.reload();
  await page.locator("#join").waitFor();
  assert.equal(await page.innerText("#me"), "");
  await page.context().close();
});

test("a guest cannot take a registered name: asking for it gives a variant", { skip, timeout: 60000 }, async () => {
  const page = await newPage();
  await page.goto(`${server.http}/?name=web-bob`);
  await page.locator('#state[data-state="open"]').waitFor();
  const me = await page.innerText("#me");
  assert.match(me, /^you are web-bob-\d+ \(guest\)$/, me);
  await page.locator("#messages li.notice", { hasText: "web-bob was taken or invalid" }).waitFor();
  assert.equal(await page.locator('#users li[data-name="web-bob"]').count(), 0);
  assert.equal(await page.innerText("#account"), "Sign in");
  // Signing in on the same connection makes it web-bob: a second welcome.
  await page.click("#account");
  await page.fill("#name", "web-bob");
  await page.fill("#password", PASSWORD);
  await page.click("#sign-in");
  await page.locator("#me", { hasText: "signed in as web-bob" }).waitFor();
  await page.locator('#users li.registered[data-name="web-bob"]').waitFor();
  assert.equal(await page.locator('#users li[data-name^="web-bob-"]').count(), 0, "the guest name is gone");
  await page.context().close();
});

test("a private message to an offline account arrives, marked late, at its next sign-in", { skip, timeout: 90000 }, async () => {
  const bob = await newPage();
  await signIn(bob, "web-bob");
  const alice = await newPage();
  await alice.goto(`${server.http}/?name=web-sender`);
  await alice.locator('#users li.registered[data-name="web-bob"]').waitFor();
  await alice.click('#users li[data-name="web-bob"]');
  await bob.context().close(); // bob goes away
  await alice.locator("#messages li.notice", { hasText: "web-bob is away" }).waitFor();
  await say(alice, "call me when you are back");
  await alice.locator("#messages li.notice", { hasText: "they get it when they next sign in" }).waitFor();
  assert.equal(await alice.inputValue("#text"), "", "sent, not kept back");

  const back = await newPage();
  await signIn(back, "web-bob");
  // It waits in its own conversation, counted as unread.
  const conversation = back.locator('#conversations li[data-key="@web-sender"]');
  await conversation.locator(".unread", { hasText: "1" }).waitFor();
  await conversation.click();
  const late = back.locator("#messages li.msg.direct.late", { hasText: "call me when you are back" });
  await late.waitFor();
  assert.equal(await late.locator(".late-mark").innerText(), "delivered late");
  assert.equal(await late.locator(".from").innerText(), "web-sender:");
  await alice.context().close();
  await back.context().close();
});

test("a kicked user sees why, and the page does not reconnect", { skip, timeout: 90000 }, async () => {
  const mod = await newPage();
  await signIn(mod, "web-mod");
  assert.match(await mod.innerText("#me"), /signed in as web-mod \(moderator\)/);
  const carol = await newPage();
  await carol.goto(`${server.http}/?name=web-carol`);
  await carol.locator('#state[data-state="open"]').waitFor();
  const entry = mod.locator('#users li[data-name="web-carol"]');
  await entry.waitFor();
  assert.equal(await carol.locator('#users li [data-action="kick"]').count(), 0, "guests have no moderation buttons");
  mod.once("dialog", (d) => d.accept("spamming"));
  await entry.locator('button[data-action="kick"]').click();
  await mod.locator("#messages li.notice", { hasText: "Kicked web-carol: spamming" }).waitFor();
  await carol.locator("#messages li.notice.error", { hasText: "removed by a moderator: spamming" }).waitFor();
  await mod.locator("#messages li.notice", { hasText: "web-carol left" }).waitFor();
  await carol.waitForTimeout(1500); // a reconnect (250 ms backoff) would have happened by now
  assert.equal(await carol.getAttribute("#state", "data-state"), "closed");
  assert.equal(await mod.locator('#users li[data-name="web-carol"]').count(), 0);
  await carol.screenshot({ path: path.join(OUT, "kicked.png") });
  await mod.context().close();
  await carol.context().close();
});

test("with --auth required the page offers only the form", { skip, timeout: 60000 }, async () => {
  const own = await startServer(["--rate", "0", "--db", path.join(tmp.dir, "required.db"), "--auth", "required",
    "--web-root", path.join(ROOT, "clients/web")]);
  try {
    const page = await newPage();
    await page.goto(`${own.http}/?name=web-anon`);
    await page.locator("#auth-status", { hasText: "requires an account" }).waitFor();
    assert.ok(await page.locator("#join-guest").isHidden(), "no guest button");
    assert.ok(await page.locator("#chat").isHidden(), "no chat before signing in");
    await page.fill("#name", "web-req");
    await page.fill("#password", PASSWORD);
    await page.click("#register");
    await page.locator("#me", { hasText: "signed in as web-req" }).waitFor();
    assert.ok(await page.locator("#chat").isVisible());
    await page.context().close();
  } finally {
    await own.stop();
  }
});
