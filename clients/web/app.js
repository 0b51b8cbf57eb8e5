// The Switchboard browser page: the UI around clients/web/switchboard.mjs,
// which does all the protocol work (and is shared with the Node client).

import { SwitchboardClient } from "./switchboard.mjs";
import { attach, identity, initAccounts, moderationButtons, savedToken, showForm, welcomed } from "./auth.js";
import {
  add, has, initConversations, isCatchingUp, labelOf, newEra, note, open, refresh, renderList, reset, setCatchingUp,
} from "./conversations.js";
import { closeSearch, initSearch, searchTopic } from "./search.js";
import { closeDrawer, initSidebar, pickBox, refreshTopics, renderPicked } from "./sidebar.js";
import { arrived, initNotify } from "./notify.js";

const $ = (id) => document.getElementById(id);
const els = {
  state: $("state"), me: $("me"), join: $("join"), name: $("name"), chat: $("chat"), account: $("account"),
  users: $("users"), userCount: $("user-count"), topics: $("topics"), topicForm: $("topic-form"),
  topicInput: $("topic-input"), messages: $("messages"), composer: $("composer"), target: $("target"),
  text: $("text"), searchForm: $("search-form"), searchInput: $("search-input"), searchPanel: $("search-panel"),
  searchTitle: $("search-title"), searchResults: $("search-results"), searchStatus: $("search-status"),
  searchMore: $("search-more"), searchClose: $("search-close"), send: $("send"), composerStatus: $("composer-status"),
};

const users = new Set();
const registered = new Set(); // the connected users that are accounts
const accounts = new Set(); // every account seen: a private message to one waits while they are away
let client = null;
// Where the composer sends: "*", "#topic" or "@name". Only the user changes
// it (or the person it names renaming). If that person leaves, or the topic
// is left, it stays chosen, marked "(left)", and sending is refused with a
// notice: a private message is never silently broadcast instead.
let target = "*";

const STATE_TEXT = {
  idle: "not connected",
  connecting: "connecting…",
  open: "connected",
  reconnecting: "reconnecting…",
  signin: "sign in to chat",
  closed: "disconnected",
};

/** A line from the page in the open conversation (or in `key`'s). */
function notice(text, kind = "", key = undefined) {
  return note(text, kind, key);
}

/** News about a person: in the room, and in your conversation with them. */
function aboutPerson(name, text) {
  notice(text, "", "*");
  const key = `@${name}`;
  if (has(key) && key !== "*") notice(text, "", key);
}

function renderUsers() {
  els.users.replaceChildren();
  const me = client?.name;
  for (const name of [...users].sort((a, b) => a.localeCompare(b))) {
    const li = document.createElement("li");
    li.textContent = name;
    li.dataset.name = name;
    const mark = document.createElement("span");
    if (registered.has(name)) {
      li.classList.add("registered");
      mark.className = "mark";
      mark.textContent = "✓";
      mark.title = "registered account";
    } else {
      li.classList.add("guest");
      mark.className = "guest-mark";
      mark.textContent = "guest";
      mark.title = "a guest: the name is not an account";
    }
    li.append(mark);
    if (name === me) li.classList.add("self");
    else {
      li.addEventListener("click", () => setTarget(`@${name}`));
      li.tabIndex = 0;
      li.addEventListener("keydown", (ev) => {
        if (ev.key !== "Enter") return;
        ev.preventDefault(); // or the Enter would also land in the message box
        setTarget(`@${name}`);
      });
      li.prepend(pickBox(name));
    }
    const mod = moderationButtons(client, name);
    if (mod) li.append(mod);
    if (target === `@${name}`) li.classList.add("selected");
    els.users.append(li);
  }
  els.userCount.textContent = `(${users.size})`;
  renderPicked(users);
  renderTargets();
}

function renderTopics() {
  els.topics.replaceChildren();
  for (const topic of [...client.topics].sort()) {
    const li = document.createElement("li");
    li.dataset.topic = topic;
    const name = document.createElement("span");
    name.textContent = `#${topic}`;
    const leave = document.createElement("button");
    leave.className = "small";
    leave.type = "button";
    leave.textContent = "leave";
    leave.setAttribute("aria-label", `leave #${topic}`);
    leave.addEventListener("click", () => {
      client.unsubscribe(topic);
      renderTopics();
      setTimeout(refreshTopics, 300);
    });
    li.append(name, leave);
    els.topics.append(li);
  }
  renderList(client.topics);
  renderTargets();
}

/** The composer's "send to" list: everyone, each topic, each other user,
 * and the chosen target even when it is gone (marked, never replaced). */
