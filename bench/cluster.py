#!/usr/bin/env python3
"""What a cluster costs (issue 18): the same load on one Switchboard and on
three behind one Redis, in alternating runs on this machine.

    cargo build --release && cargo build --release --example loadgen
    python3 bench/cluster.py [quick|full]

- steady: 1000 clients dealt in turn to the nodes (one node: all on it), 10
  of them sending 100 broadcasts/s in all. Every message must reach every
  client, each client's seqs must only go up (one order), and the cluster's
  p99 must be at most 2x the single node's from the same run.
- burst: 100 clients, 10 senders flat out: fan-out deliveries/s.
- numbering: 6 clients, all sending flat out: messages/s through the one
  order (each message reaches all 6), and Redis's CPU per message.

Both use `--db :memory:` (history in memory; with --redis the history is
Redis's stream anyway). Redis's own CPU per message comes from
/proc/PID/stat. Every process shares the machine's cores with the load
generator, so the figures are ratios from one run, not capacities (see
docs/SCALING.md). Prints a markdown table; `--out FILE` writes it too.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.join(ROOT, "target", "release", "switchboard")
LOADGEN = os.path.join(ROOT, "target", "release", "examples", "loadgen")
FLAGS = ["--listen", "127.0.0.1:0", "--rate", "0", "--max-connections", "3000", "--max-per-ip", "3000",
         "--connect-rate", "0", "--db", ":memory:", "--auth", "none"]
SCENARIOS = {
    "steady": (["fanout", "--clients", "1000", "--senders", "10", "--rate", "100", "--messages", "40"],
               {"--messages": "20"}),
    "burst": (["fanout", "--clients", "100", "--senders", "10", "--messages", "1000"], {"--messages": "300"}),
    # Few clients, all sending flat out: how many messages/s the cluster
    # numbers and delivers (the global order's rate on this machine).
    "numbering": (["fanout", "--clients", "6", "--senders", "6", "--messages", "5000"], {"--messages": "2000"}),
}


def start_node(extra):
    proc = subprocess.Popen([BIN] + FLAGS + extra, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    found = []

    def read():
        for line in proc.stderr:
            m = re.search(r"listening on (\S+)", line)
            if m and not found:
                found.append(m.group(1))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.time() + 15
    while time.time() < deadline and not found and proc.poll() is None:
        time.sleep(0.02)
    if not found:
        proc.kill()
        raise RuntimeError("a node did not start")
    return proc, found[0]


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_redis(folder):
    sock = os.path.join(folder, "redis.sock")
    proc = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
                             "--save", "", "--appendonly", "no", "--dir", folder],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not os.path.exists(sock):
        if time.time() > deadline:
            proc.kill()
            raise RuntimeError("redis-server did not start")
        time.sleep(0.02)
    return proc, "redis+unix://" + sock


def run(cluster, scenario, quick):
    args, short = SCENARIOS[scenario]
    args = list(args)
    if quick:
        for flag, value in short.items():
            args[args.index(flag) + 1] = value
    folder = tempfile.mkdtemp(prefix="switchboard-cluster-")
    procs, redis = [], None
    try:
        if cluster:
            redis, url = start_redis(folder)
            nodes = [start_node(["--redis", url]) for _ in range(3)]
        else:
            nodes = [start_node([])]
        procs = [p for p, _ in nodes]
        time.sleep(0.3)
        target = ["--url", "ws://" + nodes[0][1], "--pid", str(procs[0].pid)]
        for proc, addr in nodes[1:]:
            target += ["--also", "ws://" + addr, "--also-pid", str(proc.pid)]
        if redis:
            target += ["--redis-pid", str(redis.pid)]
        out = subprocess.run([LOADGEN] + args + target, capture_output=True, text=True, timeout=300)
        result = {}
        for line in out.stdout.splitlines():
            if line.startswith("{"):
                result.update(json.loads(line))
        return result or {"error": out.stderr[-300:]}
    finally:
        for proc in procs:
            stop(proc)
        if redis:
            redis.kill()
            redis.wait()
        shutil.rmtree(folder, ignore_errors=True)


def median(values):
    values = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(values) if values else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", default="quick", choices=["quick", "full"])
    ap.add_argument("--out")
    a = ap.parse_args()
    quick = a.mode == "quick"
    rounds = 1 if quick else 3
    results = {}
    for r in range(rounds):
        for scenario in SCENARIOS:
            for cluster in (False, True):
                res = run(cluster, scenario, quick)
                results.setdefault((scenario, cluster), []).append(res)
                print("round %d %-7s %-8s %s" % (r + 1, scenario, "cluster" if cluster else "single",
                                                 res.get("error") or {k: res.get(k) for k in (
                                                     "delivered", "loss", "per_second", "p99_ms", "out_of_order",
                                                     "redis_cpu_us_per_message")}), flush=True)

    def m(scenario, cluster, key):
        return median([x.get(key) for x in results[(scenario, cluster)]])

    lines = ["# Cluster cost (%s mode, %d round%s): one node vs three nodes and one Redis" %
             (a.mode, rounds, "" if rounds == 1 else "s"), "",
             "| measure | one node | three nodes + Redis | ratio |", "|---|---|---|---|"]

    def row(label, scenario, key, fmt="%.3f"):
        one, three = m(scenario, False, key), m(scenario, True, key)
        ratio = "%.2fx" % (three / one) if one and three is not None else "-"
        show = lambda v: "-" if v is None else fmt % v
        lines.append("| %s | %s | %s | %s |" % (label, show(one), show(three), ratio))

    row("steady: deliveries (of %s expected)" % m("steady", False, "expected"), "steady", "delivered", "%d")
    row("steady: p50 latency, ms", "steady", "p50_ms")
    row("steady: p99 latency, ms", "steady", "p99_ms")
    row("steady: out-of-order deliveries", "steady", "out_of_order", "%d")
    row("steady: server CPU per delivery, µs (all nodes)", "steady", "server_cpu_us_per_delivery")
    row("steady: Redis CPU per message, µs", "steady", "redis_cpu_us_per_message", "%.1f")
    row("burst: deliveries/s", "burst", "per_second", "%.0f")
    row("burst: out-of-order deliveries", "burst", "out_of_order", "%d")
    row("burst: Redis CPU per message, µs", "burst", "redis_cpu_us_per_message", "%.1f")
    for res in results.values():
        for x in res:
            if x.get("per_second") and x.get("clients"):
                x["messages_per_second"] = x["per_second"] / x["clients"]
    row("numbering: messages/s (6 clients, all sending)", "numbering", "messages_per_second", "%.0f")
    row("numbering: out-of-order deliveries", "numbering", "out_of_order", "%d")
    row("numbering: Redis CPU per message, µs", "numbering", "redis_cpu_us_per_message", "%.1f")
    one, three = m("steady", False, "p99_ms"), m("steady", True, "p99_ms")
    lost = m("steady", True, "loss")
    order = m("steady", True, "out_of_order")
    if one and three is not None:
        met = three <= 2 * one and lost == 0 and order == 0
        lines += ["", "Target: every message to all, one order, cluster p99 ≤ 2x one node's: %s "
                  "(p99 %.3f vs %.3f ms, %s lost, %s out of order)." %
                  ("met" if met else "**not met**", three, one, lost, order)]
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
