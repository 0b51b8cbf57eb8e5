"""Tests of the Python client against the real server binary.

    python3 -m unittest discover -s clients/python -v

The server binary is $SWITCHBOARD_BIN, or target/debug/switchboard (built
with `cargo build` if missing). `cargo test` runs these tests too.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import rfc6455  # noqa: E402
from rfc6455 import use_tls  # noqa: E402
from switchboard_client import (  # noqa: E402
    ResponseError,
    SwitchboardClient,
    WebSocket,
    accept_key,
    backoff,
    encode_frame,
    mask,
    split_url,
)


def server_binary():
    path = os.environ.get("SWITCHBOARD_BIN") or os.path.join(ROOT, "target", "debug", "switchboard")
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "--quiet"], cwd=ROOT, check=True)
    return path


class Server:
    """The real server on a free loopback port (or on `listen`, to start it
    again where it was); without `--db` in `flags`, `--db :memory:`; without
    `--restart-spread`, 1 s (clients told of a restart come back quickly)."""

    def __init__(self, *flags, listen="127.0.0.1:0"):
        self.proc = subprocess.Popen(
            [server_binary(), "--listen", listen, "--log-level", "info"]
            + ([] if "--db" in flags else ["--db", ":memory:"])
            + ([] if "--restart-spread" in flags else ["--restart-spread", "1s"]) + list(flags),
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )
        deadline = time.monotonic() + 10
        self.addr = None
        while self.addr is None and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            match = re.search(r"listening on (\S+)", line)
            if match:
                self.addr = match.group(1)
        if self.addr is None:
            self.proc.kill()
            raise RuntimeError("the server did not start")
        # Keep draining its log so it never blocks on a full pipe.
        self.drain = threading.Thread(target=self.proc.stderr.read, daemon=True)
        self.drain.start()
        self.url = "ws://%s/chat" % self.addr

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.drain.join(timeout=5)
        if not self.drain.is_alive():
            self.proc.stderr.close()


class ServerTestCase(unittest.TestCase):
    """One real server for all the tests of a class (rate limit off)."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server("--rate", "0")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()


