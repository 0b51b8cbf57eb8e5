"""The client side of RFC 6455 (WebSocket) in standard-library Python,
written out to be read: it is the mirror image of the server's
`src/protocol/` (the server checks what this code produces, and produces
what this code checks):

    opening handshake (section 4.1)   <->  src/protocol/handshake.rs
    frames and masking (5.2, 5.3)     <->  src/protocol/frame.rs
    fragments, control frames (5.4)   <->  src/protocol/session.rs
    closing handshake (5.5.1, 7)      <->  src/protocol/close.rs

`switchboard_client.py` speaks the chat protocol on top of it.
"""

import base64
import hashlib
import os
import socket
import ssl
import struct
import threading
import urllib.parse

__all__ = ["WebSocket", "ProtocolError", "accept_key", "split_url", "mask", "encode_frame"]

# Section 1.3: the GUID appended to the key before hashing.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Opcodes (section 5.2).
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
# Header bits.
FIN, RSV_MASK, OPCODE_MASK, MASK, LEN7_MASK = 0x80, 0x70, 0x0F, 0x80, 0x7F


class ProtocolError(Exception):
    """The server broke RFC 6455 (or the connection failed)."""


def accept_key(key):
    """base64(SHA-1(key + GUID)): what the server must answer (section 4.2.2)."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def split_url(url):
    """(host, port, target) of a `ws://` or `wss://host[:port]/path?query`
    URL; ValueError with a one-line reason for anything else."""
    return parse_url(url)[1:]


def parse_url(url):
    """(secure, host, port, target): `secure` for wss:// (TLS, port 443 by
    default)."""
    try:
        parts = urllib.parse.urlsplit(url)
        secure = parts.scheme == "wss"
        port = parts.port or (443 if secure else 80)
    except ValueError as e:
        raise ValueError("bad URL %r: %s" % (url, e)) from None
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError("bad URL %r: expected ws://HOST[:PORT]/chat or wss://..." % url)
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    return secure, parts.hostname, port, target


# How wss:// servers are checked (see use_tls); None: the system's trust store.
_tls = None


def use_tls(cafile=None, insecure=False):
    """Check wss:// servers against `cafile` (a PEM file of CA certificates)
    instead of the system's trust store; or, with `insecure`, not at all
    (for a test server with a self-signed certificate: anyone in between
    could then read and change everything)."""
    global _tls
    context = ssl.create_default_context(cafile=cafile)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    _tls = context


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
        """Open `ws://host:port/path?query` (or wss://, over TLS) and complete
        the handshake."""
        secure, host, port, target = parse_url(url)
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if secure:
            context = _tls
            if context is None:
                context = ssl.create_default_context()
                context.set_alpn_protocols(["http/1.1"])
            sock = context.wrap_socket(sock, server_hostname=host)
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
