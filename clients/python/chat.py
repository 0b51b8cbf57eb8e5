#!/usr/bin/env python3
"""Chat with a Switchboard server from the terminal (standard library only).

Interactive:
    python3 clients/python/chat.py ws://localhost:8080/chat --name alice

    plain line          broadcast it
    /msg NAME text      direct message
    /multi A,B text     multicast
    /sub TOPIC          subscribe          /unsub TOPIC   unsubscribe
    /pub TOPIC text     publish to a topic
    /users  /topics     who and what is here
    /history [TOPIC]    recent messages (broadcasts, or a topic's)
    /nick NAME          rename             /quit          leave
    /help               this list

Scripted (for tests and shell use):
    --send LINE      run LINE as if typed (repeatable, in order)
    --expect TEXT    wait until a printed line contains TEXT (repeatable; each
                     matches a different line, in any order); exit 1 if it
                     does not come within --timeout
    --json           raw mode: every stdin line is sent as is (a JSON object
                     or plain text); every incoming event is printed as one
                     JSON line; exits at the end of stdin after --linger
"""

import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from switchboard_client import ProtocolError, ResponseError, SwitchboardClient  # noqa: E402

HELP = __doc__.split("Interactive:")[1].split("Scripted")[0]


def clock(ts_ms):
    return time.strftime("%H:%M:%S", time.localtime(ts_ms / 1000.0))


def describe(event):
    """One human-readable line for an incoming event."""
    kind = event.get("type")
    if kind == "message":
        when, who, text = clock(event.get("ts", 0)), event.get("from"), event.get("text")
        k = event.get("kind")
        if k == "direct":
            return "[%s] %s -> %s: %s" % (when, who, event.get("to"), text)
        if k == "multicast":
            return "[%s] %s -> %s: %s" % (when, who, ",".join(event.get("to", [])), text)
        if k == "publish":
            return "[%s] #%s %s: %s" % (when, event.get("topic"), who, text)
        return "[%s] %s: %s" % (when, who, text)
    if kind == "presence":
        ev = event.get("event")
        if ev == "rename":
            return "* %s is now %s" % (event.get("old"), event.get("name"))
        return "* %s %s" % (event.get("name"), "joined" if ev == "join" else "left")
    if kind == "error":
        return "! %s: %s" % (event.get("code"), event.get("message"))
    if kind == "ack":
        if "topic" in event:
            return "ok: %s" % event["topic"]
        extra = " (unknown: %s)" % ",".join(event["unknown"]) if event.get("unknown") else ""
        return "ok: seq %s, delivered to %s%s" % (event.get("seq"), event.get("delivered"), extra)
    return json.dumps(event)


class Session:
    """The CLI's state: the client, where output goes, what to wait for."""

    def __init__(self, client, out, raw):
        self.client = client
        self.out = out
        self.raw = raw
        self.lines = []  # every line printed, for --expect
        self.cond = threading.Condition()
        self.ids = 0

    def emit(self, line):
        with self.cond:
            self.out.write(line + "\n")
            self.out.flush()
            self.lines.append(line)
            self.cond.notify_all()

    def reader(self):
        for event in self.client.events():
            self.emit(json.dumps(event) if self.raw else describe(event))
        code = self.client.ws.close_code
        self.emit("* disconnected" + (" (close %s %s)" % (code, self.client.ws.close_reason) if code else ""))

    def expect(self, text, timeout):
        """Wait until a printed line not matched before contains `text`.
        Replies to requests print at once while messages print as they
        arrive, so lines are matched in any order."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i, line in enumerate(self.lines):
                    if text in line:
                        del self.lines[i]
                        return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)

    def next_id(self):
        self.ids += 1
        return self.ids

    def run(self, line):
        """Run one typed line. Returns False for /quit."""
        line = line.rstrip("\r\n")
        if not line.strip():
            return True
        if not line.startswith("/"):
            self.client.broadcast(line, id=self.next_id())
            return True
        cmd, _, rest = line.partition(" ")
        rest = rest.strip()
        c = self.client
        try:
            if cmd == "/quit":
                return False
            elif cmd == "/help":
                self.emit(HELP.strip("\n"))
            elif cmd == "/msg":
                name, _, text = rest.partition(" ")
                c.direct(name, text, id=self.next_id())
            elif cmd == "/multi":
                names, _, text = rest.partition(" ")
                c.multicast([n for n in names.split(",") if n], text, id=self.next_id())
            elif cmd == "/sub":
                c.subscribe(rest, id=self.next_id())
            elif cmd == "/unsub":
                c.unsubscribe(rest, id=self.next_id())
            elif cmd == "/pub":
                topic, _, text = rest.partition(" ")
                c.publish(topic, text, id=self.next_id())
            elif cmd == "/users":
                self.emit("users: " + ", ".join(c.request("users")["users"]))
            elif cmd == "/topics":
                topics = c.request("topics")["topics"]
                self.emit("topics: " + (", ".join("%s (%d)" % (t["name"], t["subscribers"]) for t in topics) or "none"))
            elif cmd == "/history":
                params = {"topic": rest} if rest else {}
                result = c.request("history", params)
                self.emit("history%s: %d messages" % (" of #" + rest if rest else "", len(result["messages"])))
                for m in result["messages"]:
                    self.emit("  " + describe(m))
            elif cmd == "/nick":
                self.emit("you are now %s" % c.request("rename", {"name": rest})["name"])
            else:
                self.emit("! unknown command %s (try /help)" % cmd)
        except ResponseError as e:
            self.emit("! %s: %s" % (e.code, e.message))
        except TimeoutError as e:
            self.emit("! %s" % e)
        return True


def main(argv=None):
    ap = argparse.ArgumentParser(description="Chat with a Switchboard server.", epilog=HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", nargs="?", default="ws://localhost:8080/chat", help="the /chat URL")
    ap.add_argument("--name", help="the name to ask for")
    ap.add_argument("--send", action="append", default=[], metavar="LINE", help="run LINE as if typed")
    ap.add_argument("--expect", action="append", default=[], metavar="TEXT", help="wait for a line containing TEXT")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each --expect")
    ap.add_argument("--json", action="store_true", help="raw JSON lines on stdin and stdout")
    ap.add_argument("--linger", type=float, default=0.5, help="seconds to keep printing after the input ends")
    args = ap.parse_args(argv)

    try:
        client = SwitchboardClient.connect(args.url, name=args.name)
    except (OSError, ProtocolError) as e:
        print("chat.py: cannot connect to %s: %s" % (args.url, e), file=sys.stderr)
        return 2
    session = Session(client, sys.stdout, args.json)
    if args.json:
        session.emit(json.dumps(client.welcome))
    else:
        session.emit("connected as %s; users: %s (/help for commands)" % (client.name, ", ".join(client.welcome["users"])))
    threading.Thread(target=session.reader, name="chat-reader", daemon=True).start()

    if args.send or args.expect:
        for line in args.send:
            session.run(line)
        for text in args.expect:
            if not session.expect(text, args.timeout):
                print("chat.py: no line containing %r within %.1fs" % (text, args.timeout), file=sys.stderr)
                client.close()
                return 1
        client.close()
        return 0

    interactive = sys.stdin.isatty() and not args.json
    try:
        while True:
            line = input() if interactive else sys.stdin.readline()
            if not interactive and line == "":
                break
            if args.json:
                if line.strip():
                    client.ws.send_text(line.rstrip("\r\n"))
            elif not session.run(line):
                break
    except (EOFError, KeyboardInterrupt):
        pass
    if not interactive:
        time.sleep(args.linger)
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
