// Accounts in the shared module and the Node CLI, against the real server
// (an account database in a scratch directory; a moderator made with the
// server's own `switchboard user add`).
//   node --test clients/node/test/

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import WebSocket from "ws";
import { SwitchboardClient, ResponseError, closeReason, isFinalClose } from "../../web/switchboard.mjs";
import { parseSanction } from "../accounts.mjs";
import { startServer, scratch, addUser, ROOT } from "../support/server.mjs";
import { next } from "../support/events.mjs";

const PASSWORD = "correct horse battery";
let server;
let tmp;
let passwordFile;
before(async () => {
  tmp = scratch("sb-js-accounts-");
  passwordFile = tmp.file("password", `${PASSWORD}\n`);
  addUser(tmp.db, "js-mod", passwordFile, "moderator");
  server = await startServer(["--rate", "0", "--db", tmp.db, "--auth", "optional"]);
});
after(async () => {
  await server?.stop();
  tmp?.remove();
});

/** A client (no reconnect) once `event` came; `options` as for the client. */
async function open(options = {}, event = "welcome", ms = 10000) {
  const client = new SwitchboardClient(server.url, { WebSocket, reconnect: false, ...options });
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    client.on(event, (v) => (clearTimeout(timer), resolve(v)));
  });
  client.connect();
  await ready;
  return client;
}


/** Run the CLI to its end; resolves to { code, out, err }. */
function cli(args, input) {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [path.join(ROOT, "clients/node/chat.mjs"), server.url, ...args], { timeout: 60000 });
    let out = "";
    let err = "";
    proc.stdout.on("data", (d) => (out += d));
    proc.stderr.on("data", (d) => (err += d));
    proc.on("exit", (code) => resolve({ code, out, err, proc }));
    if (input !== undefined) proc.stdin.end(input);
  });
}

test("close codes: which end the session, and how they are said", () => {
  for (const code of [1000, 4000, 4001, 4002, 4003]) assert.ok(isFinalClose(code), code);
  for (const code of [1001, 1006, 1008, 1011]) assert.ok(!isFinalClose(code), code);
  assert.equal(closeReason(4000, "spamming"), "removed by a moderator: spamming");
  assert.equal(closeReason(4003, "banned: spam"), "banned: spam");
  assert.match(closeReason(4002, "signed in elsewhere"), /^signed in elsewhere/);
  assert.equal(closeReason(1000, "signed out"), "signed out");
  assert.equal(closeReason(1006, ""), null);
  assert.deepEqual(parseSanction("bob 60 too loud"), { name: "bob", seconds: 60, reason: "too loud" });
  assert.deepEqual(parseSanction("bob spam"), { name: "bob", seconds: undefined, reason: "spam" });
});

test("register, then the token file signs in on the next run as the same name", async () => {
  const tokenFile = path.join(tmp.dir, "js-reg.token");
  const first = await cli([
    "--user", "js-reg", "--password-file", passwordFile, "--register", "--token-file", tokenFile,
    "--send", "/users", "--expect", "signed in as js-reg (user)", "--expect", "users: ",
  ]);
  assert.equal(first.code, 0, first.out + first.err);
  assert.ok(existsSync(tokenFile), first.out);
  assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
  const token = readFileSync(tokenFile, "utf8").trim();
  assert.ok(token.length > 0);

  // No password this time: the token alone signs in.
  const again = await cli(["--token-file", tokenFile, "--send", "/users", "--expect", "signed in as js-reg (user)"]);
  assert.equal(again.code, 0, again.out + again.err);
  assert.doesNotMatch(again.out, /connected as|could not be used/);

  // The module: `auth` first, and the account's welcome is the only one.
  const welcomes = [];
  const client = await open({ token, name: "ignored" });
  client.on("welcome", (w) => welcomes.push(w));
  assert.equal(client.welcome.name, "js-reg");
  assert.equal(client.guest, false);
  assert.deepEqual(client.roles, ["user"]);
  const me = await client.request("whoami");
  assert.deepEqual([me.name, me.guest], ["js-reg", false]);
  client.close();
  assert.deepEqual(welcomes, []);

  // A token that is no longer good is dropped from the file.
  const badFile = tmp.file("bad.token", "not-a-token\n");
  const bad = await cli(["--token-file", badFile, "--name", "js-after-bad", "--expect", "connected as js-after-bad"]);
  assert.equal(bad.code, 0, bad.out + bad.err);
  assert.match(bad.out, /bad_token/);
  assert.ok(!existsSync(badFile), "the refused token file is deleted");
});

