#!/usr/bin/env python3
"""Summary of paired mesh-proxy / nginx runs (tests/bench/run_paired.sh) from the harness's
results.tsv: per (N, case), the ratio mesh-proxy / nginx of each pair, and the medians of the
ratios of requests per second, proxy CPU per request and p99.

usage: paired_summary.py [--max-steal PCT] RESULTS_TSV RUN_ID_PREFIX...

A run id matches when it starts with one of the prefixes (`paired-20261126T132238` takes a
whole run_paired.sh invocation; several prefixes pool invocations). A pair is left out when
either side's steal time (the hypervisor running someone else on this VM's cores, which the
harness records per run) is above --max-steal percent (default 5): such a side measures the
neighbours, not the proxy. The table says how many pairs were kept of how many.
"""
import argparse
import csv
import statistics

parser = argparse.ArgumentParser()
parser.add_argument("--max-steal", type=float, default=5.0)
parser.add_argument("results")
parser.add_argument("prefixes", nargs="+")
args = parser.parse_args()

rows = {}
with open(args.results) as f:
    for r in csv.DictReader(f, delimiter="\t"):
        if r["peer"] in ("mesh-proxy", "nginx") and any(
            r["run_id"].startswith(p) for p in args.prefixes
        ):
            rows.setdefault((int(r["N"]), r["case"], r["run_id"]), {})[r["peer"]] = r

by_case = {}
for (n, case, _run), peers in sorted(rows.items()):
    if "mesh-proxy" not in peers or "nginx" not in peers:
        continue
    m, g = peers["mesh-proxy"], peers["nginx"]
    kept = max(float(m["steal_pct"]), float(g["steal_pct"])) <= args.max_steal
    entry = by_case.setdefault((n, case), {"all": 0, "pairs": []})
    entry["all"] += 1
    if not kept:
        continue

    def ratio(key):
        return float(m[key]) / float(g[key])

    entry["pairs"].append(
        (
            ratio("rps"),
            ratio("proxy_cpu_us_per_req"),
            ratio("p99_us"),
            float(m["rps"]),
            float(g["rps"]),
            float(m["proxy_cpu_us_per_req"]),
            float(g["proxy_cpu_us_per_req"]),
            float(m["p99_us"]),
            float(g["p99_us"]),
        )
    )

order = {"first": 0, "last": 1, "catchall": 2}
print(f"pairs with steal above {args.max_steal:g}% on either side left out")
print(
    "| N | case | pairs kept / run | req/s mesh/nginx (each pair) | median req/s ratio "
    "| median CPU/req ratio | median p99 ratio | mesh-proxy req/s, CPU us, p99 ms (medians) "
    "| nginx req/s, CPU us, p99 ms (medians) |"
)
print("|---:|---|---:|---|---:|---:|---:|---|---|")
for n, case in sorted(by_case, key=lambda k: (k[0], order.get(k[1], 9))):
    entry = by_case[(n, case)]
    pairs = entry["pairs"]
    if not pairs:
        print(f"| {n:,} | {case} | 0 / {entry['all']} | | | | | | |")
        continue

    def med(i):
        return statistics.median(p[i] for p in pairs)

    def mark(value):
        # Bold where the target is met: req/s at or above nginx's, CPU and p99 at or below.
        return f"**{value:.2f}**"

    rps, cpu, p99 = med(0), med(1), med(2)
    each = " ".join(f"{p[0]:.2f}" for p in pairs)
    print(
        f"| {n:,} | {case} | {len(pairs)} / {entry['all']} | {each} "
        f"| {mark(rps) if rps >= 1 else f'{rps:.2f}'} "
        f"| {mark(cpu) if cpu <= 1 else f'{cpu:.2f}'} "
        f"| {mark(p99) if p99 <= 1 else f'{p99:.2f}'} "
        f"| {med(3):,.0f}, {med(5):.1f}, {med(7) / 1000:.2f} "
        f"| {med(4):,.0f}, {med(6):.1f}, {med(8) / 1000:.2f} |"
    )
