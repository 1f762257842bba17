#!/usr/bin/env python3
"""Print criterion results (target/criterion/<group>/...) as a Markdown table.

usage: scripts/criterion-table.py GROUP [GROUP...]
Throughput is taken from the benchmark's own throughput setting (bytes or elements)."""
import json
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent / "target" / "criterion"
for group in sys.argv[1:]:
    rows = []
    for estimates in sorted((root / group).glob("**/new/estimates.json")):
        bench = json.loads((estimates.parent / "benchmark.json").read_text())
        mean_ns = json.loads(estimates.read_text())["mean"]["point_estimate"]
        throughput = bench.get("throughput") or {}
        name = bench.get("full_id", str(estimates.parent.parent.relative_to(root)))
        if "Bytes" in throughput:
            rate = throughput["Bytes"] / (mean_ns / 1e9) / (1 << 20)
            rows.append((name, mean_ns, f"{rate:,.0f} MiB/s"))
        elif "Elements" in throughput:
            rate = throughput["Elements"] / (mean_ns / 1e9)
            rows.append((name, mean_ns, f"{rate:,.0f} /s"))
        else:
            rows.append((name, mean_ns, ""))
    print(f"| {group} | mean time | throughput |")
    print("|---|---|---|")
    for name, ns, rate in rows:
        shown = f"{ns / 1e6:,.2f} ms" if ns >= 1e6 else f"{ns / 1e3:,.2f} µs"
        print(f"| {name.split('/', 1)[-1]} | {shown} | {rate} |")
    print()
