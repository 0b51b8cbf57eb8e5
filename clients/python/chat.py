#!/usr/bin/env python3
"""Chat with a Switchboard server from the terminal (standard library only).

    python3 clients/python/chat.py ws://localhost:8080/chat --name alice

The commands and options are clients/cli-help.txt, the one help text of
this client and of clients/node/chat.mjs, which behave the same:

- Interactive, it reconnects with jittered exponential back-off (or after
  the delay a "restarting" notice gives), subscribes to its topics again
  and catches up with `history` `after` the last message it saw. Lines
  typed while it is away are not sent ("! not connected"). It does not
  reconnect when the server ended the session on purpose (signed out,
  kicked, signed in elsewhere, banned): it says why and exits.
- --json is one contract for both CLIs (clients/README.md): every stdout
  line is one JSON object, the frames as the server sent them (replayed
  ones marked "replayed": true), the responses to our commands, and
  {"type":"status",...} for what happened locally; nothing else.
- Errors a user can cause are one line on stderr and a non-zero exit.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from switchboard_client import (  # noqa: E402
    ProtocolError, ResponseError, SwitchboardClient, backoff, restart_delay, split_url)
from rfc6455 import use_tls  # noqa: E402
from describe import describe  # noqa: E402
from accounts import (  # noqa: E402
    ask_password, close_reason, connect_and_sign_in, is_final_close, read_password_file, run_account_command,
    save_token, signed_in,
)

# The one help text of both CLIs (clients/cli-help.txt): --help and /help.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli-help.txt"), encoding="utf-8") as f:
    HELP = f.read().rstrip()


class SessionOver(Exception):
    """The server ended the session: the input loop stops."""


def as_json(value):
    """One JSON line as chat.mjs writes it (JSON.stringify): compact, and
    text as it is, not \\u-escaped."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def parse_search(rest):
    """The words after /search as (topic or None, q): "#news lunch friday" is
    ("news", "lunch friday"); without a leading #TOPIC, every stream."""
    words = rest.split()
    if not words or not words[0].startswith("#"):
        return None, " ".join(words)
    topic = words[0][1:]
    return (topic, " ".join(words[1:])) if topic else (None, "")


