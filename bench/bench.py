#!/usr/bin/env python3
"""Run every scenario against every server in interleaved rounds and print
medians and ratios. Called by bench/run.sh, which builds everything first.

    python3 bench/bench.py [quick|full] [--only switchboard,node] [--out FILE]

Each server is started fresh on a free loopback port for each scenario run
(so memory and CPU figures belong to that run only), in the order
A B C ... A B C ..., so that drift on the machine hits every server alike.
"""

import argparse
import atexit
import datetime
import json
import os
import platform
import re
import signal
import statistics
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LOADGEN = os.path.join(ROOT, "target", "release", "examples", "loadgen")

SERVERS = {
    # Switchboard with its defaults (history in a SQLite file, a fresh one
    # in a temp folder for each run), except: no chat rate limit (the
    # senders go flat out) and room for 5000 connections (the default cap is
    # 1024). switchboard-mem is the same with --db :memory:, so the
    # persistence cost is the ratio between the two.
    "switchboard": [os.path.join(ROOT, "target", "release", "switchboard"), "--listen", "127.0.0.1:0",
                    "--rate", "0", "--max-connections", "6000", "--max-per-ip", "6000", "--connect-rate", "0", "--db", "{db}"],
    "switchboard-mem": [os.path.join(ROOT, "target", "release", "switchboard"), "--listen", "127.0.0.1:0",
                        "--rate", "0", "--max-connections", "6000", "--max-per-ip", "6000", "--connect-rate", "0", "--db", ":memory:"],
    "tungstenite": [os.path.join(HERE, "peers", "tungstenite", "target", "release", "peer-tungstenite"), "0"],
    "poco": [os.path.join(HERE, "peers", "poco", "server"), "0"],
    "node-ws": ["node", os.path.join(HERE, "peers", "node", "server.mjs"), "0"],
    "python-websockets": [os.path.join(HERE, ".venv", "bin", "python"), os.path.join(HERE, "peers", "python", "server.py"), "0"],
    "beast": [os.path.join(HERE, "peers", "beast", "server"), "0"],
}

# switchboard-tls is switchboard-mem over TLS (wss://), with a throwaway CA
# and server certificate made by `openssl` when the benchmark starts, so the
# cost of TLS is the ratio between the two.
TLS_DIR = tempfile.mkdtemp(prefix="switchboard-bench-tls-")


