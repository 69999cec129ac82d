#!/usr/bin/env bash
# mesh-proxy and nginx at the same offered load, below what the cores can take: the latency
# of each at a load both can carry. In the harness's runs (run_peers.sh, wrk without pause)
# both cores are saturated, and the p99 includes how long wrk and the upstreams wait for the
# core they share. On this shared machine the p99 at half load follows the hypervisor's steal
# time more than the proxy (BENCHMARKS.md, "The same offered load for both").
#
# usage: [NS="1 1000 10000"] [ROUNDS=3] [THINK_MS=1] [DURATION=8] bash tests/bench/equal_load.sh
# Each round runs every (N, case) once per proxy through tests/bench/cpu_split.sh with
# THINK_MS (each of 32 connections waits 0..2 THINK_MS ms, at random, between a response and
# its next request: about 22k requests per second, half of what either proxy can serve),
# mesh-proxy first in odd rounds and nginx first in even ones. Cases as in the harness: first
# (`x-user: user-0`), last (`user-(N-1)`), catchall (`nobody`). Rows go to
# $BENCH_WORK/equal_load.tsv (default /tmp/bench-work); the summary gives, per (N, case), the
# medians over rounds of the ratios mesh-proxy / nginx of req/s, p50, p99 and p99.9, leaving
# out a pair when either side's steal time is above MAX_STEAL percent (default 5), as
# paired_summary.py does. `bash tests/bench/equal_load.sh summary RUN_ID` prints it again.
# The finer measurement of the same thing is `THINK_MS=1 bash tests/bench/interleaved.sh`
# (pairs seconds apart instead of minutes); this script stays for the tables it produced.
set -euo pipefail
cd "$(dirname "$0")/../.."
summary() {
  python3 - "$1" "$2" "${MAX_STEAL:-5}" <<'EOF'
import csv, statistics, sys
rows = {}
for r in csv.DictReader(open(sys.argv[1]), delimiter="\t"):
    if r["run_id"] == sys.argv[2]:
        rows.setdefault((int(r["N"]), r["case"], r["round"]), {})[r["peer"]] = r
cases, left_out = {}, 0
for (n, case, _), peers in rows.items():
    if len(peers) != 2:
        continue
    m, g = peers["mesh-proxy"], peers["nginx"]
    if max(float(m["steal_pct"]), float(g["steal_pct"])) > float(sys.argv[3]):
        left_out += 1
        continue
    cases.setdefault((n, case), []).append(
        [float(m[k]) / float(g[k]) for k in ("rps", "p50_us", "p99_us", "p999_us")]
        + [float(m["p99_us"]), float(g["p99_us"])])
order = {"first": 0, "last": 1, "catchall": 2}
print(f"\n{sys.argv[2]}: medians of the ratios mesh-proxy / nginx at the same offered load"
      f" ({left_out} pairs with steal above {sys.argv[3]}% left out)")
print("| N | case | pairs | req/s | p50 | p99 | p99.9 | p99 us (mesh-proxy, nginx) |")
print("|---|---|---:|---:|---:|---:|---:|---|")
for (n, case) in sorted(cases, key=lambda k: (k[0], order[k[1]])):
    v = cases[(n, case)]
    med = [statistics.median(x[i] for x in v) for i in range(6)]
    print(f"| {n:,} | {case} | {len(v)} | {med[0]:.2f} | {med[1]:.2f} | {med[2]:.2f} | {med[3]:.2f} | {med[4]:.0f}, {med[5]:.0f} |")
EOF
}
work=${BENCH_WORK:-/tmp/bench-work}
out=$work/equal_load.tsv
if [ "${1:-}" = summary ]; then
  summary "$out" "${2:?usage: equal_load.sh summary RUN_ID}"
  exit
fi
NS=${NS:-1 1000 10000}
ROUNDS=${ROUNDS:-3}
export THINK_MS=${THINK_MS:-1}
export DURATION=${DURATION:-8}
mkdir -p "$work"
stamp=equal-$(date +%Y%m%dT%H%M%S)
[ -s "$out" ] || printf 'run_id\tround\tpeer\tN\tcase\trps\tp50_us\tp90_us\tp99_us\tp999_us\tsteal_pct\n' >"$out"
us() { # wrk's "515.00us" or "1.12ms" -> microseconds
  awk -v v="$1" 'BEGIN { if (v ~ /ms$/) printf "%.0f", v * 1000; else if (v ~ /us$/) printf "%.0f", v + 0; else printf "%.0f", v * 1e6 }'
}
for round in $(seq "$ROUNDS"); do
  if ((round % 2)); then peers="mesh-proxy nginx"; else peers="nginx mesh-proxy"; fi
  for n in $NS; do
    for case in first last catchall; do
      case $case in
        first) value=user-0 ;;
        last) value=user-$((n - 1)) ;;
        catchall) value=nobody ;;
      esac
      for peer in $peers; do
        line=$(N=$n VALUE=$value bash tests/bench/cpu_split.sh "$peer" | tail -1)
        echo "round $round N=$n $case: $line"
        # "<peer> N=n: R req/s, ..., p50 X p90 Y p99 Z p99.9 W steal S%"
        read -r rps p50 p90 p99 p999 steal < <(awk '{
            for (i = 1; i <= NF; i++) {
              if ($(i + 1) == "req/s,") r = $i
              if ($i == "p50") a = $(i + 1); if ($i == "p90") b = $(i + 1)
              if ($i == "p99") c = $(i + 1); if ($i == "p99.9") d = $(i + 1)
              if ($i == "steal") s = $(i + 1)
            }
            sub(/%/, "", s); print r, a, b, c, d, s }' <<<"$line")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$stamp" "$round" "$peer" "$n" "$case" \
          "$rps" "$(us "$p50")" "$(us "$p90")" "$(us "$p99")" "$(us "$p999")" "$steal" >>"$out"
      done
    done
  done
done
summary "$out" "$stamp"
