#!/usr/bin/env python3
"""Run every scenario against every server in interleaved rounds and print
medians and ratios. Called by bench/run.sh, which builds everything first.

    python3 bench/bench.py [quick|full] [--only switchboard,node] [--out FILE]

Each server is started fresh on a free loopback port for each scenario run
(so memory and CPU figures belong to that run only), in the order
A B C ... A B C ..., so that drift on the machine hits every server alike.
"""

import argparse
import datetime
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LOADGEN = os.path.join(ROOT, "target", "release", "examples", "loadgen")

SERVERS = {
    # Switchboard with its defaults, except: no chat rate limit (the senders
    # go flat out) and room for 5000 connections (the default cap is 1024).
    "switchboard": [os.path.join(ROOT, "target", "release", "switchboard"), "--listen", "127.0.0.1:0",
                    "--rate", "0", "--max-connections", "6000"],
    "tungstenite": [os.path.join(HERE, "peers", "tungstenite", "target", "release", "peer-tungstenite"), "0"],
    "poco": [os.path.join(HERE, "peers", "poco", "server"), "0"],
    "node-ws": ["node", os.path.join(HERE, "peers", "node", "server.mjs"), "0"],
    "python-websockets": [os.path.join(HERE, ".venv", "bin", "python"), os.path.join(HERE, "peers", "python", "server.py"), "0"],
}

# name -> (loadgen arguments, quick-mode overrides). Quick mode is for a
# first look (under 2 minutes); full mode's medians are the results.
SCENARIOS = {
    "burst": (["fanout", "--clients", "100", "--senders", "10", "--messages", "1000"],
              ["--messages", "300"]),
    "steady": (["fanout", "--clients", "1000", "--senders", "10", "--rate", "100", "--messages", "60"],
               ["--messages", "20"]),
    "echo": (["echo", "--clients", "50", "--seconds", "5"], ["--seconds", "1.5"]),
    "connect": (["connect", "--clients", "5000"], ["--clients", "1000"]),
    # Quick mode sends 4 KiB bodies, so the slow client still fills its
    # queue (and is cut off) within the shorter run.
    "slow-baseline": (["fanout", "--clients", "100", "--senders", "10", "--rate", "2000", "--size", "1024", "--messages", "1000"],
                      ["--messages", "400", "--size", "4096"]),
    "slow": (["slow", "--clients", "100", "--senders", "10", "--rate", "2000", "--size", "1024", "--messages", "1000"],
             ["--messages", "400", "--size", "4096"]),
}

# What each scenario reports, with the better direction.
METRICS = {
    "burst": [("per_second", "deliveries/s", "high"), ("loss", "lost", "low"), ("loadgen_cpu_s", "loadgen CPU s", "info")],
    "steady": [("server_cpu_us_per_delivery", "server CPU µs/delivery", "low"), ("p99_ms", "p99 ms", "low"),
               ("p50_ms", "p50 ms", "low"), ("loss", "lost", "low")],
    "echo": [("per_second", "round trips/s", "high"), ("p99_ms", "p99 ms", "low")],
    "connect": [("rss_per_conn_kib", "RSS KiB/conn", "low"), ("per_second", "connections/s", "high"),
                ("threads", "threads", "info"), ("rss_start_kib", "idle RSS KiB", "low"), ("failed", "failed", "low")],
    "slow-baseline": [("p99_ms", "p99 ms (no slow client)", "low")],
    "slow": [("p99_ms", "p99 ms (with a slow client)", "low"), ("slow_cut_off", "slow one cut off", "info"),
             ("loss", "lost (others)", "low")],
}


def start(name):
    """Start a server; return (process, address) once it prints "listening on ADDR"."""
    proc = subprocess.Popen(SERVERS[name], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
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


def run_one(server, scenario, quick):
    args, quick_args = SCENARIOS[scenario]
    args = list(args)
    if quick:
        for i in range(0, len(quick_args), 2):
            args[args.index(quick_args[i]) + 1] = quick_args[i + 1]
    proc, addr = start(server)
    try:
        time.sleep(0.3)
        out = subprocess.run([LOADGEN] + args + ["--url", "ws://" + addr, "--pid", str(proc.pid)],
                             capture_output=True, text=True, timeout=300)
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
        result = json.loads(line) if line.startswith("{") else {"error": out.stderr[-300:]}
    except subprocess.TimeoutExpired:
        result = {"error": "loadgen timed out"}
    finally:
        stop(proc)
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
    results = {}  # (scenario, server) -> [result]
    started = time.time()
    for r in range(rounds):
        for scenario in scenarios:
            for server in servers:
                res = run_one(server, scenario, quick)
                results.setdefault((scenario, server), []).append(res)
                short = {k: res.get(k) for k, _, _ in METRICS[scenario]}
                print("round %d %-14s %-18s %s" % (r + 1, scenario, server, res.get("error") or short), flush=True)

    lines = ["# Switchboard benchmark, %s (%s mode, %d round%s)" % (datetime.date.today(), a.mode, rounds, "" if rounds == 1 else "s"),
             "", "Machine: %s. The load generator and the servers share these cores." % machine(),
             "Medians over the rounds; ratios are Switchboard / peer from the same rounds "
             "(for 'low is better' metrics, peer / Switchboard, so above 1 means Switchboard is ahead).", ""]
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
    lines.append("Total time: %.0f s." % (time.time() - started))
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    sys.exit(main())
