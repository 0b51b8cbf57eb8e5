// The sidebar's ways to find people and topics and act on them: the
// server's topic list with subscriber counts (join with one click),
// renaming yourself, choosing several people for one private message, the
// drawer it becomes on a phone, and keyboard shortcuts to switch where the
// composer sends (Alt+Up / Alt+Down).

const $ = (id) => document.getElementById(id);
const els = {
  allTopics: $("all-topics"), refreshTopics: $("refresh-topics"), renameForm: $("rename-form"),
  renameInput: $("rename-input"), pickSend: $("pick-send"), drawer: $("drawer-toggle"), aside: $("sidebar"),
  target: $("target"), text: $("text"),
};

let ui = null; // { client(), notice(text, kind), setTarget(value), subscribe(topic), renamed(name) }
/** People chosen for one message to several (their checkboxes). */
export const picked = new Set();

/** Wire the sidebar's controls; `hooks` are app.js's. */
export function initSidebar(hooks) {
  ui = hooks;
  els.refreshTopics.addEventListener("click", () => refreshTopics());
  els.renameForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = els.renameInput.value.trim();
    if (!name) return;
    try {
      const now = await ui.client().rename(name);
      els.renameInput.value = "";
      ui.renamed(now);
      ui.notice(`You are now ${now}.`);
    } catch (e) {
      ui.notice(`Not renamed: ${e.message}`, "error");
    }
  });
  els.pickSend.addEventListener("click", () => {
    ui.setTarget(`@${[...picked].sort((a, b) => a.localeCompare(b)).join(",")}`);
    closeDrawer();
  });
  els.drawer.addEventListener("click", () => (isOpen() ? closeDrawer() : openDrawer()));
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && isOpen()) {
      closeDrawer();
      els.drawer.focus();
    }
    if (ev.altKey && (ev.key === "ArrowDown" || ev.key === "ArrowUp")) {
      ev.preventDefault();
      const options = [...els.target.options].map((o) => o.value);
      const at = options.indexOf(els.target.value);
      const step = ev.key === "ArrowDown" ? 1 : -1;
      ui.setTarget(options[(at + step + options.length) % options.length]);
    }
  });
  setInterval(() => ui.client()?.state === "open" && refreshTopics(), 30000);
}

/** The checkbox that adds `name` to a message to several people. */
export function pickBox(name) {
  const box = document.createElement("input");
  box.type = "checkbox";
  box.className = "pick";
  box.checked = picked.has(name);
  box.setAttribute("aria-label", `choose ${name} for a message to several people`);
  box.addEventListener("click", (ev) => ev.stopPropagation());
  box.addEventListener("change", () => {
    if (box.checked) picked.add(name);
    else picked.delete(name);
    renderPicked();
  });
  return box;
}

/** Forget people who left; show "Message N people" when two or more are chosen. */
export function renderPicked(present = null) {
  if (present) for (const name of [...picked]) if (!present.has(name)) picked.delete(name);
  els.pickSend.hidden = picked.size < 2;
  els.pickSend.textContent = `Message these ${picked.size}`;
}

/** Ask the server which topics have subscribers, and list them. */
export async function refreshTopics() {
  const client = ui.client();
  if (!client || client.state !== "open") return;
  let topics;
  try {
    ({ topics } = await client.request("topics", {}, { quiet: true }));
  } catch {
    return; // offline or refused: the list stays as it was
  }
  els.allTopics.replaceChildren(
    ...topics.map(({ name, subscribers }) => {
      const li = document.createElement("li");
      li.dataset.topic = name;
      const label = document.createElement("span");
      label.textContent = `#${name}`;
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = String(subscribers);
      count.title = `${subscribers} subscribed`;
      li.append(label, count);
      const mine = [...client.topics].some((t) => t.toLowerCase() === name.toLowerCase());
      if (!mine) {
        const join = document.createElement("button");
        join.type = "button";
        join.className = "small";
        join.textContent = "join";
        join.setAttribute("aria-label", `join #${name}`);
        join.addEventListener("click", () => {
          ui.subscribe(name);
          setTimeout(refreshTopics, 300);
        });
        li.append(join);
      }
      return li;
    }),
  );
  if (!topics.length) {
    const li = document.createElement("li");
    li.className = "hint";
    li.textContent = "No topics yet: subscribe to start one.";
    els.allTopics.append(li);
  }
}

function isOpen() {
  return els.aside.classList.contains("open");
}

function openDrawer() {
  els.aside.classList.add("open");
  els.drawer.setAttribute("aria-expanded", "true");
  els.aside.querySelector("input, button, li")?.focus?.();
}

/** Put the drawer away (on a wide screen the sidebar is always shown). */
export function closeDrawer() {
  els.aside.classList.remove("open");
  els.drawer.setAttribute("aria-expanded", "false");
}
