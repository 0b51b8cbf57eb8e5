// Conversations: the room (broadcasts), each topic, and each private
// conversation (one person, or the same few people) is its own view with
// its own history. The sidebar lists them with unread counts; opening one
// shows a line at its first unread message; the tab's title counts what
// is unread. Scrolling to the top loads older messages (`history`
// `before`) until the start.
//
//   key: "*" the room · "#news" a topic · "@bob" · "@bob,carol" (sorted,
//   without you): the same key is where the composer sends.

import { dayOf, messageItem } from "./render.js";

const $ = (id) => document.getElementById(id);
const els = { list: $("conversations"), messages: $("messages"), title: $("conv-title") };
const TITLE = document.title;
/** Items kept per conversation (older ones can be loaded again). */
const KEEP = 1000;

let ui = null; // { client(), me(), choose(key) }
const convs = new Map();
let active = "*";
// The history's numbering: a server that lost its history numbers from 1
// again, so messages of different eras are not compared by seq.
let era = 0;
// Catching up after a reconnect: the messages fetched were missed, so they
// count as unread (the history shown on joining does not).
let catchingUp = false;
// Adding a page of history: one redraw at the end, not one per message.
let batch = false;

/** Topics are one whatever their capitals (the server's rule). */
function norm(key) {
  return key.startsWith("#") ? key.toLowerCase() : key;
}

/** One conversation: its items (messages and notices, oldest first), what
 * is unread, and how far back its history has been loaded. */
function conv(key) {
  key = norm(key);
  let c = convs.get(key);
  if (!c) {
    // The room's recent history comes with joining (the client asks for it).
    const loaded = key === "*";
    c = { key, items: [], seqs: new Set(), unread: 0, firstUnread: null, marker: null, oldest: null, complete: false, loaded, loading: false };
    convs.set(key, c);
  }
  return c;
}

export function initConversations(hooks) {
  ui = hooks;
  els.messages.addEventListener("scroll", () => {
    if (els.messages.scrollTop < 40) loadOlder(conv(active));
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) seen();
  });
  window.addEventListener("focus", seen);
}

/** Where a message belongs. */
export function keyOf(m) {
  const me = ui.me();
  if (m.kind === "broadcast") return "*";
  if (m.kind === "publish") return `#${m.topic.toLowerCase()}`;
  const people = new Set(m.kind === "direct" ? [m.from, m.to] : [m.from, ...m.to]);
  people.delete(me);
  if (people.size === 0) people.add(me); // a note to yourself
  return `@${[...people].sort((a, b) => a.localeCompare(b)).join(",")}`;
}

/** A conversation's name for people. */
export function labelOf(key) {
  if (key === "*") return "Everyone";
  if (key.startsWith("#")) return key;
  return key.slice(1).split(",").join(", ");
}

/** A message arrived (live, or `replayed`): into its conversation. */
export function add(m) {
  const key = keyOf(m);
  const created = !has(key);
  const c = conv(key);
  if (c.seqs.has(m.seq)) return key;
  c.seqs.add(m.seq);
  // A live message goes at the end: only older ones (history) are placed.
  const last = c.items.findLast((item) => item.m);
  const newest = !last || last.era !== era || last.m.seq < m.seq;
  const at = newest ? -1 : c.items.findIndex((item) => item.m && item.era === era && item.m.seq > m.seq);
  const item = { m, era };
  if (at < 0) c.items.push(item);
  else c.items.splice(at, 0, item);
  if (c.oldest === null || m.seq < c.oldest) c.oldest = m.seq;
  trim(c);
  const mine = m.from === ui.me();
  const looking = key === active && !document.hidden;
  const counted = (!m.replayed || catchingUp) && !mine && !looking;
  if (counted) {
    c.unread += 1;
    if (c.firstUnread === null) c.firstUnread = m.seq;
  }
  if (key === active && !batch) {
    if (at < 0) appendItem(item, c);
    else render();
  }
  // The sidebar changes only with a new conversation or a new unread one.
  if (!batch && (created || counted)) renderList();
  return key;
}