def make_certificates():
    """A CA and a server certificate for 127.0.0.1 in TLS_DIR."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=TLS_DIR, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=bench CA")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(TLS_DIR, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "san.ext")


SERVERS["switchboard-tls"] = SERVERS["switchboard-mem"] + [
    "--tls-cert", os.path.join(TLS_DIR, "server.crt"), "--tls-key", os.path.join(TLS_DIR, "server.key")]

# SWITCHBOARD_BEFORE=/path/to/an/older/switchboard adds "switchboard-before",
# run with the same flags, so that a change's cost is a ratio from one run
# (`--only switchboard,switchboard-before`). Flags the older binary does not
# know are dropped by listing them in SWITCHBOARD_BEFORE_DROP (comma-separated).
if os.environ.get("SWITCHBOARD_BEFORE"):
    drop = set(filter(None, os.environ.get("SWITCHBOARD_BEFORE_DROP", "").split(",")))
    before = [os.environ["SWITCHBOARD_BEFORE"]]
    args = SERVERS["switchboard"][1:]
    i = 0
    while i < len(args):
        if args[i] in drop:
            i += 2
            continue
        before.append(args[i])
        i += 1
    SERVERS["switchboard-before"] = before

# name -> (loadgen arguments, quick-mode overrides). Quick mode is for a
# first look (under 2 minutes); full mode's medians are the results.
SCENARIOS = {
    "burst": (["fanout", "--clients", "100", "--senders", "10", "--messages", "1000"],
              ["--messages", "300"]),
    "steady": (["fanout", "--clients", "1000", "--senders", "10", "--rate", "100", "--messages", "40"],
               ["--messages", "20"]),
    "echo": (["echo", "--clients", "50", "--seconds", "4"], ["--seconds", "1.5"]),
    "connect": (["connect", "--clients", "5000"], ["--clients", "1000"]),
    # slow-baseline and slow: 1000 messages/s of 2 KiB, so the client that
    # never reads is sent 2 MB/s and outgrows its queue bound (4 MiB) within
    # a few seconds, while the machine keeps headroom: at twice the rate both
    # cores were nearly busy and p99 measured scheduling, not the slow client
    # (identical runs ranged 2.3-8.0 ms). Quick mode sends 4 KiB bodies (the
    # most Switchboard's chat accepts), so the slow client is still cut off
    # within the shorter run.
    "slow-baseline": (["fanout", "--clients", "100", "--senders", "10", "--rate", "1000", "--size", "2048", "--messages", "500"],
                      ["--messages", "250", "--size", "4096"]),
    "slow": (["slow", "--clients", "100", "--senders", "10", "--rate", "1000", "--size", "2048", "--messages", "500"],
             ["--messages", "250", "--size", "4096"]),
}

# Two targets compare against one reference that moves a lot from run to
# run on a shared 2-core machine, so full mode adds EXTRA_ROUNDS more
# back-to-back runs of just the servers and scenarios they need, after the
# rounds, and judges them on the medians of rounds + EXTRA_ROUNDS runs each:
# - slow: Switchboard with and without a client that never reads (p99 at
#   ~1.3 ms moves by 10-20% between identical runs);
# - burst: Switchboard and the tungstenite peer, whose burst rate is bimodal
#   (1.0M to 7.0M deliveries/s between identical runs), so three rounds can
#   land either way.
EXTRA = [("switchboard", "slow-baseline"), ("switchboard", "slow"),
         ("switchboard", "burst"), ("tungstenite", "burst"), ("switchboard-mem", "burst")]
EXTRA_ROUNDS = 6

# What each scenario reports, with the better direction.
METRICS = {
    "burst": [("per_second", "deliveries/s", "high"), ("loss", "lost", "low"), ("loadgen_cpu_s", "loadgen CPU s", "info"),
              ("persisted_after_s", "history file caught up, s after the burst", "info"),
              ("persisted_per_s", "messages written to the file/s", "info")],
    "steady": [("server_cpu_us_per_delivery", "server CPU µs/delivery", "low"), ("p99_ms", "p99 ms", "low"),
               ("p50_ms", "p50 ms", "low"), ("loss", "lost", "low")],
    "echo": [("per_second", "round trips/s", "high"), ("p99_ms", "p99 ms", "low"),
             ("server_user_us_per_delivery", "server user-space CPU µs/round trip", "low"),
             ("server_sys_us_per_delivery", "server kernel CPU µs/round trip", "low"),
             ("loadgen_cpu_us_per_delivery", "loadgen CPU µs/round trip", "info")],
    "connect": [("rss_per_conn_kib", "RSS KiB/conn", "low"), ("per_second", "connections/s", "high"),
                ("threads", "threads", "info"), ("rss_start_kib", "idle RSS KiB", "low"), ("failed", "failed", "low")],
    "slow-baseline": [("p99_ms", "p99 ms (no slow client)", "low")],
    "slow": [("p99_ms", "p99 ms (with a slow client)", "low"), ("slow_cut_off", "slow one cut off", "info"),
             ("loss", "lost (others)", "low")],
}


def start(name, db=None):
    """Start a server; return (process, address) once it prints "listening on ADDR"."""
    command = [db if arg == "{db}" else arg for arg in SERVERS[name]]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    found = []

    def read():
        for line in proc.stderr:  # keeps draining, so the server never blocks on a full pipe
            m = re.search(r"listening on (\S+)", line)
            if m and not found:
                found.append(m.group(1))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.time() + 15
    while time.time() < deadline and not found and proc.poll() is None:
        time.sleep(0.02)
    if found:
        return proc, found[0]
    proc.kill()
    raise RuntimeError("%s did not start" % name)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def scenario_args(scenario, quick):
    """The loadgen arguments of a scenario, with quick mode's overrides."""
    args, quick_args = SCENARIOS[scenario]
    args = list(args)
    if quick:
        for i in range(0, len(quick_args), 2):
            args[args.index(quick_args[i]) + 1] = quick_args[i + 1]
    return args


def persisted_seq(db):
    """The highest seq in a history file (read-only, beside the writer)."""
    try:
        conn = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=1)
        try:
            return conn.execute("SELECT coalesce(max(seq), 0) FROM messages").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def catch_up(db, args, result):
    """After a burst on a history file: how long until every message is in
    the file, and the rate the writer kept over the burst."""
    messages = int(args[args.index("--senders") + 1]) * int(args[args.index("--messages") + 1])
    clients = int(args[args.index("--clients") + 1])
    ended = time.time()
    while persisted_seq(db) < messages and time.time() - ended < 10:
        time.sleep(0.01)
    if persisted_seq(db) < messages:
        result["persisted_after_s"] = None
        return
    after = time.time() - ended
    result["persisted_after_s"] = round(after, 3)
    if result.get("per_second"):
        burst = messages * clients / result["per_second"]
        result["persisted_per_s"] = round(messages / (burst + after))


