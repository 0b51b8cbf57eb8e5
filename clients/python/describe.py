"""One line of text for each server event, as the Python CLI (chat.py)
prints it; the Node CLI's clients/node/describe.mjs prints the same lines."""

import json
import time


def clock(ts_ms):
    return time.strftime("%H:%M:%S", time.localtime(ts_ms / 1000.0))


def describe(event):
    """One human-readable line for an incoming event."""
    kind = event.get("type")
    if kind == "message":
        who, text = event.get("from"), event.get("text")
        when = "[%s]" % clock(event.get("ts", 0))
        if event.get("late"):
            when += " (delivered late)"  # kept by the server until we signed in
        k = event.get("kind")
        if k == "direct":
            return "%s %s -> %s: %s" % (when, who, event.get("to"), text)
        if k == "multicast":
            return "%s %s -> %s: %s" % (when, who, ",".join(event.get("to", [])), text)
        if k == "publish":
            return "%s #%s %s: %s" % (when, event.get("topic"), who, text)
        return "%s %s: %s" % (when, who, text)
    if kind == "presence":
        ev, name = event.get("event"), event.get("name")
        mark = " (registered)" if event.get("registered") else ""
        if ev == "rename" and event.get("registered") and event.get("old") == name:
            return "* %s signed in" % name
        if ev == "rename":
            return "* %s is now %s%s" % (event.get("old"), name, mark)
        if ev == "join":
            return "* %s joined%s" % (name, mark)
        return "* %s left%s" % (name, " (%s)" % event["reason"] if event.get("reason") else "")
    if kind == "notice" and event.get("event") == "restarting":
        return "* the server is restarting; back in %.1f s" % (event.get("retry_after_ms", 0) / 1000.0)
    if kind == "auth_required":
        return "* this server requires an account: /login NAME or /register NAME"
    if kind == "error":
        return "! %s: %s" % (event.get("code"), event.get("message"))
    if kind == "ack":
        if "topic" in event:
            return "ok: %s" % event["topic"]
        extra = " (unknown: %s)" % ",".join(event["unknown"]) if event.get("unknown") else ""
        if event.get("stored"):
            extra += " (kept for %s until they sign in)" % ",".join(event["stored"])
        return "ok: seq %s, delivered to %s%s" % (event.get("seq"), event.get("delivered"), extra)
    return json.dumps(event)
