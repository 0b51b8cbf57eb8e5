"""Accounts for the Python CLI (chat.py): passwords (getpass, which does
not echo, or --password-file), the session token file (--token-file,
written 0600), why the server ended a session, and the account and
moderation commands:

    /login NAME  /register NAME  /logout  /passwd  /with NAME
    /kick NAME [REASON]  /mute NAME [SECONDS] [REASON]  /ban NAME [SECONDS] [REASON]
    /unmute NAME  /unban NAME
"""

import getpass
import os
import sys
import time

from switchboard_client import ProtocolError, ResponseError, SwitchboardClient

def read_password_file(path):
    """The password in `path`: its first line, without the line end."""
    with open(path, encoding="utf-8") as f:
        return f.readline().rstrip("\r\n")


def ask_password(prompt):
    """Ask on the terminal without echo (getpass)."""
    return getpass.getpass(prompt)


def read_token(path):
    """The saved session token, or None."""
    if not path or not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return f.read().strip() or None


def save_token(path, token):
    """Write the token (mode 0600, replacing the file in one step); with
    token None, delete the file."""
    if not path:
        return
    if not token:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, (token + "\n").encode("ascii"))
    finally:
        os.close(fd)
    os.replace(tmp, path)


def is_final_close(code):
    """Closes after which reconnecting would be wrong: the server ended the
    session on purpose (signed out, kicked, auth timeout, signed in
    elsewhere, banned)."""
    return code == 1000 or (code is not None and 4000 <= code <= 4003)


def close_reason(code, reason=""):
    """Why the server ended the session, in words (as the Node CLI says it)."""
    if code == 4000:
        return "removed by a moderator: %s" % (reason or "no reason given")
    if code == 4001:
        return "not signed in in time (this server requires an account)"
    if code == 4002:
        return "signed in elsewhere: another window or device took over this account"
    if code == 4003:
        return reason if reason.startswith("banned") else "banned" + (": " + reason if reason else "")
    return reason or "closed by the server (%s)" % code


def signed_in(welcome):
    """The line printed when a welcome makes us an account."""
    return "signed in as %s (%s); users: %s" % (
        welcome["name"], ", ".join(welcome.get("roles") or ["user"]), ", ".join(welcome.get("users", [])))


def parse_sanction(rest):
    """`NAME [SECONDS] [REASON]` as (name, seconds or None, reason)."""
    words = rest.split()
    name = words.pop(0) if words else ""
    seconds = int(words.pop(0)) if words and words[0].isdigit() else None
    return name, seconds, " ".join(words)


def clock(ms):
    return time.strftime("%H:%M:%S", time.localtime(ms / 1000.0))


def run_account_command(session, cmd, rest, describe):
    """Run an account or moderation command; False if `cmd` is not one.
    `session` has client, emit(line), say(line) (a result in words; --json
    prints the response instead), password(prompt, file) and
    token_changed(); ResponseError is the caller's to print."""
    c = session.client
    first = rest.split()[0] if rest.split() else ""
    if cmd in ("/login", "/register"):
        if not first:
            session.emit("! usage: %s NAME" % cmd)
            return True
        password = session.password("password for %s: " % first)
        c.account(cmd[1:], first, password)  # the welcome that follows prints "signed in as"
        session.token_changed()
    elif cmd == "/logout":
        c.logout()  # then the server closes: "* signed out"
        session.token_changed()
    elif cmd == "/passwd":
        old = session.password("current password: ")
        new = session.password("new password: ", use_file=False)
        c.passwd(old, new)
        session.token_changed()
        session.say("password changed; your other sessions are signed out")
    elif cmd == "/kick":
        name, _, reason = parse_sanction(rest)
        c.request("kick", {"name": name, "reason": reason})
        session.say("kicked %s%s" % (name, ": " + reason if reason else ""))
    elif cmd in ("/mute", "/ban"):
        name, seconds, reason = parse_sanction(rest)
        params = {"name": name, "reason": reason}
        if seconds is not None:
            params["seconds"] = seconds
        until = (c.request(cmd[1:], params) or {}).get("until_ms")
        session.say("%s %s %s%s" % ("muted" if cmd == "/mute" else "banned", name,
                                     "until " + clock(until) if until else "until lifted",
                                     ": " + reason if reason else ""))
    elif cmd in ("/unmute", "/unban"):
        c.request(cmd[1:], {"name": first})
        session.say("%s %s" % ("unmuted" if cmd == "/unmute" else "unbanned", first))
    elif cmd == "/with":
        if not first:
            session.emit("! usage: /with NAME")
            return True
        result = c.request("history", {"with": first})
        session.say("conversation with %s: %d messages" % (first, len(result["messages"])))
        for m in result["messages"]:
            session.say("  " + describe(m))
        if result.get("more"):
            session.say("  (older messages not shown)")
    else:
        return False
    return True


def connect_and_sign_in(args):
    """Connect and sign in as the flags say: (client, None), or (None, exit
    status) after saying why not on stderr."""
    token = read_token(args.token_file)
    method = "register" if args.register else "login"
    password = []

    def get_password():
        if not password:
            password.append(read_password_file(args.password_file) if args.password_file
                            else ask_password("password for %s: " % args.user))
        return password[0]

    try:
        if args.user and not token:
            get_password()  # asked for before connecting (the server may be waiting)
        client = SwitchboardClient.connect(args.url, name=args.name, token=token)
    except (OSError, ProtocolError, ValueError, TimeoutError) as e:
        print("chat.py: cannot connect to %s: %s" % (args.url, e), file=sys.stderr)
        return None, 2
    except (EOFError, KeyboardInterrupt):
        print("chat.py: no password given", file=sys.stderr)
        return None, 2
    # Said once the session prints (so --json keeps stdout all JSON), in
    # the words chat.mjs uses.
    client.startup_notes = []
    if client.auth_error:
        code, message = client.auth_error
        if code == "bad_token":
            save_token(args.token_file, None)
        if code == "bad_token" and args.user:
            client.startup_notes.append("* the saved session has ended; signing in with the password")
        else:
            client.startup_notes.append("* the saved session could not be used (%s); token file removed" % code)
    if args.user and client.token is None:
        try:
            client.account(method, args.user, get_password(), quiet=True)
            client.wait_welcome()
        except ResponseError as e:
            print("chat.py: sign-in failed: %s: %s" % (e.code, e.message), file=sys.stderr)
            client.close()
            return None, 1
        except (OSError, ProtocolError, TimeoutError, EOFError, KeyboardInterrupt) as e:
            print("chat.py: sign-in failed: %s" % (e or "no password given"), file=sys.stderr)
            client.close()
            return None, 1
    if client.token:
        save_token(args.token_file, client.token)
    return client, None