def merged(stdout):
    """The loadgen's JSON lines as one result (None if there is none)."""
    result = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            result.update(json.loads(line))
    return result or None


def run_one(server, scenario, quick):
    args = scenario_args(scenario, quick)
    folder = tempfile.mkdtemp(prefix="switchboard-bench-")
    db = os.path.join(folder, "history.db")
    proc, addr = start(server, db)
    try:
        time.sleep(0.3)
        url = ["--url", "ws://" + addr]
        if server == "switchboard-tls":
            url = ["--url", "wss://" + addr, "--cafile", os.path.join(TLS_DIR, "ca.crt")]
        out = subprocess.run([LOADGEN] + args + url + ["--pid", str(proc.pid)],
                             capture_output=True, text=True, timeout=300)
        result = merged(out.stdout) or {"error": out.stderr[-300:]}
        if scenario == "burst" and "{db}" in SERVERS[server] and "error" not in result:
            catch_up(db, args, result)
    except subprocess.TimeoutExpired:
        result = {"error": "loadgen timed out"}
    finally:
        stop(proc)
        shutil.rmtree(folder, ignore_errors=True)
    return result


def median(values):
    values = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return statistics.median(values) if values else None


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.2f" % v


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return "%s, %d cores, Linux %s" % (cpu, os.cpu_count() or 0, platform.release())


def history_depth(quick):
    """`history before` latency deep in a history file (bench/history_depth.py)."""
    count = "100000" if quick else "1000000"
    out = subprocess.run([os.path.join(HERE, ".venv", "bin", "python"), os.path.join(HERE, "history_depth.py"),
                          "--messages", count], capture_output=True, text=True, timeout=600)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if not line.startswith("{"):
        print("history depth failed: %s" % out.stderr[-300:], flush=True)
        return None
    result = json.loads(line)
    print("history-depth  switchboard        %s" % result, flush=True)
    return result


