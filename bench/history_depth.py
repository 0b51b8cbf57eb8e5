#!/usr/bin/env python3
"""`history before` from deep in the file: fill a fresh history database
with N messages, start Switchboard on it, and time `history before` pages
of 50 at random points, from a client on loopback.

    bench/.venv/bin/python bench/history_depth.py [--messages 1000000] [--requests 500]

Prints one JSON line: {"messages": N, "p50_ms": .., "p99_ms": .., "fill_s": ..}.
The file is filled with Python's sqlite3 straight into the schema the
server made (through its full-text index triggers), which is much faster
than sending a million messages through the chat.
"""

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time

from websockets.sync.client import connect

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(os.path.dirname(HERE), "target", "release", "switchboard")


def start(db):
    # No retention limit: the point is a file that holds them all.
    proc = subprocess.Popen([BIN, "--listen", "127.0.0.1:0", "--rate", "0", "--retain-messages", "0", "--db", db],
                            stderr=subprocess.PIPE, text=True)
    found = []

    def read():
        for line in proc.stderr:
            m = re.search(r"listening on (\S+)", line)
            if m and not found:
                found.append(m.group(1))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.time() + 60
    while not found and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    if not found:
        proc.kill()
        raise SystemExit("switchboard did not start")
    return proc, found[0]


def stop(proc):
    proc.terminate()
    proc.wait(timeout=30)


def fill(db, n):
    conn = sqlite3.connect(db)
    conn.execute("INSERT OR IGNORE INTO streams (id, kind, name) VALUES (1, 'broadcasts', '')")
    words = ["lunch", "meeting", "release", "coffee", "deploy", "review", "friday", "build", "ok", "thanks"]

    def rows():
        for seq in range(1, n + 1):
            text = "%s %s number %d" % (words[seq % 10], words[(seq // 10) % 10], seq)
            msg = json.dumps({"type": "message", "kind": "broadcast", "from": "u%d" % (seq % 50),
                              "text": text, "seq": seq, "ts": 1764000000000 + seq}, separators=(",", ":"))
            yield (1, seq, 1764000000000 + seq, "u%d" % (seq % 50), msg, text)

    with conn:
        conn.executemany("INSERT INTO messages (stream, seq, ts, sender, json, text) VALUES (?,?,?,?,?,?)", rows())
        conn.execute("INSERT INTO meta (key, value) VALUES ('last_seq', ?) "
                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(n),))
    conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=500)
    a = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="switchboard-depth-")
    db = os.path.join(folder, "history.db")
    try:
        proc, _ = start(db)  # makes the schema
        stop(proc)
        t0 = time.time()
        fill(db, a.messages)
        fill_s = time.time() - t0
        proc, addr = start(db)
        try:
            times = []
            with connect("ws://%s/chat?name=depth" % addr, max_size=None) as ws:
                ws.recv()  # welcome
                rng = random.Random(7)
                for i in range(a.requests):
                    before = rng.randint(200, a.messages - 200)
                    t = time.perf_counter()
                    ws.send(json.dumps({"type": "request", "id": i, "method": "history",
                                        "params": {"before": before, "limit": 50}}))
                    while True:
                        m = json.loads(ws.recv())
                        if m.get("type") in ("response", "error") and m.get("id") == i:
                            break
                    times.append((time.perf_counter() - t) * 1000)
                    got = m["result"]["messages"]
                    assert len(got) == 50 and got[-1]["seq"] == before - 1, m
        finally:
            stop(proc)
        times.sort()
        print(json.dumps({"messages": a.messages, "requests": a.requests, "fill_s": round(fill_s, 1),
                          "p50_ms": round(times[len(times) // 2], 3),
                          "p99_ms": round(times[int(len(times) * 0.99) - 1], 3)}))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
