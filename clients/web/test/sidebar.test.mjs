// The sidebar in headless Chromium, with several pages as different users
// (issue 17): the server's topic list with counts and one-click join,
// renaming, one message to several people, guests told from accounts,
// notifications and the tab title, the phone drawer, keyboard shortcuts.
//   node --test clients/web/test/sidebar.test.mjs
//
// Without Chromium the test is skipped with a message, unless
// SWITCHBOARD_REQUIRE_ALL=1 (as in CI), when it fails.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { startServer } from "../../node/support/server.mjs";
import { ARGS, CHROMIUM, OUT, skip } from "../../node/support/chromium.mjs";


/** The page as if its tab were in the background, with a Notification
 * that records instead of showing (permission granted). */
const BACKGROUND = () => {
  window.shown = [];
  window.Notification = class {
    static permission = "granted";
    static requestPermission() {
      return Promise.resolve("granted");
    }
    constructor(title, options) {
      window.shown.push({ title, body: options.body });
    }
  };
  Object.defineProperty(document, "hidden", { get: () => window.away === true });
  document.hasFocus = () => window.away !== true;
};

async function session(body) {
  assert.ok(CHROMIUM, "Chromium is required (SWITCHBOARD_REQUIRE_ALL=1) but was not found: apt-get install chromium");
  const { chromium } = await import("playwright-core");
  mkdirSync(OUT, { recursive: true });
  const server = await startServer(["--rate", "0"]);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  try {
    const open = async (name, options = { viewport: { width: 1000, height: 700 } }) => {
      const context = await browser.newContext(options);
      await context.addInitScript(BACKGROUND);
      const page = await context.newPage();
      page.on("pageerror", (e) => assert.fail(`page error on ${name}'s page: ${e.message}`));
      await page.goto(`${server.http}/?name=${name}`);
      await page.locator('#state[data-state="open"]').waitFor();
      return page;
    };
    await body(open, server);
  } finally {
    await browser.close();
    await server.stop();
  }
}

const say = async (page, text) => {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
};

test("topics to join with one click, renaming, one message to several, guests marked", { skip, timeout: 90000 }, async () => {
  await session(async (open) => {
    const ann = await open("ann");
    await ann.fill("#topic-input", "news");
    await ann.click("#subscribe");
    const ben = await open("ben");
    const cat = await open("cat");
    const dan = await open("dan");

    // ben sees #news with one subscriber, joins it with one click.
    const news = ben.locator('#all-topics li[data-topic="news"]');
    await news.waitFor();
    assert.equal(await news.locator(".count").textContent(), "1");
    await news.locator("button", { hasText: "join" }).click();
    await ben.locator('#topics li[data-topic="news"]').waitFor();
    await ben.click("#refresh-topics");
    await ben.locator('#all-topics li[data-topic="news"] .count', { hasText: "2" }).waitFor();
    assert.equal(await news.locator("button").count(), 0, "no join button once joined");

    // Guests are marked as guests.
    await ann.locator('#users li.guest[data-name="cat"] .guest-mark', { hasText: "guest" }).waitFor();

    // ben renames himself; everyone sees the new name.
    await ben.fill("#rename-input", "benny");
    await ben.click("#rename");
    await ben.locator("#me", { hasText: "benny" }).waitFor();
    await ann.locator('#users li[data-name="benny"]').waitFor();
    assert.equal(await ann.locator('#users li[data-name="ben"]').count(), 0);

    // ann ticks benny and cat: one message to the two of them.
    await ann.check('#users li[data-name="benny"] input.pick');
    assert.equal(await ann.locator("#pick-send").isVisible(), false, "one person is a direct message");
    await ann.check('#users li[data-name="cat"] input.pick');
    await ann.locator("#pick-send", { hasText: "Message these 2" }).click();
    assert.equal(await ann.inputValue("#target"), "@benny,cat");
    await say(ann, "lunch, you two?");
    await ann.locator("#messages li.msg.multicast", { hasText: "lunch, you two?" }).waitFor();
    // The three of them have one conversation, each seeing the other two.
    for (const [page, key] of [[ben, "@ann,cat"], [cat, "@ann,benny"]]) {
      await page.click(`#conversations li[data-key="${key}"]`);
      await page.locator("#messages li.msg.multicast", { hasText: "lunch, you two?" }).waitFor();
    }
    await dan.waitForTimeout(300);
    assert.equal(await dan.locator("#messages li", { hasText: "lunch, you two?" }).count(), 0, "dan was not chosen");
    await ann.screenshot({ path: path.join(OUT, "sidebar.png") });
  });
});

