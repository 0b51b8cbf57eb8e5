// How a message looks on the page: time, tag, sender, and its text as
// text nodes and safe links (nothing from a message is ever HTML).

export function timeOf(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** A message as a list item; its text is text, never HTML. */
export function messageItem(m) {
  const li = document.createElement("li");
  li.className = `msg ${m.kind}`;
  li.dataset.seq = m.seq;
  li.dataset.kind = m.kind;
  if (m.late) {
    // Sent while we were away, kept by the server until we signed in.
    li.classList.add("late");
    const late = document.createElement("span");
    late.className = "late-mark";
    late.textContent = "delivered late";
    li.append(late);
  }
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = timeOf(m.ts);
  li.append(time);
  if (m.kind !== "broadcast") {
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent =
      m.kind === "publish" ? `#${m.topic}` : m.kind === "direct" ? `to ${m.to}` : `to ${m.to.join(", ")}`;
    li.append(tag);
  }
  const from = document.createElement("span");
  from.className = "from";
  from.textContent = `${m.from}:`;
  const text = document.createElement("span");
  text.className = "text";
  text.append(...linked(m.text));
  li.append(from, text);
  return li;
}

// http(s) links in a message, up to whitespace or a character no URL has
// unescaped; punctuation that ends a sentence stays outside the link.
const LINK = /\bhttps?:\/\/[^\s<>"'`]+/g;

/** A message's text as nodes: text nodes, and links for http(s) URLs.
 * Nothing in a message is ever parsed as HTML. */
function linked(text) {
  const nodes = [];
  let at = 0;
  for (const match of text.matchAll(LINK)) {
    const url = match[0].replace(/[.,;:!?)\]}]+$/, "");
    if (match.index > at) nodes.push(document.createTextNode(text.slice(at, match.index)));
    const a = document.createElement("a");
    a.href = url;
    a.textContent = url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    nodes.push(a);
    at = match.index + url.length;
  }
  if (at < text.length) nodes.push(document.createTextNode(text.slice(at)));
  return nodes;
}

/** The day a message was sent, in the reader's own time zone. */
export function dayOf(ts) {
  return new Date(ts).toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