def targets(results, servers, quick, depth=None):
    """Issue 6's targets, judged on this run's medians."""
    def m(scenario, server, key):
        return median([x.get(key) for x in results.get((scenario, server), [])])

    rows = []

    def spread(scenario, server="switchboard", key="p99_ms", unit=" ms"):
        values = [x[key] for x in results.get((scenario, server), []) if key in x]
        return "%s–%s%s" % (fmt(min(values)), fmt(max(values)), unit) if values else "-"

    def row(name, ok, result):
        rows.append("| %s | %s | %s |" % (name, result, "-" if ok is None else ("met" if ok else "**not met**")))

    def ratio(a, b):
        return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None

    sb = "switchboard"
    if sb not in servers:
        return []
    burst = {s: m("burst", s, "per_second") for s in servers}
    t, p = ratio(burst[sb], burst.get("tungstenite")), ratio(burst[sb], burst.get("poco"))
    if t and p:
        row("burst fanout ≥ 1.0× tungstenite and ≥ 5× Poco (medians of %d, %d and %d runs)" %
            tuple(len(results.get(("burst", s), [])) for s in (sb, "tungstenite", "poco")),
            t >= 1.0 and p >= 5.0, "%.2f× and %.1f×; single runs ranged %s (Switchboard) and %s (tungstenite)" %
            (t, p, spread("burst", sb, "per_second", "/s"), spread("burst", "tungstenite", "per_second", "/s")))
    cpu = {s: m("steady", s, "server_cpu_us_per_delivery") for s in servers}
    r = ratio(cpu[sb], cpu.get("poco"))
    if r:
        row("steady fanout CPU per delivery ≤ 0.8× Poco", r <= 0.8, "%.2f vs %.2f µs: %.2f×" % (cpu[sb], cpu["poco"], r))
    p99 = {s: m("steady", s, "p99_ms") for s in servers}
    peers = {s: v for s, v in p99.items() if s != sb and v is not None}
    if p99[sb] is not None and peers:
        best = min(peers, key=peers.get)
        row("steady fanout p99 ≤ the best peer's", p99[sb] <= peers[best],
            "%s vs %s ms (%s)" % (fmt(p99[sb]), fmt(peers[best]), best))
    echo = {s: m("echo", s, "per_second") for s in servers}
    r = ratio(echo[sb], echo.get("poco"))
    if r:
        row("echo round trips/s ≥ 1.2× Poco", r >= 1.2, "%.2f×" % r)
    per_conn, threads = m("connect", sb, "rss_per_conn_kib"), m("connect", sb, "threads")
    connect = scenario_args("connect", quick)
    clients = int(connect[connect.index("--clients") + 1])
    if per_conn is not None and threads is not None:
        row("≤ 16 KiB RSS per idle connection, one thread each (%d connections)" % clients,
            per_conn <= 16 and threads >= clients, "%.1f KiB, %d threads" % (per_conn, threads))
    idle = m("connect", sb, "rss_start_kib")
    if idle is not None:
        row("idle server < 4 MiB RSS", idle < 4096, "%.2f MiB" % (idle / 1024))
    rate = {s: m("connect", s, "per_second") for s in servers}
    r = ratio(rate[sb], rate.get("node-ws"))
    if r:
        row("connections/s ≥ Node ws", r >= 1.0, "%s vs %s" % (fmt(rate[sb]), fmt(rate["node-ws"])))
    base, slow = m("slow-baseline", sb, "p99_ms"), m("slow", sb, "p99_ms")
    runs = results.get(("slow", sb), [])
    cut = [x.get("slow_cut_off") for x in runs]
    if base and slow is not None:
        shift = slow / base - 1
        row("a client that never reads moves the others' p99 by < 10%% and is cut off (medians of %d runs each)" % len(runs),
            shift < 0.10 and all(cut) and not any(x.get("loss") for x in runs),
            "p99 %s → %s ms (%+.0f%%); cut off in %d of %d; for scale, single runs ranged %s without and %s with it" %
            (fmt(base), fmt(slow), shift * 100, sum(bool(c) for c in cut), len(cut), spread("slow-baseline"),
             spread("slow")))
    mem = "switchboard-mem"
    if mem in servers:
        r = ratio(cpu[sb], cpu.get(mem))
        if r:
            row("history file on: steady CPU per delivery ≤ 1.05× `--db :memory:`", r <= 1.05,
                "%.2f vs %.2f µs: %.2f×" % (cpu[sb], cpu[mem], r))
        r = ratio(p99[sb], p99.get(mem))
        if r:
            row("history file on: steady p99 ≤ 1.1× `--db :memory:`", r <= 1.1,
                "%s vs %s ms: %.2f×" % (fmt(p99[sb]), fmt(p99[mem]), r))
        r = ratio(burst[sb], burst.get(mem))
        if r:
            caught = [x.get("persisted_after_s") for x in results.get(("burst", sb), [])]
            rate = m("burst", sb, "persisted_per_s")
            row("history file on: burst ≥ 0.9× `--db :memory:`, the file caught up within 1 s of the burst's end",
                r >= 0.9 and all(isinstance(x, (int, float)) and x <= 1.0 for x in caught),
                "%.2f×; caught up after %s s; the writer kept %s messages/s" %
                (r, ", ".join(fmt(x) for x in caught), fmt(rate)))
    if depth:
        row("`history before` 50 from the file: p99 < 5 ms with %s messages stored" % fmt(depth["messages"]),
            depth["p99_ms"] < 5, "p50 %.2f ms, p99 %.2f ms (%d requests; filling the file took %.0f s)" %
            (depth["p50_ms"], depth["p99_ms"], depth["requests"], depth["fill_s"]))
    if not rows:
        return []
    out = ["## Targets (issues 6 and 12), judged on this run", "", "| target | result | |", "|---|---|---|"] + rows + [""]
    # Echo: what bounds a thread-per-connection server when both cores are busy.
    u, k, g = (m("echo", sb, key) for key in ("server_user_us_per_delivery", "server_sys_us_per_delivery",
                                               "loadgen_cpu_us_per_delivery"))
    poco = [m("echo", "poco", key) for key in ("server_user_us_per_delivery", "server_sys_us_per_delivery",
                                                "loadgen_cpu_us_per_delivery")]
    if None not in (u, k, g) and None not in poco and k + g:
        out += ["Echo CPU per round trip (both cores are busy, so the rate follows the sum): Switchboard "
                "%.2f µs user + %.2f µs kernel, load generator %.2f µs; Poco %.2f + %.2f, load generator %.2f. "
                "With no user-space time at all, Switchboard could be at most %.2f× Poco here." %
                (u, k, g, poco[0], poco[1], poco[2], sum(poco) / (k + g))]
        kernel = {s: m("echo", s, "server_sys_us_per_delivery") for s in servers}
        kernel = {s: v for s, v in kernel.items() if v is not None}
        least = min(kernel, key=kernel.get)
        out[-1] += (" The least kernel time of any server in this run was %s's %.2f µs: even with that, and"
                    " Switchboard's own user time, it could be at most %.2f× Poco." %
                    (least, kernel[least], sum(poco) / (u + kernel[least] + g)))
        out.append("")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", default="quick", choices=["quick", "full"])
    ap.add_argument("--only", help="comma-separated servers")
    ap.add_argument("--scenarios", help="comma-separated scenarios")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--out", help="write the markdown table here")
    a = ap.parse_args()
    quick = a.mode == "quick"
    servers = a.only.split(",") if a.only else list(SERVERS)
    scenarios = a.scenarios.split(",") if a.scenarios else list(SCENARIOS)
    rounds = a.rounds or (1 if quick else 3)
    if "switchboard-tls" in servers:
        make_certificates()
    atexit.register(shutil.rmtree, TLS_DIR, True)
    results = {}  # (scenario, server) -> [result]
    started = time.time()
    def record(label, server, scenario):
        t0 = time.time()
        res = run_one(server, scenario, quick)
        results.setdefault((scenario, server), []).append(res)
        short = {k: res.get(k) for k, _, _ in METRICS[scenario]}
        print("%-8s %-14s %-18s %4.1fs %s" % (label, scenario, server, time.time() - t0,
                                              res.get("error") or short), flush=True)

    for r in range(rounds):
        for scenario in scenarios:
            for server in servers:
                record("round %d" % (r + 1), server, scenario)
    extra = [(sv, sc) for sv, sc in EXTRA if sv in servers and sc in scenarios and not quick]
    depth = None
    for i in range(EXTRA_ROUNDS if extra else 0):
        for server, scenario in extra:
            record("extra %d" % (i + 1), server, scenario)

    if "switchboard" in servers and not a.scenarios:
        depth = history_depth(quick)

    lines = ["# Switchboard benchmark, %s (%s mode, %d round%s)" % (datetime.date.today(), a.mode, rounds, "" if rounds == 1 else "s"),
             "", "Machine: %s. The load generator and the servers share these cores." % machine(),
             "Medians over the rounds; ratios are Switchboard / peer from the same rounds "
             "(for 'low is better' metrics, peer / Switchboard, so above 1 means Switchboard is ahead)." +
             ("" if not extra else " After the rounds, %d more runs each of %s (see bench/README.md): their medians "
              "are over %d runs." % (EXTRA_ROUNDS, ", ".join("%s %s" % x for x in extra), rounds + EXTRA_ROUNDS)),
             ""]
    for scenario in scenarios:
        args, _ = SCENARIOS[scenario]
        lines.append("## %s: `loadgen %s`%s" % (scenario, " ".join(args), " (quick: shorter)" if quick else ""))
        lines.append("")
        header = "| metric | " + " | ".join(servers) + " |"
        lines.append(header)
        lines.append("|" + "---|" * (len(servers) + 1))
        for key, label, better in METRICS[scenario]:
            vals = {}
            for server in servers:
                rs = results.get((scenario, server), [])
                if key == "slow_cut_off":
                    vals[server] = next((x.get(key) for x in rs if key in x), None)
                else:
                    vals[server] = median([x.get(key) for x in rs])
            lines.append("| %s | %s |" % (label, " | ".join(fmt(vals[s]) for s in servers)))
            base = vals.get("switchboard")
            if better in ("high", "low") and isinstance(base, (int, float)) and "switchboard" in servers:
                ratios = []
                for s in servers:
                    v = vals[s]
                    if s == "switchboard" or not isinstance(v, (int, float)) or not v or not base:
                        ratios.append("")
                    else:
                        ratios.append("%.2fx" % (base / v if better == "high" else v / base))
                if any(ratios):
                    lines.append("| ↳ Switchboard ahead by | %s |" % " | ".join(ratios))
        errors = ["%s: %s" % (s, x["error"]) for s in servers for x in results.get((scenario, s), []) if "error" in x]
        if errors:
            lines.append("")
            lines.extend("- error: " + e for e in errors)
        lines.append("")
    lines.extend(targets(results, servers, quick, depth))
    lines.append("Total time: %.0f s." % (time.time() - started))
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    sys.exit(main())
