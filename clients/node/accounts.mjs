// Accounts for the Node CLI (clients/node/chat.mjs): passwords (a prompt
// that does not echo, or --password-file), the session token file
// (--token-file, written 0600), and the account and moderation commands:
//   /login NAME  /register NAME  /logout  /passwd
//   /kick NAME [REASON]  /mute NAME [SECONDS] [REASON]  /ban NAME [SECONDS] [REASON]
//   /unmute NAME  /unban NAME  /with NAME

import { existsSync, readFileSync, renameSync, unlinkSync, writeFileSync, chmodSync } from "node:fs";
import { describe } from "./describe.mjs";

/** Read a password from the terminal without echoing it: raw mode, with
 * backspace, Enter to finish and Ctrl-C (or Ctrl-D) to give up. Whatever
 * else listens to stdin (the CLI's readline) does not see the keys. */
export function readPassword(prompt, { input = process.stdin, output = process.stderr } = {}) {
  if (!input.isTTY || typeof input.setRawMode !== "function") {
    return Promise.reject(new Error("no terminal to ask for a password on: use --password-file FILE"));
  }
  output.write(prompt);
  return new Promise((resolve, reject) => {
    const others = input.listeners("data");
    input.removeAllListeners("data");
    const wasRaw = input.isRaw;
    const wasPaused = input.isPaused();
    input.setRawMode(true);
    let password = "";
    const finish = (error) => {
      input.removeListener("data", onData);
      input.setRawMode(wasRaw);
      for (const l of others) input.on("data", l);
      if (wasPaused) input.pause();
      output.write("\n");
      if (error) reject(error);
      else resolve(password);
    };
    const onData = (chunk) => {
      for (const ch of chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") return finish();
        if (ch === "\u0003" || ch === "\u0004") return finish(new Error("no password given"));
        if (ch === "\u007f" || ch === "\b") password = [...password].slice(0, -1).join("");
        else if (ch >= " ") password += ch;
      }
    };
    input.on("data", onData);
    input.resume();
  });
}

/** The password in FILE: its first line (without the line end). */
export function readPasswordFile(file) {
  return readFileSync(file, "utf8").split(/\r?\n/)[0];
}

/** The saved token, or null when there is none. */
export function readToken(file) {
  if (!file || !existsSync(file)) return null;
  return readFileSync(file, "utf8").trim() || null;
}

/** Save a token (mode 0600, replaced in one step), or delete the file. */
export function saveToken(file, token) {
  if (!file) return;
  if (!token) {
    if (existsSync(file)) unlinkSync(file);
    return;
  }
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, token + "\n", { mode: 0o600 });
  chmodSync(tmp, 0o600); // whatever the umask
  renameSync(tmp, file);
}

const clock = (ms) => new Date(ms).toTimeString().slice(0, 8);

/** `NAME [SECONDS] [REASON]` as { name, seconds, reason }. */
export function parseSanction(rest) {
  const [name = "", ...words] = rest.split(/\s+/).filter(Boolean);
  let seconds;
  if (/^\d+$/.test(words[0] || "")) seconds = Number(words.shift());
  return { name, seconds, reason: words.join(" ") };
}

/** Run an account or moderation command; false if `cmd` is not one.
 * `session` has client, emit(line), say(line) (a result in words; --json
 * prints the response instead) and password(prompt). Errors are thrown
 * (the CLI prints them). */
export async function runAccountCommand(session, cmd, rest) {
  const c = session.client;
  const [first = ""] = rest.split(/\s+/);
  switch (cmd) {
    case "/login":
    case "/register": {
      if (!first) return session.emit(`! usage: ${cmd} NAME`), true;
      const method = cmd.slice(1);
      const password = await session.password(`password for ${first}: `);
      await c.account(method, { name: first, password }); // the welcome prints "signed in as"
      return true;
    }
    case "/logout":
      await c.logout(); // then the server closes: "* signed out"
      return true;
    case "/passwd": {
      const old = await session.password("current password: ", { file: true });
      const password = await session.password("new password: ", { file: false });
      await c.passwd(old, password);
      session.say("password changed; your other sessions are signed out");
      return true;
    }
    case "/kick": {
      const { name, reason } = parseSanction(rest);
      await c.request("kick", { name, reason });
      session.say(`kicked ${name}${reason ? `: ${reason}` : ""}`);
      return true;
    }
    case "/mute":
    case "/ban": {
      const { name, seconds, reason } = parseSanction(rest);
      const params = seconds === undefined ? { name, reason } : { name, seconds, reason };
      const { until_ms: until } = (await c.request(cmd.slice(1), params)) || {};
      const verb = cmd === "/mute" ? "muted" : "banned";
      session.say(`${verb} ${name} ${until ? `until ${clock(until)}` : "until lifted"}${reason ? `: ${reason}` : ""}`);
      return true;
    }
    case "/unmute":
    case "/unban":
      await c.request(cmd.slice(1), { name: first });
      session.say(`${cmd === "/unmute" ? "unmuted" : "unbanned"} ${first}`);
      return true;
    case "/with": {
      if (!first) return session.emit("! usage: /with NAME"), true;
      const { messages, more } = await c.request("history", { with: first });
      session.say(`conversation with ${first}: ${messages.length} messages`);
      for (const m of messages) session.say("  " + describe(m));
      if (more) session.say("  (older messages not shown)");
      return true;
    }
    default:
      return false;
  }
}
