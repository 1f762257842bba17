#!/usr/bin/env python3
"""Turn run.sh's results.jsonl into the markdown table of docs/performance.md: the median over
rounds of each peer's rate per CPU-second, and Envelope's ratio to each peer."""

import json
import statistics
import sys
from collections import defaultdict

rates, rss, errors = defaultdict(list), {}, set()
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("error"):
        errors.add((r["peer"], r["workload"]))
    elif "max_rss_kib" in r:
        rss[(r["peer"], r["workload"])] = r["max_rss_kib"]
    elif r["cpu_s"] > 0:
        per_cpu = r["ops"] / r["cpu_s"]
        rates[(r["peer"], r["workload"])].append(per_cpu * (r["bytes_per_op"] / 1e6 if "16m" in r["workload"] else 1))

peers = ["envelope", "aws-esdk", "python"]
kind = lambda w: 2 if w.startswith("hier") else 1 if w.startswith("cache") else 0
workloads = sorted({w for _, w in rates}, key=lambda w: (w.split("-")[1] != "1k", kind(w), w.split("-")[2], w))
print("| workload | unit | " + " | ".join(peers) + " | Envelope / aws-esdk | Envelope / Python |")
print("|---|---|" + "---|" * (len(peers) + 2))
for w in workloads:
    unit = "MB/s" if "16m" in w else "msg/s"
    med = {p: statistics.median(rates[(p, w)]) if rates[(p, w)] else None for p in peers}
    cells = [f"{med[p]:,.0f}" if med[p] else ("n/a" if (p, w) not in errors else "error") for p in peers]
    ratio = lambda other: f"{med['envelope'] / med[other]:.1f}x" if med["envelope"] and med[other] else "-"
    print(f"| {w} | {unit} | " + " | ".join(cells) + f" | {ratio('aws-esdk')} | {ratio('python')} |")
print()
print("| peak RSS, 16 MiB encrypt 0x0578 | " + " | ".join(peers) + " |")
print("|---|" + "---|" * len(peers))
cells = []
for p in peers:
    idle, busy = rss.get((p, "rss-idle")), rss.get((p, "rss-mem-16m-0578"))
    cells.append(f"{(busy - idle) / 1024:.1f} MiB above idle ({busy / 1024:.1f} MiB total)" if idle and busy else "-")
print("| | " + " | ".join(cells) + " |")
