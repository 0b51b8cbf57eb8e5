// The operator's status page (/status) in headless Chromium: under a
// load of chat messages its charts move, it shows the configuration and
// the version, and a client the server does not allow gets a 404.
//   node --test clients/web/test/status.test.mjs
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


/** Clients that each broadcast `perSecond` messages a second until stopped. */
async function load(url, clients, perSecond) {
  const sockets = await Promise.all(
    Array.from({ length: clients }, (_, i) => new Promise((resolve, reject) => {
      const ws = new WebSocket(`${url}?name=load${i}`);
      ws.on("open", () => resolve(ws));
      ws.on("error", reject);
    })),
  );
  let n = 0;
  const timer = setInterval(() => {
    for (const ws of sockets) ws.send(JSON.stringify({ type: "broadcast", text: `load ${n++}` }));
  }, 1000 / perSecond);
  return () => {
    clearInterval(timer);
    for (const ws of sockets) ws.close();
  };
}

/** The chart's numbers: points drawn, the largest value, the last one. */
async function chart(page, id) {
  return page.locator(`#${id}`).evaluate((svg) => ({
    points: svg.querySelector(".first").getAttribute("points").split(" ").filter(Boolean).length,
    max: Number(svg.dataset.max),
    last: Number(svg.dataset.last),
  }));
}

test("the status page draws the load as it happens", { skip, timeout: 90000 }, async () => {
  assert.ok(CHROMIUM, "Chromium is required (SWITCHBOARD_REQUIRE_ALL=1) but was not found: apt-get install chromium");
  const { chromium } = await import("playwright-core");
  mkdirSync(OUT, { recursive: true });
  const server = await startServer(["--rate", "0", "--metrics-listen", "127.0.0.1:0"]);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  let stop = () => {};
  try {
    const page = await (await browser.newContext({ viewport: { width: 1100, height: 760 } })).newPage();
    page.on("pageerror", (e) => assert.fail(`page error: ${e.message}`));
    await page.goto(`${server.http}/status`);
    await page.locator("#state", { hasText: "live" }).waitFor();
    const quiet = await chart(page, "messages");
    assert.equal(quiet.max, 1, "nothing yet: the scale's floor");

    stop = await load(server.url, 8, 20); // 160 broadcasts/s to 8 members
    // A few seconds of it: a line that rose, not one point.
    await page.waitForFunction(() => {
      const svg = document.querySelector("#messages");
      const points = svg.querySelector(".first").getAttribute("points").split(" ").filter(Boolean);
      return Number(svg.dataset.last) > 50 && points.length >= 8;
    }, null, { timeout: 20000 });
    await page.waitForFunction(() => Number(document.querySelector("#connections").dataset.last) === 8, null, { timeout: 10000 });
    const busy = await chart(page, "messages");
    const deliveries = await chart(page, "deliveries");
    assert.ok(busy.points >= 8, `a line, not a point: ${JSON.stringify(busy)}`);
    assert.ok(busy.last > 50 && busy.last < 400, `about 160 messages/s: ${JSON.stringify(busy)}`);
    assert.ok(deliveries.last > busy.last * 4, `each to 8 members: ${JSON.stringify(deliveries)}`);
    assert.ok((await chart(page, "bytes")).last > 1000);
    assert.match(await page.locator("#config").textContent(), /^max-connections = 1024 +# default$/m);
    assert.match(await page.locator("#version").textContent(), /^version \d+\.\d+\.\d+ \(/);
    await page.locator("details").evaluate((d) => (d.open = false));
    // docs/status.png is a copy of this one.
    await page.screenshot({ path: path.join(OUT, "status.png") });

    // The load stops: messages/s falls back to 0.
    stop();
    stop = () => {};
    await page.waitForFunction(() => Number(document.querySelector("#messages").dataset.last) === 0, null, { timeout: 10000 });
  } finally {
    stop();
    await browser.close();
    await server.stop();
  }
});
