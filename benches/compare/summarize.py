#!/usr/bin/env python3
"""Turn run.sh's results.jsonl into the tables of docs/performance.md: the median over rounds of
each peer's rate per CPU-second, Envelope's ratio to each peer, the master-key calls of the
cold burst, and the peak memory of a 16 MiB encrypt."""

import json
import statistics
import sys
from collections import defaultdict

rates, rss, calls, errors = defaultdict(list), {}, defaultdict(list), set()
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("error"):
        errors.add((r["peer"], r["workload"]))
    elif "max_rss_kib" in r:
        rss[(r["peer"], r["workload"])] = r["max_rss_kib"]
    elif "master_key_calls" in r:
        calls[r["peer"]].append(r["master_key_calls"])
    elif r["cpu_s"] > 0:
        per_cpu = r["ops"] / r["cpu_s"]
        rates[(r["peer"], r["workload"])].append(per_cpu * (r["bytes_per_op"] / 1e6 if "16m" in r["workload"] else 1))

peers = ["envelope", "aws-esdk", "python", "js"]
names = {"envelope": "Envelope", "aws-esdk": "aws-esdk", "python": "Python", "js": "JS"}
kind = lambda w: 2 if w.startswith("hier") else 1 if w.startswith("cache") else 0
workloads = sorted({w for _, w in rates}, key=lambda w: (w.split("-")[1] != "1k", kind(w), w.split("-")[2], w))
others = peers[1:]
print("| workload | unit | " + " | ".join(names[p] for p in peers) + " | "
      + " | ".join(f"Envelope / {names[p]}" for p in others) + " |")
print("|---|---|" + "---|" * (len(peers) + len(others)))
for w in workloads:
    unit = "MB/s" if "16m" in w else "msg/s"
    med = {p: statistics.median(rates[(p, w)]) if rates[(p, w)] else None for p in peers}
    cells = [f"{med[p]:,.0f}" if med[p] else ("error" if (p, w) in errors else "n/a") for p in peers]
    ratio = lambda other: f"{med['envelope'] / med[other]:.1f}x" if med["envelope"] and med[other] else "-"
    print(f"| {w} | {unit} | " + " | ".join(cells) + " | " + " | ".join(ratio(p) for p in others) + " |")
print()
print("| master-key calls, 64 concurrent encrypts on an empty cache (50 ms master key), per round | "
      + " | ".join(names[p] for p in peers) + " |")
print("|---|" + "---|" * len(peers))
cells = [", ".join(str(c) for c in calls[p]) if calls[p] else ("error" if (p, "burst-64") in errors else "n/a")
         for p in peers]
print("| | " + " | ".join(cells) + " |")
print()
print("| peak RSS, 16 MiB encrypt 0x0578 | " + " | ".join(names[p] for p in peers) + " |")
print("|---|" + "---|" * len(peers))
cells = []
for p in peers:
    idle, busy = rss.get((p, "rss-idle")), rss.get((p, "rss-mem-16m-0578"))
    cells.append(f"{(busy - idle) / 1024:.1f} MiB above idle ({busy / 1024:.1f} MiB total)" if idle and busy else "-")
print("| | " + " | ".join(cells) + " |")
