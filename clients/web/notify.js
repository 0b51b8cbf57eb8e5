// Getting your attention: if you turn them on (the browser asks once),
// desktop notifications for private messages and for messages that
// mention your name, while the page is not looked at. (The tab's title
// counts what is unread: conversations.js.)

const $ = (id) => document.getElementById(id);
const KEY = "switchboard-notify";
let ui = null; // { me(), notice(text, kind) }

export function initNotify(hooks) {
  ui = hooks;
  const box = $("notify");
  box.checked = localStorage.getItem(KEY) === "on" && "Notification" in window && Notification.permission === "granted";
  box.addEventListener("change", async () => {
    if (!box.checked) return void localStorage.setItem(KEY, "off");
    if (!("Notification" in window)) {
      box.checked = false;
      return ui.notice("This browser has no desktop notifications.", "error");
    }
    const answer = Notification.permission === "granted" ? "granted" : await Notification.requestPermission();
    box.checked = answer === "granted";
    localStorage.setItem(KEY, box.checked ? "on" : "off");
    if (!box.checked) ui.notice("Notifications were not allowed by the browser.", "error");
  });
}

/** Does `text` mention `name` (as a word, any case, with or without @)? */
export function mentions(text, name) {
  if (!name) return false;
  const escaped = name.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
  return new RegExp(`(^|[^\\w.-])@?${escaped}(?![\\w-])`, "i").test(text);
}

/** A message arrived: live, or `missed` while the connection was down. */
export function arrived(m, missed = false) {
  const me = ui.me();
  if (m.from === me || (m.replayed && !missed)) return;
  const personal = m.kind === "direct" || m.kind === "multicast" || mentions(m.text, me);
  if (!personal || !$("notify").checked || !("Notification" in window)) return;
  if (Notification.permission !== "granted" || (!document.hidden && document.hasFocus())) return;
  const where = m.kind === "publish" ? ` in #${m.topic}` : m.kind === "broadcast" ? "" : " (private)";
  new Notification(`${m.from}${where}`, { body: m.text.slice(0, 200), tag: `switchboard-${m.seq}` });
}
