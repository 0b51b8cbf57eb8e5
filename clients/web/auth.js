// Accounts on the Switchboard page: the join form (guest, sign in,
// register), the session token kept in localStorage, the account button in
// the header (Sign in for a guest, Sign out for an account), what the page
// says when the server ends the session (kicked, banned, signed in
// elsewhere, signed out), and a moderator's actions on a user.
// app.js owns the chat; this module owns who you are.

import { closeReason } from "./switchboard.mjs";

const TOKEN_KEY = "switchboard-token";
const $ = (id) => document.getElementById(id);
const els = {
  join: $("join"), name: $("name"), password: $("password"), guest: $("join-guest"), signIn: $("sign-in"),
  register: $("register"), cancel: $("join-cancel"), status: $("auth-status"), account: $("account"),
};

/** Refusals of a sign-in, in words. */
const REFUSED = {
  bad_credentials: "Wrong name or password.",
  bad_token: "Your saved session has ended; sign in again.",
  name_taken: "That name is taken; choose another.",
  bad_name: "Names are 1-32 letters, digits, _ - .",
  weak_password: "Passwords are 8 to 1024 bytes long.",
  registration_closed: "Registration is closed on this server; ask an admin for an account.",
  banned: "This account is banned.",
  throttled: "Too many failed attempts; wait a moment and try again.",
  auth_disabled: "This server has no accounts: join as a guest.",
};

export const savedToken = () => localStorage.getItem(TOKEN_KEY);

let ui = null; // { start, current, notice, inChat, leaveChat }
let required = false; // the server said auth_required: no guests

/** Wire the form and the account button; `hooks` are app.js's. */
export function initAccounts(hooks) {
  ui = hooks;
  els.join.addEventListener("submit", (ev) => {
    ev.preventDefault();
    submit(ev.submitter?.value || "guest");
  });
  // Enter in the password box signs in (the form's default is the guest button).
  els.password.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter") return;
    ev.preventDefault();
    if (els.join.reportValidity()) submit("login");
  });
  els.cancel.addEventListener("click", () => hideForm());
  els.account.addEventListener("click", () => {
    const client = ui.current();
    if (client && client.guest) showForm("", "", { upgrade: true });
    else if (client) signOut(client);
  });
}

/** Show the join form: `text` in its status line; `upgrade`: a guest
 * already chatting signs in on the same connection (no guest button). */
export function showForm(text = "", kind = "", { upgrade = false } = {}) {
  const noGuest = required || upgrade;
  els.guest.hidden = noGuest;
  els.guest.disabled = noGuest; // Enter in the name box then does nothing
  els.cancel.hidden = !upgrade;
  els.join.dataset.mode = upgrade ? "upgrade" : required ? "required" : "optional";
  status(text, kind);
  els.join.hidden = false;
  (els.name.value ? els.password : els.name).focus();
}

function hideForm() {
  els.join.hidden = true;
  els.password.value = "";
  status("");
}

function status(text, kind = "") {
  els.status.textContent = text;
  els.status.className = `auth-status ${kind}`.trim();
}

function submit(action) {
  const name = els.name.value.trim();
  const password = els.password.value;
  if (action === "guest") {
    if (!required) ui.start({ name });
    return;
  }
  if (!password) {
    status("Type your password to sign in or register.", "error");
    els.password.focus();
    return;
  }
  status(action === "register" ? "Registering…" : "Signing in…");
  const client = ui.current();
  // A connection waiting to be signed in, or a guest chatting: use it.
  if (client && (client.state === "signin" || (client.state === "open" && client.guest))) {
    client.account(action, { name, password }).catch(() => {}); // refusals come as "autherror"
  } else {
    ui.start({ signIn: { method: action, name, password } });
  }
}

async function signOut(client) {
  els.account.disabled = true;
  try {
    await client.logout(); // the server then closes with 1000 "signed out"
  } catch (e) {
    ui.notice(`Could not sign out: ${e.message}`, "error");
  } finally {
    els.account.disabled = false;
  }
}

/** Follow a new client's account events. */
export function attach(client) {
  const mine = (fn) => (value) => client === ui.current() && fn(value);
  client.on("token", mine((token) => {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  }));
  client.on("auth_required", mine(() => {
    required = true;
    if (!ui.inChat() && !client.token && !client.authPending) showForm("This server requires an account: sign in or register.");
  }));
  client.on("autherror", mine(({ code, message }) => {
    const text = REFUSED[code] || `${code}: ${message}`;
    if (ui.inChat()) {
      showForm(text, "error", { upgrade: true });
      return;
    }
    // Not chatting yet: a refused sign-in does not drop us in as a guest.
    if (client.state !== "signin") ui.stop();
    showForm(text, "error");
  }));
  client.on("state", mine(({ state, detail }) => {
    if (state !== "closed" || !detail?.final) return;
    const why = closeReason(detail.code, detail.reason);
    if (detail.code === 1000) {
      // Signed out (or the account deleted): back to the form, as nobody.
      ui.leaveChat();
      showForm(`${why[0].toUpperCase()}${why.slice(1)}. Join again below.`);
    } else if (detail.code === 4001) {
      ui.stop();
      showForm("Sign-in took too long; the server closed the connection. Try again.", "error");
    } else {
      const after = detail.code === 4002 ? "reload to take it back here" : "reload the page to try again";
      ui.notice(`Disconnected: ${why}. This page will not reconnect; ${after}.`, "error");
      els.account.hidden = true;
    }
  }));
}

/** A welcome: the form goes; the header says who you are. */
export function welcomed(w) {
  hideForm();
  els.account.hidden = false;
  els.account.disabled = false;
  els.account.textContent = w.guest === false ? "Sign out" : "Sign in";
  if (w.auth === "required") required = true;
  if (w.auth === "none") els.account.hidden = true;
  if (w.guest !== false) localStorage.setItem("switchboard-name", w.name);
  else els.name.value = w.name;
}

/** Who you are, for the header. */
export function identity(w) {
  if (w.guest !== false) return `you are ${w.name} (guest)`;
  const roles = (w.roles || []).filter((r) => r !== "user");
  return `signed in as ${w.name}${roles.length ? ` (${roles.join(", ")})` : ""}`;
}

/** A moderator's buttons for another user's entry: kick, mute, ban. Each
 * asks for a reason; mute lasts 10 minutes, a ban until lifted. */
export function moderationButtons(client, name) {
  if (!client?.moderator || name === client.name) return null;
  const box = document.createElement("span");
  box.className = "mod";
  const actions = [
    ["kick", "Kick", {}],
    ["mute", "Mute", { seconds: 600 }],
    ["ban", "Ban", {}],
  ];
  for (const [method, label, extra] of actions) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "small";
    b.dataset.action = method;
    b.textContent = label;
    b.title = `${label} ${name}`;
    b.addEventListener("click", async (ev) => {
      ev.stopPropagation(); // not a click on the name (which chooses the target)
      const reason = prompt(`${label} ${name}: reason?`, "");
      if (reason === null) return;
      try {
        const result = await client.request(method, { name, reason, ...extra });
        const until = result?.until_ms ? ` until ${new Date(result.until_ms).toLocaleTimeString()}` : "";
        ui.notice(`${label === "Ban" ? "Banned" : label === "Mute" ? "Muted" : "Kicked"} ${name}${until}${reason ? `: ${reason}` : ""}.`);
      } catch (e) {
        ui.notice(`${label} ${name} failed: ${e.message}`, "error");
      }
    });
    box.append(b);
  }
  return box;
}
