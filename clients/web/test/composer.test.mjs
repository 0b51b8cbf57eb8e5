// The page's composer and message list in headless Chromium (issue 17):
// multi-line messages, links made safely, the max_text counter, day
// separators, refusals counted once per burst, and dark mode.
//   node --test clients/web/test/composer.test.mjs
//
// Without Chromium the test is skipped with a message, unless
// SWITCHBOARD_REQUIRE_ALL=1 (as in CI), when it fails.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { startServer } from "../../node/support/server.mjs";
import { ARGS, CHROMIUM, OUT, skip } from "../../node/support/chromium.mjs";


async function withPages(flags, names, { colorScheme = "light" } = {}, body) {
  assert.ok(CHROMIUM, "Chromium is required (SWITCHBOARD_REQUIRE_ALL=1) but was not found: apt-get install chromium");
  const { chromium } = await import("playwright-core");
  mkdirSync(OUT, { recursive: true });
  const server = await startServer(flags);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  try {
    const context = await browser.newContext({ viewport: { width: 960, height: 640 }, colorScheme });
    const pages = [];
    for (const name of names) {
      const page = await context.newPage();
      page.on("pageerror", (e) => assert.fail(`page error on ${name}'s page: ${e.message}`));
      page.on("dialog", (d) => assert.fail(`a dialog opened: ${d.message()}`));
      await page.goto(`${server.http}/?name=${name}`);
      await page.locator('#state[data-state="open"]').waitFor();
      pages.push(page);
    }
    await body(pages, server);
  } finally {
    await browser.close();
    await server.stop();
  }
}

test("Shift+Enter makes a new line, Enter sends; links are links and HTML stays text", { skip, timeout: 60000 }, async () => {
  await withPages(["--rate", "0"], ["ann", "ben"], {}, async ([ann, ben]) => {
    await ann.locator("#text").click();
    await ann.keyboard.type("first line");
    await ann.keyboard.press("Shift+Enter");
    await ann.keyboard.type("second line");
    assert.equal(await ann.inputValue("#text"), "first line\nsecond line", "Shift+Enter did not send");
    await ann.keyboard.press("Enter");
    const two = ben.locator("#messages li.msg .text", { hasText: "second line" });
    await two.waitFor();
    assert.equal(await two.evaluate((el) => el.innerText), "first line\nsecond line");
    assert.equal(await ann.inputValue("#text"), "", "sent and cleared");

    const text = 'see https://example.org/a?b=1. or <img src=x onerror="window.owned=1"> <a href="javascript:alert(1)">x</a>';
    await ann.fill("#text", text);
    await ann.press("#text", "Enter");
    const item = ben.locator("#messages li.msg", { hasText: "see https://example.org" });
    await item.waitFor();
    const links = await item.locator("a").evaluateAll((as) => as.map((a) => [a.getAttribute("href"), a.rel, a.target]));
    assert.deepEqual(links, [["https://example.org/a?b=1", "noopener noreferrer", "_blank"]], "one link, the http one, without the full stop");
    assert.equal(await item.locator("img").count(), 0, "no HTML from a message");
    assert.equal(await item.locator(".text").evaluate((el) => el.textContent), text, "the text, exactly");
    assert.equal(await ben.evaluate(() => window.owned), undefined);

    // A day separator before the first message of a day, and only then.
    const days = await ben.locator("#messages li.day").allTextContents();
    assert.equal(days.length, 1, `${days}`);
    assert.equal(days[0], new Date().toLocaleDateString("en-US", { weekday: "long", year: "numeric", month: "long", day: "numeric" }));
  });
});

test("the composer counts toward max_text and will not send too much", { skip, timeout: 60000 }, async () => {
  await withPages(["--rate", "0", "--max-text", "100"], ["cat"], {}, async ([cat]) => {
    await cat.fill("#text", "x".repeat(50));
    assert.equal(await cat.locator("#composer-status").textContent(), "", "far from the limit: nothing shown");
    await cat.fill("#text", "é".repeat(45)); // 90 bytes
    assert.equal(await cat.locator("#composer-status").textContent(), "90 / 100 bytes");
    assert.equal(await cat.locator("#send").isDisabled(), false);
    await cat.fill("#text", "é".repeat(51)); // 102 bytes
    assert.match(await cat.locator("#composer-status").textContent(), /^Too long: 102 of at most 100 bytes/);
    assert.equal(await cat.locator("#send").isDisabled(), true);
    await cat.press("#text", "Enter");
    assert.equal(await cat.inputValue("#text"), "é".repeat(51), "not sent, kept");
    assert.equal(await cat.locator("#messages li.msg").count(), 0);
  });
});

test("a burst of refusals is one notice that counts", { skip, timeout: 60000 }, async () => {
  await withPages(["--rate", "1", "--burst", "3"], ["dan"], {}, async ([dan]) => {
    for (let i = 0; i < 6; i++) {
      await dan.fill("#text", `flood ${i}`);
      await dan.press("#text", "Enter");
    }
    const refusals = dan.locator("#messages li.notice.error", { hasText: "rate_limited" });
    await refusals.filter({ hasText: "×" }).waitFor();
    assert.equal(await refusals.count(), 1, "one notice for the burst");
  });
});

test("dark mode follows the system", { skip, timeout: 60000 }, async () => {
  await withPages(["--rate", "0"], ["eve"], { colorScheme: "dark" }, async ([eve]) => {
    const [r, g, b] = await eve.evaluate(() => getComputedStyle(document.body).backgroundColor.match(/\d+/g).map(Number));
    assert.ok(r + g + b < 150, `a dark background: ${r},${g},${b}`);
    await eve.fill("#text", "good evening https://example.org");
    await eve.press("#text", "Enter");
    await eve.locator("#messages li.msg", { hasText: "good evening" }).waitFor();
    await eve.screenshot({ path: path.join(OUT, "dark.png") });
  });
});
