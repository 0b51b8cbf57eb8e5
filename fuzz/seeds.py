#!/usr/bin/env python3
"""Write the seed corpus of each fuzz target (fuzz/corpus/NAME/seed-*):
the vectors of the unit tests and docs/PROTOCOL.md, in each target's input
format (see src/fuzzing.rs). `cargo fuzz cmin` then keeps what adds
coverage; both the seeds and what the fuzzer found are committed."""

import base64, hashlib, hmac, json, os, struct

HERE = os.path.dirname(os.path.abspath(__file__))
MASK = b"\x37\xfa\x21\x3d"


def frame(op, payload, fin=True, mask=True):
    b0 = (0x80 if fin else 0) | op
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    body = bytes(c ^ MASK[i % 4] for i, c in enumerate(payload))
    return head + MASK + body


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims, key=b"a fuzzing key of thirty-two bytes"):
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


LIMITS = struct.pack("<HH", 1024, 4096) + b"\x07"
SEEDS = {
    "frame_header": [
        frame(0x1, b"Hello"),
        frame(0x2, b"x" * 200),
        frame(0x2, b"x" * 70000)[:14],
        frame(0x1, b"Hello", mask=False),
        frame(0x9, b"ping"),
        bytes([0x81, 0xFF]) + b"\x80" + b"\0" * 7,
        bytes([0xF1, 0x80]),
    ],
    "session": [
        LIMITS + frame(0x1, b"Hello"),
        LIMITS + frame(0x1, b"Hel", fin=False) + frame(0x9, b"p") + frame(0x0, b"lo"),
        LIMITS + frame(0x1, "κόσμε".encode()) + frame(0x8, b"\x03\xe8bye"),
        LIMITS + frame(0x1, b"\xce\xba\xe1", fin=False) + frame(0x0, b"\xbd\xb9"),
        LIMITS + frame(0x2, b"\0" * 300, fin=False) + frame(0x0, b"\1" * 300),
        LIMITS + frame(0x1, b"\xff"),
        LIMITS + frame(0x8, b"\x03"),
    ],
    "http_head": [
        b"\x20GET /chat?name=alice HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:8080\r\n\r\n",
        b"\x10POST /login HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        b"\x08GET / HTTP/1.0\r\n\r\n",
        b"\x08GET /%2e%2e/etc HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4, ::1\r\n\r\n",
        b"\x01GET /x\x1b[31m HTTP/1.1\r\n\r\n",
        b"\x08GET / HTTP/1.1\r\n folded: header\r\n\r\n",
    ],
    "chat_json": [b"\x80\x08" + m.encode() for m in [
        '{"type":"broadcast","text":"hi all","id":1}',
        '{"type":"direct","to":"bob","text":"hi","id":"d1"}',
        '{"type":"multicast","to":["bob","carol","bob"],"text":"hi"}',
        '{"type":"subscribe","topic":"news","id":"s1"}',
        '{"type":"publish","topic":"news","text":"extra!","id":9}',
        '{"type":"request","id":1,"method":"history","params":{"limit":2,"before":40}}',
        '{"type":"request","id":4,"method":"search","params":{"q":"lunch friday"}}',
        '{"type":"login","name":"alice","password":"correct horse","id":2}',
        '{"type":"auth","token":"abc"}',
        'plain text is a broadcast',
        '{"type":"direct","to":"bob","text":"\\u0000\\ud83d\\ude00"}',
    ]],
    "token": [
        b"\0" + jwt({"sub": "alice", "exp": 2_000_000, "aud": "chat"}).encode(),
        b"\0" + jwt({"sub": "alice", "exp": 2_000_000}, key=b"wrong").encode(),
        b"\0" + b"a.b.c",
        b"\1" + json.dumps({"sub": "alice", "exp": 2_000_000, "aud": ["x", "chat"],
                            "roles": ["admin", "nope"]}).encode(),
        b"\1" + json.dumps({"sub": 7, "exp": "soon"}).encode(),
    ],
    "resp": [
        b"+OK\r\n", b"-ERR wrong type\r\n", b":42\r\n", b"$-1\r\n", b"*-1\r\n",
        b"$5\r\nhello\r\n", b"*3\r\n$7\r\nmessage\r\n$11\r\nsb:messages\r\n$9\r\n7 {\"a\":1}\r\n",
        b"*2\r\n*2\r\n$3\r\n7-1\r\n*2\r\n$1\r\nm\r\n$2\r\n{}\r\n:1\r\n",
        b"$99999999999\r\n", b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
    ],
}

for name, seeds in SEEDS.items():
    folder = os.path.join(HERE, "corpus", name)
    os.makedirs(folder, exist_ok=True)
    for i, seed in enumerate(seeds):
        with open(os.path.join(folder, f"seed-{i:02}"), "wb") as f:
            f.write(seed)
    print(f"{name}: {len(seeds)} seeds")