test("a wrong password is bad_credentials", async () => {
  const wrong = tmp.file("wrong", "not the password\n");
  const r = await cli(["--user", "js-mod", "--password-file", wrong, "--expect", "signed in"]);
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(r.err, /sign-in failed: bad_credentials/);
  assert.doesNotMatch(r.err, /at .*\.mjs/, "no stack trace");

  // The module: the request rejects, "autherror" says so, and the
  // connection goes on as the guest it was.
  const guest = await open({ name: "js-wrong" });
  const said = next(guest, "autherror");
  await assert.rejects(guest.login("js-nobody-at-all", PASSWORD), (e) => e instanceof ResponseError && e.code === "bad_credentials");
  assert.equal((await said).code, "bad_credentials");
  assert.equal(guest.guest, true);
  assert.equal((await guest.request("whoami")).name, "js-wrong");
  guest.close();
});

test("a private message to an offline account waits and arrives, marked late, at its next sign-in", async () => {
  const bob = await open({ signIn: { method: "register", name: "js-late", password: PASSWORD } });
  assert.equal(bob.welcome.name, "js-late");
  bob.close();
  const sender = await open({ name: "js-sender" });
  for (let i = 0; i < 100 && (await sender.request("users")).users.includes("js-late"); i++) {
    await new Promise((r) => setTimeout(r, 50)); // bob's leave has been handled
  }
  const id = sender.direct("js-late", "call me when you are back");
  const ack = await next(sender, "*", (m) => (m.type === "ack" || m.type === "error") && m.id === id);
  assert.equal(ack.type, "ack", JSON.stringify(ack));
  assert.deepEqual(ack.stored, ["js-late"], JSON.stringify(ack));
  sender.close();

  const r = await cli([
    "--user", "js-late", "--password-file", passwordFile, "--send", "/with js-sender",
    "--expect", "(delivered late) js-sender -> js-late: call me when you are back",
    "--expect", "conversation with js-sender: 1 messages",
  ]);
  assert.equal(r.code, 0, r.out + r.err);
  assert.equal(r.out.split("(delivered late)").length - 1, 1, r.out);
  // Delivered once: it no longer waits.
  const again = await cli(["--user", "js-late", "--password-file", passwordFile, "--expect", "signed in as js-late"]);
  assert.equal(again.code, 0, again.out + again.err);
  assert.doesNotMatch(again.out, /delivered late/);
});

test("a kicked CLI says why and does not reconnect", { timeout: 60000 }, async () => {
  const proc = spawn(process.execPath, [
    path.join(ROOT, "clients/node/chat.mjs"), server.url, "--user", "js-kicked", "--register", "--password-file", passwordFile,
  ], { timeout: 50000 });
  let out = "";
  let err = "";
  const waiters = new Set();
  proc.stdout.on("data", (d) => ((out += d), waiters.forEach((w) => w())));
  proc.stderr.on("data", (d) => (err += d));
  const exited = new Promise((r) => proc.on("exit", (code) => r(code)));
  const waitFor = (re, ms = 15000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => (waiters.delete(check), reject(new Error(`no ${re} within ${ms} ms:\n${out}\n${err}`))), ms);
      const check = () => re.test(out) && (clearTimeout(timer), waiters.delete(check), resolve());
      waiters.add(check);
      check();
    });
  let mod;
  try {
    await waitFor(/signed in as js-kicked/);
    mod = await open({ signIn: { method: "login", name: "js-mod", password: PASSWORD } });
    assert.equal(mod.moderator, true);
    assert.ok((await mod.request("users")).users.includes("js-kicked"));
    const left = next(mod, "presence", (p) => p.event === "leave" && p.name === "js-kicked");
    assert.deepEqual(await mod.request("kick", { name: "js-kicked", reason: "spamming" }), {});
    await waitFor(/^\* removed by a moderator: spamming$/m);
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("still running"), 15000))]);
    assert.equal(code, 1, `${out}\n${err}`);
    assert.doesNotMatch(out, /reconnect/);
    assert.match((await left).reason || "", /spamming/);
    await new Promise((r) => setTimeout(r, 1500)); // a reconnect would be back by now
    assert.ok(!(await mod.request("users")).users.includes("js-kicked"));
  } finally {
    proc.kill();
    mod?.close();
  }
});
