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
    /search [#TOPIC] WORDS
                        messages with every word, newest first (all
                        streams, or one topic's)
    /nick NAME          rename             /quit          leave
    /help               this list
    /login NAME         sign in            /register NAME  create an account
    /logout             sign out           /passwd         change your password
    /with NAME          your private conversation with NAME
    /kick NAME [REASON]                    moderators and admins:
    /mute NAME [SECONDS] [REASON]          mute (default 10 minutes)
    /ban NAME [SECONDS] [REASON]           ban (no SECONDS: until lifted)
    /unmute NAME  /unban NAME

Accounts:
    --user NAME         sign in as NAME; the password is asked for without
                        echo, or read from --password-file FILE (first line)
    --register          create the account NAME instead of signing in
    --token-file FILE   keep the session token in FILE (mode 0600): when it
                        exists it is used first (no password needed); a
                        refused token is deleted and --user's password used

Scripted (for tests and shell use):
    --send LINE      run LINE as if typed (repeatable, in order)
    --expect TEXT    wait until a printed line contains TEXT (repeatable; each
                     matches a different line, in any order); exit 1 if it
                     does not come within --timeout
    --json           raw mode: every stdin line is sent as is (a JSON object
                     or plain text); every incoming event is printed as one
                     JSON line; exits at the end of stdin after --linger

When the connection drops, the interactive client (not the scripted modes)
reconnects with jittered exponential backoff, subscribes to its topics again
and catches up with `history` `after` the last message it saw, as the Node
client and the browser page do. Lines typed while it is away are not sent
("! not connected"). It does not reconnect when the server ended the
session on purpose (signed out, kicked, signed in elsewhere, banned): it
prints why and exits.
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

HELP = __doc__.split("Interactive:")[1].split("Scripted")[0]


class SessionOver(Exception):
    """The server ended the session: the input loop stops."""


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
        self.ids = 0
        self.url = url
        self.reconnect = reconnect
        self.stopping = threading.Event()
        self.name = client.name
        self.topics = set()  # subscriptions to restore after a reconnect
        self.retry_after = None  # seconds, from a "restarting" notice
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
        with self.cond:
            self.out.write(line + "\n")
            self.out.flush()
            self.lines.append(line)
            self.cond.notify_all()

    def show(self, event):
        if event.get("type") == "notice" and event.get("event") == "restarting":
            # Come back when the server says (each client its own delay), so
            # a restart does not bring every client back in the same second.
            self.retry_after = restart_delay(event)
        if event.get("type") == "welcome":
            # A sign-in on this connection: a new identity.
            self.name = event["name"]
            if self.epoch is None:
                self.epoch, self.last_seq = event.get("epoch"), event.get("seq", 0)
            self.emit(json.dumps(event) if self.raw else
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
        self.emit(json.dumps(event) if self.raw else describe(event))

    def reader(self):
        """Print events until the connection ends; then reconnect, if on."""
        while True:
            for event in self.client.events():
                self.show(event)
            code, reason = self.client.ws.close_code, self.client.ws.close_reason
            if not self.stopping.is_set() and is_final_close(code):
                # The server ended the session on purpose: say why, never reconnect.
                self.final = code
                self.emit("* " + close_reason(code, reason))
                self.end_input()
                return
            if not self.reconnect or self.stopping.is_set():
                code = self.client.ws.close_code
                self.emit("* disconnected" + (" (close %s %s)" % (code, self.client.ws.close_reason) if code else ""))
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
            self.emit("* connection lost; reconnecting in %d ms" % round(delay * 1000))
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
        if client.auth_error:
            self.signed_out_while_away(client)
        welcome = client.welcome
        if welcome is None:
            self.emit("* reconnected; this server requires an account: /login NAME or /register NAME")
            return True
        self.name = welcome["name"]
        self.emit("* reconnected as %s; users: %s" % (self.name, ", ".join(welcome["users"])))
        try:
            for topic in sorted(self.topics):
                client.subscribe(topic)
            if welcome.get("epoch") != self.epoch:
                # A new history store numbers from scratch: forget the old numbers.
                self.emit("* missed messages: the server restarted and lost its history")
                self.seen.clear()
                self.last_seq = welcome.get("seq", 0)
            else:
                missed, complete = client.catch_up(self.last_seq, self.topics)
                for m in missed:
                    self.show(m)
                if not complete:
                    self.emit("* missed messages: some messages were no longer kept by the server")
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
        self.ids += 1
        return self.ids

    def run(self, line):
        """Run one typed line. Returns False for /quit."""
        line = line.rstrip("\r\n")
        if not line.strip():
            return True
        cmd, _, rest = line.partition(" ")
        rest = rest.strip()
        c = self.client
        try:
            if not line.startswith("/"):
                c.broadcast(line, id=self.next_id())
            elif cmd == "/quit":
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
                self.topics.add(rest)
                c.subscribe(rest, id=self.next_id())
            elif cmd == "/unsub":
                self.topics.discard(rest)
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
            elif cmd == "/search":
                topic, q = parse_search(rest)
                if not q:
                    self.emit("! usage: /search [#TOPIC] WORDS")
                else:
                    result = c.search(q, topic=topic)
                    self.emit('search%s for "%s": %d messages, newest first'
                              % (" of #" + topic if topic else "", q, len(result["messages"])))
                    for m in result["messages"]:
                        self.emit("  " + describe(m))
                    if result.get("more"):
                        self.emit("  (older matches not shown)")
            elif cmd == "/nick":
                self.name = c.request("rename", {"name": rest})["name"]
                self.emit("you are now %s" % self.name)
            elif not run_account_command(self, cmd, rest, describe):
                self.emit("! unknown command %s (try /help)" % cmd)
        except ResponseError as e:
            self.emit("! %s: %s" % (e.code, e.message))
        except (TimeoutError, ProtocolError, EOFError) as e:
            self.emit("! %s" % e)
        except OSError:
            # The server went away: the reader is reconnecting (or, when
            # scripted, has said "* disconnected"). Nothing was sent.
            self.emit("! not connected")
        return True


def main(argv=None):
    ap = argparse.ArgumentParser(description="Chat with a Switchboard server.", epilog=HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
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
    session = Session(client, sys.stdout, args.json, url=args.url, reconnect=not scripted and not args.json,
                      user=args.user, password_file=args.password_file, token_file=args.token_file)
    welcome = client.welcome
    if args.json:
        session.emit(json.dumps(welcome or client.required))
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
            if args.json:
                if line.strip():
                    try:
                        session.client.ws.send_text(line.rstrip("\r\n"))
                    except OSError:
                        # Raw mode does not reconnect: the rest cannot be sent.
                        print("chat.py: not connected; stopping", file=sys.stderr)
                        status = 1
                        break
            elif not session.run(line):
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
