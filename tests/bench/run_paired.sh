#!/usr/bin/env bash
# mesh-proxy and nginx measured back to back, in alternating order, so that the noise of this
# shared machine hits both alike; prints the per-pair ratios and their medians.
#
# usage: [NS="1 1000 10000"] [PAIRS=4] bash tests/bench/run_paired.sh
# Each of PAIRS rounds runs tests/bench/run_peers.sh once per N with REPS=1 (the three cases
# for one peer, then for the other: about 30 s apart); odd rounds start with mesh-proxy, even
# rounds with nginx. Per (N, case) and round: mesh-proxy req/s / nginx req/s, and the same
# ratio for proxy CPU per request and p99. The rows land in the harness's results.tsv as usual.
set -euo pipefail
cd "$(dirname "$0")/../.."
NS=${NS:-1 1000 10000}
PAIRS=${PAIRS:-4}
results=${BENCH_RESULTS:-${BENCH_WORK:-/tmp/bench-work}/results.tsv}
stamp=$(date +%Y%m%dT%H%M%S)
runs=()
for round in $(seq "$PAIRS"); do
  if ((round % 2)); then peers="mesh-proxy nginx"; else peers="nginx mesh-proxy"; fi
  for n in $NS; do
    run_id="paired-$stamp-$round-$n"
    runs+=("$run_id")
    RUN_ID=$run_id PEERS=$peers NS=$n REPS=1 BASELINE=0 bash tests/bench/run_peers.sh
  done
done
python3 - "$results" "${runs[@]}" <<'PY'
import csv, statistics, sys
path, runs = sys.argv[1], set(sys.argv[2:])
rows = {}
with open(path) as f:
    for r in csv.DictReader(f, delimiter="\t"):
        if r["run_id"] in runs:
            rows.setdefault((int(r["N"]), r["case"], r["run_id"]), {})[r["peer"]] = r
by_case = {}
for (n, case, run), peers in sorted(rows.items()):
    if "mesh-proxy" not in peers or "nginx" not in peers:
        continue
    m, g = peers["mesh-proxy"], peers["nginx"]
    ratio = lambda key: float(m[key]) / float(g[key])
    by_case.setdefault((n, case), []).append(
        (ratio("rps"), ratio("proxy_cpu_us_per_req"), ratio("p99_us"),
         float(m["rps"]), float(g["rps"]), float(m["proxy_cpu_us_per_req"]),
         float(g["proxy_cpu_us_per_req"])))
order = {"first": 0, "last": 1, "catchall": 2}
print("| N | case | pairs | req/s mesh/nginx (each pair) | median | CPU/req mesh/nginx (median) | p99 mesh/nginx (median) | mesh-proxy req/s, CPU us (median) | nginx req/s, CPU us (median) |")
print("|---:|---|---:|---|---:|---:|---:|---|---|")
for (n, case) in sorted(by_case, key=lambda k: (k[0], order.get(k[1], 9))):
    pairs = by_case[(n, case)]
    med = lambda i: statistics.median(p[i] for p in pairs)
    each = " ".join(f"{p[0]:.2f}" for p in pairs)
    print(f"| {n:,} | {case} | {len(pairs)} | {each} | {med(0):.2f} | {med(1):.2f} | {med(2):.2f} "
          f"| {med(3):,.0f}, {med(5):.1f} | {med(4):,.0f}, {med(6):.1f} |")
PY