test("notifications for private messages and mentions, and the unread count in the title", { skip, timeout: 90000 }, async () => {
  await session(async (open) => {
    const ann = await open("ann");
    const ben = await open("ben");
    await ann.check("#notify");
    await ann.evaluate(() => (window.away = true));
    await say(ben, "nothing for anyone here, annabel");
    await say(ben, "hey ann, look");
    await ben.click('#users li[data-name="ann"]');
    await say(ben, "just between us");
    await ann.locator('#conversations li[data-key="@ben"] .unread', { hasText: "1" }).waitFor();
    assert.deepEqual(await ann.evaluate(() => window.shown), [
      { title: "ben", body: "hey ann, look" },
      { title: "ben (private)", body: "just between us" },
    ]);
    assert.equal(await ann.title(), "(3) Switchboard");
    // Back to the page: the room on the screen is read; the private
    // message is read once its conversation is opened.
    await ann.evaluate(() => {
      window.away = false;
      document.dispatchEvent(new Event("visibilitychange"));
    });
    assert.equal(await ann.title(), "(1) Switchboard");
    await ann.click('#conversations li[data-key="@ben"]');
    assert.equal(await ann.title(), "Switchboard");
    await ann.click('#conversations li[data-key="*"]');
    // Turned off: nothing more.
    await ann.uncheck("#notify");
    await ann.evaluate(() => (window.away = true));
    await say(ben, "ann, again"); // to ann alone: it is counted in its conversation
    await ann.locator('#conversations li[data-key="@ben"] .unread', { hasText: "1" }).waitFor();
    assert.equal(await ann.evaluate(() => window.shown.length), 2);
  });
});

test("on a phone the sidebar is a drawer; the keyboard switches where to send", { skip, timeout: 90000 }, async () => {
  await session(async (open) => {
    await open("ann");
    const ben = await open("ben", { viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true });
    assert.equal(await ben.locator("#sidebar").isVisible(), false, "the drawer starts closed");
    assert.ok(await ben.evaluate(() => document.documentElement.scrollWidth <= 375), "nothing wider than the phone");
    const composer = await ben.locator("#composer").boundingBox();
    assert.ok(composer.x >= 0 && composer.x + composer.width <= 375 && composer.y + composer.height <= 667, JSON.stringify(composer));
    await ben.click("#drawer-toggle");
    await ben.locator("#sidebar").waitFor();
    assert.equal(await ben.getAttribute("#drawer-toggle", "aria-expanded"), "true");
    await ben.waitForTimeout(400); // the drawer slides in
    await ben.screenshot({ path: path.join(OUT, "phone-drawer.png") });
    await ben.click('#users li[data-name="ann"]');
    await ben.locator("#sidebar").waitFor({ state: "hidden" });
    assert.equal(await ben.inputValue("#target"), "@ann");

    // Alt+Up / Alt+Down walk the choices, from the message box.
    await ben.focus("#text");
    await ben.keyboard.press("Alt+ArrowUp");
    assert.equal(await ben.inputValue("#target"), "*");
    await ben.keyboard.press("Alt+ArrowDown");
    assert.equal(await ben.inputValue("#target"), "@ann");
    // Escape closes the drawer.
    await ben.click("#drawer-toggle");
    await ben.locator("#sidebar").waitFor();
    await ben.keyboard.press("Escape");
    await ben.locator("#sidebar").waitFor({ state: "hidden" });
  });
});