/** The server lost its history and numbers from scratch: what is shown
 * stays, but new numbers are new messages. */
export function newEra() {
  era += 1;
  for (const c of convs.values()) {
    c.seqs.clear();
    c.oldest = null;
    c.complete = true; // what came before cannot be asked for any more
  }
}

/** A line from the page (not a message) in a conversation, the open one
 * unless `key` says which. */
export function note(text, kind = "", key = active) {
  key = norm(key);
  const c = conv(key);
  const item = { text, kind };
  c.items.push(item);
  trim(c);
  if (key === active) appendItem(item, c);
  return key === active ? els.messages.lastElementChild : null;
}

/** Is there a conversation with this key yet? */
export function has(key) {
  return convs.has(norm(key));
}

/** Between a reconnect and its catch-up, fetched messages were missed. */
export function setCatchingUp(on) {
  catchingUp = on;
}

export function isCatchingUp() {
  return catchingUp;
}

/** Signed in: private conversations may now have history on the server;
 * and the open view loads what it could not load before. */
export function refresh({ signedIn = false } = {}) {
  if (signedIn) {
    for (const c of convs.values()) {
      if (c.key.startsWith("@")) {
        c.loaded = false;
        c.complete = false;
      }
    }
  }
  const c = conv(active);
  if (!c.loaded) loadRecent(c);
}

/** Show `key`'s conversation; what was unread is marked, then read. */
export function open(key) {
  key = norm(key);
  if (key !== active) conv(active).marker = null; // read: its line goes
  const c = conv(key);
  active = key;
  // The "new messages" line stays where it is while the view is open.
  if (c.firstUnread !== null) c.marker = c.firstUnread;
  c.unread = 0;
  c.firstUnread = null;
  render();
  renderList();
  if (!c.loaded) loadRecent(c);
}

export function activeKey() {
  return active;
}

/** Forget everything (signed out). */
export function reset() {
  convs.clear();
  active = "*";
  els.messages.replaceChildren();
  renderList();
}

function trim(c) {
  if (c.items.length <= KEEP) return;
  for (const item of c.items.splice(0, c.items.length - KEEP)) {
    if (item.m) c.seqs.delete(item.m.seq); // can be loaded again
  }
  c.complete = false;
  c.oldest = c.items.find((item) => item.m)?.m.seq ?? null;
}

/** One item as list items: a day line before the first message of a day,
 * the "new messages" line before the first unread one. */
function itemNodes(item, c, previousDay) {
  const nodes = [];
  if (!item.m) {
    const li = document.createElement("li");
    li.className = `notice ${item.kind}`.trim();
    li.textContent = item.text;
    return [nodes.concat(li), previousDay];
  }
  const day = dayOf(item.m.ts);
  if (day !== previousDay) {
    const sep = document.createElement("li");
    sep.className = "day";
    sep.setAttribute("role", "separator");
    sep.textContent = day;
    nodes.push(sep);
  }
  if (c.marker === item.m.seq) {
    const marker = document.createElement("li");
    marker.className = "unread-marker";
    marker.setAttribute("role", "separator");
    marker.textContent = "New messages";
    nodes.push(marker);
  }
  nodes.push(messageItem(item.m));
  return [nodes, day];
}

let shownDay = null; // the day of the last message in the view

function render() {
  const c = conv(active);
  els.title.textContent = labelOf(active);
  const nodes = [];
  shownDay = null;
  if (c.complete) {
    const start = document.createElement("li");
    start.className = "start";
    start.textContent = "The start of this conversation";
    nodes.push(start);
  }
  for (const item of c.items) {
    const [some, day] = itemNodes(item, c, shownDay);
    nodes.push(...some);
    shownDay = day;
  }
  els.messages.setAttribute("aria-busy", "true"); // a redraw, not news
  els.messages.replaceChildren(...nodes);
  els.messages.removeAttribute("aria-busy");
  const marker = els.messages.querySelector(".unread-marker");
  if (marker) marker.scrollIntoView({ block: "center" });
  else els.messages.scrollTop = els.messages.scrollHeight;
}

