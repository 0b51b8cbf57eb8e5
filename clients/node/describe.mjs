// One line of text for each server event, as the Node CLI prints it (the
// Python CLI's describe() in clients/python/chat.py prints the same lines).

export function describe(event) {
  const time = (ts) => new Date(ts).toTimeString().slice(0, 8);
  switch (event.type) {
    case "message": {
      const when = `[${time(event.ts)}]${event.late ? " (delivered late)" : ""}`;
      if (event.kind === "direct") return `${when} ${event.from} -> ${event.to}: ${event.text}`;
      if (event.kind === "multicast") return `${when} ${event.from} -> ${event.to.join(",")}: ${event.text}`;
      if (event.kind === "publish") return `${when} #${event.topic} ${event.from}: ${event.text}`;
      return `${when} ${event.from}: ${event.text}`;
    }
    case "presence": {
      const mark = event.registered ? " (registered)" : "";
      if (event.event === "rename" && event.registered && event.old === event.name) return `* ${event.name} signed in`;
      if (event.event === "rename") return `* ${event.old} is now ${event.name}${mark}`;
      if (event.event === "join") return `* ${event.name} joined${mark}`;
      return `* ${event.name} left${event.reason ? ` (${event.reason})` : ""}`;
    }
    case "notice":
      if (event.event === "restarting") return `* the server is restarting; back in ${(event.retry_after_ms / 1000).toFixed(1)} s`;
      return JSON.stringify(event);
    case "auth_required":
      return "* this server requires an account: /login NAME or /register NAME";
    case "error":
      return `! ${event.code}: ${event.message}`;
    case "ack":
      if (event.topic) return `ok: ${event.topic}`;
      return (
        `ok: seq ${event.seq}, delivered to ${event.delivered}` +
        (event.unknown ? ` (unknown: ${event.unknown.join(",")})` : "") +
        (event.stored?.length ? ` (kept for ${event.stored.join(",")} until they sign in)` : "")
      );
    default:
      return JSON.stringify(event);
  }
}