class Session:
    """The CLI's state: the client, where output goes, what to wait for, and
    what a reconnect needs (the URL, our name, topics, the last seq seen)."""

    def __init__(self, client, out, raw, url=None, reconnect=False, user=None, password_file=None, token_file=None):
        self.client = client  # replaced by a new one after each reconnect
        self.out = out
        self.raw = raw
        self.lines = []  # every line printed, for --expect
        self.cond = threading.Condition()
        self.url = url
        self.reconnect = reconnect
        self.stopping = threading.Event()
        self.name = client.name
        self.topics = set()  # subscriptions to restore after a reconnect
        self.retry_after = None  # seconds, from a "restarting" notice
        self.reading = None  # the client whose events reader() is printing
        welcome = client.welcome or {}  # None until signed in, in --auth required
        self.epoch = welcome.get("epoch")
        self.last_seq = welcome.get("seq", 0)  # the highest seq seen
        self.seen = set()  # seqs shown, so catch-up does not repeat them
        self.user = user  # --user: signs in again with --password-file if the token is refused
        self.password_file = password_file
        self.token_file = token_file
        self.token = client.token
        self.final = None  # the close code when the server ended the session
        self.end_input = lambda: None  # stops the input loop (set by main)

    def password(self, prompt, use_file=True):
        """--password-file's password, or asked for without echo."""
        if use_file and self.password_file:
            return read_password_file(self.password_file)
        return ask_password(prompt)

    def token_changed(self):
        """Keep --token-file in step with the client's token."""
        if self.client.token != self.token:
            self.token = self.client.token
            save_token(self.token_file, self.token)

    def emit(self, line):
        """Print one line. With --json every line is one JSON object: a
        line of text becomes {"type":"status","event":"error"|"info",...}."""
        if self.raw and not line.startswith("{"):
            event = "error" if line.startswith("! ") else "info"
            line = as_json({"type": "status", "event": event, "text": line[2:] if line[:2] in ("! ", "* ") else line})
        with self.cond:
            self.out.write(line + "\n")
            self.out.flush()
            self.lines.append(line)
            self.cond.notify_all()

    def say(self, line):
        """A command's result, in words: --json prints the response itself."""
        if not self.raw:
            self.emit(line)

    def status(self, event, words, **fields):
        """What happened to the connection: `words`, or with --json
        {"type":"status","event":event,...fields} (the same in chat.mjs)."""
        self.emit(as_json(dict({"type": "status", "event": event}, **fields)) if self.raw else words)

    def show(self, event, replayed=False):
        if event.get("type") == "response" and "token" in (event.get("result") or {}):
            # A session token is never printed (--token-file keeps it).
            event = dict(event, result={k: v for k, v in event["result"].items() if k != "token"})
        if event.get("type") == "notice" and event.get("event") == "restarting":
            # Come back when the server says (each client its own delay), so
            # a restart does not bring every client back in the same second.
            self.retry_after = restart_delay(event)
        if event.get("type") == "welcome":
            # A sign-in on this connection: a new identity, with the
            # account's saved topics (caught up after a reconnect too).
            self.name = event["name"]
            self.topics.update(event.get("subscribed") or [])
            if self.epoch is None:
                self.epoch, self.last_seq = event.get("epoch"), event.get("seq", 0)
            self.emit(as_json(event) if self.raw else
                      signed_in(event) if event.get("guest") is False else "you are %s" % event["name"])
            return
        if event.get("type") == "message":
            seq = event.get("seq", 0)
            if seq in self.seen:
                return  # already shown (catch-up overlap)
            self.seen.add(seq)
            if len(self.seen) > 5000:
                self.seen = set(sorted(self.seen)[-2500:])
            self.last_seq = max(self.last_seq, seq)
            if replayed:
                event = dict(event, replayed=True)
        self.emit(as_json(event) if self.raw else describe(event))

    def reader(self):
        """Print events until the connection ends; then reconnect, if on."""
        while True:
            self.reading = self.client
            for event in self.client.events():
                self.show(event)
            self.reading = None
            code, reason = self.client.ws.close_code, self.client.ws.close_reason
            if not self.stopping.is_set() and is_final_close(code):
                # The server ended the session on purpose: say why, never reconnect.
                self.final = code
                self.status("closed", "* " + close_reason(code, reason), code=code, reason=reason or "")
                self.end_input()
                return
            if self.stopping.is_set():
                return  # we closed it
            if not self.reconnect:
                code = self.client.ws.close_code
                self.status("disconnected", "* disconnected" + (" (close %s %s)" % (code, self.client.ws.close_reason) if code else ""),
                            code=code or 1006)
                return
            if not self.reconnected():
                return

    def reconnected(self):
        """Connect again (backing off between attempts), restore topics and
        catch up. False if the session ended first."""
        attempt = 0
        while True:
            delay = backoff(attempt) if self.retry_after is None else self.retry_after
            self.retry_after = None
            attempt += 1
            self.status("reconnecting", "* connection lost; reconnecting in %d ms" % round(delay * 1000),
                        delay_ms=round(delay * 1000))
            if self.stopping.wait(delay):
                return False
            try:
                # Signed in: ask for no name, as a guest cannot have an account's.
                name = None if self.token and not self.client.guest else self.name
                client = SwitchboardClient.connect(self.url, name=name, token=self.token)
            except (OSError, ProtocolError, TimeoutError):
                continue
            break
        if self.stopping.is_set():
            client.close()
            return False
        self.client = client
        client.echo_responses = self.raw
        if client.auth_error:
            self.signed_out_while_away(client)
        welcome = client.welcome
        if welcome is None:
            self.emit("* reconnected; this server requires an account: /login NAME or /register NAME")
            return True
        self.name = welcome["name"]
        self.status("reconnected", "* reconnected as %s; users: %s" % (self.name, ", ".join(welcome["users"])),
                    name=self.name)
        if self.raw:
            self.show(welcome)
        try:
            for topic in sorted(self.topics):
                client.subscribe(topic)
            if welcome.get("epoch") != self.epoch:
                # A new history store numbers from scratch: forget the old numbers.
                self.status("gap", "* missed messages: the server restarted and lost its history",
                            reason="the server restarted and lost its history")
                self.seen.clear()
                self.last_seq = welcome.get("seq", 0)
            else:
                missed, complete = client.catch_up(self.last_seq, self.topics)
                for m in missed:
                    self.show(m, replayed=True)
                if not complete:
                    self.status("gap", "* missed messages: some messages were no longer kept by the server",
                                reason="some messages were no longer kept by the server")
            self.epoch = welcome.get("epoch")
        except (OSError, ProtocolError, ResponseError) as e:
            self.emit("! %s" % e)  # dropped again: reader() notices and reconnects
        return True

    def signed_out_while_away(self, client):
        """The token was refused on a reconnect: drop it, and sign in again
        with --password-file if there is one."""
        self.emit("* the saved session could not be used (%s: %s)" % client.auth_error)
        if client.auth_error[0] == "bad_token":
            client.token = None
            self.token_changed()
        if self.user and self.password_file:
            try:
                client.login(self.user, read_password_file(self.password_file))
                client.wait_welcome()
                self.token_changed()
            except (OSError, ProtocolError, ResponseError, TimeoutError) as e:
                self.emit("! sign-in failed: %s" % e)

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
        return SwitchboardClient.next_id()

    def run(self, line):
        """Run one typed line. Returns False for /quit."""
        line = line.rstrip("\r\n")
        if not line.strip():
            return True
        cmd, _, rest = line.partition(" ")
        rest = rest.strip()
        c = self.client
        if self.raw and not self.stopping.is_set() and self.reading is c:
            # What arrived before this line is printed before anything it
            # prints (chat.mjs, on one event loop, does this by itself).
            c.barrier()
        try:
            if self.raw and line.startswith("{"):
                c.ws.send_text(line)  # --json: a protocol message, as it is
            elif not line.startswith("/"):
                c.broadcast(line, id=self.next_id())
            elif cmd == "/quit":
                return False
            elif cmd == "/help":
                self.status("help", HELP, text=HELP)
            elif cmd == "/msg":
                name, _, text = rest.partition(" ")
                c.direct(name, text, id=self.next_id())
            elif cmd == "/multi":
                names, _, text = rest.partition(" ")
                c.multicast([n for n in names.split(",") if n], text, id=self.next_id())
            elif cmd == "/sub":
                self.topics.add(rest)
                c.subscribe(rest, id=self.next_id())
            elif cmd == "/unsub":
                self.topics.discard(rest)
                c.unsubscribe(rest, id=self.next_id())
            elif cmd == "/pub":
                topic, _, text = rest.partition(" ")
                c.publish(topic, text, id=self.next_id())
            elif cmd == "/users":
                self.say("users: " + ", ".join(c.request("users")["users"]))
            elif cmd == "/topics":
                topics = c.request("topics")["topics"]
                self.say("topics: " + (", ".join("%s (%d)" % (t["name"], t["subscribers"]) for t in topics) or "none"))
            elif cmd == "/history":
                params = {"topic": rest} if rest else {}
                result = c.request("history", params)
                self.say("history%s: %d messages" % (" of #" + rest if rest else "", len(result["messages"])))
                for m in result["messages"]:
                    self.say("  " + describe(m))
            elif cmd == "/search":
                topic, q = parse_search(rest)
                if not q:
                    self.emit("! usage: /search [#TOPIC] WORDS")
                else:
                    result = c.search(q, topic=topic)
                    self.say('search%s for "%s": %d messages, newest first'
                              % (" of #" + topic if topic else "", q, len(result["messages"])))
                    for m in result["messages"]:
                        self.say("  " + describe(m))
                    if result.get("more"):
                        self.say("  (older matches not shown)")
            elif cmd == "/nick":
                self.name = c.request("rename", {"name": rest})["name"]
                self.say("you are now %s" % self.name)
            elif not run_account_command(self, cmd, rest, describe):
                self.emit("! unknown command %s (try /help)" % cmd)
        except ResponseError as e:
            self.say("! %s: %s" % (e.code, e.message))  # --json: the response is printed
        except (TimeoutError, ProtocolError, EOFError) as e:
            self.emit("! %s" % e)
        except OSError:
            # The server went away: the reader is reconnecting (or, when
            # scripted, has said "* disconnected"). Nothing was sent.
            self.emit("! not connected")
        return True


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if "-h" in argv or "--help" in argv:
        print(HELP)
        return 0
    ap = argparse.ArgumentParser(prog="chat.py", add_help=False)

    def usage_error(message):
        print("chat.py: %s (see --help)" % message, file=sys.stderr)
        sys.exit(2)
    ap.error = usage_error
    ap.add_argument("url", nargs="?", default="ws://localhost:8080/chat", help="the /chat URL")
    ap.add_argument("--name", help="the name to ask for")
    ap.add_argument("--cafile", metavar="FILE", help="wss://: trust the CA certificates in FILE (PEM) instead of the system's")
    ap.add_argument("--insecure", action="store_true", help="wss://: do not check the server's certificate (tests only)")
    ap.add_argument("--send", action="append", default=[], metavar="LINE", help="run LINE as if typed")
    ap.add_argument("--expect", action="append", default=[], metavar="TEXT", help="wait for a line containing TEXT")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each --expect")
    ap.add_argument("--json", action="store_true", help="raw JSON lines on stdin and stdout")
    ap.add_argument("--linger", type=float, default=0.5, help="seconds to keep printing after the input ends")
    ap.add_argument("--user", metavar="NAME", help="sign in as NAME (asks for the password without echo)")
    ap.add_argument("--password-file", metavar="FILE", help="read --user's password from FILE (its first line)")
    ap.add_argument("--register", action="store_true", help="create the account --user NAME instead of signing in")
    ap.add_argument("--token-file", metavar="FILE", help="keep the session token in FILE (0600) and sign in with it")
    args = ap.parse_args(argv)
    if args.register and not args.user:
        ap.error("--register needs --user NAME")

    try:
        split_url(args.url)
    except ValueError as e:
        print("chat.py: %s" % e, file=sys.stderr)
        return 2
    if args.cafile or args.insecure:
        if args.insecure:
            print("chat.py: warning: --insecure: the server's certificate is not checked; "
                  "anyone in between can read and change everything", file=sys.stderr)
        try:
            use_tls(cafile=args.cafile, insecure=args.insecure)
        except OSError as e:
            print("chat.py: --cafile %s: %s" % (args.cafile, e), file=sys.stderr)
            return 2
    client, status = connect_and_sign_in(args)
    if client is None:
        return status
    scripted = bool(args.send or args.expect)
    client.echo_responses = args.json
    session = Session(client, sys.stdout, args.json, url=args.url, reconnect=not scripted,
                      user=args.user, password_file=args.password_file, token_file=args.token_file)
    welcome = client.welcome
    for line in getattr(client, "startup_notes", []):
        session.emit(line)
    if args.json:
        session.emit(as_json(welcome or client.required))
    elif welcome is None:
        session.emit("connected; this server requires an account: /login NAME or /register NAME (/help for commands)")
    elif welcome.get("guest") is False:
        session.emit(signed_in(welcome) + " (/help for commands)")
    else:
        session.emit("connected as %s; users: %s (/help for commands)" % (client.name, ", ".join(welcome["users"])))
    if not scripted and hasattr(signal, "pthread_kill"):
        # When the server ends the session, the reader stops the input loop.
        def over(signum, frame):
            raise SessionOver()
        signal.signal(signal.SIGUSR1, over)
        main_thread = threading.get_ident()
        session.end_input = lambda: signal.pthread_kill(main_thread, signal.SIGUSR1)
    if welcome is not None:
        # What was said lately, as the page and chat.mjs show it on joining.
        try:
            for m in client.request("history", {"limit": 50}, quiet=True)["messages"]:
                session.show(m, replayed=True)
        except (OSError, ProtocolError, ResponseError, TimeoutError) as e:
            session.emit("! %s" % e)
    threading.Thread(target=session.reader, name="chat-reader", daemon=True).start()

    if scripted:
        for line in args.send:
            session.run(line)
        for text in args.expect:
            if not session.expect(text, args.timeout):
                print("chat.py: no line containing %r within %.1fs" % (text, args.timeout), file=sys.stderr)
                session.stopping.set()
                session.client.close()
                return 1
        session.stopping.set()
        session.client.close()
        return 0

    interactive = sys.stdin.isatty() and not args.json
    status = 0
    try:
        while True:
            line = input() if interactive else sys.stdin.readline()
            if not interactive and line == "":
                break
            if not session.run(line):
                break
    except (EOFError, KeyboardInterrupt, SessionOver):
        pass
    if session.final is not None:
        return 0 if session.final == 1000 else 1  # the server ended it (and said why)
    if not interactive:
        time.sleep(args.linger)
    session.stopping.set()
    session.client.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
