// Conversations in headless Chromium (issue 17): the room, each topic and
// each private conversation is its own view; opening a topic loads its
// recent history; scrolling up loads older messages until the start.
//   node --test clients/web/test/conversations.test.mjs
//
// Without Chromium the test is skipped with a message, unless
// SWITCHBOARD_REQUIRE_ALL=1 (as in CI), when it fails.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import WebSocket from "ws";
import { startServer } from "../../node/support/server.mjs";
import { ARGS, CHROMIUM, OUT, skip } from "../../node/support/chromium.mjs";

/** A plain client that sends `messages` (objects) and waits for each ack. */
async function send(url, name, messages) {
  const ws = new WebSocket(`${url}?name=${name}`);
  await new Promise((resolve, reject) => (ws.on("open", resolve), ws.on("error", reject)));
  let acked = 0;
  const done = new Promise((resolve) =>
    ws.on("message", (data) => {
      const f = JSON.parse(data.toString());
      if (f.type === "ack" && ++acked === messages.length) resolve();
    }),
  );
  messages.forEach((m, i) => ws.send(JSON.stringify({ ...m, id: i + 1 })));
  await done;
  ws.close();
}

test("each conversation its own view, with its own history, older messages on scrolling up", { skip, timeout: 90000 }, async () => {
  assert.ok(CHROMIUM, "Chromium is required (SWITCHBOARD_REQUIRE_ALL=1) but was not found: apt-get install chromium");
  const { chromium } = await import("playwright-core");
  mkdirSync(OUT, { recursive: true });
  const server = await startServer(["--rate", "0", "--history", "200"]);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  try {
    // Before anyone opens the page: 120 broadcasts, and 3 messages in #news.
    const room = Array.from({ length: 120 }, (_, i) => ({ type: "broadcast", text: `room ${i + 1}` }));
    const news = [
      { type: "subscribe", topic: "news" },
      ...[1, 2, 3].map((i) => ({ type: "publish", topic: "news", text: `news ${i}` })),
    ];
    await send(server.url, "old", [...room, ...news]);

    const page = await (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage();
    page.on("pageerror", (e) => assert.fail(`page error: ${e.message}`));
    await page.goto(`${server.http}/?name=zoe`);
    await page.locator('#state[data-state="open"]').waitFor();
    assert.equal(await page.textContent("#conv-title"), "Everyone");
    // The room shows its latest 50; none of the topic's.
    await page.locator("#messages li.msg", { hasText: "room 120" }).waitFor();
    assert.equal(await page.locator("#messages li.msg").count(), 50);
    assert.equal(await page.locator("#messages li", { hasText: "news 1" }).count(), 0);

    // Scrolling to the top loads older pages until the start.
    for (let i = 0; i < 10 && !(await page.locator("#messages li.start").count()); i++) {
      await page.locator("#messages").evaluate((el) => el.scrollTo(0, 0));
      await page.waitForTimeout(300);
    }
    await page.locator("#messages li.start").waitFor();
    assert.equal(await page.locator("#messages li.msg").count(), 120, "every message, once");
    const first = await page.locator("#messages li.msg .text").first().textContent();
    assert.equal(first, "room 1", "oldest first");

    // Subscribing to #news opens a conversation that loads its history.
    await page.fill("#topic-input", "news");
    await page.click("#subscribe");
    await page.locator('#conversations li[data-key="#news"]').click();
    assert.equal(await page.textContent("#conv-title"), "#news");
    await page.locator("#messages li.msg", { hasText: "news 3" }).waitFor();
    assert.deepEqual(await page.locator("#messages li.msg .text").allTextContents(), ["news 1", "news 2", "news 3"]);
    assert.equal(await page.inputValue("#target"), "#news", "the composer sends where you look");

    // The keyboard: a conversation opens with Enter or Space.
    await page.locator('#conversations li[data-key="*"] button').focus();
    await page.keyboard.press("Enter");
    assert.equal(await page.textContent("#conv-title"), "Everyone");
    assert.equal(await page.inputValue("#text"), "", "the Enter opened it and went no further");
    await page.locator('#conversations li[data-key="#news"] button').focus();
    await page.keyboard.press("Space");
    assert.equal(await page.textContent("#conv-title"), "#news");
    assert.equal(await page.inputValue("#text"), "");
    await page.locator('#conversations li[data-key="*"]').click();
    await page.screenshot({ path: path.join(OUT, "conversations.png") });
  } finally {
    await browser.close();
    await server.stop();
  }
});

test("the unread line stays while history loads; topics are one whatever their capitals; what was missed while away is unread", { skip, timeout: 90000 }, async () => {
  assert.ok(CHROMIUM, "Chromium is required (SWITCHBOARD_REQUIRE_ALL=1) but was not found: apt-get install chromium");
  const { chromium } = await import("playwright-core");
  const server = await startServer(["--rate", "0"]);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  try {
    await send(server.url, "old", [{ type: "subscribe", topic: "news" }, { type: "publish", topic: "news", text: "news 1" }]);
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    page.on("pageerror", (e) => assert.fail(`page error: ${e.message}`));
    await page.goto(`${server.http}/?name=max`);
    await page.locator('#state[data-state="open"]').waitFor();

    // "NEWS" is #news: one conversation, and no join button for it.
    await page.fill("#topic-input", "NEWS");
    await page.click("#subscribe");
    await page.locator('#conversations li[data-key="#news"]').waitFor();
    assert.equal(await page.locator("#conversations li").count(), 2, "Everyone and #news");
    await page.click("#refresh-topics");
    await page.locator('#all-topics li[data-topic="news"] .count', { hasText: "1" }).waitFor(); // max (old has gone)
    assert.equal(await page.locator('#all-topics li[data-topic="news"] button').count(), 0);

    // Something new in #news while max looks at the room: opening #news
    // loads its history, and the "New messages" line stays above it.
    const talker = new WebSocket(`${server.url}?name=talker`);
    await new Promise((resolve) => talker.on("open", resolve));
    talker.send(JSON.stringify({ type: "subscribe", topic: "news" }));
    talker.send(JSON.stringify({ type: "publish", topic: "news", text: "news 2" }));
    await page.locator('#conversations li[data-key="#news"] .unread', { hasText: "1" }).waitFor();
    await page.locator('#conversations li[data-key="#news"]').click();
    await page.locator("#messages li.msg", { hasText: "news 1" }).waitFor(); // the history came
    const order = await page.locator("#messages li").evaluateAll((lis) =>
      lis.filter((li) => li.matches(".msg, .unread-marker")).map((li) => (li.matches(".unread-marker") ? "|" : li.querySelector(".text").textContent)),
    );
    assert.deepEqual(order, ["news 1", "|", "news 2"]);

    // Away (the connection drops and the network is gone): a broadcast is
    // missed, then caught up on return, counted as unread in the room.
    // "The network is gone" is a WebSocket that fails at once, put in the
    // client's place: the connection itself is closed while online, so its
    // close comes at once (Chromium's offline mode could hold it back), and
    // every state is recorded, so a brief one is not missed between looks.
    await page.evaluate(() => {
      window.seenStates = [];
      window.switchboard.on("state", ({ state }) => window.seenStates.push(state));
      window.realWebSocket = window.switchboard.WebSocket;
      window.switchboard.WebSocket = class {
        constructor() {
          setTimeout(() => this.onclose?.({ code: 1006, reason: "" }), 10);
        }
        send() {}
        close() {}
      };
      window.switchboard.ws.close(3000);
    });
    await page.waitForFunction(() => window.seenStates.some((s) => s !== "open"));
    talker.send(JSON.stringify({ type: "broadcast", text: "said while max was away", id: 9 }));
    await new Promise((resolve) => talker.on("message", (d) => JSON.parse(d).type === "ack" && resolve()));
    await page.evaluate(() => {
      window.switchboard.WebSocket = window.realWebSocket;
    });
    await page.locator('#state[data-state="open"]').waitFor({ timeout: 30000 });
    await page.locator('#conversations li[data-key="*"] .unread', { hasText: "1" }).waitFor();
    await page.locator('#conversations li[data-key="*"]').click();
    await page.locator("#messages li.msg", { hasText: "said while max was away" }).waitFor();
    // Everything was caught up: no "may be missing" notice, no notice per reconnect.
    assert.equal(await page.locator("#messages li.notice", { hasText: /missing|reconnect/i }).count(), 0);
    talker.close();
  } finally {
    await browser.close();
    await server.stop();
  }
});