function appendItem(item, c) {
  const m = els.messages;
  const stick = m.scrollHeight - m.scrollTop - m.clientHeight < 40;
  const [nodes, day] = itemNodes(item, c, shownDay);
  shownDay = day;
  m.append(...nodes);
  if (stick) m.scrollTop = m.scrollHeight;
}

/** The conversations in the sidebar: the room, topics, private ones. */
export function renderList(topics = null) {
  if (topics) for (const t of topics) conv(`#${t}`);
  const order = (k) => (k === "*" ? 0 : k.startsWith("#") ? 1 : 2);
  const keys = [...convs.keys()].sort((a, b) => order(a) - order(b) || a.localeCompare(b));
  if (!keys.includes("*")) keys.unshift("*");
  els.list.replaceChildren(
    ...keys.map((key) => {
      const c = conv(key);
      const li = document.createElement("li");
      li.dataset.key = key;
      if (key === active) li.setAttribute("aria-current", "true");
      const name = document.createElement("button");
      name.type = "button";
      name.className = "conv";
      name.textContent = labelOf(key);
      li.append(name);
      if (c.unread) {
        const badge = document.createElement("span");
        badge.className = "unread";
        badge.textContent = String(c.unread);
        li.append(badge);
        name.setAttribute("aria-label", `${labelOf(key)}, ${c.unread} unread`);
      }
      // The button takes Enter and Space; a click anywhere on the row opens it.
      li.addEventListener("click", () => ui.choose(key));
      name.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") ev.preventDefault(); // not into the message box
        if (ev.key === "Enter" || ev.key === " ") ui.choose(key);
      });
      return li;
    }),
  );
  const total = [...convs.values()].reduce((n, c) => n + c.unread, 0);
  document.title = total ? `(${total}) ${TITLE}` : TITLE;
}

/** Back on the page: what is on the screen is read. */
function seen() {
  const c = conv(active);
  c.unread = 0;
  c.firstUnread = null;
  renderList();
}

/** The request for a conversation's history, `before` a seq or the latest. */
function historyParams(key, before) {
  const params = { limit: 50 };
  if (before !== null) params.before = before;
  if (key.startsWith("#")) params.topic = key.slice(1);
  else if (key.startsWith("@")) params.with = key.slice(1);
  return params;
}

/** Can the server give this conversation's history to us? (Private ones:
 * one person, and only when signed in.) */
function hasHistory(key) {
  if (!key.startsWith("@")) return true;
  const client = ui.client();
  return !key.includes(",") && client?.welcome?.guest === false;
}

async function loadRecent(c) {
  if (await fetchPage(c, null)) c.loaded = true;
}

async function loadOlder(c) {
  if (c.complete || c.loading || !c.loaded) return;
  await fetchPage(c, c.oldest);
}

/** One page of `c`'s history; true if it was had (or there is none). */
async function fetchPage(c, before) {
  const client = ui.client();
  if (!client || client.state !== "open" || c.loading) return false;
  if (!hasHistory(c.key)) {
    c.complete = true;
    return true;
  }
  c.loading = true;
  try {
    const height = els.messages.scrollHeight;
    const result = await client.request("history", historyParams(c.key, before), { quiet: true });
    // Each into its own conversation (a page with bob may hold a group's
    // messages); the paging point moves past all of them.
    batch = true;
    try {
      for (const m of result.messages) add({ ...m, replayed: true });
    } finally {
      batch = false;
    }
    renderList();
    const seqs = result.messages.map((m) => m.seq);
    if (seqs.length) c.oldest = Math.min(c.oldest ?? Infinity, ...seqs);
    if (!result.more || !seqs.length) c.complete = true;
    if (c.key === active) {
      render();
      if (before !== null) els.messages.scrollTop = els.messages.scrollHeight - height;
    }
    return true;
  } catch {
    return false; // offline or refused: scrolling up tries again
  } finally {
    c.loading = false;
  }
}