function renderTargets() {
  const options = [["*", "Everyone"]];
  for (const t of [...(client?.topics || [])].sort()) options.push([`#${t}`, `#${t}`]);
  for (const u of [...users].sort((a, b) => a.localeCompare(b))) {
    if (u !== client?.name) options.push([`@${u}`, `@${u}`]);
  }
  if (target.includes(",")) options.push([target, `@${labelOf(target)}`]);
  else if (!options.some(([v]) => v === target)) options.push([target, `${target} (left)`]);
  els.target.replaceChildren(
    ...options.map(([value, label]) => {
      const o = document.createElement("option");
      o.value = value;
      o.textContent = label;
      return o;
    }),
  );
  els.target.value = target;
  const topic = searchTopic();
  els.searchInput.placeholder = topic ? `Search #${topic}` : "Search all messages";
}

/** Open a conversation: it is shown, and the composer sends there. */
function setTarget(value) {
  target = value;
  open(value);
  renderTargets();
  for (const li of els.users.children) li.classList.toggle("selected", `@${li.dataset.name}` === value);
  closeDrawer();
  els.text.focus();
}

/** Why a message to the chosen target cannot be sent now, or null. */
function unreachable() {
  const name = target.slice(1);
  if (target.startsWith("@") && name.includes(",")) {
    // Several people: sent if any of them can get it (the ack names the others).
    const names = name.split(",");
    if (!names.some((n) => users.has(n) || accounts.has(n))) return `${names.join(", ")} have all left`;
    return null;
  }
  // An account that is away gets it when it next signs in (the ack says so).
  if (target.startsWith("@") && !users.has(name) && !accounts.has(name)) return `${name} has left; choose someone else, or wait until ${name} is back`;
  if (target.startsWith("#") && !client.topics.has(name)) return `you left ${target}; subscribe again, or choose another target`;
  return null;
}

/** Connect: as a guest asking for `name`, with a saved session `token`,
 * or signing in (`signIn`: { method, name, password }). The chat shows once
 * welcomed. */
