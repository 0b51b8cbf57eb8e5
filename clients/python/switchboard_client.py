"""A Switchboard chat client in standard-library Python (3.9+).

The first half is the client side of RFC 6455, written out to be read: it
is the mirror image of the server's `src/protocol/` (the server checks what
this code produces, and produces what this code checks):

    opening handshake (section 4.1)   <->  src/protocol/handshake.rs
    frames and masking (5.2, 5.3)     <->  src/protocol/frame.rs
    fragments, control frames (5.4)   <->  src/protocol/session.rs
    closing handshake (5.5.1, 7)      <->  src/protocol/close.rs

The second half, `SwitchboardClient`, speaks the chat protocol of
docs/PROTOCOL.md on top of it.

    client = SwitchboardClient.connect("ws://localhost:8080/chat", name="alice")
    client.broadcast("hello")
    for event in client.events(timeout=5):
        print(event)
"""

import base64
import hashlib
import itertools
import json
import os
import queue
import random
import socket
import struct
import threading
import time
import urllib.parse

__all__ = ["WebSocket", "SwitchboardClient", "ProtocolError", "ResponseError", "accept_key", "split_url", "backoff"]

# Section 1.3: the GUID appended to the key before hashing.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Opcodes (section 5.2).
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
# Header bits.
FIN, RSV_MASK, OPCODE_MASK, MASK, LEN7_MASK = 0x80, 0x70, 0x0F, 0x80, 0x7F


class ProtocolError(Exception):
    """The server broke RFC 6455 (or the connection failed)."""


