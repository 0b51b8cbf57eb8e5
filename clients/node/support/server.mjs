// Start the real Switchboard binary on a free loopback port, for tests.
// The binary is $SWITCHBOARD_BIN, or target/debug/switchboard (built with
// `cargo build` if missing).

import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

export function serverBinary() {
  const bin = process.env.SWITCHBOARD_BIN || path.join(ROOT, "target/debug/switchboard");
  if (!existsSync(bin)) execFileSync("cargo", ["build", "--quiet"], { cwd: ROOT, stdio: "inherit" });
  return bin;
}

/** Start a server; resolves to { addr, url, http, stop() }. `listen` may
 * name a fixed address (to restart on the same port). Without `--db` in
 * `flags` it keeps nothing on disk (`--db :memory:`). */
export function startServer(flags = [], listen = "127.0.0.1:0") {
  const db = flags.includes("--db") ? [] : ["--db", ":memory:"];
  // Clients told of a restart come back within a second, not ten.
  if (!flags.includes("--restart-spread")) db.push("--restart-spread", "1s");
  return new Promise((resolve, reject) => {
    const proc = spawn(serverBinary(), ["--listen", listen, "--log-level", "info", ...db, ...flags], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`server did not start: ${log}`));
    }, 10000);
    proc.stderr.on("data", (chunk) => {
      log += chunk;
      const m = /listening on (\S+)/.exec(log);
      if (m && timer) {
        clearTimeout(timer);
        const addr = m[1];
        resolve({
          addr,
          url: `ws://${addr}/chat`,
          http: `http://${addr}`,
          proc,
          stop: () =>
            new Promise((done) => {
              if (proc.exitCode !== null) return done();
              proc.once("exit", done);
              proc.kill("SIGTERM");
            }),
          kill: () =>
            new Promise((done) => {
              if (proc.exitCode !== null) return done();
              proc.once("exit", done);
              proc.kill("SIGKILL");
            }),
        });
      }
    });
    proc.on("error", reject);
  });
}

/** A scratch directory for an accounts test: { dir, db (a database file
 * path), file(name, text) (writes a file, returns its path), remove() }. */
export function scratch(prefix = "sb-accounts-") {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    dir,
    db: path.join(dir, "chat.db"),
    file: (name, text) => {
      const p = path.join(dir, name);
      writeFileSync(p, text, { mode: 0o600 });
      return p;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Create an account with the server's own command:
 * `switchboard user add NAME --password-file FILE --role ROLE --db DB`. */
export function addUser(db, name, passwordFile, role = "user") {
  execFileSync(serverBinary(), ["user", "add", name, "--password-file", passwordFile, "--role", role, "--db", db], {
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 30000,
  });
}

/** A throwaway CA and a certificate it signed for 127.0.0.1, made now with
 * the openssl command: { dir, ca, cert, key } paths. */
export function makePki() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sb-tls-"));
  const run = (...args) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  run("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=switchboard test CA");
  run("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
  writeFileSync(path.join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
    "-out", "server.crt", "-days", "1", "-extfile", "san.ext");
  return { dir, ca: path.join(dir, "ca.crt"), cert: path.join(dir, "server.crt"), key: path.join(dir, "server.key") };
}