function start({ name = null, token = null, signIn = null } = {}) {
  stop();
  // Relative to the page, so it works under a sub-path behind a proxy
  // (https://example.org/chat/ -> wss://example.org/chat/chat).
  const url = new URL("chat", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.search = "";
  url.hash = "";
  const c = new SwitchboardClient(url.href, { name, token, signIn });
  client = c;
  window.switchboard = c; // for the curious, in the console
  const on = (event, fn) => c.on(event, (value) => c === client && fn(value));
  let wasGuest = true;

  // One indicator, not a notice per attempt: it says what is going on.
  on("state", ({ state, detail }) => {
    if (state === "open" && detail?.again) setCatchingUp(true); // until "caughtup"
    els.state.dataset.state = state;
    els.state.textContent = STATE_TEXT[state] || state;
    if (state === "reconnecting" && detail?.delay !== undefined) {
      const why = detail.restart ? "server restarting" : "connection lost";
      els.state.textContent = `${why}; reconnecting in ${Math.ceil(detail.delay / 1000)} s…`;
    }
    renderComposer();
  });
  on("welcome", (w) => {
    users.clear();
    registered.clear();
    for (const u of w.users) users.add(u);
    for (const u of w.registered || []) registered.add(u), accounts.add(u);
    els.me.textContent = identity(w);
    if (w.guest !== false && name && w.name !== name) notice(`${name} was taken or invalid; you are ${w.name}.`);
    if (w.guest === false && wasGuest) notice(`Signed in as ${w.name}.`);
    wasGuest = w.guest !== false;
    welcomed(w);
    els.chat.hidden = false;
    els.searchForm.hidden = false;
    renderUsers();
    renderTopics();
    refreshTopics();
    refresh({ signedIn: w.guest === false });
  });
  on("topics", renderTopics);
  on("message", (m) => {
    add(m);
    arrived(m, m.replayed && isCatchingUp()); // missed while away: still news
  });
  on("caughtup", () => setCatchingUp(false));
  on("ack", (a) => {
    if (a.stored?.length) notice(`${a.stored.join(", ")} ${a.stored.length > 1 ? "are" : "is"} away: they get it when they next sign in.`);
  });
  on("presence", (p) => {
    if (p.event === "join") users.add(p.name);
    if (p.event === "leave") users.delete(p.name), registered.delete(p.name);
    if (p.event === "rename") {
      users.delete(p.old);
      registered.delete(p.old);
      users.add(p.name);
      if (target === `@${p.old}`) target = `@${p.name}`; // the same person
    }
    if (p.registered && p.event !== "leave") registered.add(p.name), accounts.add(p.name);
    if (p.event === "rename" && p.registered) aboutPerson(p.name, p.old === p.name ? `${p.name} signed in` : `${p.old} signed in as ${p.name}`);
    else if (p.event === "rename") aboutPerson(p.old, `${p.old} is now ${p.name}`);
    else if (p.event === "join") aboutPerson(p.name, `${p.name} joined`);
    else aboutPerson(p.name, `${p.name} left${p.reason ? ` (${p.reason})` : ""}`);
    if (p.event === "leave" && target === `@${p.name}`) {
      notice(accounts.has(p.name)
        ? `${p.name} is away; messages to ${p.name} wait until ${p.name} signs in again.`
        : `Messages to ${p.name} will not be sent until ${p.name} is back.`);
    }
    renderUsers();
  });
  on("error", serverError);
  on("gap", (g) => {
    if (g.restarted) newEra();
    notice(`Some messages may be missing: ${g.reason}.`, "error", "*");
  });
  attach(c); // after the handlers above: a final close shows "disconnected" first
  c.connect();
}

// A burst of refusals (rate_limited while typing fast) is one notice that
// counts, not one notice per message.
let lastError = null; // { code, li, count, at }

function serverError(e) {
  // The client's own bookkeeping failing (the connection closed while it
  // caught up): the connection indicator already says what matters.
  if (e.code === "client") return;
  const now = Date.now();
  if (lastError && lastError.code === e.code && now - lastError.at < 5000 && lastError.li.isConnected) {
    lastError.count += 1;
    lastError.at = now;
    lastError.li.textContent = `Server: ${e.message} (${e.code}) ×${lastError.count}`;
    return;
  }
  const li = notice(`Server: ${e.message} (${e.code})`, "error");
  lastError = li && { code: e.code, li, count: 1, at: now };
}

/** The longest text the server takes, in bytes (its welcome says). */
function maxText() {
  return client?.welcome?.limits?.max_text || 4096;
}

/** Whether and why the composer cannot send now: shown under it, and the
 * Send button follows. The text is kept whatever happens. */
function renderComposer() {
  const bytes = new TextEncoder().encode(els.text.value).length;
  const max = maxText();
  let why = "";
  if (!client || client.state !== "open") why = "Offline: your message will wait here until the connection is back.";
  else if (bytes > max) why = `Too long: ${bytes} of at most ${max} bytes.`;
  const near = bytes > max * 0.8;
  els.composerStatus.textContent = why || (near ? `${bytes} / ${max} bytes` : "");
  // A reason is announced; the count, changing with every key, is not.
  els.composerStatus.setAttribute("aria-live", why ? "polite" : "off");
  els.composerStatus.classList.toggle("error", Boolean(why) || bytes > max);
  els.send.disabled = Boolean(why);
}

/** Drop the current connection for good (no events from it any more). */
function stop() {
  const c = client;
  client = null;
  if (c) c.close();
}

/** Back to the form after signing out: the chat is put away. */
function leaveChat() {
  stop();
  els.chat.hidden = true;
  els.searchForm.hidden = true;
  els.account.hidden = true;
  els.me.textContent = "";
  reset();
  closeSearch();
  users.clear();
  registered.clear();
  target = "*";
  renderComposer();
}

initAccounts({ start, stop, leaveChat, notice, current: () => client, inChat: () => !els.chat.hidden });
initSearch({ els, client: () => client, target: () => target });
initConversations({ client: () => client, me: () => client?.name, choose: (key) => setTarget(key) });
const subscribe = (topic) => {
  client.subscribe(topic);
  renderTopics();
};
const renamed = (name) => {
  els.me.textContent = identity({ ...client.welcome, name });
  renderUsers();
};
initSidebar({ client: () => client, notice, setTarget, subscribe, renamed });
initNotify({ me: () => client?.name, notice });

els.topicForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const topic = els.topicInput.value.trim();
  if (!topic) return;
  subscribe(topic);
  els.topicInput.value = "";
  setTimeout(refreshTopics, 300);
});

els.target.addEventListener("change", () => setTarget(els.target.value));

els.text.addEventListener("input", () => {
  renderComposer();
  // Grow with the text, up to about six lines.
  els.text.style.height = "auto";
  els.text.style.height = `${Math.min(els.text.scrollHeight, 160)}px`;
});
// Enter sends, Shift+Enter is a new line (not while an input method is
// composing a character).
els.text.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    els.composer.requestSubmit();
  }
});

els.composer.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = els.text.value;
  if (!text.trim() || els.send.disabled) return;
  const why = unreachable();
  if (why) {
    // Keep the text, and never send it anywhere else.
    notice(`Not sent: ${why}.`, "error");
    return;
  }
  try {
    if (target.startsWith("@") && target.includes(",")) client.multicast(target.slice(1).split(","), text);
    else if (target.startsWith("@")) client.direct(target.slice(1), text);
    else if (target.startsWith("#")) client.publish(target.slice(1), text);
    else client.broadcast(text);
    els.text.value = "";
    els.text.style.height = "auto";
    renderComposer();
  } catch (e) {
    notice(`Not sent: ${e.message}`, "error");
  }
});

// A saved session signs in at once; ?name=alice joins at once as a guest;
// otherwise ask (remembering the last name).
const params = new URLSearchParams(location.search);
if (savedToken()) start({ token: savedToken() });
else if (params.get("name")) start({ name: params.get("name") });
else {
  els.name.value = localStorage.getItem("switchboard-name") || "";
  showForm();
}
