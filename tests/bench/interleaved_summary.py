#!/usr/bin/env python3
"""Summary of tests/bench/interleaved.sh: per (N, case), the ratio mesh-proxy / nginx of each
pair (the two segments of one round), their medians, and a 95% bootstrap interval of each
median, for requests per second, proxy CPU per request and p99.

usage: interleaved_summary.py [--max-steal PCT] INTERLEAVED_TSV RUN_ID_PREFIX...

A pair is left out when either segment's steal time is above --max-steal percent (default 5).

The verdict per target, decided before the first run of this script (BENCHMARKS.md, "Paired
seconds apart"): requests/s "at or above" nginx's and CPU and p99 "at or below" its own are
each judged on the median of the pairs' ratios and its interval:
  met       the median is on the right side of 1.00, or the interval holds 1.00 and its
            far end is within 5% of it (equal within what the pairs can tell apart);
  not met   otherwise (the whole interval on the wrong side, or a median on the wrong side
            with the interval reaching more than 5% past 1.00).
"""
import argparse
import csv
import random
import statistics

parser = argparse.ArgumentParser()
parser.add_argument("--max-steal", type=float, default=5.0)
parser.add_argument("tsv")
parser.add_argument("prefixes", nargs="+")
args = parser.parse_args()

MARGIN = 0.05
RESAMPLES = 10_000

segments = {}
with open(args.tsv) as f:
    for r in csv.DictReader(f, delimiter="\t"):
        if any(r["run_id"].startswith(p) for p in args.prefixes):
            key = (int(r["N"]), r["case"], r["run_id"], r["round"])
            segments.setdefault(key, {})[r["peer"]] = r

cases = {}
for (n, case, _run, _round), peers in segments.items():
    if "mesh-proxy" not in peers or "nginx" not in peers:
        continue
    m, g = peers["mesh-proxy"], peers["nginx"]
    entry = cases.setdefault((n, case), {"all": 0, "ratios": []})
    entry["all"] += 1
    if max(float(m["steal_pct"]), float(g["steal_pct"])) > args.max_steal:
        continue
    entry["ratios"].append(
        tuple(
            float(m[k]) / float(g[k])
            for k in ("rps", "proxy_cpu_us_per_req", "p99_us")
        )
    )


def interval(values, rng):
    """95% percentile-bootstrap interval of the median."""
    medians = sorted(
        statistics.median(rng.choices(values, k=len(values))) for _ in range(RESAMPLES)
    )
    return medians[int(0.025 * RESAMPLES)], medians[int(0.975 * RESAMPLES) - 1]


def verdict(median, low, high, higher_is_better):
    if higher_is_better:
        if median >= 1.0 or (low <= 1.0 <= high and low >= 1.0 - MARGIN):
            return "met"
    elif median <= 1.0 or (low <= 1.0 <= high and high <= 1.0 + MARGIN):
        return "met"
    return "NOT met"


rng = random.Random(20261127)
order = {"first": 0, "last": 1, "catchall": 2}
print(
    "| N | case | pairs kept / run | req/s ratio: median [95%] | CPU/req ratio: median [95%] "
    "| p99 ratio: median [95%] | verdicts (req/s, CPU, p99) |"
)
print("|---:|---|---:|---|---|---|---|")
counts = [0, 0, 0]
total = 0
for (n, case), entry in sorted(cases.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9))):
    ratios = entry["ratios"]
    if len(ratios) < 2:
        print(f"| {n:,} | {case} | {len(ratios)} / {entry['all']} | too few pairs | | | |")
        continue
    total += 1
    cells, verdicts = [], []
    for i, higher in ((0, True), (1, False), (2, False)):
        values = [r[i] for r in ratios]
        median = statistics.median(values)
        low, high = interval(values, rng)
        cells.append(f"{median:.3f} [{low:.3f}, {high:.3f}]")
        v = verdict(median, low, high, higher)
        verdicts.append(v)
        counts[i] += v == "met"
    print(
        f"| {n:,} | {case} | {len(ratios)} / {entry['all']} | "
        + " | ".join(cells)
        + f" | {', '.join(verdicts)} |"
    )
print()
print(
    f"met in {counts[0]} / {total} (req/s), {counts[1]} / {total} (CPU per request), "
    f"{counts[2]} / {total} (p99)"
)
