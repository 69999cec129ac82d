#!/usr/bin/env bash
# mesh-proxy and nginx measured back to back, in alternating order, so that the noise of this
# shared machine hits both alike; prints the per-pair ratios and their medians.
#
# usage: [NS="1 1000 10000"] [PAIRS=4] bash tests/bench/run_paired.sh
# Each of PAIRS rounds runs tests/bench/run_peers.sh once per N with REPS=1 (the three cases
# for one peer, then for the other: about 30 s apart); odd rounds start with mesh-proxy, even
# rounds with nginx. Per (N, case) and round: mesh-proxy req/s / nginx req/s, and the same
# ratio for proxy CPU per request and p99, by tests/bench/paired_summary.py, which leaves out
# a pair when either side's steal time is above MAX_STEAL percent (default 5). The rows land
# in the harness's results.tsv as usual; paired_summary.py can pool several invocations.
set -euo pipefail
cd "$(dirname "$0")/../.."
NS=${NS:-1 1000 10000}
PAIRS=${PAIRS:-4}
results=${BENCH_RESULTS:-${BENCH_WORK:-/tmp/bench-work}/results.tsv}
stamp=$(date +%Y%m%dT%H%M%S)
for round in $(seq "$PAIRS"); do
  if ((round % 2)); then peers="mesh-proxy nginx"; else peers="nginx mesh-proxy"; fi
  for n in $NS; do
    run_id="paired-$stamp-$round-$n"
    RUN_ID=$run_id PEERS=$peers NS=$n REPS=1 BASELINE=0 bash tests/bench/run_peers.sh
  done
done
python3 tests/bench/paired_summary.py --max-steal "${MAX_STEAL:-5}" "$results" "paired-$stamp-"