class ResponseError(Exception):
    """A request got an error response: `.code` and `.message`."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message


def accept_key(key):
    """base64(SHA-1(key + GUID)): what the server must answer (section 4.2.2)."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def split_url(url):
    """(host, port, target) of a `ws://host[:port]/path?query` URL; ValueError
    with a one-line reason for anything else."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or 80
    except ValueError as e:
        raise ValueError("bad URL %r: %s" % (url, e)) from None
    if parts.scheme != "ws" or not parts.hostname:
        # wss:// would need TLS, which this small client leaves out.
        raise ValueError("bad URL %r: expected ws://HOST[:PORT]/chat" % url)
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    return parts.hostname, port, target


def backoff(attempt, base=0.25, maximum=10.0, rand=random.random):
    """Seconds to wait before reconnect attempt `attempt` (0-based):
    exponential from `base` to `maximum`, with jitter so clients do not come
    back in step (the same as backoff() in clients/web/switchboard.mjs)."""
    ceiling = min(maximum, base * 2 ** min(attempt, 32))
    return ceiling / 2 + rand() * ceiling / 2


def mask(payload, key):
    """XOR the payload with the 4-byte key (section 5.3). Masking twice unmasks."""
    # Python: XOR the whole payload at once as one big integer.
    n = len(payload)
    if n == 0:
        return b""
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def encode_frame(opcode, payload, fin=True):
    """One client frame: always masked, with a fresh random key (section 5.3:
    the key "MUST be derived from a strong source of entropy")."""
    first = (FIN if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", first, MASK | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", first, MASK | 126, n)
    else:
        header = struct.pack("!BBQ", first, MASK | 127, n)
    key = os.urandom(4)
    return header + key + mask(payload, key)


class WebSocket:
    """A blocking client WebSocket over one TCP socket."""

    def __init__(self, sock, leftover=b""):
        self.sock = sock
        self.buf = bytearray(leftover)
        self.closed = False
        self.close_code = None
        self.close_reason = ""
        self._send_lock = threading.Lock()
        self._fragments = None  # (opcode, [parts]) while a message is fragmented

    # -- opening handshake (section 4.1) -----------------------------------

    @classmethod
    def connect(cls, url, timeout=10.0, headers=None):
        """Open `ws://host:port/path?query` and complete the handshake."""
        host, port, target = split_url(url)
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Section 4.1: a random 16-byte nonce, base64-encoded.
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        lines = [
            "GET %s HTTP/1.1" % target,
            "Host: %s:%d" % (host, port),
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: %s" % key,
            "Sec-WebSocket-Version: 13",
        ]
        for name, value in (headers or {}).items():
            lines.append("%s: %s" % (name, value))
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))

        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise ProtocolError("server closed the connection during the handshake")
            head += chunk
            if len(head) > 16384:
                raise ProtocolError("handshake response too large")
        head, _, leftover = head.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        fields = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if status_line.split(" ")[1:2] != ["101"]:
            raise ProtocolError("upgrade refused: %s" % status_line)
        # Section 4.1: the client MUST check the accept value.
        if fields.get("sec-websocket-accept") != accept_key(key):
            raise ProtocolError("wrong Sec-WebSocket-Accept")
        sock.settimeout(None)
        return cls(sock, leftover)

    # -- sending -------------------------------------------------------------

    def send_frame(self, opcode, payload, fin=True):
        if self.closed:
            # Say so, rather than write to a socket already closed (EBADF).
            raise ConnectionError("not connected")
        with self._send_lock:
            self.sock.sendall(encode_frame(opcode, payload, fin))

    def send_text(self, text):
        self.send_frame(TEXT, text.encode("utf-8"))

    def ping(self, payload=b""):
        self.send_frame(PING, payload)

    def close(self, code=1000, reason=""):
        """Start the closing handshake (section 7.1.2): send Close, then the
        reader waits for the server's Close and the end of TCP."""
        if not self.closed:
            try:
                self.send_frame(CLOSE, struct.pack("!H", code) + reason.encode("utf-8")[:123])
            except OSError:
                pass

    # -- receiving (sections 5.2, 5.4, 5.5) ----------------------------------

    def _read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                # A 0-byte read: the server closed TCP.
                raise EOFError("connection closed")
            self.buf += chunk
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def _read_frame(self):
        b0, b1 = self._read_exact(2)
        fin, rsv, opcode = bool(b0 & FIN), b0 & RSV_MASK, b0 & OPCODE_MASK
        if rsv:
            raise ProtocolError("reserved bits set")
        if b1 & MASK:
            # Section 5.1: "A client MUST close a connection if it detects a masked frame."
            raise ProtocolError("server frames must not be masked")
        n = b1 & LEN7_MASK
        if n == 126:
            (n,) = struct.unpack("!H", self._read_exact(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._read_exact(8))
        return fin, opcode, self._read_exact(n)

    def recv(self):
        """The next message as ("text", str) or ("binary", bytes), or None when
        the connection has closed. Pings are answered on the way."""
        while True:
            try:
                fin, opcode, payload = self._read_frame()
            except (EOFError, OSError):
                self.closed = True
                self.sock.close()
                return None
            if opcode == PING:
                self.send_frame(PONG, payload)  # Section 5.5.2: same payload.
            elif opcode == PONG:
                pass
            elif opcode == CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.close_reason = payload[2:].decode("utf-8", "replace")
                # Section 5.5.1: answer a Close with a Close (echo the code).
                if not self.closed:
                    try:
                        self.send_frame(CLOSE, payload[:2])
                    except OSError:
                        pass
                self.closed = True
                self._drain_until_eof()
                return None
            elif opcode in (TEXT, BINARY):
                if self._fragments is not None:
                    raise ProtocolError("new message inside a fragmented one")
                if fin:
                    return self._message(opcode, payload)
                self._fragments = (opcode, [payload])
            elif opcode == CONTINUATION:
                if self._fragments is None:
                    raise ProtocolError("continuation with no message started")
                self._fragments[1].append(payload)
                if fin:
                    first, parts = self._fragments
                    self._fragments = None
                    return self._message(first, b"".join(parts))
            else:
                raise ProtocolError("reserved opcode %#x" % opcode)

    def _message(self, opcode, payload):
        if opcode == TEXT:
            return ("text", payload.decode("utf-8"))
        return ("binary", payload)

    def _drain_until_eof(self):
        # Section 7.1.1: the server closes TCP first; wait briefly for it.
        self.sock.settimeout(2.0)
        try:
            while self.sock.recv(4096):
                pass
        except OSError:
            pass
        self.sock.close()


class SwitchboardClient:
    """The chat protocol of docs/PROTOCOL.md over a WebSocket.

    A reader thread puts every incoming JSON event on a queue; `events()`
    iterates over them. `request()` sends a request and waits for the
    response with the same id (other events keep flowing to `events()`).
    """

    def __init__(self, ws):
        self.ws = ws
        self.welcome = None
        self._events = queue.Queue()
        self._waiting = {}  # request id -> queue for its response
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._reader = threading.Thread(target=self._read_loop, name="switchboard-reader", daemon=True)

    @classmethod
    def connect(cls, url, name=None, timeout=10.0):
        """Connect to a `/chat` URL, as `name` if given; waits for the welcome."""
        if name is not None:
            sep = "&" if "?" in url else "?"
            url += sep + "name=" + urllib.parse.quote(name)
        client = cls(WebSocket.connect(url, timeout=timeout))
        client._reader.start()
        client.welcome = client.next_event(timeout)
        if not client.welcome or client.welcome.get("type") != "welcome":
            raise ProtocolError("expected a welcome, got %r" % (client.welcome,))
        return client

    @property
    def name(self):
        return self.welcome["name"]

    # -- sending ---------------------------------------------------------------

    def send(self, message):
        """Send one JSON object."""
        self.ws.send_text(json.dumps(message, separators=(",", ":")))

    def _with_id(self, message, id):
        if id is not None:
            message["id"] = id
        self.send(message)

    def broadcast(self, text, id=None):
        self._with_id({"type": "broadcast", "text": text}, id)

    def direct(self, to, text, id=None):
        self._with_id({"type": "direct", "to": to, "text": text}, id)

    def multicast(self, to, text, id=None):
        self._with_id({"type": "multicast", "to": list(to), "text": text}, id)

    def subscribe(self, topic, id=None):
        self._with_id({"type": "subscribe", "topic": topic}, id)

    def unsubscribe(self, topic, id=None):
        self._with_id({"type": "unsubscribe", "topic": topic}, id)

    def publish(self, topic, text, id=None):
        self._with_id({"type": "publish", "topic": topic, "text": text}, id)

    def request(self, method, params=None, timeout=10.0):
        """Send a request and return its `result`; raise ResponseError for an
        error response and TimeoutError if none comes in time."""
        id = "r%d" % next(self._ids)
        waiter = queue.Queue(maxsize=1)
        with self._lock:
            self._waiting[id] = waiter
        try:
            self.send({"type": "request", "id": id, "method": method, "params": params or {}})
            try:
                response = waiter.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError("no response to %s within %.1fs" % (method, timeout)) from None
        finally:
            with self._lock:
                self._waiting.pop(id, None)
        if response is None:
            raise ProtocolError("connection closed while waiting for %s" % method)
        if "error" in response:
            raise ResponseError(response["error"].get("code"), response["error"].get("message"))
        return response.get("result")

    def search(self, q, topic=None, limit=None, before=None, timeout=10.0):
        """Kept messages (broadcasts and topics) with every word of `q`, as
        the `search` result: {"messages": [newest first], "more": bool}.
        `topic`: only that topic (otherwise every stream); `limit`: 1-100
        (default 20); `before`: a seq (page on with the oldest seq of the
        last page while `more` is true)."""
        params = {"q": q}
        for key, value in (("topic", topic), ("limit", limit), ("before", before)):
            if value is not None:
                params[key] = value
        return self.request("search", params, timeout=timeout)

    def catch_up(self, after, topics=(), pages=20):
        """What was missed since seq `after`, after a reconnect: `history`
        `after` it from the broadcast stream and each topic (paging forward),
        as (messages oldest first, complete). `complete` is False when the
        server no longer had some of them."""
        missed, complete = [], True
        for topic in [None] + sorted(topics):
            since = after
            for _ in range(pages):
                params = {"after": since, "limit": 100}
                if topic is not None:
                    params["topic"] = topic
                result = self.request("history", params)
                complete = complete and result.get("complete", True)
                missed.extend(result["messages"])
                if not result.get("more") or not result["messages"]:
                    break
                since = result["messages"][-1]["seq"]
        missed.sort(key=lambda m: m["seq"])
        return missed, complete

    def close(self, code=1000):
        self.ws.close(code)
        self._reader.join(timeout=3)

    # -- receiving -------------------------------------------------------------

    def _read_loop(self):
        while True:
            message = self.ws.recv()
            if message is None:
                break
            kind, data = message
            if kind != "text":
                continue
            try:
                event = json.loads(data)
            except ValueError:
                continue
            if event.get("type") == "response":
                with self._lock:
                    waiter = self._waiting.get(event.get("id"))
                if waiter is not None:
                    waiter.put(event)
                    continue
            self._events.put(event)
        with self._lock:
            for waiter in self._waiting.values():
                waiter.put(None)
        self._events.put(None)  # end of stream

    def next_event(self, timeout=None):
        """The next event, or None when the connection closed; raises
        TimeoutError if nothing arrives within `timeout` seconds."""
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no event within %.1fs" % timeout) from None

    def events(self, timeout=None):
        """Iterate over events until the connection closes (or `timeout`
        seconds pass with nothing new)."""
        while True:
            try:
                event = self.next_event(timeout)
            except TimeoutError:
                return
            if event is None:
                return
            yield event

    def wait_for(self, predicate, timeout=10.0):
        """The first event for which `predicate(event)` is true; the events
        before it are dropped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching event within %.1fs" % timeout)
            event = self.next_event(left)
            if event is None:
                raise ProtocolError("connection closed (code %s)" % self.ws.close_code)
            if predicate(event):
                return event
