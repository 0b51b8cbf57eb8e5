// The search box in the header and its results panel above the stream:
// kept messages with every word, newest first, "More" for older ones.

import { messageItem } from "./render.js";

let ui = null; // { els, client(), target() }
// The search on show: { q, topic, oldest, found }, or null. A reply to an
// older search (or one closed since) is dropped.
let search = null;

/** Wire the search box; `hooks` are app.js's. */
export function initSearch(hooks) {
  ui = hooks;
  ui.els.searchForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = ui.els.searchInput.value.trim();
    if (q) startSearch(q);
  });
  ui.els.searchMore.addEventListener("click", () => {
    if (search) searchPage(search);
  });
  ui.els.searchClose.addEventListener("click", closeSearch);
  ui.els.searchInput.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") closeSearch();
  });
}

/** What the search box searches: the chosen topic's messages when a topic
 * is the "send to" choice, otherwise everything kept (broadcasts and every
 * topic; direct messages are never kept). */
export function searchTopic() {
  return ui.target().startsWith("#") ? ui.target().slice(1) : null;
}

function searchStatus(text, kind = "") {
  ui.els.searchStatus.textContent = text;
  ui.els.searchStatus.className = `search-status ${kind}`.trim();
}

/** Ask for a page of results (older than those shown, for "More") and add
 * them, newest first. */
async function searchPage(s) {
  ui.els.searchMore.hidden = true;
  searchStatus("Searching…");
  let result;
  try {
    result = await ui.client().search(s.q, { topic: s.topic || undefined, before: s.oldest ?? undefined });
  } catch (e) {
    if (s === search) searchStatus(`Search failed: ${e.message}`, "error");
    return;
  }
  if (s !== search) return;
  for (const m of result.messages) ui.els.searchResults.append(messageItem(m));
  s.found += result.messages.length;
  if (result.messages.length) s.oldest = result.messages[result.messages.length - 1].seq;
  ui.els.searchMore.hidden = !result.more;
  const where = s.topic ? ` in #${s.topic}` : "";
  if (s.found === 0) searchStatus(`No messages match “${s.q}”${where}.`);
  else searchStatus(`${s.found} found${where}, newest first${result.more ? "; older ones under More" : ""}.`);
}

function startSearch(q) {
  const topic = searchTopic();
  search = { q, topic, oldest: null, found: 0 };
  ui.els.searchTitle.textContent = `“${q}” in ${topic ? `#${topic}` : "all messages"}`;
  ui.els.searchResults.replaceChildren();
  ui.els.searchPanel.hidden = false;
  searchPage(search);
}

export function closeSearch() {
  search = null;
  ui.els.searchPanel.hidden = true;
  ui.els.searchResults.replaceChildren();
  searchStatus("");
}