class ProtocolTests(unittest.TestCase):
    """The RFC 6455 half, on its own."""

    def test_rfc_1_3_accept_key(self):
        self.assertEqual(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")

    def test_rfc_5_7_masking(self):
        self.assertEqual(mask(b"Hello", bytes([0x37, 0xFA, 0x21, 0x3D])), bytes([0x7F, 0x9F, 0x4D, 0x51, 0x58]))

    def test_frames_are_masked_with_a_fresh_key_each_time(self):
        a, b = encode_frame(0x1, b"Hello"), encode_frame(0x1, b"Hello")
        self.assertEqual(a[:2], bytes([0x81, 0x85]))
        self.assertNotEqual(a[2:6], b[2:6])
        self.assertEqual(mask(a[6:], a[2:6]), b"Hello")

    def test_backoff_grows_exponentially_with_jitter(self):
        self.assertEqual(backoff(0, rand=lambda: 0), 0.125)
        self.assertEqual(backoff(0, rand=lambda: 1), 0.25)
        self.assertEqual(backoff(3, rand=lambda: 1), 2.0)
        self.assertEqual(backoff(5000, rand=lambda: 1), 10.0)
        for n in range(10):
            self.assertTrue(min(10.0, 0.25 * 2 ** n) / 2 <= backoff(n) <= 10.0)

    def test_urls(self):
        self.assertEqual(split_url("ws://127.0.0.1:8080/chat?name=a"), ("127.0.0.1", 8080, "/chat?name=a"))
        self.assertEqual(split_url("ws://example.com"), ("example.com", 80, "/"))
        for bad in ("http://localhost:8080/chat", "localhost:8080/chat", "garbage", "ws://host:port/chat", "ws:///chat"):
            with self.assertRaises(ValueError, msg=bad):
                split_url(bad)

    def test_length_forms(self):
        self.assertEqual(encode_frame(0x2, b"x" * 125)[1], 0x80 | 125)
        self.assertEqual(encode_frame(0x2, b"x" * 126)[1:4], bytes([0xFE, 0x00, 0x7E]))
        self.assertEqual(encode_frame(0x2, b"x" * 65536)[1:10], bytes([0xFF, 0, 0, 0, 0, 0, 1, 0, 0]))


class ClientTests(ServerTestCase):
    def join(self, name):
        client = SwitchboardClient.connect(self.server.url, name=name)
        self.addCleanup(client.close)
        return client

    def message(self, client):
        return client.wait_for(lambda e: e["type"] == "message", timeout=5)

    def test_echo_route_speaks_text_and_binary(self):
        ws = WebSocket.connect("ws://%s/echo" % self.server.addr)
        ws.send_text("κόσμε")
        self.assertEqual(ws.recv(), ("text", "κόσμε"))
        ws.send_frame(0x2, b"\x00\x01", fin=False)
        ws.send_frame(0x0, b"\x02")
        self.assertEqual(ws.recv(), ("binary", b"\x00\x01\x02"))
        ws.close(1000)
        self.assertIsNone(ws.recv())
        self.assertEqual(ws.close_code, 1000)

    def test_welcome_and_broadcast(self):
        alice = self.join("py-alice")
        self.assertEqual(alice.name, "py-alice")
        bob = self.join("py-bob")
        alice.broadcast("hello", id=1)
        for c in (alice, bob):
            m = self.message(c)
            self.assertEqual((m["kind"], m["from"], m["text"]), ("broadcast", "py-alice", "hello"))
        ack = alice.wait_for(lambda e: e["type"] == "ack")
        self.assertEqual(ack["id"], 1)

    def test_direct_and_multicast(self):
        a, b, c = self.join("py-a"), self.join("py-b"), self.join("py-c")
        a.direct("py-b", "psst")
        m = self.message(b)
        self.assertEqual((m["kind"], m["to"], m["text"]), ("direct", "py-b", "psst"))
        a.multicast(["py-b", "py-c"], "both")
        for client in (b, c):
            self.assertEqual(self.message(client)["to"], ["py-b", "py-c"])

    def test_topics(self):
        pub, sub = self.join("py-pub"), self.join("py-sub")
        sub.subscribe("py-news", id="s")
        self.assertEqual(sub.wait_for(lambda e: e["type"] == "ack")["topic"], "py-news")
        pub.publish("py-news", "extra")
        m = self.message(sub)
        self.assertEqual((m["kind"], m["topic"], m["text"]), ("publish", "py-news", "extra"))
        self.assertIn({"name": "py-news", "subscribers": 1}, pub.request("topics")["topics"])
        sub.unsubscribe("py-news", id="u")
        sub.wait_for(lambda e: e["type"] == "ack")

    def test_requests(self):
        me = self.join("py-req")
        self.assertIn("py-req", me.request("users")["users"])
        self.assertEqual(me.request("whoami")["name"], "py-req")
        self.assertEqual(me.request("echo", {"x": [1, 2]}), {"x": [1, 2]})
        self.assertGreater(me.request("time")["unix_ms"], 1_700_000_000_000)
        self.assertIn("uptime_s", me.request("stats"))
        self.assertEqual(me.request("rename", {"name": "py-req2"}), {"name": "py-req2"})
        with self.assertRaises(ResponseError) as err:
            me.request("nope")
        self.assertEqual(err.exception.code, "unknown_method")

    def test_history_after_a_reconnect(self):
        talker = self.join("py-talker")
        listener = self.join("py-listener")
        talker.broadcast("before")
        seen = self.message(listener)["seq"]
        listener.close()
        talker.broadcast("while away")
        self.message(talker)
        self.message(talker)
        back = self.join("py-listener")
        result = back.request("history", {"after": seen})
        self.assertEqual([m["text"] for m in result["messages"]], ["while away"])
        self.assertTrue(result["complete"])

    def test_search(self):
        me = self.join("py-search")
        me.subscribe("py-find-topic", id="s")
        me.wait_for(lambda e: e["type"] == "ack" and e.get("id") == "s")
        me.broadcast("PyFind lunch one", id="b1")
        me.broadcast("pyfind, but no meal", id="b2")
        me.publish("py-find-topic", "pyfind LUNCH in a topic", id="p")
        me.direct("py-search", "pyfind lunch, direct: not kept", id="d")
        me.broadcast("lunch pyfind two", id="b3")
        me.wait_for(lambda e: e["type"] == "ack" and e.get("id") == "b3")

        def texts(result):
            return [m["text"] for m in result["messages"]]

        everywhere = me.search("pyfind lunch")
        self.assertEqual(texts(everywhere), ["lunch pyfind two", "pyfind LUNCH in a topic", "PyFind lunch one"])
        self.assertFalse(everywhere["more"])
        self.assertEqual(everywhere["messages"][1]["topic"], "py-find-topic")
        self.assertEqual(texts(me.search("pyfind", topic="py-find-topic")), ["pyfind LUNCH in a topic"])
        first = me.search("pyfind lunch", limit=2)
        self.assertEqual((texts(first), first["more"]), (["lunch pyfind two", "pyfind LUNCH in a topic"], True))
        rest = me.search("pyfind lunch", limit=2, before=first["messages"][-1]["seq"])
        self.assertEqual((texts(rest), rest["more"]), (["PyFind lunch one"], False))
        self.assertEqual(texts(me.search("pyfind nothing-like-this")), [])
        for bad in ({"q": ""}, {"q": "x" * 201}, {"q": "x", "limit": 0}):
            with self.assertRaises(ResponseError, msg=bad) as err:
                me.search(**bad)
            self.assertEqual(err.exception.code, "bad_request")

    def test_errors_keep_the_connection(self):
        me = self.join("py-err")
        me.direct("nobody-here", "hi", id=4)
        e = me.wait_for(lambda e: e["type"] == "error")
        self.assertEqual((e["code"], e["id"]), ("unknown_user", 4))
        self.assertEqual(me.request("whoami")["name"], "py-err")


class CliTests(ServerTestCase):
    """chat.py, driven in its scripted modes."""

    def cli(self, *args, stdin=None):
        return subprocess.run(
            [sys.executable, os.path.join(HERE, "chat.py"), self.server.url] + list(args),
            input=stdin, capture_output=True, text=True, timeout=30,
        )

    def test_send_and_expect_every_command(self):
        peer = SwitchboardClient.connect(self.server.url, name="cli-peer")
        self.addCleanup(peer.close)
        peer.subscribe("cli-topic")
        result = self.cli(
            "--name", "cli-user",
            "--send", "hello from the cli",
            "--send", "/msg cli-peer psst",
            "--send", "/multi cli-peer,cli-user both",
            "--send", "/sub cli-topic",
            "--send", "/pub cli-topic extra",
            "--send", "/users",
            "--send", "/topics",
            "--send", "/history",
            "--send", "/unsub cli-topic",
            "--send", "/nick cli-renamed",
            "--expect", "cli-user: hello from the cli",
            "--expect", "cli-user -> cli-peer: psst",
            "--expect", "cli-user -> cli-peer,cli-user: both",
            "--expect", "ok: cli-topic",
            "--expect", "#cli-topic cli-user: extra",
            "--expect", "users: ",
            "--expect", "topics: ",
            "--expect", "history: ",
            "--expect", "you are now cli-renamed",
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        texts = []
        for event in peer.events(timeout=2):
            if event["type"] == "message":
                texts.append((event["kind"], event["text"]))
        self.assertIn(("broadcast", "hello from the cli"), texts)
        self.assertIn(("direct", "psst"), texts)
        self.assertIn(("multicast", "both"), texts)
        self.assertIn(("publish", "extra"), texts)

    def test_search_command(self):
        peer = SwitchboardClient.connect(self.server.url, name="cli-find-peer")
        self.addCleanup(peer.close)
        peer.broadcast("clifind apples", id=1)
        peer.publish("cli-find-topic", "clifind pears, in a topic", id=2)
        peer.broadcast("Apples and CLIFIND again", id=3)
        peer.broadcast("clifind nothing else", id=4)
        for n in range(21):
            peer.broadcast("clibulk %d" % n, id=5 + n)
        peer.wait_for(lambda e: e["type"] == "ack" and e.get("id") == 25)
        result = self.cli(
            "--name", "cli-finder",
            "--send", "/search clifind apples",
            "--send", "/search #cli-find-topic clifind",
            "--send", "/search",
            "--send", "/search no-such-word-anywhere",
            "--send", "/search clibulk",
            "--send", "/help",
            "--expect", 'search for "clifind apples": 2 messages, newest first',
            "--expect", 'search of #cli-find-topic for "clifind": 1 messages, newest first',
            "--expect", "! usage: /search [#TOPIC] WORDS",
            "--expect", 'search for "no-such-word-anywhere": 0 messages',
            "--expect", 'search for "clibulk": 20 messages',
            "--expect", "(older matches not shown)",
            "--expect", "/search [#TOPIC] WORDS",
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertNotIn("unknown command", result.stdout)
        # Each search's matches are the indented lines under its heading.
        found, heading = {}, None
        for line in result.stdout.splitlines():
            if line.startswith("search"):
                heading = line
                found[heading] = []
            elif line.startswith("  [") and heading:
                found[heading].append(re.sub(r"^  \[\d\d:\d\d:\d\d\] ", "", line))
        self.assertEqual(list(found.values()), [
            ["cli-find-peer: Apples and CLIFIND again", "cli-find-peer: clifind apples"],
            ["#cli-find-topic cli-find-peer: clifind pears, in a topic"],
            [],
            ["cli-find-peer: clibulk %d" % n for n in range(20, 0, -1)],
        ], result.stdout)

    def test_expect_fails_when_nothing_comes(self):
        result = self.cli("--name", "cli-wait", "--expect", "never said", "--timeout", "0.5")
        self.assertEqual(result.returncode, 1)
        self.assertIn("never said", result.stderr)

    def test_json_mode_passes_lines_through(self):
        lines = '{"type":"request","id":1,"method":"whoami"}\nplain text\n'
        result = self.cli("--name", "cli-json", "--json", "--linger", "1", stdin=lines)
        self.assertEqual(result.returncode, 0, result.stderr)
        # Every line is one JSON object: the welcome first, the raw
        # request's response, the plain line sent as a broadcast.
        out = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual(out[0]["type"], "welcome")
        responses = [e for e in out if e["type"] == "response" and e["id"] == 1]
        self.assertEqual(len(responses), 1, out)
        self.assertEqual(responses[0]["result"]["name"], "cli-json")
        self.assertTrue(any(e.get("type") == "message" and e["text"] == "plain text" for e in out), out)

    def test_commands_from_a_pipe(self):
        result = self.cli("--name", "cli-pipe", "--linger", "1", stdin="/users\n/quit\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("users: ", result.stdout)
        self.assertIn("cli-pipe", result.stdout)

    def test_bad_urls_are_a_one_line_error(self):
        for url in ("http://127.0.0.1:1/chat", "127.0.0.1:1/chat", "not a url", "ws://127.0.0.1:port/chat"):
            result = subprocess.run(
                [sys.executable, os.path.join(HERE, "chat.py"), url],
                capture_output=True, text=True, timeout=30,
            )
            self.assertEqual(result.returncode, 2, "%s:\n%s" % (url, result.stderr))
            self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
            self.assertIn("bad URL", result.stderr)
            self.assertNotIn("Traceback", result.stderr)

    def test_unreachable_server_is_a_clear_error(self):
        result = subprocess.run(
            [sys.executable, os.path.join(HERE, "chat.py"), "ws://127.0.0.1:1/chat"],
            capture_output=True, text=True, timeout=30,
        )
        self.assertEqual(result.returncode, 2)
        self.assertIn("cannot connect", result.stderr)


class Cli:
    """chat.py running interactively on a pipe: lines typed on its stdin,
    its output collected as it comes."""

    def __init__(self, test, url, *args):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "chat.py"), url] + list(args),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
        )
        test.addCleanup(self.kill)
        self.out, self.err = [], []
        self.cond = threading.Condition()
        self.collectors = []
        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            self.collectors.append(threading.Thread(target=self._collect, args=(stream, lines), daemon=True))
            self.collectors[-1].start()

    def _collect(self, stream, lines):
        for line in stream:
            with self.cond:
                lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def transcript(self):
        with self.cond:
            return "stdout:\n%s\nstderr:\n%s" % ("\n".join(self.out), "\n".join(self.err))

    def wait_for(self, pattern, timeout=10):
        """The first printed line matching `pattern` (a regex); fails the test,
        showing everything printed, if none comes within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.out:
                    if re.search(pattern, line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no line matching %r within %ss\n%s" % (pattern, timeout, self.transcript()))
                self.cond.wait(left)

    def count(self, pattern):
        with self.cond:
            return sum(1 for line in self.out if re.search(pattern, line))

    def type(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout=15):
        """Close stdin (end of input) and return the exit code."""
        self.proc.stdin.close()
        code = self.proc.wait(timeout=timeout)
        for t in self.collectors:
            t.join(timeout=5)  # everything printed is in self.out / self.err
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for t in self.collectors:
            t.join(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass  # stdin's last buffered line could not be written


class Outage:
    """A TCP relay on a free loopback port in front of the server. `cut()`
    drops every connection through it and refuses new ones until
    `restore()`: a network outage that the server itself survives."""

    def __init__(self, target):
        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.url = "ws://127.0.0.1:%d/chat" % self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.done.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if not self.up.is_set():
                conn.close()  # refused: the client sees the handshake fail
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                conn.close()
                continue
            with self.lock:
                self.socks += [conn, upstream]
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes the other pump
            except OSError:
                pass

    def cut(self):
        self.up.clear()
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def restore(self):
        self.up.set()

    def close(self):
        self.done.set()
        self.cut()
        self.listener.close()


class ReconnectTests(unittest.TestCase):
    """chat.py, interactive, when the connection or the server goes away."""

    def test_a_line_typed_while_the_server_is_gone_is_refused_and_it_reconnects(self):
        server = Server("--rate", "0")
        self.addCleanup(lambda: server.stop())
        cli = Cli(self, server.url, "--name", "py-back")
        cli.wait_for("connected as py-back")
        server.stop()  # a clean shutdown: the server closes with 1001
        cli.wait_for(r"^\* (connection lost|disconnected)")
        cli.type("typed while the server is gone")
        cli.wait_for("^! not connected")
        self.assertIsNone(cli.proc.poll(), "chat.py is still running\n" + cli.transcript())

        server = Server("--rate", "0", listen=server.addr)  # the same port again
        cli.wait_for("reconnected as py-back", timeout=30)
        # A new process has a new history: it says what it cannot catch up.
        cli.wait_for("missed messages: the server restarted")
        peer = SwitchboardClient.connect(server.url, name="py-peer")
        self.addCleanup(peer.close)
        cli.type("back again")
        m = peer.wait_for(lambda e: e["type"] == "message", timeout=10)
        self.assertEqual((m["from"], m["text"]), ("py-back", "back again"))
        self.assertEqual(cli.finish(), 0, cli.transcript())
        self.assertNotIn("Traceback", cli.transcript())

    def test_a_restart_notice_sets_when_it_comes_back(self):
        server = Server("--rate", "0", "--restart-spread", "4s")
        self.addCleanup(lambda: server.stop())
        cli = Cli(self, server.url, "--name", "py-notice")
        cli.wait_for("connected as py-notice")
        server.stop()  # SIGTERM: a "restarting" notice, then Close 1001
        notice, retry = r"^\* the server is restarting; back in (\d+\.\d) s", r"^\* connection lost; reconnecting in (\d+) ms"
        told = re.search(notice, cli.wait_for(notice))
        waits = re.search(retry, cli.wait_for(retry))
        # The client waits what the server told it, not its own back-off.
        self.assertAlmostEqual(float(told.group(1)) * 1000, int(waits.group(1)), delta=50)
        self.assertLessEqual(int(waits.group(1)), 4000)
        server = Server("--rate", "0", listen=server.addr)
        cli.wait_for("reconnected as py-notice", timeout=30)
        self.assertEqual(cli.finish(), 0, cli.transcript())

    def test_after_a_dropped_connection_it_catches_up(self):
        server = Server("--rate", "0")
        self.addCleanup(lambda: server.stop())
        outage = Outage(server.addr)
        self.addCleanup(outage.close)
        talker = SwitchboardClient.connect(server.url, name="py-talker")
        self.addCleanup(talker.close)
        cli = Cli(self, outage.url, "--name", "py-away")
        cli.wait_for("connected as py-away")
        cli.type("/sub py-feed")
        cli.wait_for("^ok: py-feed")
        talker.broadcast("before the outage")
        cli.wait_for("py-talker: before the outage")

        outage.cut()
        cli.wait_for(r"^\* connection lost; reconnecting in \d+ ms")
        talker.wait_for(lambda e: e["type"] == "presence" and e["event"] == "leave" and e["name"] == "py-away")
        cli.type("typed while away")
        cli.wait_for("^! not connected")
        talker.broadcast("missed broadcast", id="b")
        talker.publish("py-feed", "missed publish", id="p")
        talker.wait_for(lambda e: e["type"] == "ack" and e["id"] == "p")

        outage.restore()
        cli.wait_for("reconnected as py-away", timeout=30)
        cli.wait_for("py-talker: missed broadcast")
        cli.wait_for("#py-feed py-talker: missed publish")
        # Its topic was restored: new messages keep coming, live.
        talker.publish("py-feed", "live again")
        cli.wait_for("#py-feed py-talker: live again")
        self.assertEqual(cli.count("missed broadcast"), 1, cli.transcript())
        self.assertEqual(cli.count("before the outage"), 1, cli.transcript())
        self.assertEqual(cli.count("missed messages"), 0, cli.transcript())
        # Nothing typed while away was sent late.
        texts = [e.get("text") for e in talker.events(timeout=0.5) if e["type"] == "message"]
        self.assertNotIn("typed while away", texts)
        self.assertEqual(cli.finish(), 0, cli.transcript())
        self.assertNotIn("Traceback", cli.transcript())


def make_pki(folder):
    """A throwaway CA and a certificate it signed for 127.0.0.1 and
    localhost, made now with the openssl command: (ca.crt, server.crt,
    server.key) paths."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=folder, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=switchboard test CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(folder, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "1", "-extfile", "san.ext")
    return tuple(os.path.join(folder, n) for n in ("ca.crt", "server.crt", "server.key"))


class TlsTests(unittest.TestCase):
    """wss:// against the server with --tls-cert, certificates made now."""

    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.mkdtemp(prefix="switchboard-tls-")
        cls.ca, cert, key = make_pki(cls.folder)
        cls.server = Server("--tls-cert", cert, "--tls-key", key)
        cls.url = "wss://%s/chat" % cls.server.addr

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.folder, ignore_errors=True)

    def cli(self, *args):
        return subprocess.run(
            [sys.executable, os.path.join(HERE, "chat.py"), self.url] + list(args),
            capture_output=True, text=True, timeout=30,
        )

    def test_chat_over_wss_trusting_the_ca(self):
        result = self.cli("--cafile", self.ca, "--name", "tls-py", "--send", "hello over wss",
                          "--expect", "tls-py: hello over wss")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("connected as tls-py", result.stdout)

    def test_an_unknown_ca_is_refused_and_insecure_warns(self):
        refused = self.cli("--name", "tls-no", "--send", "x")
        self.assertEqual(refused.returncode, 2, refused.stdout + refused.stderr)
        self.assertIn("CERTIFICATE_VERIFY_FAILED", refused.stderr)
        insecure = self.cli("--insecure", "--name", "tls-yes", "--send", "hi", "--expect", "tls-yes: hi")
        self.assertEqual(insecure.returncode, 0, insecure.stdout + insecure.stderr)
        self.assertIn("warning: --insecure", insecure.stderr)

    def test_the_client_module_speaks_wss(self):
        use_tls(cafile=self.ca)
        try:
            client = SwitchboardClient.connect(self.url, name="tls-module")
            self.addCleanup(client.close)
            self.assertEqual(client.name, "tls-module")
            self.assertIn("tls-module", client.request("users")["users"])
        finally:
            rfc6455._tls = None


if __name__ == "__main__":
    unittest.main()
