// Headless Chromium for the page's tests: Debian's `chromium`, driven by
// playwright-core with executablePath. Without it a test is skipped with
// a message, unless SWITCHBOARD_REQUIRE_ALL=1 (as in CI), when it fails.

import { existsSync } from "node:fs";
import path from "node:path";
import { ROOT } from "./server.mjs";

export const CHROMIUM = [process.env.CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => p && existsSync(p));
export const REQUIRED = process.env.SWITCHBOARD_REQUIRE_ALL === "1";
/** Where the tests leave their screenshots. */
export const OUT = path.join(ROOT, "test-output", "browser");
/** Flags for a closed network: without the background-networking ones
 * Chromium keeps trying to reach Google's hosts. */
export const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
/** `skip` for node:test: false, or why the test cannot run here. */
export const skip = !CHROMIUM && !REQUIRED ? "Chromium not found (apt-get install chromium, or set CHROMIUM=/path)" : false;
