#!/usr/bin/env python3
"""What signing in costs (issue 13): the time of one Argon2id verify as a
login sees it, whether a wrong password and an unknown name can be told
apart by time, and the server's memory while 100 logins arrive at once.

    cargo build --release && bench/.venv/bin/python bench/logins.py

Each failure comes from its own loopback address (127.0.0.x) and at most 4
per account, so the throttles (5 per account, 20 per address) never answer
instead of the hash. Prints one JSON line.
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import sys
import subprocess
import tempfile
import threading
import time

from websockets.sync.client import connect

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(os.path.dirname(HERE), "target", "release", "switchboard")


def start(db):
    proc = subprocess.Popen([BIN, "--listen", "0.0.0.0:0", "--rate", "0", "--db", db],
                            stderr=subprocess.PIPE, text=True)
    found = []

    def read():
        for line in proc.stderr:
            m = re.search(r"listening on \S+:(\d+)", line)
            if m and not found:
                found.append(int(m.group(1)))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.time() + 30
    while not found and time.time() < deadline:
        time.sleep(0.02)
    if not found:
        proc.kill()
        raise SystemExit("switchboard did not start")
    return proc, found[0]


def ws_from(port, source):
    """A chat connection from loopback address `source`."""
    s = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
    ws = connect("ws://127.0.0.1:%d/chat" % port, sock=s, max_size=None, ping_interval=None, close_timeout=30)
    ws.recv()  # welcome
    return ws


def hang_up(ws):
    """Drop the connection without a closing handshake: the sync client
    hands frames to the application one at a time, so with unread frames
    (a welcome, presence) its reader would never see the server's Close."""
    ws.socket.close()


def request(ws, rid, method, params):
    ws.send(json.dumps({"type": "request", "id": rid, "method": method, "params": params}))
    while True:
        m = json.loads(ws.recv())
        if m.get("type") == "response" and m.get("id") == rid:
            return m


def rss_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--concurrent", type=int, default=100)
    a = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="switchboard-logins-")
    proc, port = start(os.path.join(folder, "accounts.db"))
    try:
        accounts = max(1, a.samples // 4)
        admin = ws_from(port, "127.0.0.1")
        for i in range(accounts):
            r = request(admin, i, "register" if i == 0 else "register",
                        {"name": "user%d" % i, "password": "password-%d" % i})
            assert "result" in r, r
            if i == 0:
                admin.recv()  # the welcome of user0 (now signed in)
            hang_up(admin)
            admin = ws_from(port, "127.0.0.1")
        hang_up(admin)
        print("registered %d accounts" % accounts, file=sys.stderr, flush=True)
        # Good logins, wrong passwords and unknown names, interleaved.
        good, wrong, unknown = [], [], []
        for i in range(a.samples):
            source = "127.0.%d.%d" % (1 + i // 200, 2 + i % 200)
            ws = ws_from(port, source)
            for kind, params, into in (
                ("good", {"name": "user%d" % (i % accounts), "password": "password-%d" % (i % accounts)}, good),
                ("wrong", {"name": "user%d" % (i % accounts), "password": "not-the-one"}, wrong),
                ("unknown", {"name": "nobody%d" % i, "password": "not-the-one"}, unknown),
            ):
                if kind == "good":
                    continue  # measured below, after the failures
                t = time.perf_counter()
                r = request(ws, 1, "login", params)
                into.append((time.perf_counter() - t) * 1000)
                assert r.get("error", {}).get("code") == "bad_credentials", r
            hang_up(ws)
        for i in range(a.samples):
            ws = ws_from(port, "127.0.9.%d" % (2 + i % 200))
            t = time.perf_counter()
            r = request(ws, 1, "login", {"name": "user%d" % (i % accounts), "password": "password-%d" % (i % accounts)})
            good.append((time.perf_counter() - t) * 1000)
            assert "result" in r, r
            hang_up(ws)
        print("sequential logins done", file=sys.stderr, flush=True)
        # 100 logins at once: memory, and how long the last one waits.
        before = rss_kib(proc.pid, "VmRSS")
        socks = [ws_from(port, "127.0.10.%d" % (2 + i % 200)) for i in range(a.concurrent)]
        go = threading.Barrier(a.concurrent)
        done = []

        def one(i, ws):
            go.wait()
            t = time.perf_counter()
            r = request(ws, 1, "login", {"name": "user%d" % (i % accounts), "password": "password-%d" % (i % accounts)})
            done.append(((time.perf_counter() - t) * 1000, "result" in r))

        threads = [threading.Thread(target=one, args=(i, ws)) for i, ws in enumerate(socks)]
        peak = 0
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, rss_kib(proc.pid, "VmRSS"))
            time.sleep(0.005)
        for ws in socks:
            hang_up(ws)
        med = statistics.median
        q = lambda xs, p: sorted(xs)[int(len(xs) * p) - 1]
        print(json.dumps({
            "login_ms_median": round(med(good), 1),
            "wrong_password_ms_median": round(med(wrong), 1),
            "unknown_name_ms_median": round(med(unknown), 1),
            "wrong_p90_ms": round(q(wrong, 0.9), 1),
            "unknown_p90_ms": round(q(unknown, 0.9), 1),
            "unknown_over_wrong": round(med(unknown) / med(wrong), 3),
            "concurrent_logins": a.concurrent,
            "all_ok": all(ok for _, ok in done),
            "slowest_concurrent_ms": round(max(ms for ms, _ in done), 1),
            "rss_before_mib": round(before / 1024, 1),
            "rss_peak_mib": round(peak / 1024, 1),
            "vmhwm_mib": round(rss_kib(proc.pid, "VmHWM") / 1024, 1),
        }))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
